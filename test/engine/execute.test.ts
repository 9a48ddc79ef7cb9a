// Execution of plans (src/engine/execute.ts) against the embedded ITSM API over real HTTP: rules
// loaded from YAML, objects created in the server, evaluation inputs built from the server's event
// log and objects, plans evaluated and executed, and the results checked on the server (objects
// and event log) and in the engine store's effect records. Crashes between calls are simulated
// with the afterCall hook, transient failures with the server's fault injection.
import { afterEach, describe, expect, it } from 'vitest';
import { evaluateEvent } from '../../src/engine/evaluate.js';
import { executePlan, isAllowedHost, PlanInterruptedError } from '../../src/engine/execute.js';
import { createLookupResolver } from '../../src/engine/lookup.js';
import type { ApiCall, Plan } from '../../src/engine/plan.js';
import type { ItsmClient } from '../../src/itsm/client.js';
import type { ObjectType } from '../../src/itsm/fields.js';
import type { EngineStore } from '../../src/storage/engine-port.js';
import {
  allEvents,
  type EngineHarness,
  inputFor,
  loadRuleSet,
  startEngineHarness,
  startRedirector,
} from '../helpers/engine.js';
import { startReceiver, type TestReceiver } from '../helpers/receiver.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (let cleanup = cleanups.pop(); cleanup; cleanup = cleanups.pop()) await cleanup();
});

async function harness(options: Parameters<typeof startEngineHarness>[0] = {}) {
  const h = await startEngineHarness(options);
  cleanups.push(() => h.close());
  return h;
}

async function receiver(options: Parameters<typeof startReceiver>[0] = {}) {
  const r = await startReceiver(options);
  cleanups.push(() => r.close());
  return r;
}

type Obj = Record<string, unknown> & { id: string };

async function create(client: ItsmClient, type: ObjectType, body: Record<string, unknown>) {
  return (await client.create(1, type, body)) as Obj;
}

async function get(client: ItsmClient, type: ObjectType, id: string) {
  return (await client.get(1, type, id)) as Obj;
}

async function listAll(client: ItsmClient, type: ObjectType): Promise<Obj[]> {
  const objects: Obj[] = [];
  for await (const object of client.list(1, type, { pageSize: 1000 })) objects.push(object as Obj);
  return objects;
}

/** How many API requests the server saw while `fn` ran. */
async function requestsDuring(h: EngineHarness, fn: () => Promise<unknown>): Promise<number> {
  const before = h.faults.counters().requests;
  await fn();
  return h.faults.counters().requests - before;
}

async function effectsOf(store: EngineStore, plan: Plan) {
  return (await store.listEffects(plan.key)).map((e) => ({
    callIndex: e.callIndex,
    outcome: e.outcome,
    status: e.status,
    objectType: e.objectType,
    objectId: e.objectId,
  }));
}

/** Evaluates the newest event about the object (or the given input) against the rules. */
async function planFor(
  h: EngineHarness,
  rules: Record<string, string>,
  type: ObjectType,
  id: string,
  options: Parameters<typeof inputFor>[3] = {},
) {
  const input = await inputFor(h.client, type, id, options);
  const { plan } = await evaluateEvent(loadRuleSet(rules), input, h.store);
  return { input, plan };
}

const ESCALATE = (levels: number) => `
on:
  type: incident
  events: [add, update]
  changed: [impact, urgency]
when:
  and:
    - {"==": [{var: object.impact}, high]}
    - {"==": [{var: object.urgency}, high]}
    - {"!=": [{var: object.priority}, critical]}
then:
  - escalate: {levels: ${levels}}
  - log: {message: {cat: ["major incident ", {var: object.id}, " escalated"]}}
`;

/** Creates a linked problem; its description carries `now`, so re-evaluating plans a new body. */
const OPEN_PROBLEM = `
on: {type: incident, events: [add]}
when: {"==": [{var: object.category}, network]}
then:
  - create:
      type: problem
      link: true
      fields:
        category: {var: object.category}
        description: {cat: ["opened for ", {var: object.id}, " at ", {var: now}]}
`;

const CORRELATE = `
on: {type: incident, events: [add]}
when:
  and:
    - {"!!": {var: object.category}}
    - {"!": {var: object.problem}}
correlate:
  key: {lower: {var: object.category}}
  within: 1h
  at_least: 3
once_per:
  key: {var: correlation.key}
  within: 1h
then:
  - create:
      type: problem
      link: true
      fields:
        category: {var: object.category}
        urgency: medium
        description: {cat: ["Recurring incidents in ", {var: correlation.key}, ": ", {var: correlation.count}]}
`;

/** Escalating incident: medium priority, then re-assessed to high impact (an update event). */
async function reassessedIncident(h: EngineHarness) {
  const created = await create(h.client, 'incident', {
    description: 'VPN down',
    impact: 'medium',
    urgency: 'high',
    priority: 'medium',
  });
  const previous = await get(h.client, 'incident', created.id);
  await h.client.update(1, 'incident', created.id, { impact: 'high' });
  return { id: created.id, previous };
}

