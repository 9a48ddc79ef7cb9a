// Evaluation of one event against a rule set, with a real SQLite engine store on :memory:: the
// trigger filters and the index, `when`, order and stop, correlation windows and once-only claims.
// What a matched rule plans is in plan.test.ts; here a `log` action shows what the rule saw.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ACCOUNT,
  loadRuleSet,
  makeChange,
  makeEngineStore,
  makeEventInput,
  makeGenericObject,
  makeIncident,
  makeProblem,
  minutesLater,
  NOW,
} from '../../test/helpers/rules.js';
import type { ObjectType } from '../itsm/fields.js';
import type { EngineStore } from '../storage/engine-port.js';
import { type Evaluation, evaluateEvent, MAX_SELF_HOPS, type RuleOutcome } from './evaluate.js';
import type { LogCall } from './plan.js';

let store: EngineStore;

beforeEach(() => {
  store = makeEngineStore();
});

afterEach(async () => {
  await store.close();
});

type RuleData = Record<string, unknown>;

/**
 * A rule file as text (JSON is YAML). `actions` becomes the rule's `then` (an object literal with
 * a `then` key reads as a thenable to the linter); the default action logs the rule id.
 */
function ruleText({ actions, ...rule }: RuleData): string {
  return JSON.stringify({
    ...rule,
    ['then' as string]: actions ?? [{ log: { message: { var: 'rule.id' } } }],
  });
}

function ruleSetOf(rules: Record<string, RuleData>) {
  return loadRuleSet(Object.fromEntries(Object.entries(rules).map(([id, r]) => [id, ruleText(r)])));
}

/** `[ruleId, verdict]` of every outcome, in order. */
const verdicts = (evaluation: Evaluation) =>
  evaluation.outcomes.map((outcome) => [outcome.ruleId, outcome.verdict]);

const outcomeOf = (evaluation: Evaluation, ruleId: string): RuleOutcome => {
  const outcome = evaluation.outcomes.find((candidate) => candidate.ruleId === ruleId);
  if (!outcome) throw new Error(`no outcome for ${ruleId}`);
  return outcome;
};

const logMessages = (evaluation: Evaluation) =>
  evaluation.plan.calls
    .filter((call): call is LogCall => call.kind === 'log')
    .map((call) => call.message);

const OBJECTS: Record<ObjectType, Record<string, unknown>> = {
  incident: makeIncident(),
  problem: makeProblem(),
  change: makeChange(),
  article: {
    id: 'article-1',
    type: 'article',
    api: 'itsm',
    created: '2026-03-02T08:00:00Z',
    modified: '2026-03-02T08:00:00Z',
    href: 'http://127.0.0.1:8787/v1/accounts/1/itsm/articles/article-1',
    topic: 'VPN',
  },
  asset: {
    id: 'asset-1',
    type: 'asset',
    api: 'itsm',
    created: '2026-03-02T08:00:00Z',
    modified: '2026-03-02T08:00:00Z',
    href: 'http://127.0.0.1:8787/v1/accounts/1/itsm/assets/asset-1',
    name: 'laptop',
  },
  object: makeGenericObject('u_request', { state: 'open' }),
};

