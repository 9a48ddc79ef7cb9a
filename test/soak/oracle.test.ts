// The soak's judge (soak/oracle.ts) on hand-made API states: it must see a missed effect, a
// duplicated one and an unexpected one, or a passing soak would prove nothing. The states are
// built the way the API renders them (events by the engine's user, links both ways).
import { describe, expect, it } from 'vitest';
import {
  type AccountState,
  type ApiEvent,
  type ApiObject,
  ENGINE_USER,
  judge,
} from '../../soak/oracle.js';
import type { SoakChange } from '../../soak/plan.js';
import { planChanges } from '../../soak/plan.js';

const A = 101;

function escalation(id: string, from: string, to: string, n: number): ApiEvent {
  return {
    id: `e-${id}-${n}`,
    type: 'update',
    user_id: ENGINE_USER,
    metadata: { id, type: 'incident', priority: to, escalation: n },
    previous_metadata: { id, type: 'incident', priority: from, escalation: n - 1 },
  };
}

const changes: SoakChange[] = [
  {
    kind: 'incident',
    account: A,
    ref: 't',
    role: 'target',
    category: 'network',
    priority: 'medium',
  },
  { kind: 'incident', account: A, ref: 'c', role: 'control', category: 'network', priority: 'low' },
  ...['k1', 'k2', 'k3'].map(
    (ref): SoakChange => ({
      kind: 'incident',
      account: A,
      ref,
      role: 'cluster',
      category: 'cluster-1',
      priority: 'low',
    }),
  ),
  { kind: 'problem', account: A, ref: 'p' },
  { kind: 'fix', account: A, problemRef: 'p' },
];
const ids = new Map([
  ['t', 'T'],
  ['c', 'C'],
  ['k1', 'K1'],
  ['k2', 'K2'],
  ['k3', 'K3'],
  ['p', 'P'],
]);

/** The state the rules demand: every effect once. */
function goodState(): AccountState {
  const incident = (id: string, fields: Partial<ApiObject>): ApiObject => ({ id, ...fields });
  return {
    account: A,
    incidents: [
      incident('T', { category: 'network', priority: 'high', escalation: 1 }),
      incident('C', { category: 'network', priority: 'low' }),
      ...['K1', 'K2', 'K3'].map((id) =>
        incident(id, { category: 'cluster-1', priority: 'low', problem: 'EP' }),
      ),
    ],
    problems: [
      { id: 'P', category: 'soak', status: 104, change: 'CH' },
      { id: 'EP', category: 'cluster-1', incident: 'K3' },
    ],
    changes: [{ id: 'CH', problem: 'P' }],
    events: [escalation('T', 'medium', 'high', 1)],
  };
}