/** Three incidents of one category, the add of each evaluated in turn; the third plan links all. */
async function correlatedIncidents(h: EngineHarness) {
  const rules = { 'rules/recurring.yaml': CORRELATE };
  const ids: string[] = [];
  let plan: Plan | undefined;
  for (const n of [1, 2, 3]) {
    const incident = await create(h.client, 'incident', {
      description: `db timeout ${n}`,
      category: 'Database',
      impact: 'medium',
    });
    ids.push(incident.id);
    ({ plan } = await planFor(h, rules, 'incident', incident.id));
  }
  if (!plan) throw new Error('no plan');
  return { ids, plan };
}

describe('escalate', () => {
  it('changes priority and escalation on the server exactly as planned, and a re-run makes no call', async () => {
    const h = await harness();
    const { id, previous } = await reassessedIncident(h);
    const { plan } = await planFor(h, { 'rules/major.yaml': ESCALATE(2) }, 'incident', id, {
      previous,
    });
    expect(plan.calls.map((c) => c.kind)).toEqual(['api', 'log']);
    expect(plan.calls[0]).toMatchObject({
      method: 'PATCH',
      path: `accounts/1/itsm/incidents/${id}`,
      body: { priority: 'critical', escalation: 1 },
    });
    const { cursor } = await h.client.events(1, { pageSize: 1000 });

    const first = await executePlan(plan, { client: h.client, store: h.store });

    expect(first.results.map((r) => [r.outcome, r.earlier, r.status, r.objectId])).toEqual([
      ['done', false, 200, id],
      ['done', false, null, null],
    ]);
    const after = await get(h.client, 'incident', id);
    expect([after.priority, after.escalation, after.impact]).toEqual(['critical', 1, 'high']);

    let second: Awaited<ReturnType<typeof executePlan>> | undefined;
    const requests = await requestsDuring(h, async () => {
      second = await executePlan(plan, { client: h.client, store: h.store });
    });
    expect(requests).toBe(0);
    expect(second?.results.map((r) => [r.outcome, r.earlier])).toEqual([
      ['done', true],
      ['done', true],
    ]);

    const engineEvents = (await h.client.events(1, { cursor, pageSize: 1000 })).objects;
    expect(engineEvents.map((e) => [e.type, e.metadata.id])).toEqual([['update', id]]);
    expect(engineEvents[0]?.metadata).toMatchObject({ priority: 'critical', escalation: 1 });
    expect(engineEvents[0]?.previous_metadata).toMatchObject({ priority: 'medium', escalation: 0 });
    expect(await effectsOf(h.store, plan)).toEqual([
      { callIndex: 0, outcome: 'done', status: 200, objectType: 'incident', objectId: id },
      { callIndex: 1, outcome: 'done', status: null, objectType: null, objectId: null },
    ]);
  });

  it('does not escalate twice after a crash between the PATCH and its record, though a fresh evaluation would', async () => {
    const h = await harness();
    const rules = { 'rules/major.yaml': ESCALATE(1) };
    const { id, previous } = await reassessedIncident(h);
    const { input, plan } = await planFor(h, rules, 'incident', id, { previous });
    expect((plan.calls[0] as ApiCall).body).toEqual({ priority: 'high', escalation: 1 });

    await expect(
      executePlan(plan, {
        client: h.client,
        store: h.store,
        afterCall: (call, phase) => {
          if (call.index === 0 && phase === 'sent') throw new Error('simulated crash');
        },
      }),
    ).rejects.toThrow('simulated crash');
    expect(await h.store.listEffects(plan.key)).toEqual([]);

    // The object now has priority high and escalation 1: evaluated anew, the rule plans a second
    // escalation. The plan stored under the event's key is what runs.
    const fresh = await evaluateEvent(
      loadRuleSet(rules),
      { ...input, object: await get(h.client, 'incident', id), now: new Date() },
      h.store,
    );
    expect((fresh.plan.calls[0] as ApiCall).body).toEqual({ priority: 'critical', escalation: 2 });

    const rerun = await executePlan(fresh.plan, { client: h.client, store: h.store });

    expect(rerun.plan).toEqual(plan);
    expect(rerun.results.map((r) => [r.index, r.outcome])).toEqual([
      [0, 'done'],
      [1, 'done'],
    ]);
    const after = await get(h.client, 'incident', id);
    expect([after.priority, after.escalation]).toEqual(['high', 1]);
    // The PATCH had been applied before the crash: the re-run sees the values in place and does
    // not send it again, so the log holds one escalation, not two.
    expect(rerun.results[0]?.detail).toBe('already applied before the run was interrupted');
    const escalations = (await allEvents(h.client)).filter(
      (event) =>
        event.type === 'update' && event.metadata.id === id && event.metadata.escalation === 1,
    );
    expect(escalations).toHaveLength(1);
  });
});

