// Planning: what a matched rule's actions become, inspected as plain data (the plan that
// `itsm-rules test` prints and execute.ts carries out): each call's method, path, body,
// idempotency key, rule and action, and the notes of actions that planned nothing. The example
// rules (their copy in test/fixtures/example-rules) are run here on realistic events and must do
// what their descriptions say.
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type EventOptions,
  loadRuleSet,
  makeChange,
  makeEngineStore,
  makeEventInput,
  makeGenericObject,
  makeIncident,
  makeProblem,
  makeScheduleInput,
  makeUser,
  minutesLater,
  NOW,
  ruleOf,
} from '../../test/helpers/rules.js';
import { readRuleSources } from '../runtime/rule-files.js';
import type { EngineStore } from '../storage/engine-port.js';
import { eventPlanKey, schedulePlanKey } from './context.js';
import { type Evaluation, evaluateEvent } from './evaluate.js';
import { loadRules, type RuleSet } from './load.js';
import type { Plan, PlannedCall } from './plan.js';

let store: EngineStore;

beforeEach(() => {
  store = makeEngineStore();
});

afterEach(async () => {
  await store.close();
});

/** A call without its one-line summary for people (asserted separately where it matters). */
function shape(call: PlannedCall | undefined): Omit<PlannedCall, 'summary'> | undefined {
  if (!call) return undefined;
  const { summary: _summary, ...rest } = call;
  return rest;
}

async function evaluate(ruleSet: RuleSet, options: EventOptions): Promise<Evaluation> {
  return evaluateEvent(ruleSet, makeEventInput({ eventId: 'evt-1', ...options }), store);
}

/** The plan of one rule (file name = rule id) for one event. */
async function planOf(id: string, yaml: string, options: EventOptions): Promise<Plan> {
  return (await evaluate(loadRuleSet({ [id]: yaml }), options)).plan;
}

const KEY = eventPlanKey(1, 'evt-1');
const INCIDENT_PATH = 'accounts/1/itsm/incidents/incident-1';

/** An update event of the default incident, so that every field counts as unchanged but one. */
const updated = (object: Record<string, unknown>): EventOptions => ({
  type: 'update',
  object,
  previous: { ...object, description: 'before' },
});

describe('update', () => {
  const rule = `
on: {type: incident}
then:
  - update:
      priority: high
      category: network
      description: {cat: ["checked: ", {var: object.id}]}
`;

  it('PATCHes the triggering object with only the fields that differ', async () => {
    const plan = await planOf('set-fields', rule, updated(makeIncident()));
    expect(plan.calls.map(shape)).toEqual([
      {
        kind: 'api',
        index: 0,
        ruleId: 'set-fields',
        action: 0,
        method: 'PATCH',
        path: INCIDENT_PATH,
        objectType: 'incident',
        objectId: 'incident-1',
        body: { priority: 'high', description: 'checked: incident-1' },
        idempotencyKey: `${KEY}:set-fields:0`,
      },
    ]);
    expect(plan.calls[0]?.summary).toBe(
      'update incident incident-1: {"priority":"high","description":"checked: incident-1"}',
    );
    expect(plan.notes).toEqual([]);
  });

  it('plans nothing, with a note, when every field already has its value', async () => {
    const plan = await planOf(
      'set-fields',
      rule,
      updated(makeIncident({ priority: 'high', description: 'checked: incident-1' })),
    );
    expect(plan.calls).toEqual([]);
    expect(plan.notes).toEqual([
      {
        ruleId: 'set-fields',
        action: 0,
        message: 'update: every field already has the value the rule sets',
      },
    ]);
    expect(plan.rules).toEqual(['set-fields']);
  });

  it.each<[string, unknown, string, Record<string, unknown> | null]>([
    ['the same user id', makeUser('u-1'), '"u-1"', null],
    ['another user id', makeUser('u-1'), '"u-2"', { assignee: 'u-2' }],
    ['a user where there was none', null, '"u-1"', { assignee: 'u-1' }],
    ['null where there was a user', makeUser('u-1'), 'null', { assignee: null }],
    [
      'the requester, read by id',
      makeUser('u-1'),
      '{var: object.requester.id}',
      { assignee: 'u-9' },
    ],
  ])('compares user fields by id: %s', async (_name, current, value, body) => {
    const plan = await planOf(
      'assign',
      `on: {type: incident}\nthen:\n  - update: {assignee: ${value}}\n`,
      updated(makeIncident({ assignee: current, requester: makeUser('u-9', 'Timothy Liu') })),
    );
    expect(plan.calls.map((call) => (call.kind === 'api' ? call.body : null))).toEqual(
      body === null ? [] : [body],
    );
  });

  it('PATCHes the upstream record of a generic object, naming its raw type', async () => {
    const plan = await planOf(
      'close-request',
      'on: {type: object}\nthen:\n  - update: {state: closed, priority: 2}\n',
      updated(makeGenericObject('u_request', { state: 'open', priority: 2 })),
    );
    expect(plan.calls.map(shape)).toEqual([
      {
        kind: 'api',
        index: 0,
        ruleId: 'close-request',
        action: 0,
        method: 'PATCH',
        path: 'accounts/1/itsm/objects/object-1',
        query: { raw_type: 'u_request' },
        objectType: 'object',
        objectId: 'object-1',
        body: { state: 'closed' },
        idempotencyKey: `${KEY}:close-request:0`,
      },
    ]);
  });

  it('writes nothing to a deleted object, with a note', async () => {
    const plan = await planOf(
      'set-fields',
      `on: {type: incident, events: [update, delete]}\nthen:\n  - update: {priority: high}\n`,
      { type: 'delete', object: makeIncident() },
    );
    expect(plan.calls).toEqual([]);
    expect(plan.notes).toEqual([
      {
        ruleId: 'set-fields',
        action: 0,
        message: 'update: the incident was deleted, so there is nothing to write',
      },
    ]);
  });
});