describe('the soak judge', () => {
  it('finds nothing wrong with the state the rules demand, and counts three effects', () => {
    expect(judge(changes, ids, [goodState()])).toEqual({
      expected: 3,
      missed: [],
      duplicated: [],
      unexpected: [],
      repeated: [],
    });
  });

  it('counts an incident escalated twice as duplicated (two priority changes by the engine)', () => {
    const state = goodState();
    state.events.push(escalation('T', 'high', 'critical', 2));
    expect(judge(changes, ids, [state]).duplicated).toHaveLength(1);
  });

  it('counts a repeated PATCH that changed nothing as a repeated write, not a second escalation', () => {
    const state = goodState();
    state.events.push({ ...escalation('T', 'high', 'high', 1), id: 'e-again' });
    const verdict = judge(changes, ids, [state]);
    expect(verdict.duplicated).toEqual([]);
    expect(verdict.repeated).toEqual([
      { account: A, what: "event e-again repeats the engine's update e-T-1 of incident T" },
    ]);
  });

  it('does not count an engine write as repeated when another write came between', () => {
    const state = goodState();
    state.events.push(
      { ...escalation('T', 'high', 'low', 1), id: 'e-driver', user_id: 'driver' },
      { ...escalation('T', 'low', 'high', 1), id: 'e-again' },
    );
    expect(judge(changes, ids, [state]).repeated).toEqual([]);
  });

  it('does not count consecutive engine writes that leave the object differently', () => {
    const state = goodState();
    state.events.push({
      ...escalation('T', 'high', 'high', 1),
      id: 'e-link',
      metadata: { id: 'T', type: 'incident', priority: 'high', escalation: 1, problem: 'EP' },
    });
    expect(judge(changes, ids, [state]).repeated).toEqual([]);
  });

  it('ignores the time of the write when comparing two engine writes', () => {
    const state = goodState();
    const first = state.events[0] as ApiEvent;
    first.metadata = { ...first.metadata, modified: '2026-01-01T00:00:00Z' };
    state.events.push({
      ...escalation('T', 'high', 'high', 1),
      id: 'e-again',
      metadata: { ...first.metadata, modified: '2026-01-01T00:00:05Z' },
    });
    expect(judge(changes, ids, [state]).repeated).toHaveLength(1);
  });

  it('counts a target never escalated as missed', () => {
    const state = goodState();
    state.incidents[0] = { id: 'T', category: 'network', priority: 'medium' };
    state.events = [];
    expect(judge(changes, ids, [state]).missed).toHaveLength(1);
  });

  it('counts a second problem for one cluster as duplicated', () => {
    const state = goodState();
    state.problems.push({ id: 'EP2', category: 'cluster-1', incident: 'K1' });
    expect(judge(changes, ids, [state]).duplicated).toHaveLength(1);
  });

  it('counts a cluster without its problem, or with too few links, as missed', () => {
    const none = goodState();
    none.problems = none.problems.filter((p) => p.id !== 'EP');
    expect(judge(changes, ids, [none]).missed.length).toBeGreaterThan(0);

    const unlinked = goodState();
    unlinked.incidents[2] = { id: 'K1', category: 'cluster-1', priority: 'low' };
    expect(judge(changes, ids, [unlinked]).missed).toHaveLength(1);
  });

  it('counts two changes for one problem in fix as duplicated, and none as missed', () => {
    const two = goodState();
    two.changes.push({ id: 'CH2', problem: 'P' });
    expect(judge(changes, ids, [two]).duplicated).toHaveLength(1);

    const none = goodState();
    none.changes = [];
    expect(judge(changes, ids, [none]).missed).toHaveLength(1);
  });

  it('counts an escalated control incident as unexpected', () => {
    const state = goodState();
    state.incidents[1] = { id: 'C', category: 'network', priority: 'medium', escalation: 1 };
    state.events.push(escalation('C', 'low', 'medium', 1));
    expect(judge(changes, ids, [state]).unexpected).toHaveLength(1);
  });

  it('counts an object the driver created but the API lacks as missed', () => {
    const state = goodState();
    state.incidents = state.incidents.filter((o) => o.id !== 'C');
    expect(judge(changes, ids, [state]).missed).toHaveLength(1);
  });
});

describe('the soak plan', () => {
  it('is the same list for the same seed, another for another seed', () => {
    const a = planChanges({ changes: 300, accounts: 5, seed: 11 });
    expect(planChanges({ changes: 300, accounts: 5, seed: 11 })).toEqual(a);
    expect(planChanges({ changes: 300, accounts: 5, seed: 12 })).not.toEqual(a);
  });

  it('has every kind of change, clusters above and below three, and fixes of known problems', () => {
    const plan = planChanges({ changes: 600, accounts: 6, seed: 3 });
    const kinds = new Set(plan.map((c) => (c.kind === 'incident' ? c.role : c.kind)));
    expect(kinds).toEqual(new Set(['target', 'control', 'cluster', 'problem', 'fix', 'touch']));
    const sizes = new Map<string, number>();
    for (const c of plan) {
      if (c.kind === 'incident' && c.role === 'cluster') {
        const key = `${c.account}/${c.category}`;
        sizes.set(key, (sizes.get(key) ?? 0) + 1);
      }
    }
    expect([...sizes.values()].some((n) => n >= 3)).toBe(true);
    expect([...sizes.values()].some((n) => n < 3)).toBe(true);
    const problems = new Set(plan.flatMap((c) => (c.kind === 'problem' ? [c.ref] : [])));
    for (const c of plan) if (c.kind === 'fix') expect(problems.has(c.problemRef)).toBe(true);
  });
});