describe('trigger filters', () => {
  it.each<[string, string | string[], ObjectType, boolean]>([
    ['a single type runs on its type', 'incident', 'incident', true],
    ['a single type ignores another type', 'problem', 'incident', false],
    ['a list runs on any type it names', ['change', 'problem'], 'problem', true],
    ['a list ignores a type it does not name', ['change', 'problem'], 'incident', false],
    ['generic objects are a type of their own', 'object', 'object', true],
    ['asset rules ignore articles', 'asset', 'article', false],
  ])('object type: %s', async (_name, type, objectType, runs) => {
    const ruleSet = ruleSetOf({ watcher: { on: { type } } });
    const evaluation = await evaluateEvent(
      ruleSet,
      makeEventInput({ object: OBJECTS[objectType], objectType }),
      store,
    );
    expect(evaluation.plan.rules).toEqual(runs ? ['watcher'] : []);
    expect(verdicts(evaluation)).toEqual(runs ? [['watcher', 'matched']] : []);
  });

  it.each<[string[] | undefined, 'add' | 'update' | 'delete', boolean]>([
    [undefined, 'add', true],
    [undefined, 'update', true],
    [undefined, 'delete', false],
    [['add'], 'add', true],
    [['add'], 'update', false],
    [['update'], 'update', true],
    [['update'], 'add', false],
    [['delete'], 'delete', true],
    [['delete'], 'add', false],
    [['add', 'update', 'delete'], 'delete', true],
  ])('events %j on a %s event: runs %s', async (events, type, runs) => {
    const ruleSet = ruleSetOf({ watcher: { on: { type: 'incident', events } } });
    const previous = type === 'update' ? makeIncident({ priority: 'low' }) : null;
    const evaluation = await evaluateEvent(
      ruleSet,
      makeEventInput({ object: makeIncident(), previous, type }),
      store,
    );
    expect(evaluation.plan.rules).toEqual(runs ? ['watcher'] : []);
  });

  it.each<[string, 'add' | 'update' | 'delete', Record<string, unknown> | null, string | null]>([
    ['an add counts as every field changed', 'add', null, null],
    ['an update that changed the field', 'update', makeIncident({ priority: 'low' }), null],
    [
      'an update that changed other fields only',
      'update',
      makeIncident({ description: 'before', modified: '2026-03-01T00:00:00Z' }),
      'none of priority changed (changed: description)',
    ],
    ['an update without a previous state', 'update', null, 'none of priority changed'],
    [
      'a delete changes nothing',
      'delete',
      makeIncident({ priority: 'low' }),
      'none of priority changed',
    ],
  ])('changed [priority]: %s', async (_name, type, previous, reason) => {
    const ruleSet = ruleSetOf({
      watcher: {
        on: { type: 'incident', events: ['add', 'update', 'delete'], changed: ['priority'] },
      },
    });
    const evaluation = await evaluateEvent(
      ruleSet,
      makeEventInput({ object: makeIncident(), previous, type }),
      store,
    );
    expect(evaluation.outcomes).toEqual([
      reason === null
        ? { ruleId: 'watcher', file: 'rules/watcher.yaml', verdict: 'matched', reason: undefined }
        : { ruleId: 'watcher', file: 'rules/watcher.yaml', verdict: 'skipped', reason },
    ]);
  });

  it('gives conditions the changed fields of an update, leaving out modified', async () => {
    const ruleSet = ruleSetOf({
      watcher: { on: { type: 'incident' }, actions: [{ log: { message: { var: 'changed' } } }] },
    });
    const evaluation = await evaluateEvent(
      ruleSet,
      makeEventInput({
        type: 'update',
        object: makeIncident({
          priority: 'high',
          urgency: 'high',
          modified: '2026-03-02T09:00:00Z',
        }),
        previous: makeIncident(),
      }),
      store,
    );
    expect(logMessages(evaluation)).toEqual(['["urgency","priority"]']);
  });

  it('names changed upstream columns as raw.<column>, leaving out the stamped ones', async () => {
    const ruleSet = ruleSetOf({
      watcher: { on: { type: 'change' }, actions: [{ log: { message: { var: 'changed' } } }] },
    });
    const raw = (state: string, stamp: string) => ({
      state,
      approval: 'requested',
      sys_updated_on: stamp,
      sys_mod_count: stamp,
    });
    const evaluation = await evaluateEvent(
      ruleSet,
      makeEventInput({
        type: 'update',
        objectType: 'change',
        object: makeChange({ status: -1, raw: raw('-1', '2') }),
        previous: makeChange({ status: -2, raw: raw('-2', '1') }),
      }),
      store,
    );
    expect(logMessages(evaluation)).toEqual(['["status","raw","raw.state"]']);
  });

  it.each<[string, Record<string, unknown> | null, boolean]>([
    ['the column changed', { state: '-2', approval: 'requested' }, true],
    ['only another column changed', { state: '-1', approval: 'not requested' }, false],
    ['the previous state has no upstream record', null, false],
  ])('changed [raw.state]: %s', async (_name, previousRaw, runs) => {
    const ruleSet = ruleSetOf({
      watcher: { on: { type: 'change', events: ['update'], changed: ['raw.state'] } },
    });
    const evaluation = await evaluateEvent(
      ruleSet,
      makeEventInput({
        type: 'update',
        objectType: 'change',
        object: makeChange({ raw: { state: '-1', approval: 'requested' } }),
        previous: makeChange(previousRaw === null ? {} : { raw: previousRaw }),
      }),
      store,
    );
    expect(evaluation.plan.rules).toEqual(runs ? ['watcher'] : []);
  });

  it.each<[string, number, boolean, boolean]>([
    ['a change by someone else runs a rule without on.self', 0, false, true],
    ['a change by someone else runs a rule with on.self', 0, true, true],
    ['an engine write does not run a rule without on.self', 1, false, false],
    ['an engine write runs a rule with on.self', 1, true, true],
    ['the fourth hop still runs a rule with on.self', MAX_SELF_HOPS - 1, true, true],
    ['the fifth hop runs no rule at all', MAX_SELF_HOPS, true, false],
    ['hops beyond the fifth run no rule', MAX_SELF_HOPS + 3, true, false],
  ])('self: %s', async (_name, selfHops, self, runs) => {
    const ruleSet = ruleSetOf({ watcher: { on: { type: 'incident', self } } });
    const evaluation = await evaluateEvent(
      ruleSet,
      makeEventInput({ object: makeIncident(), selfHops }),
      store,
    );
    expect(evaluation.plan.rules).toEqual(runs ? ['watcher'] : []);
    // The plan carries the hop count, so the writes it makes are known to be hop selfHops + 1.
    expect(evaluation.plan.selfHops).toBe(selfHops);
  });

  it('names the reason an engine write does not run a rule', async () => {
    const ruleSet = ruleSetOf({
      plain: { on: { type: 'incident' } },
      follower: { on: { type: 'incident', self: true } },
    });
    const one = await evaluateEvent(
      ruleSet,
      makeEventInput({ object: makeIncident(), selfHops: 1 }),
      store,
    );
    expect(outcomeOf(one, 'plain').reason).toBe(
      'the change was made by the engine itself, and the rule has no on.self',
    );
    const five = await evaluateEvent(
      ruleSet,
      makeEventInput({ object: makeIncident(), selfHops: MAX_SELF_HOPS }),
      store,
    );
    expect(outcomeOf(five, 'follower').reason).toBe(
      'the chain of engine writes reached 5 hops, so it stops here',
    );
  });

  it('never runs a disabled rule, and explains why', async () => {
    const ruleSet = ruleSetOf({
      off: { enabled: false, on: { type: 'incident' } },
      on: { on: { type: 'incident' } },
    });
    const input = makeEventInput({ object: makeIncident() });
    const plain = await evaluateEvent(ruleSet, input, store);
    expect(verdicts(plain)).toEqual([['on', 'matched']]);
    const explained = await evaluateEvent(ruleSet, input, store, { explain: true });
    expect(verdicts(explained)).toEqual([
      ['off', 'skipped'],
      ['on', 'matched'],
    ]);
    expect(outcomeOf(explained, 'off').reason).toBe('the rule is disabled (enabled: false)');
    expect(explained.plan.rules).toEqual(['on']);
  });

  it('does not run scheduled rules on events', async () => {
    const ruleSet = ruleSetOf({
      ticker: { on: { type: 'incident', schedule: '*/15 * * * *' } },
    });
    const evaluation = await evaluateEvent(
      ruleSet,
      makeEventInput({ object: makeIncident() }),
      store,
      { explain: true },
    );
    expect(evaluation.outcomes).toEqual([
      {
        ruleId: 'ticker',
        file: 'rules/ticker.yaml',
        verdict: 'skipped',
        reason: 'a scheduled rule (*/15 * * * *); it runs at its ticks, not on events',
      },
    ]);
    expect(evaluation.plan.calls).toEqual([]);
  });

  describe('the index', () => {
    const OTHER_TYPES = ['problem', 'change', 'article', 'asset'] as const;
    const rules: Record<string, RuleData> = {};
    for (let i = 0; i < 200; i++) {
      rules[`other-${String(i).padStart(3, '0')}`] = { on: { type: OTHER_TYPES[i % 4] } };
    }
    rules['incident-add'] = { on: { type: 'incident', events: ['add'] } };
    rules['incident-any'] = { order: 5, on: { type: ['problem', 'incident'] } };
    rules['incident-update'] = { on: { type: 'incident', events: ['update'] } };
    const ruleSet = ruleSetOf(rules);

    it('looks only at the rules that can match the event', async () => {
      const evaluation = await evaluateEvent(
        ruleSet,
        makeEventInput({ object: makeIncident() }),
        store,
      );
      expect(verdicts(evaluation)).toEqual([
        ['incident-any', 'matched'],
        ['incident-add', 'matched'],
      ]);
    });

    it('with explain, reports every rule of the set with the reason it did not run', async () => {
      const evaluation = await evaluateEvent(
        ruleSet,
        makeEventInput({ object: makeIncident() }),
        store,
        { explain: true },
      );
      expect(evaluation.outcomes).toHaveLength(203);
      expect(
        evaluation.outcomes.filter((o) => o.verdict === 'matched').map((o) => o.ruleId),
      ).toEqual(['incident-any', 'incident-add']);
      expect(outcomeOf(evaluation, 'other-001').reason).toBe('it watches change, not incident');
      expect(outcomeOf(evaluation, 'incident-update').reason).toBe(
        'it runs on update events, not add',
      );
      for (const outcome of evaluation.outcomes) {
        if (outcome.verdict !== 'matched') expect(outcome.reason).toMatch(/^it (watches|runs on) /);
      }
      expect(evaluation.plan.rules).toEqual(['incident-any', 'incident-add']);
    });
  });
});