describe('note', () => {
  const rule = (note: string, type = 'incident') => `
on: {type: ${type}, events: [add, update, delete]}
then:
  - note: ${note}
`;

  it('PATCHes a work note into the journal of the triggering object', async () => {
    const plan = await planOf(
      'note',
      rule('{text: {cat: ["seen ", {var: object.id}]}}'),
      updated(makeIncident()),
    );
    expect(plan.calls.map(shape)).toEqual([
      {
        kind: 'api',
        index: 0,
        ruleId: 'note',
        action: 0,
        method: 'PATCH',
        path: INCIDENT_PATH,
        objectType: 'incident',
        objectId: 'incident-1',
        body: { raw: { object: { work_notes: 'seen incident-1' } } },
        idempotencyKey: `${KEY}:note:0`,
      },
    ]);
    expect(plan.calls[0]?.summary).toBe(
      'note on incident incident-1 (work_notes): "seen incident-1"',
    );
  });

  it('writes a comment the caller sees when visible is true', async () => {
    const plan = await planOf(
      'note',
      rule('{text: hello, visible: true}'),
      updated(makeIncident()),
    );
    expect((plan.calls[0] as { body: unknown }).body).toEqual({
      raw: { object: { comments: 'hello' } },
    });
  });

  it.each<[string, string, EventOptions, string]>([
    [
      'the object was deleted',
      rule('{text: hello}'),
      { type: 'delete', object: makeIncident() },
      'note: the incident was deleted, so there is nothing to write on',
    ],
    [
      'the text is empty',
      rule('{text: {var: object.raw.u_reason}}'),
      updated(makeIncident()),
      'note: the text is empty (null), so no entry is written',
    ],
  ])('plans nothing, with a note, when %s', async (_name, yaml, options, message) => {
    const plan = await planOf('note', yaml, options);
    expect(plan.calls).toEqual([]);
    expect(plan.notes.map((n) => n.message)).toEqual([message]);
  });
});

describe('escalate', () => {
  const escalate = (spec: string) => `on: {type: incident}\nthen:\n  - escalate: ${spec}\n`;

  it.each<[string | null | undefined, string, string]>([
    ['low', '{levels: 1}', 'medium'],
    ['low', '{levels: 2}', 'high'],
    ['low', '{levels: 3}', 'critical'],
    ['medium', '{}', 'high'],
    ['medium', '{levels: 2}', 'critical'],
    ['high', '{levels: 1}', 'critical'],
    ['high', '{levels: 3}', 'critical'],
    ['medium', '{levels: 3}', 'critical'],
    [null, '{levels: 1}', 'medium'],
    [undefined, '{levels: 2}', 'high'],
  ])('raises priority %s with %s to %s', async (priority, spec, expected) => {
    const object = makeIncident({ priority });
    if (priority === undefined) delete object.priority;
    const plan = await planOf('raise', escalate(spec), updated(object));
    expect(plan.calls.map(shape)).toEqual([
      {
        kind: 'api',
        index: 0,
        ruleId: 'raise',
        action: 0,
        method: 'PATCH',
        path: INCIDENT_PATH,
        objectType: 'incident',
        objectId: 'incident-1',
        body: { priority: expected, escalation: 1 },
        idempotencyKey: `${KEY}:raise:0`,
      },
    ]);
  });

  it.each<[string, number | undefined, number]>([
    ['a missing counter', undefined, 1],
    ['zero', 0, 1],
    ['a counter already raised', 4, 5],
  ])('adds one to the escalation counter: %s', async (_name, escalation, expected) => {
    const object = makeIncident({ escalation });
    if (escalation === undefined) delete object.escalation;
    const plan = await planOf('raise', escalate('{levels: 1}'), updated(object));
    expect(plan.calls[0]?.kind === 'api' && plan.calls[0].body).toEqual({
      priority: 'high',
      escalation: expected,
    });
  });

  it('writes nothing, with a note, when the priority is already critical and nothing else changes', async () => {
    const plan = await planOf(
      'raise',
      escalate('{levels: 2}'),
      updated(makeIncident({ priority: 'critical', escalation: 3 })),
    );
    expect(plan.calls).toEqual([]);
    expect(plan.notes).toEqual([
      {
        ruleId: 'raise',
        action: 0,
        message: 'escalate: the priority is already critical and nothing else would change',
      },
    ]);
  });

  it('still assigns a critical incident, counting the escalation but not writing the priority', async () => {
    const plan = await planOf(
      'raise',
      escalate('{assignee: u-2}'),
      updated(makeIncident({ priority: 'critical', assignee: makeUser('u-1') })),
    );
    expect(plan.calls[0]?.kind === 'api' && plan.calls[0].body).toEqual({
      assignee: 'u-2',
      escalation: 1,
    });
  });

  it.each<[string, unknown, Record<string, unknown>]>([
    ['to the user the expression names', makeUser('u-1'), { assignee: 'u-9' }],
    ['leaving out the assignee it already has', makeUser('u-9'), {}],
  ])('sets the assignee %s', async (_name, current, extra) => {
    const plan = await planOf(
      'raise',
      escalate('{assignee: {var: object.requester.id}}'),
      updated(makeIncident({ assignee: current, requester: makeUser('u-9', 'Timothy Liu') })),
    );
    expect(plan.calls[0]?.kind === 'api' && plan.calls[0].body).toEqual({
      priority: 'high',
      escalation: 1,
      ...extra,
    });
  });

  it('writes its fields too, leaving out those that already have their value', async () => {
    const plan = await planOf(
      'raise',
      escalate(
        '{levels: 1, fields: {urgency: high, category: network, description: {cat: ["escalated ", {var: object.id}]}}}',
      ),
      updated(makeIncident()),
    );
    expect(plan.calls[0]?.kind === 'api' && plan.calls[0].body).toEqual({
      priority: 'high',
      urgency: 'high',
      description: 'escalated incident-1',
      escalation: 1,
    });
  });

  it('escalates problems and changes at their own paths', async () => {
    const rules = loadRuleSet({
      raise: 'on: {type: [problem, change]}\nthen:\n  - escalate: {levels: 1}\n',
    });
    const problem = await evaluate(rules, updated(makeProblem()));
    const change = await evaluate(rules, { ...updated(makeChange()), eventId: 'evt-2' });
    expect(
      [...problem.plan.calls, ...change.plan.calls].map((call) =>
        call.kind === 'api' ? [call.path, call.idempotencyKey] : null,
      ),
    ).toEqual([
      ['accounts/1/itsm/problems/problem-1', `${KEY}:raise:0`],
      ['accounts/1/itsm/changes/change-1', 'e:1:evt-2:raise:0'],
    ]);
  });
});