describe('create with link', () => {
  it('creates a problem pointing at the incident and points the incident at it', async () => {
    const h = await harness();
    const incident = await create(h.client, 'incident', {
      description: 'down',
      category: 'network',
    });
    const { plan } = await planFor(h, { 'rules/open.yaml': OPEN_PROBLEM }, 'incident', incident.id);
    expect(plan.calls.map((c) => c.summary.split(':')[0])).toEqual([
      `create problem linked to incident ${incident.id}`,
      `link incident ${incident.id} to the new problem (call 0)`,
    ]);

    const result = await executePlan(plan, { client: h.client, store: h.store });

    const problems = await listAll(h.client, 'problem');
    expect(problems).toHaveLength(1);
    const problem = problems[0] as Obj;
    expect([problem.incident, problem.category]).toEqual([incident.id, 'network']);
    expect((await get(h.client, 'incident', incident.id)).problem).toBe(problem.id);
    expect(result.results.map((r) => [r.outcome, r.status, r.objectId])).toEqual([
      ['done', 201, problem.id],
      ['done', 200, incident.id],
    ]);
    expect(await effectsOf(h.store, plan)).toEqual([
      { callIndex: 0, outcome: 'done', status: 201, objectType: 'problem', objectId: problem.id },
      { callIndex: 1, outcome: 'done', status: 200, objectType: 'incident', objectId: incident.id },
    ]);
  });

  it('links every incident of a correlation to one new problem', async () => {
    const h = await harness();
    const { ids, plan } = await correlatedIncidents(h);
    const [a, b, c] = ids as [string, string, string];
    expect(plan.calls.map((call) => (call as ApiCall).objectId)).toEqual([null, c, a, b]);

    const result = await executePlan(plan, { client: h.client, store: h.store });

    const problems = await listAll(h.client, 'problem');
    expect(problems).toHaveLength(1);
    const problem = problems[0] as Obj;
    expect(problem.incident).toBe(c);
    expect(problem.description).toBe('Recurring incidents in database: 3');
    for (const id of ids) expect((await get(h.client, 'incident', id)).problem).toBe(problem.id);
    expect(result.results.map((r) => [r.outcome, r.objectId])).toEqual([
      ['done', problem.id],
      ['done', c],
      ['done', a],
      ['done', b],
    ]);
  });

  it('records the link of a correlated incident deleted before execution as failed, and makes the rest', async () => {
    const h = await harness();
    const { ids, plan } = await correlatedIncidents(h);
    const [a, b, c] = ids as [string, string, string];
    await h.client.delete(1, 'incident', a);

    const result = await executePlan(plan, { client: h.client, store: h.store });

    const problems = await listAll(h.client, 'problem');
    expect(problems).toHaveLength(1);
    const problem = problems[0] as Obj;
    expect(result.results.map((r) => [r.index, r.outcome, r.status, r.objectId])).toEqual([
      [0, 'done', 201, problem.id],
      [1, 'done', 200, c],
      [2, 'failed', 404, null],
      [3, 'done', 200, b],
    ]);
    expect(result.results[2]?.detail).toContain(
      `PATCH accounts/1/itsm/incidents/${a} answered 404`,
    );
    expect(result.results[2]?.detail).toContain(`no incident with id "${a}"`);
    expect((await get(h.client, 'incident', b)).problem).toBe(problem.id);
    expect((await get(h.client, 'incident', c)).problem).toBe(problem.id);
    expect(await effectsOf(h.store, plan)).toEqual([
      { callIndex: 0, outcome: 'done', status: 201, objectType: 'problem', objectId: problem.id },
      { callIndex: 1, outcome: 'done', status: 200, objectType: 'incident', objectId: c },
      { callIndex: 2, outcome: 'failed', status: 404, objectType: 'incident', objectId: null },
      { callIndex: 3, outcome: 'done', status: 200, objectType: 'incident', objectId: b },
    ]);
  });
});

describe('a crash between two calls of a plan', () => {
  it.each([
    { phase: 'sent', rerun: 'the same plan', effectsAfterCrash: 0, createEarlier: false },
    { phase: 'sent', rerun: 'a fresh evaluation', effectsAfterCrash: 0, createEarlier: false },
    { phase: 'recorded', rerun: 'the same plan', effectsAfterCrash: 1, createEarlier: true },
    { phase: 'recorded', rerun: 'a fresh evaluation', effectsAfterCrash: 1, createEarlier: true },
  ] as const)(
    'after the create was $phase, a re-run with $rerun creates one problem and finishes the link',
    async ({ phase, rerun, effectsAfterCrash, createEarlier }) => {
      const h = await harness();
      const rules = { 'rules/open.yaml': OPEN_PROBLEM };
      const incident = await create(h.client, 'incident', {
        description: 'x',
        category: 'network',
      });
      const { input, plan } = await planFor(h, rules, 'incident', incident.id, {
        now: new Date('2026-01-01T10:00:00Z'),
      });

      await expect(
        executePlan(plan, {
          client: h.client,
          store: h.store,
          afterCall: (call, at) => {
            if (call.index === 0 && at === phase) throw new Error('simulated crash');
          },
        }),
      ).rejects.toThrow('simulated crash');
      expect(await h.store.listEffects(plan.key)).toHaveLength(effectsAfterCrash);
      expect(await listAll(h.client, 'problem')).toHaveLength(1);
      expect((await get(h.client, 'incident', incident.id)).problem).toBeUndefined();

      let next = plan;
      if (rerun === 'a fresh evaluation') {
        // Evaluated later, the create's body differs (it carries `now`): sent under the same
        // Idempotency-Key it would be a 409, so only the stored plan can finish the job.
        ({ plan: next } = await evaluateEvent(
          loadRuleSet(rules),
          { ...input, object: await get(h.client, 'incident', incident.id), now: new Date() },
          h.store,
        ));
        expect((next.calls[0] as ApiCall).body).not.toEqual((plan.calls[0] as ApiCall).body);
      }
      const result = await executePlan(next, { client: h.client, store: h.store });

      expect(result.plan).toEqual(plan);
      const problems = await listAll(h.client, 'problem');
      expect(problems).toHaveLength(1);
      const problem = problems[0] as Obj;
      expect(problem.incident).toBe(incident.id);
      expect((await get(h.client, 'incident', incident.id)).problem).toBe(problem.id);
      expect(result.results.map((r) => [r.outcome, r.earlier, r.objectId])).toEqual([
        ['done', createEarlier, problem.id],
        ['done', false, incident.id],
      ]);
      expect(await effectsOf(h.store, plan)).toEqual([
        { callIndex: 0, outcome: 'done', status: 201, objectType: 'problem', objectId: problem.id },
        {
          callIndex: 1,
          outcome: 'done',
          status: 200,
          objectType: 'incident',
          objectId: incident.id,
        },
      ]);
    },
  );
});