describe('when', () => {
  it.each<[string, unknown, Record<string, unknown>, boolean]>([
    ['true runs the rule', true, {}, true],
    ['false skips the rule', false, {}, false],
    ['a missing when runs the rule', undefined, {}, true],
    [
      'a field missing from the object reads as null',
      { '==': [{ var: 'object.due_date' }, null] },
      { due_date: undefined },
      true,
    ],
    [
      'a null field reads as null',
      { '==': [{ var: 'object.category' }, null] },
      { category: null },
      true,
    ],
    [
      'a path through a null user reads as null',
      { '!': { var: 'object.assignee.email' } },
      { assignee: null },
      true,
    ],
    ['previous reads as null on an add', { '==': [{ var: 'previous.priority' }, null] }, {}, true],
    [
      'a comparison with a present field',
      { '==': [{ var: 'object.priority' }, 'high'] },
      { priority: 'medium' },
      false,
    ],
  ])('%s', async (_name, when, overrides, runs) => {
    const ruleSet = ruleSetOf({ check: { on: { type: 'incident' }, when } });
    const object = makeIncident(overrides);
    for (const [field, value] of Object.entries(overrides))
      if (value === undefined) delete object[field];
    const evaluation = await evaluateEvent(ruleSet, makeEventInput({ object }), store);
    expect(verdicts(evaluation)).toEqual([['check', runs ? 'matched' : 'no_match']]);
    if (!runs) expect(outcomeOf(evaluation, 'check').reason).toBe('the condition (when) is false');
  });

  it('names the false part of when without explain too, as run records keep it', async () => {
    const ruleSet = ruleSetOf({
      check: {
        on: { type: 'incident' },
        when: { '==': [{ var: 'object.priority' }, 'critical'] },
      },
    });
    const evaluation = await evaluateEvent(
      ruleSet,
      makeEventInput({ object: makeIncident({ priority: 'high' }) }),
      store,
    );
    expect(outcomeOf(evaluation, 'check')).toMatchObject({
      verdict: 'no_match',
      reason: 'the condition (when) is false',
      details: [
        '/when: {"==":[{"var":"object.priority"},"critical"]} is false, because {"var":"object.priority"} is "high"',
      ],
    });
  });

  it('keeps at most five lines of reason without explain, saying how many more', async () => {
    const branches = Array.from({ length: 8 }, (_, i) => ({
      '==': [{ var: 'object.description' }, `text ${i}`],
    }));
    const ruleSet = ruleSetOf({ check: { on: { type: 'incident' }, when: { or: branches } } });
    const input = makeEventInput({ object: makeIncident() });
    const recorded = outcomeOf(await evaluateEvent(ruleSet, input, store), 'check').details;
    expect(recorded).toHaveLength(5);
    expect(recorded?.[4]).toBe('(and 4 more false parts)');
    const explained = await evaluateEvent(ruleSet, input, store, { explain: true });
    expect(outcomeOf(explained, 'check').details).toHaveLength(8);
  });

  it('cuts a long line of reason in run records, not with explain', async () => {
    const description = { var: 'object.description' };
    const ruleSet = ruleSetOf({
      check: {
        on: { type: 'incident' },
        when: { '<': [description, { var: 'object.category' }, description] },
      },
    });
    const input = makeEventInput({ object: makeIncident({ description: 'x'.repeat(300) }) });
    const [line] = outcomeOf(await evaluateEvent(ruleSet, input, store), 'check').details ?? [];
    expect(line).toHaveLength(400);
    expect(line?.endsWith('...')).toBe(true);
    const explained = await evaluateEvent(ruleSet, input, store, { explain: true });
    expect(outcomeOf(explained, 'check').details?.[0]?.length).toBeGreaterThan(400);
  });

  it('explains which part of when was false', async () => {
    const ruleSet = ruleSetOf({
      check: {
        on: { type: 'incident' },
        when: {
          and: [
            { '==': [{ var: 'object.impact' }, 'medium'] },
            { '==': [{ var: 'object.urgency' }, 'high'] },
          ],
        },
      },
    });
    const evaluation = await evaluateEvent(
      ruleSet,
      makeEventInput({ object: makeIncident() }),
      store,
      { explain: true },
    );
    expect(outcomeOf(evaluation, 'check').details).toEqual([
      '/when/and/1: {"==":[{"var":"object.urgency"},"high"]} is false, because {"var":"object.urgency"} is "medium"',
    ]);
  });

  it('explains each event with its own values, though the explanation of a rule is prepared once', async () => {
    const ruleSet = ruleSetOf({
      check: {
        on: { type: 'incident' },
        when: {
          or: [
            { '==': [{ var: 'object.urgency' }, 'high'] },
            { '!': { var: 'object.active' } },
            { and: [{ '==': [{ var: 'object.impact' }, 'high'] }, true] },
          ],
        },
      },
    });
    const explain = async (fields: Parameters<typeof makeIncident>[0]) =>
      outcomeOf(
        await evaluateEvent(ruleSet, makeEventInput({ object: makeIncident(fields) }), store),
        'check',
      ).details;
    expect(await explain({ urgency: 'medium', impact: 'low', active: true })).toEqual([
      '/when/or/0: {"==":[{"var":"object.urgency"},"high"]} is false, because {"var":"object.urgency"} is "medium"',
      '/when/or/1: {"!":{"var":"object.active"}} is false, because {"var":"object.active"} is true',
      '/when/or/2/and/0: {"==":[{"var":"object.impact"},"high"]} is false, because {"var":"object.impact"} is "low"',
    ]);
    expect(await explain({ urgency: 'low', impact: 'medium', active: true })).toEqual([
      '/when/or/0: {"==":[{"var":"object.urgency"},"high"]} is false, because {"var":"object.urgency"} is "low"',
      '/when/or/1: {"!":{"var":"object.active"}} is false, because {"var":"object.active"} is true',
      '/when/or/2/and/0: {"==":[{"var":"object.impact"},"high"]} is false, because {"var":"object.impact"} is "medium"',
    ]);
  });

  it('marks a rule whose condition fails at runtime as failed and still runs the others', async () => {
    const ruleSet = ruleSetOf({
      broken: {
        order: 1,
        on: { type: 'incident' },
        when: { '==': [{ lower: { var: 'object.raw' } }, 'x'] },
      },
      healthy: { order: 2, on: { type: 'incident' } },
    });
    const evaluation = await evaluateEvent(
      ruleSet,
      makeEventInput({ object: makeIncident({ raw: { toString: 'not a function' } }) }),
      store,
    );
    expect(verdicts(evaluation)).toEqual([
      ['broken', 'failed'],
      ['healthy', 'matched'],
    ]);
    expect(outcomeOf(evaluation, 'broken').reason).toBe(
      'expression {"==":[{"lower":{"var":"object.raw"}},"x"]} failed: Cannot convert object to primitive value',
    );
    expect(evaluation.plan.rules).toEqual(['healthy']);
    expect(logMessages(evaluation)).toEqual(['healthy']);
  });

  it('plans none of the calls of a rule whose action fails at runtime, and keeps its once_per key free', async () => {
    const ruleSet = ruleSetOf({
      partly: {
        on: { type: 'incident' },
        once_per: { var: 'object.id' },
        actions: [
          { log: { message: 'first action' } },
          { log: { message: { lower: { var: 'object.raw' } } } },
        ],
      },
    });
    const broken = makeIncident({ raw: { toString: 'not a function' } });
    const failed = await evaluateEvent(ruleSet, makeEventInput({ object: broken }), store);
    expect(verdicts(failed)).toEqual([['partly', 'failed']]);
    expect(failed.plan.calls).toEqual([]);
    expect(failed.plan.rules).toEqual([]);

    const fixed = await evaluateEvent(
      ruleSet,
      makeEventInput({ eventId: 'evt-later', type: 'update', object: makeIncident() }),
      store,
    );
    expect(verdicts(fixed)).toEqual([['partly', 'matched']]);
    expect(logMessages(fixed)).toEqual(['first action', 'null']);
  });
});