describe('create', () => {
  it('POSTs the evaluated fields, dropping nulls', async () => {
    const plan = await planOf(
      'open-problem',
      `
on: {type: incident}
then:
  - create:
      type: problem
      fields:
        category: {var: object.category}
        impact: {var: object.impact}
        urgency: {var: object.urgency}
        due_date: {var: object.due_date}
        description: {cat: ["From ", {var: object.id}]}
`,
      updated(makeIncident({ urgency: null })),
    );
    expect(plan.calls.map(shape)).toEqual([
      {
        kind: 'api',
        index: 0,
        ruleId: 'open-problem',
        action: 0,
        method: 'POST',
        path: 'accounts/1/itsm/problems',
        objectType: 'problem',
        objectId: null,
        body: { category: 'network', impact: 'medium', description: 'From incident-1' },
        idempotencyKey: `${KEY}:open-problem:0:create`,
      },
    ]);
  });

  it('links the new object to the trigger both ways, referring to the create by its call index', async () => {
    const plan = await planOf(
      'open-problem',
      `
on: {type: incident}
then:
  - log: {message: opening}
  - create: {type: problem, link: true, fields: {description: linked}}
`,
      updated(makeIncident()),
    );
    expect(plan.calls.map(shape)).toEqual([
      {
        kind: 'log',
        index: 0,
        ruleId: 'open-problem',
        action: 0,
        message: 'opening',
        idempotencyKey: `${KEY}:open-problem:0`,
      },
      {
        kind: 'api',
        index: 1,
        ruleId: 'open-problem',
        action: 1,
        method: 'POST',
        path: 'accounts/1/itsm/problems',
        objectType: 'problem',
        objectId: null,
        body: { description: 'linked', incident: 'incident-1' },
        idempotencyKey: `${KEY}:open-problem:1:create`,
      },
      {
        kind: 'api',
        index: 2,
        ruleId: 'open-problem',
        action: 1,
        method: 'PATCH',
        path: INCIDENT_PATH,
        objectType: 'incident',
        objectId: 'incident-1',
        body: { problem: { $result: 1 } },
        idempotencyKey: `${KEY}:open-problem:1:link:incident-1`,
      },
    ]);
    expect(plan.calls.map((call) => call.summary)).toEqual([
      'log',
      'create problem linked to incident incident-1: {"description":"linked","incident":"incident-1"}',
      'link incident incident-1 to the new problem (call 1)',
    ]);
  });

  it.each<[string, Record<string, unknown>, string, string, string]>([
    ['incident', makeIncident(), 'change', 'incident', 'accounts/1/itsm/incidents/incident-1'],
    ['problem', makeProblem(), 'change', 'problem', 'accounts/1/itsm/problems/problem-1'],
    ['problem', makeProblem(), 'incident', 'problem', 'accounts/1/itsm/problems/problem-1'],
    ['change', makeChange(), 'problem', 'change', 'accounts/1/itsm/changes/change-1'],
    ['change', makeChange(), 'incident', 'change', 'accounts/1/itsm/changes/change-1'],
  ])('links a %s to a new %s', async (type, object, created, refField, backPath) => {
    const plan = await planOf(
      'linker',
      `on: {type: ${type}}\nthen:\n  - create: {type: ${created}, link: true}\n`,
      updated(object),
    );
    const plural = `${created}s`;
    expect(
      plan.calls.map((call) =>
        call.kind === 'api' ? { method: call.method, path: call.path, body: call.body } : null,
      ),
    ).toEqual([
      { method: 'POST', path: `accounts/1/itsm/${plural}`, body: { [refField]: object.id } },
      { method: 'PATCH', path: backPath, body: { [created]: { $result: 0 } } },
    ]);
  });

  it('links every correlated object to the new object, each once', async () => {
    const ruleSet = loadRuleSet({
      cluster: `
on: {type: incident, events: [add, update]}
correlate: {key: {var: object.category}, within: 1h, at_least: 3}
then:
  - create: {type: problem, link: true, fields: {description: {cat: ["cluster of ", {var: correlation.count}]}}}
`,
    });
    let last: Evaluation | undefined;
    for (const [i, id] of ['inc-1', 'inc-2', 'inc-1', 'inc-3'].entries()) {
      last = await evaluateEvent(
        ruleSet,
        makeEventInput({
          eventId: `evt-${i}`,
          object: makeIncident({ id }),
          type: 'update',
          now: minutesLater(i),
        }),
        store,
      );
    }
    const key = eventPlanKey(1, 'evt-3');
    expect(last?.plan.calls.map(shape)).toEqual([
      {
        kind: 'api',
        index: 0,
        ruleId: 'cluster',
        action: 0,
        method: 'POST',
        path: 'accounts/1/itsm/problems',
        objectType: 'problem',
        objectId: null,
        body: { description: 'cluster of 3', incident: 'inc-3' },
        idempotencyKey: `${key}:cluster:0:create`,
      },
      ...['inc-3', 'inc-1', 'inc-2'].map((id, i) => ({
        kind: 'api',
        index: i + 1,
        ruleId: 'cluster',
        action: 0,
        method: 'PATCH',
        path: `accounts/1/itsm/incidents/${id}`,
        objectType: 'incident',
        objectId: id,
        body: { problem: { $result: 0 } },
        idempotencyKey: `${key}:cluster:0:link:${id}`,
      })),
    ]);
  });

  it('creates without the link, with a note, on a delete event', async () => {
    const plan = await planOf(
      'open-problem',
      `on: {type: incident, events: [update, delete]}\nthen:\n  - create: {type: problem, link: true, fields: {description: gone}}\n`,
      { type: 'delete', object: makeIncident() },
    );
    expect(plan.calls.map(shape)).toEqual([
      {
        kind: 'api',
        index: 0,
        ruleId: 'open-problem',
        action: 0,
        method: 'POST',
        path: 'accounts/1/itsm/problems',
        objectType: 'problem',
        objectId: null,
        body: { description: 'gone' },
        idempotencyKey: `${KEY}:open-problem:0:create`,
      },
    ]);
    expect(plan.notes).toEqual([
      {
        ruleId: 'open-problem',
        action: 0,
        message: 'create: the incident was deleted, so the new problem is not linked to it',
      },
    ]);
  });
});