describe('permanent failures', () => {
  const UPDATE_PROBLEM_REF = `
on: {type: incident, events: [add]}
then:
  - update: {problem: no-such-problem}
`;
  const UPDATE_AS_PROBLEM = `
on: {type: problem, events: [add]}
then:
  - update: {category: misfiled}
`;

  it.each([
    {
      name: 'a PATCH with a reference to a missing object',
      rule: UPDATE_PROBLEM_REF,
      readAs: 'incident' as const,
      status: 400,
      detail: 'answered 400',
    },
    {
      name: 'a PATCH of an incident through the problems path',
      rule: UPDATE_AS_PROBLEM,
      readAs: 'problem' as const,
      status: 404,
      detail: 'answered 404',
    },
  ])('records $name as failed with its status and does not retry it on a re-run', async (row) => {
    const h = await harness();
    const incident = await create(h.client, 'incident', { description: 'x' });
    const input = await inputFor(h.client, 'incident', incident.id);
    const { plan } = await evaluateEvent(
      loadRuleSet({ 'rules/bad.yaml': row.rule }),
      { ...input, objectType: row.readAs },
      h.store,
    );
    expect(plan.calls).toHaveLength(1);

    let requests = await requestsDuring(h, () =>
      executePlan(plan, { client: h.client, store: h.store }),
    );
    expect(requests).toBe(1);
    const [effect] = await h.store.listEffects(plan.key);
    expect([effect?.outcome, effect?.status, effect?.objectId]).toEqual([
      'failed',
      row.status,
      null,
    ]);
    expect(effect?.detail).toContain(row.detail);

    let rerun: Awaited<ReturnType<typeof executePlan>> | undefined;
    requests = await requestsDuring(h, async () => {
      rerun = await executePlan(plan, { client: h.client, store: h.store });
    });
    expect(requests).toBe(0);
    expect(rerun?.results.map((r) => [r.outcome, r.earlier, r.status])).toEqual([
      ['failed', true, row.status],
    ]);
    expect((await get(h.client, 'incident', incident.id)).category).toBeUndefined();
  });

  it('records a create with an invalid reference as failed, and the link that needs it as failed naming the dependency', async () => {
    const h = await harness();
    const rules = {
      'rules/open.yaml': `
on: {type: incident, events: [add]}
then:
  - create:
      type: problem
      link: true
      fields: {change: no-such-change, description: broken}
`,
    };
    const incident = await create(h.client, 'incident', { description: 'x' });
    const { plan } = await planFor(h, rules, 'incident', incident.id);

    const requests = await requestsDuring(h, () =>
      executePlan(plan, { client: h.client, store: h.store }),
    );

    expect(requests).toBe(1);
    const effects = await h.store.listEffects(plan.key);
    expect(effects.map((e) => [e.callIndex, e.outcome, e.status, e.objectId])).toEqual([
      [0, 'failed', 400, null],
      [1, 'failed', null, null],
    ]);
    expect(effects[0]?.detail).toContain('POST accounts/1/itsm/problems answered 400');
    expect(effects[0]?.detail).toContain('no-such-change');
    expect(effects[1]?.detail).toBe(
      'call 0, which this call depends on, did not create its object',
    );
    expect(await listAll(h.client, 'problem')).toEqual([]);
    expect((await get(h.client, 'incident', incident.id)).problem).toBeUndefined();
    expect(
      await requestsDuring(h, () => executePlan(plan, { client: h.client, store: h.store })),
    ).toBe(0);
  });
});