describe('order and stop', () => {
  it('runs rules by order, ties broken by id', async () => {
    const ruleSet = ruleSetOf({
      zeta: { order: 10, on: { type: 'incident' } },
      alpha: { order: 10, on: { type: 'incident' } },
      early: { order: 5, on: { type: 'incident' } },
      unordered: { on: { type: 'incident' } },
      late: { order: 200, on: { type: 'incident' } },
      negative: { order: -1, on: { type: 'incident' } },
    });
    const evaluation = await evaluateEvent(
      ruleSet,
      makeEventInput({ object: makeIncident() }),
      store,
    );
    const order = ['negative', 'early', 'alpha', 'zeta', 'unordered', 'late'];
    expect(evaluation.plan.rules).toEqual(order);
    expect(logMessages(evaluation)).toEqual(order);
    expect(evaluation.plan.calls.map((call) => call.index)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('skips every later rule once a rule with stop matched, naming it', async () => {
    const ruleSet = ruleSetOf({
      before: { order: 1, on: { type: 'incident' } },
      stopper: { order: 2, on: { type: 'incident' }, stop: true },
      after: { order: 3, on: { type: 'incident' } },
      'after-too': { order: 4, on: { type: 'incident' }, when: false },
    });
    const evaluation = await evaluateEvent(
      ruleSet,
      makeEventInput({ object: makeIncident() }),
      store,
    );
    expect(verdicts(evaluation)).toEqual([
      ['before', 'matched'],
      ['stopper', 'matched'],
      ['after', 'skipped'],
      ['after-too', 'skipped'],
    ]);
    expect(outcomeOf(evaluation, 'after').reason).toBe(
      'an earlier rule (stopper) matched with stop: true',
    );
    expect(logMessages(evaluation)).toEqual(['before', 'stopper']);
  });

  it('does not stop later rules when the rule with stop does not match', async () => {
    const ruleSet = ruleSetOf({
      stopper: { order: 1, on: { type: 'incident' }, when: false, stop: true },
      after: { order: 2, on: { type: 'incident' } },
    });
    const evaluation = await evaluateEvent(
      ruleSet,
      makeEventInput({ object: makeIncident() }),
      store,
    );
    expect(verdicts(evaluation)).toEqual([
      ['stopper', 'no_match'],
      ['after', 'matched'],
    ]);
  });
});

describe('correlate', () => {
  const correlating = (extra: RuleData = {}) => ({
    on: { type: 'incident', events: ['add', 'update'] },
    correlate: { key: { var: 'object.category' }, within: '1h', at_least: 3 },
    actions: [
      {
        log: {
          message: {
            cat: [
              { var: 'correlation.key' },
              ' ',
              { var: 'correlation.count' },
              ' ',
              { var: 'correlation.ids' },
            ],
          },
        },
      },
    ],
    ...extra,
  });

  /** Adds the incidents in turn (each `[id, minutes after NOW, overrides]`), answering each evaluation. */
  async function addAll(
    ruleSet: ReturnType<typeof ruleSetOf>,
    incidents: [string, number, Record<string, unknown>?][],
    account = ACCOUNT,
  ) {
    const evaluations: Evaluation[] = [];
    for (const [id, minutes, overrides] of incidents) {
      evaluations.push(
        await evaluateEvent(
          ruleSet,
          makeEventInput({
            object: makeIncident({ id, ...overrides }),
            now: minutesLater(minutes),
            account,
          }),
          store,
        ),
      );
    }
    return evaluations;
  }

  it('matches only when the distinct objects with the key reach at_least', async () => {
    const ruleSet = ruleSetOf({ cluster: correlating() });
    const [first, second, third] = await addAll(ruleSet, [
      ['inc-1', 0],
      ['inc-2', 10],
      ['inc-3', 20],
    ]);
    expect(first?.outcomes).toEqual([
      {
        ruleId: 'cluster',
        file: 'rules/cluster.yaml',
        verdict: 'skipped',
        reason: 'correlation "network" counts 1 of the 3 needed',
        correlation: { key: 'network', count: 1, ids: ['inc-1'] },
      },
    ]);
    expect(second?.outcomes[0]?.reason).toBe('correlation "network" counts 2 of the 3 needed');
    expect(second?.plan.calls).toEqual([]);
    expect(third?.outcomes).toEqual([
      {
        ruleId: 'cluster',
        file: 'rules/cluster.yaml',
        verdict: 'matched',
        reason: undefined,
        correlation: { key: 'network', count: 3, ids: ['inc-1', 'inc-2', 'inc-3'] },
      },
    ]);
    expect(third && logMessages(third)).toEqual(['network 3 inc-1,inc-2,inc-3']);
  });

  it('counts the same object once, however often it changes', async () => {
    const ruleSet = ruleSetOf({ cluster: correlating() });
    await addAll(ruleSet, [['inc-1', 0]]);
    const update = await evaluateEvent(
      ruleSet,
      makeEventInput({
        type: 'update',
        object: makeIncident({ id: 'inc-1', priority: 'high' }),
        previous: makeIncident({ id: 'inc-1' }),
        now: minutesLater(5),
      }),
      store,
    );
    expect(outcomeOf(update, 'cluster').correlation).toEqual({
      key: 'network',
      count: 1,
      ids: ['inc-1'],
    });
    const [second] = await addAll(ruleSet, [['inc-2', 10]]);
    expect(second && outcomeOf(second, 'cluster').correlation?.count).toBe(2);
  });

  it('drops objects that fall out of the window', async () => {
    const ruleSet = ruleSetOf({ cluster: correlating() });
    const evaluations = await addAll(ruleSet, [
      ['inc-1', 0],
      ['inc-2', 30],
      ['inc-3', 75],
      ['inc-4', 80],
      ['inc-5', 200],
    ]);
    expect(evaluations.map((e) => outcomeOf(e, 'cluster').correlation)).toEqual([
      { key: 'network', count: 1, ids: ['inc-1'] },
      { key: 'network', count: 2, ids: ['inc-1', 'inc-2'] },
      { key: 'network', count: 2, ids: ['inc-2', 'inc-3'] },
      { key: 'network', count: 3, ids: ['inc-2', 'inc-3', 'inc-4'] },
      { key: 'network', count: 1, ids: ['inc-5'] },
    ]);
    expect(evaluations.map((e) => e.plan.rules)).toEqual([[], [], [], ['cluster'], []]);
  });

  it('keeps matching above at_least (once_per is what makes it once)', async () => {
    const ruleSet = ruleSetOf({ cluster: correlating() });
    const evaluations = await addAll(ruleSet, [
      ['inc-1', 0],
      ['inc-2', 1],
      ['inc-3', 2],
      ['inc-4', 3],
    ]);
    expect(evaluations.map((e) => e.plan.rules)).toEqual([[], [], ['cluster'], ['cluster']]);
  });

  it.each([
    ['an empty key', ''],
    ['a null key', null],
  ])('does not count an object with %s', async (_name, category) => {
    const ruleSet = ruleSetOf({
      cluster: correlating({
        correlate: { key: { var: 'object.category' }, within: '1h', at_least: 1 },
      }),
    });
    const [empty, counted] = await addAll(ruleSet, [
      ['inc-1', 0, { category }],
      ['inc-2', 1],
    ]);
    expect(empty?.outcomes).toEqual([
      {
        ruleId: 'cluster',
        file: 'rules/cluster.yaml',
        verdict: 'skipped',
        reason: 'the correlation key is empty, so the object is not counted',
      },
    ]);
    expect(counted && outcomeOf(counted, 'cluster').correlation).toEqual({
      key: 'network',
      count: 1,
      ids: ['inc-2'],
    });
  });

  it('counts only objects that pass when', async () => {
    const ruleSet = ruleSetOf({
      cluster: correlating({ when: { '!': { var: 'object.problem' } } }),
    });
    const evaluations = await addAll(ruleSet, [
      ['inc-1', 0],
      ['inc-2', 1, { problem: 'prb-1' }],
      ['inc-3', 2],
    ]);
    expect(outcomeOf(evaluations[1] as Evaluation, 'cluster').reason).toBe(
      'the condition (when) is false',
    );
    expect(outcomeOf(evaluations[2] as Evaluation, 'cluster').correlation).toEqual({
      key: 'network',
      count: 2,
      ids: ['inc-1', 'inc-3'],
    });
  });

  it('keeps the counts of each rule apart', async () => {
    const ruleSet = ruleSetOf({
      'on-add': correlating({ on: { type: 'incident', events: ['add'] } }),
      'on-update': correlating({ on: { type: 'incident', events: ['update'] } }),
    });
    await addAll(ruleSet, [['inc-1', 0]]);
    const update = await evaluateEvent(
      ruleSet,
      makeEventInput({
        type: 'update',
        object: makeIncident({ id: 'inc-2', priority: 'high' }),
        previous: makeIncident({ id: 'inc-2' }),
        now: minutesLater(1),
      }),
      store,
    );
    expect(outcomeOf(update, 'on-update').correlation).toEqual({
      key: 'network',
      count: 1,
      ids: ['inc-2'],
    });
  });

  it('keeps the counts of each key and each account apart', async () => {
    const ruleSet = ruleSetOf({ cluster: correlating() });
    await addAll(ruleSet, [['inc-1', 0]]);
    await addAll(ruleSet, [['inc-2', 1]], 2);
    await addAll(ruleSet, [['inc-3', 2, { category: 'database' }]]);
    const [last] = await addAll(ruleSet, [['inc-4', 3]]);
    expect(last && outcomeOf(last, 'cluster').correlation).toEqual({
      key: 'network',
      count: 2,
      ids: ['inc-1', 'inc-4'],
    });
  });

  it('gives the correlation to the values of create fields', async () => {
    const ruleSet = ruleSetOf({
      cluster: correlating({
        correlate: { key: { lower: { var: 'object.category' } }, within: '1h', at_least: 2 },
        actions: [
          {
            create: {
              type: 'problem',
              fields: {
                description: {
                  cat: [
                    'cluster ',
                    { var: 'correlation.key' },
                    ' of ',
                    { var: 'correlation.count' },
                  ],
                },
              },
            },
          },
        ],
      }),
    });
    const [, second] = await addAll(ruleSet, [
      ['inc-1', 0, { category: 'Network' }],
      ['inc-2', 1, { category: 'NETWORK' }],
    ]);
    expect(second?.plan.calls.map((call) => (call.kind === 'api' ? call.body : null))).toEqual([
      { description: 'cluster network of 2' },
    ]);
  });
});

describe('once_per', () => {
  const once = (oncePer: unknown) => ({
    on: { type: 'incident', events: ['add', 'update'] },
    once_per: oncePer,
  });

  async function run(
    ruleSet: ReturnType<typeof ruleSetOf>,
    eventId: string,
    object: Record<string, unknown>,
    minutes: number,
  ) {
    return evaluateEvent(
      ruleSet,
      makeEventInput({
        eventId,
        type: 'update',
        object,
        previous: null,
        now: minutesLater(minutes),
      }),
      store,
    );
  }

  it('runs at most once per key within the window, and again once it has passed', async () => {
    const ruleSet = ruleSetOf({ once: once({ key: { var: 'object.category' }, within: '1h' }) });
    const results = [
      await run(ruleSet, 'evt-1', makeIncident({ id: 'inc-1' }), 0),
      await run(ruleSet, 'evt-2', makeIncident({ id: 'inc-2' }), 10),
      await run(ruleSet, 'evt-3', makeIncident({ id: 'inc-3', category: 'database' }), 20),
      await run(ruleSet, 'evt-4', makeIncident({ id: 'inc-4' }), 59),
      await run(ruleSet, 'evt-5', makeIncident({ id: 'inc-5' }), 60),
      await run(ruleSet, 'evt-6', makeIncident({ id: 'inc-6' }), 100),
    ];
    expect(results.map((e) => e.plan.rules.length)).toEqual([1, 0, 1, 0, 1, 0]);
    expect(outcomeOf(results[1] as Evaluation, 'once').reason).toBe(
      'once_per: already done for "network" within the window',
    );
  });

  it('without within, never runs again for the key', async () => {
    const ruleSet = ruleSetOf({ once: once({ key: { var: 'object.category' } }) });
    await run(ruleSet, 'evt-1', makeIncident({ id: 'inc-1' }), 0);
    const later = await run(ruleSet, 'evt-2', makeIncident({ id: 'inc-2' }), 60 * 24 * 365);
    expect(later.plan.rules).toEqual([]);
    expect(outcomeOf(later, 'once').reason).toBe('once_per: already done for "network"');
  });

  it('does not act on an object whose once_per key is empty, so objects without it do not share one claim', async () => {
    const ruleSet = ruleSetOf({ once: once({ key: { var: 'object.assignee.id' } }) });
    const results = [
      await run(ruleSet, 'evt-1', makeIncident({ id: 'inc-1', assignee: undefined }), 0),
      await run(ruleSet, 'evt-2', makeIncident({ id: 'inc-2', assignee: undefined }), 1),
    ];
    expect(results.map((e) => e.plan.rules.length)).toEqual([0, 0]);
    expect(outcomeOf(results[1] as Evaluation, 'once').reason).toBe(
      'the once_per key is empty, so the rule cannot tell whether it already ran',
    );
  });

  it('takes the key expression itself in the short form', async () => {
    const ruleSet = ruleSetOf({ once: once({ var: 'object.id' }) });
    const results = [
      await run(ruleSet, 'evt-1', makeIncident({ id: 'inc-1' }), 0),
      await run(ruleSet, 'evt-2', makeIncident({ id: 'inc-1', priority: 'high' }), 1),
      await run(ruleSet, 'evt-3', makeIncident({ id: 'inc-2' }), 2),
    ];
    expect(results.map((e) => e.plan.rules.length)).toEqual([1, 0, 1]);
    expect(outcomeOf(results[1] as Evaluation, 'once').reason).toBe(
      'once_per: already done for "inc-1"',
    );
  });

  it('passes again when the same event is evaluated again, so a re-run after a crash can finish', async () => {
    const ruleSet = ruleSetOf({ once: once({ key: { var: 'object.category' }, within: '1h' }) });
    const first = await run(ruleSet, 'evt-1', makeIncident({ id: 'inc-1' }), 0);
    await run(ruleSet, 'evt-2', makeIncident({ id: 'inc-2' }), 1);
    const again = await run(ruleSet, 'evt-1', makeIncident({ id: 'inc-1' }), 5);
    expect(again.plan.rules).toEqual(['once']);
    expect(again.plan.calls).toEqual(first.plan.calls);
  });

  it('does not use up the key when the rule does not match', async () => {
    const ruleSet = ruleSetOf({
      once: { ...once({ var: 'object.id' }), when: { '==': [{ var: 'object.priority' }, 'high'] } },
    });
    const before = await run(ruleSet, 'evt-1', makeIncident({ id: 'inc-1' }), 0);
    const after = await run(ruleSet, 'evt-2', makeIncident({ id: 'inc-1', priority: 'high' }), 1);
    expect([before.plan.rules, after.plan.rules]).toEqual([[], ['once']]);
  });

  it('keeps the keys of each rule apart', async () => {
    const ruleSet = ruleSetOf({
      first: once({ var: 'object.id' }),
      second: once({ var: 'object.id' }),
    });
    const evaluation = await run(ruleSet, 'evt-1', makeIncident({ id: 'inc-1' }), 0);
    expect(evaluation.plan.rules).toEqual(['first', 'second']);
  });

  it('claims per cluster after a correlation: one run per key, not per object', async () => {
    const ruleSet = ruleSetOf({
      cluster: {
        on: { type: 'incident', events: ['add'] },
        correlate: { key: { var: 'object.category' }, within: '1h', at_least: 2 },
        once_per: { key: { var: 'correlation.key' }, within: '1h' },
      },
    });
    const results: Evaluation[] = [];
    for (const [i, id] of ['inc-1', 'inc-2', 'inc-3'].entries()) {
      results.push(
        await evaluateEvent(
          ruleSet,
          makeEventInput({ object: makeIncident({ id }), now: minutesLater(i) }),
          store,
        ),
      );
    }
    expect(results.map((e) => e.plan.rules)).toEqual([[], ['cluster'], []]);
    expect(outcomeOf(results[2] as Evaluation, 'cluster')).toEqual({
      ruleId: 'cluster',
      file: 'rules/cluster.yaml',
      verdict: 'skipped',
      reason: 'once_per: already done for "network" within the window',
      correlation: { key: 'network', count: 3, ids: ['inc-1', 'inc-2', 'inc-3'] },
    });
  });
});

describe('the evaluation input', () => {
  it('gives conditions the event, now and the rule id', async () => {
    const ruleSet = ruleSetOf({
      context: {
        on: { type: 'incident' },
        actions: [
          {
            log: {
              message: {
                cat: [
                  { var: 'event.id' },
                  '|',
                  { var: 'event.type' },
                  '|',
                  { var: 'event.account' },
                  '|',
                  { var: 'event.user_id' },
                  '|',
                  { var: 'now' },
                  '|',
                  { var: 'rule.id' },
                ],
              },
            },
          },
        ],
      },
    });
    const evaluation = await evaluateEvent(
      ruleSet,
      makeEventInput({ eventId: '42', object: makeIncident(), userId: 'u-7', account: 3 }),
      store,
    );
    expect(logMessages(evaluation)).toEqual([`42|add|3|u-7|2026-03-02T10:00:00Z|context`]);
    expect(evaluation.plan).toMatchObject({
      key: 'e:3:42',
      account: 3,
      object: { type: 'incident', id: 'incident-1' },
    });
  });

  it('evaluates exactly the rules given for a schedule tick', async () => {
    const ruleSet = ruleSetOf({
      ticker: { on: { type: 'incident', schedule: '0 * * * *' } },
      other: { on: { type: 'incident', schedule: '0 * * * *' } },
    });
    const ticker = ruleSet.rules.find((rule) => rule.id === 'ticker');
    if (!ticker) throw new Error('no ticker');
    const evaluation = await evaluateEvent(
      ruleSet,
      {
        key: 's:1:ticker:2026-03-02T10:00:00Z:incident-1',
        event: {
          id: '2026-03-02T10:00:00Z',
          type: 'schedule',
          account: 1,
          at: '2026-03-02T10:00:00Z',
          user_id: null,
        },
        objectType: 'incident',
        object: makeIncident(),
        previous: null,
        now: NOW,
        rules: [ticker],
      },
      store,
      { explain: true },
    );
    expect(verdicts(evaluation)).toEqual([['ticker', 'matched']]);
  });
});