describe('a value computed at run time that the API would refuse', () => {
  // The value is an expression, so check accepts the rule; what it gives is known only per event.
  const priorityFrom = 'priority: {var: object.description}';
  it.each([
    [
      'update',
      `update: {${priorityFrom}}`,
      '/then/1: update: not written, the values are invalid: priority must be one of low, medium, high, critical, got "urgent"',
    ],
    [
      'create',
      `create: {type: problem, link: true, fields: {${priorityFrom}}}`,
      '/then/1: create: no problem created, the values are invalid: priority must be one of low, medium, high, critical, got "urgent"',
    ],
    [
      'escalate with fields',
      'escalate: {levels: 1, fields: {urgency: {var: object.description}}}',
      '/then/1: escalate: not written, the values are invalid: urgency must be one of low, medium, high, got "urgent"',
    ],
  ])(
    'fails the rule on %s, plans none of its actions, and lets the other rules act',
    async (_name, action, reason) => {
      const ruleSet = loadRuleSet({
        'from-description': `on: {type: incident}\norder: 1\nthen:\n  - log: {message: before}\n  - ${action}\n  - log: {message: after}\n`,
        healthy: 'on: {type: incident}\norder: 2\nthen:\n  - log: {message: healthy}\n',
      });
      const evaluation = await evaluate(ruleSet, updated(makeIncident({ description: 'urgent' })));
      expect(evaluation.outcomes.map((o) => [o.ruleId, o.verdict, o.reason])).toEqual([
        ['from-description', 'failed', reason],
        ['healthy', 'matched', undefined],
      ]);
      expect(evaluation.plan.rules).toEqual(['healthy']);
      expect(evaluation.plan.calls.map((call) => [call.ruleId, call.kind])).toEqual([
        ['healthy', 'log'],
      ]);
      expect(evaluation.plan.notes).toEqual([]);
    },
  );

  it.each([
    ['update', `update: {${priorityFrom}}`, 'PATCH'],
    ['create', `create: {type: problem, fields: {${priorityFrom}}}`, 'POST'],
    ['escalate with fields', 'escalate: {fields: {urgency: {var: object.description}}}', 'PATCH'],
  ])('plans %s when the value it reads is valid', async (_name, action, method) => {
    const ruleSet = loadRuleSet({
      'from-description': `on: {type: incident}\nthen:\n  - ${action}\n`,
    });
    const evaluation = await evaluate(ruleSet, updated(makeIncident({ description: 'high' })));
    expect(evaluation.outcomes.map((o) => [o.ruleId, o.verdict])).toEqual([
      ['from-description', 'matched'],
    ]);
    expect(evaluation.plan.calls.map((call) => call.kind === 'api' && call.method)).toEqual([
      method,
    ]);
    expect(evaluation.plan.calls[0]?.kind === 'api' && evaluation.plan.calls[0].body).toMatchObject(
      action.startsWith('escalate') ? { urgency: 'high' } : { priority: 'high' },
    );
  });

  it('keeps the once_per key free, so a later event with a valid value acts', async () => {
    const ruleSet = loadRuleSet({
      'from-description': `on: {type: incident}\nonce_per: {var: object.id}\nthen:\n  - update: {${priorityFrom}}\n`,
    });
    const failed = await evaluate(ruleSet, updated(makeIncident({ description: 'urgent' })));
    expect(failed.outcomes.map((o) => o.verdict)).toEqual(['failed']);
    const later = await evaluateEvent(
      ruleSet,
      makeEventInput({ eventId: 'evt-2', ...updated(makeIncident({ description: 'high' })) }),
      store,
    );
    expect(later.outcomes.map((o) => o.verdict)).toEqual(['matched']);
    expect(later.plan.calls).toHaveLength(1);
  });
});