describe('transient failures', () => {
  const PROBLEMS = /\/v1\/accounts\/1\/itsm\/problems$/;
  const INCIDENT = /\/v1\/accounts\/1\/itsm\/incidents\/[^/]+$/;

  it.each([
    {
      name: 'every API request is answered 500',
      fault: 'all' as const,
      stoppedAt: 0,
      problemsAfterFailure: 0,
    },
    {
      name: 'the create is answered 500 without being processed',
      fault: { status: 500, times: 3, method: 'POST', path: PROBLEMS } as const,
      stoppedAt: 0,
      problemsAfterFailure: 0,
    },
    {
      name: 'the create is applied, then answered 500',
      fault: { status: 500, times: 3, method: 'POST', path: PROBLEMS, afterWrite: true } as const,
      stoppedAt: 0,
      problemsAfterFailure: 1,
    },
    {
      name: 'the link is answered 500',
      fault: { status: 500, times: 3, method: 'PATCH', path: INCIDENT } as const,
      stoppedAt: 1,
      problemsAfterFailure: 1,
    },
  ])(
    'stops with PlanInterruptedError when $name on every attempt, and a re-run finishes without duplicates',
    async ({ fault, stoppedAt, problemsAfterFailure }) => {
      const h = await harness();
      const incident = await create(h.client, 'incident', {
        description: 'x',
        category: 'network',
      });
      const { plan } = await planFor(
        h,
        { 'rules/open.yaml': OPEN_PROBLEM },
        'incident',
        incident.id,
      );
      if (fault === 'all') h.faults.setRates({ rate500: 1 });
      else h.faults.inject(fault);

      const error = await executePlan(plan, { client: h.client, store: h.store }).catch((e) => e);
      h.faults.setRates({});

      expect(error).toBeInstanceOf(PlanInterruptedError);
      expect(error.code).toBe('ENGINE_PLAN_INTERRUPTED');
      expect(error.planKey).toBe(plan.key);
      expect(error.call.index).toBe(stoppedAt);
      expect(error.cause).toMatchObject({ status: 500, attempts: 3 });
      expect(h.faults.pending()).toBe(0);
      expect((await h.store.listEffects(plan.key)).map((e) => e.callIndex)).toEqual(
        stoppedAt === 0 ? [] : [0],
      );
      expect(await listAll(h.client, 'problem')).toHaveLength(problemsAfterFailure);

      const rerun = await executePlan(plan, { client: h.client, store: h.store });

      const problems = await listAll(h.client, 'problem');
      expect(problems).toHaveLength(1);
      const problem = problems[0] as Obj;
      expect(problem.incident).toBe(incident.id);
      expect((await get(h.client, 'incident', incident.id)).problem).toBe(problem.id);
      expect(rerun.results.map((r) => [r.outcome, r.earlier, r.objectId])).toEqual([
        ['done', stoppedAt > 0, problem.id],
        ['done', false, incident.id],
      ]);
    },
  );

  it('completes the plan when the API rate-limits once with Retry-After', async () => {
    const h = await harness();
    const incident = await create(h.client, 'incident', { description: 'x', category: 'network' });
    const { plan } = await planFor(h, { 'rules/open.yaml': OPEN_PROBLEM }, 'incident', incident.id);
    h.faults.inject({ status: 429, retryAfter: 1, method: 'POST', path: PROBLEMS });

    const result = await executePlan(plan, { client: h.client, store: h.store });

    expect(result.results.map((r) => r.outcome)).toEqual(['done', 'done']);
    expect(h.retries.map((r) => [r.attempt, r.method, r.reason])).toEqual([
      [1, 'POST', '429 rate_limit_exceeded (Retry-After 1 s)'],
    ]);
    expect(h.retries[0]?.delayMs).toBeGreaterThanOrEqual(1000);
    expect(await listAll(h.client, 'problem')).toHaveLength(1);
  });
});

