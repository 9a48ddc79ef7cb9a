// An action whose value, read from the object, is not one the API accepts (a priority taken from
// the description, "urgent"): check cannot know it, so the rule fails on that event. End to end
// on an all-in-one engine over real HTTP: the run is failed and the rule's verdict says which
// action and which value, nothing of the rule is written, another rule on the same event still
// acts, the object is not parked, /metrics counts the failed rule, and a valid value still acts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIncident, listRuns } from '../helpers/pipeline.js';
import { eventually, startTestEngine, type TestEngine, writeRules } from '../helpers/serve.js';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
type Json = any;

/** A rule on the add of an incident whose category is `category`, with one action. */
const ruleFor = (category: string, action: string) => `on: {type: incident, events: [add]}
when: {"==": [{var: object.category}, ${category}]}
order: 1
then:
  - ${action}
`;

const RULES = {
  'incident/priority-from-description.yaml': ruleFor(
    'by-update',
    'update: {priority: {var: object.description}}',
  ),
  'incident/problem-from-description.yaml': ruleFor(
    'by-create',
    'create: {type: problem, link: true, fields: {priority: {var: object.description}}}',
  ),
  'incident/escalate-from-description.yaml': ruleFor(
    'by-escalate',
    'escalate: {levels: 1, fields: {urgency: {var: object.description}}}',
  ),
  // Acts on every add, after the rule above it: it must act whether or not that one failed.
  'incident/mark-seen.yaml': `on: {type: incident, events: [add]}
order: 2
then:
  - update: {status: seen}
`,
};

const CASES = [
  {
    action: 'update',
    category: 'by-update',
    rule: 'priority-from-description',
    reason:
      '/then/0: update: not written, the values are invalid: priority must be one of low, medium, high, critical, got "urgent"',
  },
  {
    action: 'create',
    category: 'by-create',
    rule: 'problem-from-description',
    reason:
      '/then/0: create: no problem created, the values are invalid: priority must be one of low, medium, high, critical, got "urgent"',
  },
  {
    action: 'escalate with fields',
    category: 'by-escalate',
    rule: 'escalate-from-description',
    reason:
      '/then/0: escalate: not written, the values are invalid: urgency must be one of low, medium, high, got "urgent"',
  },
];

describe('an action whose values are invalid at run time', () => {
  let engine: TestEngine;
  let rules: { dir: string; remove(): void };

  beforeAll(async () => {
    rules = writeRules(RULES);
    engine = await startTestEngine({ rulesDir: rules.dir });
  });

  afterAll(async () => {
    await engine?.close();
    rules?.remove();
  });

  const read = async (account: number, path: string): Promise<Json> => {
    const response = await engine.call('GET', `/v1/accounts/${account}/itsm/${path}`);
    expect(response.status, response.text).toBe(200);
    return response.json;
  };

  /** The run of the incident's add, once it is recorded. */
  const addRunOf = async (account: number, id: string): Promise<Json> =>
    eventually(async () => {
      const runs = await listRuns(engine, `account=${account}&object_id=${id}`);
      return runs.find((run) => run.event.type === 'add' && run.outcome !== 'parked');
    }, `the run of the add of ${id}`);

  it.each(CASES.map((c, i) => ({ ...c, account: 91 + i })))(
    'fails the rule on $action, writes nothing of it, and lets the other rule act',
    async ({ category, rule, reason, account }) => {
      const incident = await createIncident(engine, account, {
        category,
        description: 'urgent',
        priority: 'low',
        urgency: 'low',
      });
      const run = await addRunOf(account, incident.id);
      expect(run).toMatchObject({
        outcome: 'failed',
        rules: [rule, 'mark-seen'],
        verdicts: { [rule]: 'failed', 'mark-seen': 'matched' },
      });
      expect(run.summary).toContain(`${rule} failed: ${reason}`);
      const verdict = run.detail.rules.find((r: Json) => r.ruleId === rule);
      expect(verdict).toMatchObject({ verdict: 'failed', reason });
      expect(run.detail.notes).toEqual([]);
      expect(run.detail.calls.map((call: Json) => [call.ruleId, call.outcome])).toEqual([
        ['mark-seen', 'done'],
      ]);

      // The other rule's write was made; nothing of the failed rule's was.
      const after = await read(account, `incidents/${incident.id}`);
      expect(after).toMatchObject({ status: 'seen', priority: 'low', urgency: 'low' });
      expect(after.escalation ?? 0).toBe(0);
      expect(after.problem ?? null).toBeNull();
      expect((await read(account, 'problems')).objects).toEqual([]);

      const failed = await listRuns(engine, `account=${account}&outcome=failed`);
      expect(failed.map((r) => r.id)).toEqual([run.id]);
      const byRule = await listRuns(engine, `account=${account}&rule_id=${rule}&matched=false`);
      expect(byRule.map((r) => r.id)).toEqual([run.id]);
      // Deterministic (the same event computes the same value): nothing is parked to retry it.
      const parked = await engine.call('GET', `/admin/parked?account=${account}`);
      expect(parked.status, parked.text).toBe(200);
      expect(parked.json).toMatchObject({ count: 0, objects: [] });
    },
  );

  it('counts each failed rule in /metrics', async () => {
    // The cases above ran first (one file runs its tests in order).
    const response = await engine.call('GET', '/metrics');
    const lines = response.text.split('\n');
    for (const { rule } of CASES) {
      expect(lines).toContain(`itsm_rules_rules_failed_total{rule="${rule}"} 1`);
    }
    expect(lines).toContain('itsm_rules_events_processed_total{outcome="failed"} 3');
  });

  it.each(CASES.map((c, i) => ({ ...c, account: 95 + i })))(
    'acts on $action when the value it reads is valid',
    async ({ category, rule, account }) => {
      const incident = await createIncident(engine, account, {
        category,
        description: 'high',
        priority: 'low',
        urgency: 'low',
      });
      const run = await addRunOf(account, incident.id);
      expect(run).toMatchObject({
        outcome: 'done',
        verdicts: { [rule]: 'matched', 'mark-seen': 'matched' },
      });
      const after = await read(account, `incidents/${incident.id}`);
      expect(after.status).toBe('seen');
      if (category === 'by-update') expect(after.priority).toBe('high');
      if (category === 'by-escalate')
        expect(after).toMatchObject({ urgency: 'high', escalation: 1 });
      if (category === 'by-create') {
        const problems = (await read(account, 'problems')).objects;
        expect(problems.map((p: Json) => [p.priority, p.incident])).toEqual([
          ['high', incident.id],
        ]);
      }
    },
  );
});