describe('object', () => {
  it('POSTs a generic object of the raw type, with null values kept', async () => {
    const plan = await planOf(
      'audit',
      `
on: {type: incident}
then:
  - object:
      raw_type: u_audit
      fields:
        message: {cat: ["seen ", {var: object.id}]}
        incident: {var: object.id}
        due: {var: object.due_date}
`,
      updated(makeIncident()),
    );
    expect(plan.calls.map(shape)).toEqual([
      {
        kind: 'api',
        index: 0,
        ruleId: 'audit',
        action: 0,
        method: 'POST',
        path: 'accounts/1/itsm/objects',
        query: { raw_type: 'u_audit' },
        objectType: 'object',
        objectId: null,
        body: { message: 'seen incident-1', incident: 'incident-1', due: null },
        idempotencyKey: `${KEY}:audit:0:create`,
      },
    ]);
  });

  it('PATCHes the generic object its id names, with the id escaped in the path', async () => {
    const plan = await planOf(
      'audit',
      `on: {type: incident}\nthen:\n  - object: {raw_type: u_audit, id: {cat: ["audit/", {var: object.id}]}, fields: {seen: true}}\n`,
      updated(makeIncident()),
    );
    expect(plan.calls.map(shape)).toEqual([
      {
        kind: 'api',
        index: 0,
        ruleId: 'audit',
        action: 0,
        method: 'PATCH',
        path: 'accounts/1/itsm/objects/audit%2Fincident-1',
        query: { raw_type: 'u_audit' },
        objectType: 'object',
        objectId: 'audit/incident-1',
        body: { seen: true },
        idempotencyKey: `${KEY}:audit:0`,
      },
    ]);
  });

  it('writes nothing, with a note, when the id expression gives null', async () => {
    const plan = await planOf(
      'audit',
      `on: {type: incident}\nthen:\n  - object: {raw_type: u_audit, id: {var: object.due_date}, fields: {seen: true}}\n`,
      updated(makeIncident()),
    );
    expect(plan.calls).toEqual([]);
    expect(plan.notes).toEqual([
      {
        ruleId: 'audit',
        action: 0,
        message: 'object: the id expression gave null, so nothing is written',
      },
    ]);
  });
});

describe('http and log', () => {
  it('evaluates the url, the headers and the body template', async () => {
    const plan = await planOf(
      'notify',
      `
on: {type: incident}
then:
  - http:
      url: {cat: ["https://hooks.example.com/incidents/", {var: object.id}]}
      method: PUT
      headers:
        X-Priority: {var: object.priority}
        X-Escalation: {var: object.escalation}
        X-Missing: {var: object.due_date}
      body:
        id: {var: object.id}
        text: plain
        nested:
          rank: {rank: {var: object.priority}}
          list: [1, {var: object.category}, {lower: LOUD}]
`,
      updated(makeIncident()),
    );
    expect(plan.calls.map(shape)).toEqual([
      {
        kind: 'http',
        index: 0,
        ruleId: 'notify',
        action: 0,
        method: 'PUT',
        url: 'https://hooks.example.com/incidents/incident-1',
        headers: { 'X-Priority': 'medium', 'X-Escalation': '0' },
        body: {
          id: 'incident-1',
          text: 'plain',
          nested: { rank: 2, list: [1, 'network', 'loud'] },
        },
        idempotencyKey: `${KEY}:notify:0`,
      },
    ]);
  });

  it('POSTs with no body by default', async () => {
    const plan = await planOf(
      'notify',
      'on: {type: incident}\nthen:\n  - http: {url: "https://hooks.example.com/ping"}\n',
      updated(makeIncident()),
    );
    expect(plan.calls.map(shape)).toEqual([
      {
        kind: 'http',
        index: 0,
        ruleId: 'notify',
        action: 0,
        method: 'POST',
        url: 'https://hooks.example.com/ping',
        headers: {},
        body: null,
        idempotencyKey: `${KEY}:notify:0`,
      },
    ]);
  });

  it('plans a secret as a fresh marker that names it, in url, headers and body', async () => {
    const yaml = `on: {type: incident}
then:
  - http:
      url: {cat: ["https://hooks.example.com/", {secret: HOOK_PATH}]}
      headers: {Authorization: {cat: ["Bearer ", {secret: PAGER_TOKEN}]}}
      body: {token: {secret: PAGER_TOKEN}, id: {var: object.id}}
`;
    const plan = await planOf('notify', yaml, updated(makeIncident()));
    const call = plan.calls[0] as Extract<PlannedCall, { kind: 'http' }>;
    const marker = Object.fromEntries(
      Object.entries(call.secrets ?? {}).map(([key, name]) => [name, key]),
    );
    expect(Object.keys(marker).sort()).toEqual(['HOOK_PATH', 'PAGER_TOKEN']);
    expect(marker.PAGER_TOKEN).toMatch(/^itsm_secret_[0-9a-f]{24}_PAGER_TOKEN$/);
    expect(call.url).toBe(`https://hooks.example.com/${marker.HOOK_PATH}`);
    expect(call.headers).toEqual({ Authorization: `Bearer ${marker.PAGER_TOKEN}` });
    expect(call.body).toEqual({ token: marker.PAGER_TOKEN, id: 'incident-1' });
    expect(call.summary).toBe('POST https://hooks.example.com/[secret HOOK_PATH]');
    // Another plan of the same action gets other markers: data cannot guess them.
    const again = await planOf('notify', yaml, updated(makeIncident()));
    const other = again.calls[0] as Extract<PlannedCall, { kind: 'http' }>;
    expect(Object.keys(other.secrets ?? {})).not.toContain(marker.PAGER_TOKEN);
  });

  it('calls nothing, with a note, when the url expression gives null', async () => {
    const plan = await planOf(
      'notify',
      'on: {type: incident}\nthen:\n  - http: {url: {var: object.due_date}}\n',
      updated(makeIncident()),
    );
    expect(plan.calls).toEqual([]);
    expect(plan.notes).toEqual([
      {
        ruleId: 'notify',
        action: 0,
        message: 'http: the url expression gave null, so nothing is called',
      },
    ]);
  });

  it.each<[string, string, string]>([
    [
      'a text',
      '{cat: ["incident ", {var: object.id}, " is ", {var: object.priority}]}',
      'incident incident-1 is medium',
    ],
    ['a literal', 'hello', 'hello'],
    [
      'a value that is not text, as JSON',
      '{var: object.assignee}',
      '{"type":"user","api":"team","id":"u-1","name":"Vinod Chandru","email":"vinod@example.com"}',
    ],
    ['null, as JSON', '{var: object.due_date}', 'null'],
  ])('logs %s', async (_name, message, expected) => {
    const plan = await planOf(
      'note',
      `on: {type: incident}\nthen:\n  - log: {message: ${message}}\n`,
      updated(makeIncident({ assignee: makeUser('u-1') })),
    );
    expect(plan.calls.map(shape)).toEqual([
      {
        kind: 'log',
        index: 0,
        ruleId: 'note',
        action: 0,
        message: expected,
        idempotencyKey: `${KEY}:note:0`,
      },
    ]);
  });
});