describe('http action', () => {
  const httpRule = (url: string) => `
on: {type: incident, events: [add]}
then:
  - http:
      url: ${JSON.stringify(url)}
      headers:
        X-Team: ops
        X-Incident: {var: object.id}
      body:
        incident: {var: object.id}
        severity: critical
        summary: {cat: ["Incident ", {var: object.description}]}
`;

  async function httpPlan(h: EngineHarness, url: string) {
    const incident = await create(h.client, 'incident', { description: 'mail down' });
    const { plan } = await planFor(
      h,
      { 'rules/page.yaml': httpRule(url) },
      'incident',
      incident.id,
    );
    return { incident, plan };
  }

  function hostOf(r: TestReceiver | { url: string }): string {
    return new URL(r.url).host;
  }

  it('posts the JSON body with the Idempotency-Key and the custom headers to an allowed host', async () => {
    const h = await harness();
    const r = await receiver();
    const { incident, plan } = await httpPlan(h, r.url);

    const result = await executePlan(plan, {
      client: h.client,
      store: h.store,
      http: { allowHosts: [hostOf(r)] },
    });

    expect(result.results.map((x) => [x.kind, x.outcome, x.status, x.detail])).toEqual([
      ['http', 'done', 200, null],
    ]);
    expect(r.requests).toHaveLength(1);
    const request = r.requests[0];
    expect([request?.method, request?.url]).toEqual(['POST', '/hook']);
    expect(request?.headers['idempotency-key']).toBe(plan.calls[0]?.idempotencyKey);
    expect(request?.headers['idempotency-key']).toBe(`${plan.key}:page:0`);
    expect(request?.headers['content-type']).toBe('application/json');
    expect(request?.headers['x-team']).toBe('ops');
    expect(request?.headers['x-incident']).toBe(incident.id);
    expect(JSON.parse(request?.body.toString('utf8') ?? '')).toEqual({
      incident: incident.id,
      severity: 'critical',
      summary: 'Incident mail down',
    });
    expect(await effectsOf(h.store, plan)).toEqual([
      { callIndex: 0, outcome: 'done', status: 200, objectType: null, objectId: null },
    ]);
  });

  it.each([
    { name: 'a host not on the allow-list', allowHosts: ['hooks.example.com'] },
    { name: 'the right host on another port', allowHosts: ['127.0.0.1:1'] },
    { name: 'no allow-list at all', allowHosts: null },
  ])('records a call to $name as failed naming the allow-list, and sends nothing', async (row) => {
    const h = await harness();
    const r = await receiver();
    const { plan } = await httpPlan(h, r.url);

    const result = await executePlan(plan, {
      client: h.client,
      store: h.store,
      ...(row.allowHosts && { http: { allowHosts: row.allowHosts } }),
    });

    expect(result.results.map((x) => [x.outcome, x.status])).toEqual([['failed', null]]);
    expect(result.results[0]?.detail).toBe(
      `http: ${hostOf(r)} is not on the allow-list of hosts the engine may call (--http-allow)`,
    );
    expect(r.requests).toHaveLength(0);
  });

  it('does not follow a redirect to another host', async () => {
    const h = await harness();
    const r = await receiver();
    const redirector = await startRedirector(r.url);
    cleanups.push(() => redirector.close());
    const { plan } = await httpPlan(h, redirector.url);

    const result = await executePlan(plan, {
      client: h.client,
      store: h.store,
      http: { allowHosts: [hostOf(redirector)], retryDelayMs: 1 },
    });

    expect(result.results.map((x) => [x.outcome, x.status])).toEqual([['failed', 302]]);
    expect(result.results[0]?.detail).toContain('redirects are not followed');
    expect(redirector.hits()).toBe(1);
    expect(r.requests).toHaveLength(0);
  });

  it('records a 4xx answer as failed after one attempt', async () => {
    const h = await harness();
    const r = await receiver({ answer: () => ({ status: 422, body: 'no' }) });
    const { plan } = await httpPlan(h, r.url);

    const result = await executePlan(plan, {
      client: h.client,
      store: h.store,
      http: { allowHosts: [hostOf(r)], retryDelayMs: 1 },
    });

    expect(result.results.map((x) => [x.outcome, x.status, x.detail])).toEqual([
      ['failed', 422, `http: ${hostOf(r)} answered 422`],
    ]);
    expect(r.requests).toHaveLength(1);
  });

  describe('with secrets', () => {
    const TOKEN = 'token-value-5530';
    const secretRule = (url: string) => `
on: {type: incident, events: [add]}
then:
  - http:
      url: ${JSON.stringify(url)}
      headers: {Authorization: {cat: ["Bearer ", {secret: PAGER_TOKEN}]}}
      body: {token: {secret: PAGER_TOKEN}, note: {var: object.description}}
`;
    async function secretPlan(h: EngineHarness, url: string, description = 'mail down') {
      const incident = await create(h.client, 'incident', { description });
      return (await planFor(h, { 'rules/page.yaml': secretRule(url) }, 'incident', incident.id))
        .plan;
    }
    const secrets = (name: string) => (name === 'PAGER_TOKEN' ? TOKEN : undefined);

    it('finishes a plan interrupted by a 500 with the value, though the stored plan holds only the name', async () => {
      const h = await harness();
      const r = await receiver({ answer: (_, index) => ({ status: index === 0 ? 500 : 200 }) });
      const plan = await secretPlan(h, r.url);
      const options = {
        client: h.client,
        store: h.store,
        http: { allowHosts: [new URL(r.url).host], maxAttempts: 1, secrets },
      };

      const error = await executePlan(plan, options).catch((e) => e);
      expect(error).toBeInstanceOf(PlanInterruptedError);
      const stored = (await h.store.getPlan(plan.key))?.body ?? '';
      expect(stored).toContain('PAGER_TOKEN');
      expect(stored).not.toContain(TOKEN);

      const again = await executePlan(plan, options);
      expect(again.results.map((x) => [x.outcome, x.status])).toEqual([['done', 200]]);
      expect(r.requests.map((x) => x.headers.authorization)).toEqual([
        `Bearer ${TOKEN}`,
        `Bearer ${TOKEN}`,
      ]);
      expect(JSON.parse(r.requests[1]?.body.toString('utf8') ?? '')).toEqual({
        token: TOKEN,
        note: 'mail down',
      });
    });

    it('fails a call whose secret is not set, naming the variable, and sends nothing', async () => {
      const h = await harness();
      const r = await receiver();
      const plan = await secretPlan(h, r.url);
      const result = await executePlan(plan, {
        client: h.client,
        store: h.store,
        http: { allowHosts: [new URL(r.url).host], secrets: () => undefined },
      });
      expect(result.results.map((x) => [x.outcome, x.detail])).toEqual([
        [
          'failed',
          'http: the secret PAGER_TOKEN is not set, so the call is not made; set ITSM_SECRET_PAGER_TOKEN',
        ],
      ]);
      expect(r.requests).toHaveLength(0);
    });

    it('sends text from the object that looks like a secret marker as it is', async () => {
      const h = await harness();
      const r = await receiver();
      const forged = 'itsm_secret_000000000000000000000000_PAGER_TOKEN';
      const plan = await secretPlan(h, r.url, forged);
      await executePlan(plan, {
        client: h.client,
        store: h.store,
        http: { allowHosts: [new URL(r.url).host], secrets },
      });
      expect(JSON.parse(r.requests[0]?.body.toString('utf8') ?? '')).toEqual({
        token: TOKEN,
        note: forged,
      });
    });
  });

  it('retries a 500 answer maxAttempts times with the same key, then throws PlanInterruptedError', async () => {
    const h = await harness();
    const r = await receiver({ answer: () => ({ status: 500, body: 'boom' }) });
    const { plan } = await httpPlan(h, r.url);

    const error = await executePlan(plan, {
      client: h.client,
      store: h.store,
      http: { allowHosts: [hostOf(r)], maxAttempts: 3, retryDelayMs: 1 },
    }).catch((e) => e);

    expect(error).toBeInstanceOf(PlanInterruptedError);
    expect(error.code).toBe('ENGINE_PLAN_INTERRUPTED');
    expect(error.message).toContain(`http: ${hostOf(r)} answered 500`);
    expect(r.requests).toHaveLength(3);
    expect(new Set(r.requests.map((x) => x.headers['idempotency-key']))).toEqual(
      new Set([plan.calls[0]?.idempotencyKey]),
    );
    expect(await h.store.listEffects(plan.key)).toEqual([]);
  });

  it.each([
    { url: 'https://hooks.example.com/x', allow: ['hooks.example.com'], allowed: true },
    { url: 'https://HOOKS.example.com/x', allow: ['Hooks.Example.com'], allowed: true },
    { url: 'https://hooks.example.com:8443/x', allow: ['hooks.example.com'], allowed: true },
    { url: 'https://other.example.com/x', allow: ['hooks.example.com'], allowed: false },
    { url: 'http://127.0.0.1:9000/x', allow: ['127.0.0.1:9000'], allowed: true },
    { url: 'http://127.0.0.1:9001/x', allow: ['127.0.0.1:9000'], allowed: false },
    { url: 'http://127.0.0.1/x', allow: ['127.0.0.1:9000'], allowed: false },
    { url: 'https://hooks.example.com/x', allow: ['hooks.example.com:443'], allowed: true },
    { url: 'http://hooks.example.com/x', allow: ['hooks.example.com:443'], allowed: false },
    { url: 'https://a.example.com/x', allow: ['*.example.com'], allowed: true },
    { url: 'https://a.b.example.com/x', allow: ['*.example.com'], allowed: true },
    { url: 'https://example.com/x', allow: ['*.example.com'], allowed: false },
    { url: 'https://evil-example.com/x', allow: ['*.example.com'], allowed: false },
    { url: 'https://example.com.evil.net/x', allow: ['*.example.com'], allowed: false },
    { url: 'https://a.example.com:8443/x', allow: ['*.example.com:8443'], allowed: true },
    { url: 'https://a.example.com/x', allow: ['*.example.com:8443'], allowed: false },
    { url: 'http://[::1]:9000/x', allow: ['[::1]:9000'], allowed: true },
    { url: 'https://a.example.com/x', allow: [], allowed: false },
  ])('isAllowedHost($url, $allow) is $allowed', ({ url, allow, allowed }) => {
    expect(isAllowedHost(new URL(url), allow)).toBe(allowed);
  });
});