describe('idempotency keys', () => {
  const ruleSet = () =>
    loadRuleSet({
      keys: `
on: {type: incident}
then:
  - update: {priority: high}
  - create: {type: problem, link: true}
  - http: {url: "https://hooks.example.com/x"}
  - log: {message: done}
`,
    });

  const keysOf = (evaluation: Evaluation) =>
    evaluation.plan.calls.map((call) => call.idempotencyKey);

  it('derives each key from the plan key, the rule id, the action index and a suffix', async () => {
    const evaluation = await evaluate(ruleSet(), updated(makeIncident()));
    expect(keysOf(evaluation)).toEqual([
      'e:1:evt-1:keys:0',
      'e:1:evt-1:keys:1:create',
      'e:1:evt-1:keys:1:link:incident-1',
      'e:1:evt-1:keys:2',
      'e:1:evt-1:keys:3',
    ]);
  });

  it('gives the same keys to two evaluations of the same event', async () => {
    const rules = ruleSet();
    const first = await evaluate(rules, updated(makeIncident()));
    const second = await evaluate(rules, { ...updated(makeIncident()), now: minutesLater(30) });
    expect(keysOf(second)).toEqual(keysOf(first));
    expect(second.plan.calls).toEqual(first.plan.calls);
  });

  it.each([
    ['another event', { eventId: 'evt-2' }, 'e:1:evt-2:keys:'],
    ['the same event id in another account', { account: 2 }, 'e:2:evt-1:keys:'],
  ])('gives different keys to %s', async (_name, options, prefix) => {
    const rules = ruleSet();
    const first = await evaluate(rules, updated(makeIncident()));
    const other = await evaluate(rules, { ...updated(makeIncident()), ...options });
    expect(keysOf(other).every((key) => key.startsWith(prefix))).toBe(true);
    expect(keysOf(other).filter((key) => keysOf(first).includes(key))).toEqual([]);
  });

  it('starts the keys of a scheduled rule with the schedule plan key', async () => {
    const rules = loadRuleSet({
      ticker: `on: {type: incident, schedule: "*/15 * * * *"}\nthen:\n  - escalate: {levels: 1}\n`,
    });
    const tick = new Date('2026-03-02T10:15:00Z');
    const evaluation = await evaluateEvent(
      rules,
      makeScheduleInput({ rule: ruleOf(rules, 'ticker'), object: makeIncident(), tick }),
      store,
    );
    const planKey = schedulePlanKey(1, 'ticker', '2026-03-02T10:15:00Z', 'incident-1');
    expect(planKey).toBe('s:1:ticker:2026-03-02T10:15:00Z:incident-1');
    expect(evaluation.plan.key).toBe(planKey);
    expect(keysOf(evaluation)).toEqual([`${planKey}:ticker:0`]);
  });
});