describe('log', () => {
  it('records a log call as done with the message as detail, and calls nothing', async () => {
    const h = await harness();
    const incident = await create(h.client, 'incident', { description: 'x' });
    const { plan } = await planFor(
      h,
      {
        'rules/note.yaml': `
on: {type: incident, events: [add]}
then:
  - log: {message: {cat: ["saw ", {var: object.id}]}}
`,
      },
      'incident',
      incident.id,
    );

    let result: Awaited<ReturnType<typeof executePlan>> | undefined;
    const requests = await requestsDuring(h, async () => {
      result = await executePlan(plan, { client: h.client, store: h.store });
    });

    expect(requests).toBe(0);
    expect(result?.results.map((r) => [r.kind, r.outcome, r.status, r.detail])).toEqual([
      ['log', 'done', null, `saw ${incident.id}`],
    ]);
    const [effect] = await h.store.listEffects(plan.key);
    expect([effect?.outcome, effect?.status, effect?.objectId, effect?.detail]).toEqual([
      'done',
      null,
      null,
      `saw ${incident.id}`,
    ]);
  });
});

describe('ServiceNow columns, notes and lookups', () => {
  const RAW = { 'X-Kloudless-Raw-Data': 'true' };

  /** The object as the drain reads it: with its upstream record. */
  async function withRaw(h: EngineHarness, plural: string, id: string) {
    const response = await h.client.request({
      method: 'GET',
      path: `accounts/1/itsm/${plural}/${id}`,
      headers: RAW,
    });
    return response.body as Obj & { raw: Record<string, string> };
  }

  async function rawInput(h: EngineHarness, id: string) {
    const input = await inputFor(h.client, 'incident', id);
    return { ...input, object: await withRaw(h, 'incidents', id) };
  }

  async function group(h: EngineHarness, name: string): Promise<string> {
    const made = await h.client.create(1, 'object', { name }, { rawType: 'sys_user_group' });
    return made.raw.id;
  }

  const NOTE = `
on: {type: incident, events: [add]}
then:
  - note: {text: {cat: ["Triaged: ", {var: object.description}]}}
`;

  it('writes a note once after a crash between the PATCH and its record', async () => {
    const h = await harness();
    const incident = await create(h.client, 'incident', { description: 'VPN down' });
    const input = await rawInput(h, incident.id);
    const { plan } = await evaluateEvent(loadRuleSet({ 'rules/note.yaml': NOTE }), input, h.store);
    expect((plan.calls[0] as ApiCall).body).toEqual({
      raw: { object: { work_notes: 'Triaged: VPN down' } },
    });

    await expect(
      executePlan(plan, {
        client: h.client,
        store: h.store,
        afterCall: (_call, phase) => {
          if (phase === 'sent') throw new Error('simulated crash');
        },
      }),
    ).rejects.toThrow('simulated crash');
    const rerun = await executePlan(plan, { client: h.client, store: h.store });

    expect(rerun.results[0]?.detail).toBe('already applied before the run was interrupted');
    const after = await withRaw(h, 'incidents', incident.id);
    expect(after.raw.work_notes?.match(/Triaged: VPN down/g)).toHaveLength(1);
  });

  it('writes unified fields and upstream columns in one PATCH, and plans nothing once they hold', async () => {
    const h = await harness();
    const ci = 'a9c0c8d2c6112276018f7705562f9cb0';
    const rules = {
      'rules/ci.yaml': `
on: {type: incident, events: [add, update]}
then:
  - update:
      category: network
      raw: {cmdb_ci: ${ci}, u_site: {cat: [HQ-, {var: object.urgency}]}}
`,
    };
    const incident = await create(h.client, 'incident', { description: 'x', urgency: 'high' });
    const first = await evaluateEvent(loadRuleSet(rules), await rawInput(h, incident.id), h.store);
    expect((first.plan.calls[0] as ApiCall).body).toEqual({
      category: 'network',
      raw: { object: { cmdb_ci: ci, u_site: 'HQ-high' } },
    });
    await executePlan(first.plan, { client: h.client, store: h.store });
    const after = await withRaw(h, 'incidents', incident.id);
    expect([after.category, after.raw.cmdb_ci, after.raw.u_site]).toEqual([
      'network',
      ci,
      'HQ-high',
    ]);

    const again = await evaluateEvent(loadRuleSet(rules), await rawInput(h, incident.id), h.store);
    expect(again.plan.calls).toEqual([]);
    expect(again.plan.notes.map((n) => n.message)).toEqual([
      'update: every field already has the value the rule sets',
    ]);
  });

  it('resolves a lookup through the API once per resolver and plans the sys_id itself', async () => {
    const h = await harness();
    await group(h, 'Service Desk');
    const network = await group(h, 'Network Operations');
    const rules = loadRuleSet({
      'rules/assign.yaml': `
on: {type: incident, events: [add]}
then:
  - update:
      raw: {assignment_group: {lookup: [sys_user_group, name, {cat: [Network, " ", Operations]}]}}
  - note: {text: {cat: ["group ", {lookup: [sys_user_group, name, Network Operations]}]}}
`,
    });
    const lookup = createLookupResolver(h.client);
    const one = await create(h.client, 'incident', { description: 'one' });
    const two = await create(h.client, 'incident', { description: 'two' });

    const firstRequests = await requestsDuring(h, async () => {
      const { plan } = await evaluateEvent(
        rules,
        { ...(await rawInput(h, one.id)), lookup },
        h.store,
      );
      expect(plan.calls.map((c) => (c as ApiCall).body)).toEqual([
        { raw: { object: { assignment_group: network } } },
        { raw: { object: { work_notes: `group ${network}` } } },
      ]);
    });
    const input = await rawInput(h, two.id);
    const secondRequests = await requestsDuring(h, () =>
      evaluateEvent(rules, { ...input, lookup }, h.store),
    );
    // The first evaluation read the objects, the events and the group table; the second reads
    // nothing: both lookups of both events are one cached answer.
    expect(firstRequests).toBeGreaterThan(0);
    expect(secondRequests).toBe(0);
  });

  it('keeps at most maxEntries answers, dropping the oldest first', async () => {
    const h = await harness();
    const network = await group(h, 'Network Operations');
    const desk = await group(h, 'Service Desk');
    const lookup = createLookupResolver(h.client, { maxEntries: 1 });
    const find = (name: string) => lookup(1, 'sys_user_group', 'name', name);

    expect(await find('Network Operations')).toBe(network);
    expect(await requestsDuring(h, () => find('Network Operations'))).toBe(0);
    expect(await find('Service Desk')).toBe(desk);
    expect(await find('Nobody')).toBeNull();
    // Network Operations was dropped for the answers after it: it is read again.
    expect(await requestsDuring(h, () => find('Network Operations'))).toBe(1);
  });

  it('fails the rule, naming the lookup, when there is no API to resolve it (a dry run)', async () => {
    const h = await harness();
    const incident = await create(h.client, 'incident', { description: 'x' });
    const { plan, outcomes } = await evaluateEvent(
      loadRuleSet({
        'rules/assign.yaml': `
on: {type: incident, events: [add]}
then:
  - update: {raw: {assignment_group: {lookup: [sys_user_group, name, Network Operations]}}}
`,
      }),
      await rawInput(h, incident.id),
      h.store,
    );
    expect(plan.calls).toEqual([]);
    expect(outcomes[0]?.verdict).toBe('failed');
    expect(outcomes[0]?.reason).toMatch(
      /lookup of sys_user_group where name is "Network Operations" was not resolved/,
    );
  });
});