describe('the example rules', () => {
  const rulesDir = fileURLToPath(new URL('../../test/fixtures/example-rules', import.meta.url));
  const load = (): RuleSet => {
    const result = loadRules(readRuleSources(rulesDir));
    expect(result.problems).toEqual([]);
    if (!result.ruleSet) throw new Error('the example rules do not load');
    return result.ruleSet;
  };

  it('load without a problem', () => {
    expect(load().rules.map((rule) => rule.id)).toEqual([
      'escalate-major-incidents',
      'page-on-call-for-critical',
      'recurring-incidents-open-problem',
      'overdue-incident-escalation',
      'problem-in-fix-opens-change',
    ]);
  });

  it('escalate-major-incidents raises a new high-impact, high-urgency incident to critical', async () => {
    const evaluation = await evaluate(load(), {
      eventId: 'evt-major',
      object: makeIncident({
        id: 'inc-major',
        impact: 'high',
        urgency: 'high',
        priority: 'medium',
      }),
    });
    const key = eventPlanKey(1, 'evt-major');
    expect(evaluation.plan.rules).toEqual(['escalate-major-incidents']);
    expect(evaluation.plan.calls.map(shape)).toEqual([
      {
        kind: 'api',
        index: 0,
        ruleId: 'escalate-major-incidents',
        action: 0,
        method: 'PATCH',
        path: 'accounts/1/itsm/incidents/inc-major',
        objectType: 'incident',
        objectId: 'inc-major',
        body: { priority: 'critical', escalation: 1 },
        idempotencyKey: `${key}:escalate-major-incidents:0`,
      },
      {
        kind: 'log',
        index: 1,
        ruleId: 'escalate-major-incidents',
        action: 1,
        message: 'major incident inc-major raised to critical',
        idempotencyKey: `${key}:escalate-major-incidents:1`,
      },
    ]);
  });

  it('escalate-major-incidents ignores an update that did not touch impact or urgency', async () => {
    const object = makeIncident({ impact: 'high', urgency: 'high', priority: 'medium' });
    const evaluation = await evaluate(load(), updated(object));
    expect(evaluation.plan.calls).toEqual([]);
  });

  it('recurring-incidents-open-problem opens one problem for three incidents of a category in an hour, linking all three', async () => {
    const ruleSet = load();
    const evaluations: Evaluation[] = [];
    for (const [i, [id, category]] of [
      ['inc-1', 'Network'],
      ['inc-2', 'network'],
      ['inc-3', 'NETWORK'],
      ['inc-4', 'Network'],
    ].entries()) {
      evaluations.push(
        await evaluate(ruleSet, {
          eventId: `evt-${id}`,
          object: makeIncident({ id, category, impact: 'high', urgency: 'low', priority: 'low' }),
          now: minutesLater(i * 15),
        }),
      );
    }
    expect(evaluations.map((e) => e.plan.calls.length)).toEqual([0, 0, 4, 0]);
    const key = eventPlanKey(1, 'evt-inc-3');
    expect(evaluations[2]?.plan.calls.map(shape)).toEqual([
      {
        kind: 'api',
        index: 0,
        ruleId: 'recurring-incidents-open-problem',
        action: 0,
        method: 'POST',
        path: 'accounts/1/itsm/problems',
        objectType: 'problem',
        objectId: null,
        body: {
          category: 'NETWORK',
          impact: 'high',
          urgency: 'medium',
          description: 'Recurring incidents in category network: 3 in the last hour',
          incident: 'inc-3',
        },
        idempotencyKey: `${key}:recurring-incidents-open-problem:0:create`,
      },
      ...['inc-3', 'inc-1', 'inc-2'].map((id, i) => ({
        kind: 'api',
        index: i + 1,
        ruleId: 'recurring-incidents-open-problem',
        action: 0,
        method: 'PATCH',
        path: `accounts/1/itsm/incidents/${id}`,
        objectType: 'incident',
        objectId: id,
        body: { problem: { $result: 0 } },
        idempotencyKey: `${key}:recurring-incidents-open-problem:0:link:${id}`,
      })),
    ]);
    const fourth = evaluations[3]?.outcomes.find(
      (outcome) => outcome.ruleId === 'recurring-incidents-open-problem',
    );
    expect(fourth).toMatchObject({
      verdict: 'skipped',
      reason: 'once_per: already done for "network" within the window',
      correlation: { key: 'network', count: 4 },
    });
  });

  it('recurring-incidents-open-problem does not count an incident already tied to a problem', async () => {
    const ruleSet = load();
    const counts: (number | undefined)[] = [];
    for (const [i, problem] of [null, 'prb-1', null].entries()) {
      const evaluation = await evaluate(ruleSet, {
        eventId: `evt-${i}`,
        object: makeIncident({ id: `inc-${i}`, problem }),
        now: minutesLater(i),
      });
      counts.push(
        evaluation.outcomes.find((o) => o.ruleId === 'recurring-incidents-open-problem')
          ?.correlation?.count,
      );
    }
    expect(counts).toEqual([1, undefined, 2]);
  });

  it('problem-in-fix-opens-change opens a linked change when a problem moves to status 104, once', async () => {
    const ruleSet = load();
    const problem = makeProblem({
      status: 104,
      category: 'software',
      impact: 'high',
      urgency: 'medium',
      description: 'SP2 breaks applications',
    });
    const evaluation = await evaluate(ruleSet, {
      type: 'update',
      object: problem,
      previous: { ...problem, status: 103 },
    });
    expect(evaluation.plan.calls.map(shape)).toEqual([
      {
        kind: 'api',
        index: 0,
        ruleId: 'problem-in-fix-opens-change',
        action: 0,
        method: 'POST',
        path: 'accounts/1/itsm/changes',
        objectType: 'change',
        objectId: null,
        body: {
          category: 'software',
          impact: 'high',
          urgency: 'medium',
          risk: 'moderate',
          description: 'Fix for problem problem-1: SP2 breaks applications',
          problem: 'problem-1',
        },
        idempotencyKey: `${KEY}:problem-in-fix-opens-change:0:create`,
      },
      {
        kind: 'api',
        index: 1,
        ruleId: 'problem-in-fix-opens-change',
        action: 0,
        method: 'PATCH',
        path: 'accounts/1/itsm/problems/problem-1',
        objectType: 'problem',
        objectId: 'problem-1',
        body: { change: { $result: 0 } },
        idempotencyKey: `${KEY}:problem-in-fix-opens-change:0:link:problem-1`,
      },
    ]);

    const again = await evaluate(ruleSet, {
      eventId: 'evt-2',
      type: 'update',
      object: problem,
      previous: { ...problem, status: 101 },
      now: minutesLater(60 * 24 * 30),
    });
    expect(again.plan.calls).toEqual([]);
    expect(again.outcomes).toEqual([
      {
        ruleId: 'problem-in-fix-opens-change',
        file: expect.stringMatching(/rules\/problem\/problem-in-fix-opens-change\.yaml$/),
        verdict: 'skipped',
        reason: 'once_per: already done for "problem-1"',
      },
    ]);
  });

  it.each<[string, Record<string, unknown>]>([
    ['another status', { status: 103 }],
    ['a problem that already has a change', { status: 104, change: 'change-1' }],
  ])('problem-in-fix-opens-change does nothing for %s', async (_name, overrides) => {
    const problem = makeProblem(overrides);
    const evaluation = await evaluate(load(), {
      type: 'update',
      object: problem,
      previous: { ...problem, status: 102 },
    });
    expect(evaluation.plan.calls).toEqual([]);
  });

  it('overdue-incident-escalation escalates an incident past its due date once a day', async () => {
    const ruleSet = load();
    const rule = ruleOf(ruleSet, 'overdue-incident-escalation');
    const tickAt = async (tick: Date, object: Record<string, unknown>) =>
      evaluateEvent(ruleSet, makeScheduleInput({ rule, object, tick }), store);
    const late = makeIncident({ id: 'inc-late', due_date: '2026-03-01T22:00:00Z' });

    const first = await tickAt(NOW, late);
    const key = schedulePlanKey(1, rule.id, '2026-03-02T10:00:00Z', 'inc-late');
    expect(first.plan.calls.map(shape)).toEqual([
      {
        kind: 'api',
        index: 0,
        ruleId: rule.id,
        action: 0,
        method: 'PATCH',
        path: 'accounts/1/itsm/incidents/inc-late',
        objectType: 'incident',
        objectId: 'inc-late',
        body: { priority: 'high', escalation: 1 },
        idempotencyKey: `${key}:${rule.id}:0`,
      },
      {
        kind: 'log',
        index: 1,
        ruleId: rule.id,
        action: 1,
        message: 'overdue by 12 hours',
        idempotencyKey: `${key}:${rule.id}:1`,
      },
    ]);

    const escalated = { ...late, priority: 'high', escalation: 1 };
    const sameDay = [
      await tickAt(minutesLater(15), escalated),
      await tickAt(minutesLater(13 * 60 + 45), escalated),
    ];
    expect(sameDay.map((e) => e.plan.calls)).toEqual([[], []]);
    expect(sameDay[0]?.outcomes[0]?.reason).toBe(
      'once_per: already done for "inc-late" within the window',
    );

    const nextDay = await tickAt(minutesLater(24 * 60), escalated);
    expect(nextDay.plan.calls[0]?.kind === 'api' && nextDay.plan.calls[0].body).toEqual({
      priority: 'critical',
      escalation: 2,
    });
  });

  it.each<[string, Record<string, unknown>]>([
    ['not yet due', { due_date: '2026-03-02T12:00:00Z' }],
    ['without a due date', { due_date: null }],
    ['already critical', { due_date: '2026-03-01T10:00:00Z', priority: 'critical' }],
  ])('overdue-incident-escalation leaves alone an incident %s', async (_name, overrides) => {
    const ruleSet = load();
    const evaluation = await evaluateEvent(
      ruleSet,
      makeScheduleInput({
        rule: ruleOf(ruleSet, 'overdue-incident-escalation'),
        object: makeIncident(overrides),
        tick: NOW,
      }),
      store,
    );
    expect(evaluation.plan.calls).toEqual([]);
    expect(evaluation.outcomes[0]?.reason).toBe('the condition (when) is false');
  });

  const critical = () =>
    makeIncident({
      id: 'inc-9',
      priority: 'critical',
      description: 'Mail is down',
      assignee: makeUser('u-1', 'Vinod Chandru'),
    });

  const pagerCall = (planKey: string) => ({
    kind: 'http',
    index: 0,
    ruleId: 'page-on-call-for-critical',
    action: 0,
    method: 'POST',
    url: 'https://pager.example.com/v1/alerts',
    headers: { 'Content-Type': 'application/json' },
    body: {
      summary: 'Critical incident inc-9: Mail is down',
      severity: 'critical',
      incident: 'http://127.0.0.1:8787/v1/accounts/1/itsm/incidents/inc-9',
      assignee: 'vinod@example.com',
    },
    idempotencyKey: `${planKey}:page-on-call-for-critical:0`,
  });

  it('page-on-call-for-critical pages when an incident becomes critical', async () => {
    const object = critical();
    const evaluation = await evaluate(load(), {
      type: 'update',
      object,
      previous: { ...object, priority: 'high' },
    });
    expect(evaluation.plan.rules).toEqual(['page-on-call-for-critical']);
    expect(evaluation.plan.calls.map(shape)).toEqual([pagerCall(KEY)]);
  });

  it("page-on-call-for-critical runs on the engine's own escalation (selfHops 1), and no other rule does", async () => {
    const object = { ...critical(), impact: 'high', urgency: 'high', escalation: 1 };
    const evaluation = await evaluate(load(), {
      eventId: 'evt-echo',
      type: 'update',
      object,
      previous: { ...object, priority: 'medium', escalation: 0 },
      selfHops: 1,
    });
    expect(evaluation.plan.rules).toEqual(['page-on-call-for-critical']);
    expect(evaluation.plan.calls.map(shape)).toEqual([pagerCall(eventPlanKey(1, 'evt-echo'))]);
    expect(
      evaluation.outcomes.find((outcome) => outcome.ruleId === 'escalate-major-incidents')?.reason,
    ).toBe('the change was made by the engine itself, and the rule has no on.self');
  });
});
