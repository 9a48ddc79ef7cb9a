// End to end, the operator's side of the engine: run records (`GET /runs`), health, metrics,
// running the schedules now, and rule files changing under a running engine. All over real HTTP
// on 127.0.0.1 against an all-in-one engine.
import { unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RuleSetError } from '../../src/runtime/engine.js';
import {
  eventually,
  startTestEngine,
  TEST_API_KEY,
  type TestEngine,
  writeRules,
} from '../helpers/serve.js';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
type Json = any;

async function createIncident(engine: TestEngine, account: number, body: object): Promise<Json> {
  const response = await engine.call('POST', `/v1/accounts/${account}/itsm/incidents`, { body });
  expect(response.status, response.text).toBe(201);
  return response.json;
}

async function runCount(engine: TestEngine, account: number): Promise<number> {
  const response = await engine.call('GET', `/runs?account=${account}&page_size=100`);
  return response.json.count;
}

describe('run records, health and metrics', () => {
  let engine: TestEngine;
  const account = 31;
  const incidents: Json[] = [];

  beforeAll(async () => {
    engine = await startTestEngine();
    // Five incidents no rule acts on, and one the escalation rule does.
    for (let i = 0; i < 5; i++) {
      incidents.push(
        await createIncident(engine, account, { impact: 'low', description: `n${i}` }),
      );
    }
    incidents.push(
      await createIncident(engine, account, { impact: 'high', urgency: 'high', priority: 'low' }),
    );
    // 6 adds, the escalation's own update.
    await eventually(async () => (await runCount(engine, account)) === 7, 'seven runs');
  });

  afterAll(async () => {
    await engine?.close();
  });

  it.each([
    ['no credentials', null, 401],
    ['a wrong key', 'APIKey nope', 401],
    ['the API key', `APIKey ${TEST_API_KEY}`, 200],
    ['the API key as a bearer token', `Bearer ${TEST_API_KEY}`, 200],
  ])('answers GET /runs given %s', async (_, auth, status) => {
    const response = await engine.call('GET', '/runs', { auth });
    expect(response.status).toBe(status);
  });

  it('lists runs newest first, page by page, each exactly once', async () => {
    const seen: number[] = [];
    let next: string | null = `/runs?account=${account}&page_size=2`;
    let pages = 0;
    while (next) {
      const response = await engine.call('GET', next);
      expect(response.status).toBe(200);
      seen.push(...response.json.objects.map((run: Json) => run.id));
      next = response.json.next;
      pages++;
    }
    expect(pages).toBe(4);
    expect(seen).toHaveLength(7);
    expect(seen).toEqual([...seen].sort((a, b) => b - a));
  });

  it('answers "what happened to this incident, and why" by object id', async () => {
    const escalated = incidents[5];
    const response = await engine.call('GET', `/runs?object_id=${escalated.id}`);
    const [echo, add] = response.json.objects;
    expect(add).toMatchObject({
      account,
      object: { type: 'incident', id: escalated.id },
      event: { type: 'add' },
      outcome: 'done',
      rules: ['escalate-major-incidents'],
      summary: 'matched escalate-major-incidents; 2 calls done',
    });
    expect(add.detail.calls.map((call: Json) => [call.kind, call.outcome])).toEqual([
      ['api', 'done'],
      ['log', 'done'],
    ]);
    expect(add.detail.calls[1].detail).toBe(`major incident ${escalated.id} raised to critical`);
    expect(echo).toMatchObject({ self_hops: 1, event: { type: 'update' } });
  });

  it.each([
    // Looked at in every run (the six adds and the escalation's own update, which an on.self
    // rule follows), whether or not it matched.
    ['rule_id=escalate-major-incidents', 7],
    ['rule_id=escalate-major-incidents&matched=true', 1],
    ['rule_id=escalate-major-incidents&matched=false', 6],
    // The five incidents, and the escalation's own update (low to high: nothing pages on it).
    ['outcome=no_match', 6],
    ['outcome=done', 1],
    ['outcome=failed', 0],
  ])('filters runs by %s', async (filter, count) => {
    const response = await engine.call('GET', `/runs?account=${account}&${filter}`);
    expect(response.status).toBe(200);
    expect(response.json.count).toBe(count);
  });

  it('reads one run by id and by key', async () => {
    const list = await engine.call('GET', `/runs?account=${account}&page_size=1`);
    const [newest] = list.json.objects;
    expect((await engine.call('GET', `/runs/${newest.id}`)).json).toEqual(newest);
    expect((await engine.call('GET', `/runs/${encodeURIComponent(newest.key)}`)).json).toEqual(
      newest,
    );
    const missing = await engine.call('GET', '/runs/999999');
    expect(missing.status).toBe(404);
    expect(missing.json.error_code).toBe('not_found');
  });

  it.each([
    [
      'outcome=maybe',
      'outcome must be one of done, failed, no_match, skipped, shadow, parked, got "maybe"',
    ],
    ['page_size=0', 'page_size must be a whole number from 1 to 100, got "0"'],
    ['before=x', 'before must be a whole number from 1 to 9007199254740991, got "x"'],
    [
      'objectid=1',
      'unknown query parameter "objectid"; use account, object_id, object_number, rule_id, matched, outcome, rule_version, before, page_size',
    ],
    ['rule_id=x&matched=yes', 'matched must be true or false, got "yes"'],
    [
      'matched=false',
      'matched filters the runs of one rule: give rule_id too (for runs where no rule matched, use outcome=no_match)',
    ],
  ])('refuses GET /runs?%s with a 400 that says why', async (query, message) => {
    const response = await engine.call('GET', `/runs?${query}`);
    expect(response.status).toBe(400);
    expect(response.json).toEqual({
      error_code: 'invalid_parameters',
      message,
      status_code: 400,
    });
  });

  it('answers /healthz without credentials', async () => {
    const response = await engine.call('GET', '/healthz', { auth: null });
    expect(response.status).toBe(200);
    expect(response.json).toMatchObject({
      ok: true,
      service: 'itsm-rules',
      app_id: 'test-app',
      rules: 5,
      scheduled: 1,
      api: 'embedded',
    });
  });

  it('serves Prometheus metrics to the API key only', async () => {
    expect((await engine.call('GET', '/metrics', { auth: null })).status).toBe(401);
    const response = await engine.call('GET', '/metrics');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(response.text).toContain('itsm_rules_events_processed_total{outcome="no_match"} 6');
    expect(response.text).toContain(
      'itsm_rules_rules_matched_total{rule="escalate-major-incidents"} 1',
    );
    expect(response.text).toContain(`itsm_rules_drain_lag_seconds{account="${account}"} 0`);
    expect(response.text).toMatch(/^itsm_rules_webhooks_accepted_total [1-9]\d*$/m);
  });

  it.each([
    [
      { rules: ['nope'] },
      400,
      'no rule "nope"; the scheduled rules are overdue-incident-escalation',
    ],
    [
      { rules: ['escalate-major-incidents'] },
      400,
      'escalate-major-incidents is not a scheduled rule (it has no on.schedule); it runs on events',
    ],
    [{ at: 'soon' }, 400, 'at must be an ISO 8601 time such as 2026-11-28T10:15:00Z, got "soon"'],
    [
      { accounts: [0] },
      400,
      'accounts[0] must be a positive whole number from 1 to 9007199254740991, written in digits with no sign, spaces or leading zero, got 0',
    ],
    [{ every: 1 }, 400, 'unknown field "every"; use rules, at, accounts'],
  ])('refuses POST /admin/schedules/run with %j', async (body, status, message) => {
    const response = await engine.call('POST', '/admin/schedules/run', { body });
    expect(response.status).toBe(status);
    expect(response.json.message).toBe(message);
  });

  it('refuses the admin endpoints without the API key, and other methods', async () => {
    const anonymous = await engine.call('POST', '/admin/schedules/run', { auth: null });
    expect(anonymous.status).toBe(401);
    const get = await engine.call('GET', '/admin/schedules/run');
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    const unknown = await engine.call('GET', '/nowhere', { auth: null });
    expect(unknown.status).toBe(404);
    expect(unknown.json.error_code).toBe('not_found');
  });
});

const escalateWhen = (impact: string) => `
on:
  type: incident
  events: [add]
when: {"==": [{var: object.impact}, ${impact}]}
then:
  - update: {priority: critical}
`;

describe('rule files changing under a running engine', () => {
  let engine: TestEngine | undefined;
  let rules: { dir: string; remove(): void } | undefined;

  afterEach(async () => {
    await engine?.close();
    rules?.remove();
    engine = undefined;
    rules = undefined;
  });

  async function priorityOf(account: number, impact: string): Promise<string> {
    const current = engine as TestEngine;
    const incident = await createIncident(current, account, { impact, priority: 'low' });
    return eventually(async () => {
      const runs = await current.call('GET', `/runs?object_id=${incident.id}`);
      if (runs.json.count === 0) return undefined;
      const response = await current.call(
        'GET',
        `/v1/accounts/${account}/itsm/incidents/${incident.id}`,
      );
      return response.json.priority as string;
    }, 'the incident to be processed');
  }

  it('reloads a changed rule, and keeps the last good set when a change is broken', async () => {
    rules = writeRules({ 'incident/raise.yaml': escalateWhen('high') });
    engine = await startTestEngine({ rulesDir: rules.dir, reloadIntervalMs: 50 });
    expect(await priorityOf(41, 'high')).toBe('critical');

    const file = join(rules.dir, 'incident/raise.yaml');
    writeFileSync(file, escalateWhen('urgent'));
    await eventually(
      () => (engine as TestEngine).logs.find((line) => line.startsWith('rules: NOT reloaded')),
      'the refusal to be logged',
    );
    const refusal = engine.logs.find((line) => line.startsWith('rules: NOT reloaded')) as string;
    expect(refusal).toContain('keeping the last good set (1 rules)');
    expect(refusal).toContain('raise.yaml');
    expect(refusal).toContain('urgent');
    expect(await priorityOf(42, 'high')).toBe('critical');

    const reload = await engine.call('POST', '/admin/rules/reload');
    expect(reload.status).toBe(422);
    expect(reload.json.ok).toBe(false);
    expect(reload.json.problems.join('\n')).toContain('urgent');

    writeFileSync(file, escalateWhen('medium'));
    await eventually(
      () => (engine as TestEngine).logs.includes(`rules: reloaded 1 rules from ${rules?.dir}`),
      'the reload to be logged',
    );
    expect(await priorityOf(43, 'high')).toBe('low');
    expect(await priorityOf(44, 'medium')).toBe('critical');
  });

  it('keeps the last good set when the folder is emptied, and takes rules added back', async () => {
    rules = writeRules({ 'incident/raise.yaml': escalateWhen('high') });
    engine = await startTestEngine({ rulesDir: rules.dir, reloadIntervalMs: 50 });
    expect(await priorityOf(45, 'high')).toBe('critical');

    const file = join(rules.dir, 'incident/raise.yaml');
    unlinkSync(file);
    await eventually(
      () => (engine as TestEngine).logs.find((line) => line.startsWith('rules: NOT reloaded')),
      'the refusal to be logged',
    );
    const refusal = engine.logs.find((line) => line.startsWith('rules: NOT reloaded')) as string;
    expect(refusal).toContain('keeping the last good set (1 rules)');
    expect(refusal).toContain(`no rule files (.yaml, .yml, .json) in ${rules.dir}`);
    // The rule still acts, and the refusal is what the reload endpoint and /healthz say.
    expect(await priorityOf(46, 'high')).toBe('critical');
    const reload = await engine.call('POST', '/admin/rules/reload');
    expect(reload.status).toBe(422);
    expect(reload.json).toMatchObject({ ok: false, rules: 1 });
    expect(reload.json.problems.join('\n')).toContain('restart the engine on the empty folder');
    const health = await engine.call('GET', '/healthz');
    expect(health.json.rules).toBe(1);
    expect(health.json.problems).toEqual([
      expect.objectContaining({ code: 'rules_not_reloaded', problems_count: 1 }),
    ]);

    writeFileSync(file, escalateWhen('medium'));
    await eventually(
      () => (engine as TestEngine).logs.includes(`rules: reloaded 1 rules from ${rules?.dir}`),
      'the reload to be logged',
    );
    expect(await priorityOf(47, 'medium')).toBe('critical');
  });

  it('refuses to start with a broken rule set, naming every problem', async () => {
    const start = startTestEngine({ rulesDir: 'test/fixtures/broken-rules' });
    await expect(start).rejects.toBeInstanceOf(RuleSetError);
    const error = (await start.catch((e: unknown) => e)) as RuleSetError;
    expect(error.problems.length).toBeGreaterThan(30);
    expect(error.message).toContain('itsm-rules check --rules test/fixtures/broken-rules');
  });
});

describe('a scheduled tick the API fails part of', () => {
  let engine: TestEngine | undefined;

  afterEach(async () => {
    await engine?.close();
    engine = undefined;
  });

  it('is run again after a pause, and acts once on what the failure left', async () => {
    engine = await startTestEngine({ faults: {}, scheduleRetryMs: 100, scheduleAttempts: 3 });
    const account = 51;
    const overdue = await createIncident(engine, account, {
      priority: 'low',
      due_date: '2026-01-01T00:00:00Z',
    });
    await eventually(async () => (await runCount(engine as TestEngine, account)) === 1, 'the add');

    // The client tries each call twice: the first run of the tick cannot list the incidents.
    engine.itsm?.faults?.inject({
      status: 503,
      method: 'GET',
      path: /\/itsm\/incidents$/,
      times: 2,
    });
    const summary = await engine.runDueSchedules(new Date('2026-11-28T10:15:00Z'));

    expect(summary).toMatchObject({
      tick: '2026-11-28T10:15:00Z',
      objects: 1,
      errors: [],
      outcomes: { done: 1 },
    });
    expect(engine.logs).toContain(
      'schedule: running 2026-11-28T10:15:00Z again in 0.1 s (attempt 2 of 3)',
    );
    const after = await engine.call('GET', `/v1/accounts/${account}/itsm/incidents/${overdue.id}`);
    expect(after.json.priority).toBe('medium');
    expect(after.json.escalation).toBe(1);
  });

  it('is left to the next tick after the last attempt, saying what did not finish', async () => {
    engine = await startTestEngine({ faults: {}, scheduleRetryMs: 50, scheduleAttempts: 2 });
    const account = 52;
    await createIncident(engine, account, { priority: 'low', due_date: '2026-01-01T00:00:00Z' });
    await eventually(async () => (await runCount(engine as TestEngine, account)) === 1, 'the add');

    engine.itsm?.faults?.inject({
      status: 503,
      method: 'GET',
      path: /\/itsm\/incidents$/,
      times: 4,
    });
    const summary = await engine.runDueSchedules(new Date('2026-11-28T10:30:00Z'));

    expect(summary?.objects).toBe(0);
    expect(summary?.errors).toHaveLength(1);
    expect(summary?.errors[0]).toMatch(/^overdue-incident-escalation in account 52: /);
    expect(
      engine.logs.filter((line) => line.startsWith('schedule: 2026-11-28T10:30:00Z')),
    ).toHaveLength(2);
  });
});

describe('why a rule did not act, and scheduled rules at a chosen tick', () => {
  let engine: TestEngine;
  let rules: { dir: string; remove(): void };
  const account = 61;

  beforeAll(async () => {
    rules = writeRules({
      'incident/page-critical.yaml': `on: {type: incident, events: [add]}
when: {"==": [{var: object.priority}, critical]}
then:
  - log: {message: {cat: ["critical incident ", {var: object.id}]}}
`,
      'incident/overdue-log.yaml': `on: {type: incident, schedule: "0 0 1 1 *"}
when: {">": [{hours_since: {var: object.due_date}}, 1]}
then:
  - log: {message: {cat: ["overdue ", {var: object.id}]}}
`,
    });
    engine = await startTestEngine({ rulesDir: rules.dir });
  });

  afterAll(async () => {
    await engine?.close();
    rules?.remove();
  });

  it('lists a rule under ?rule_id= where it did not match, with the clause that was false', async () => {
    const high = await createIncident(engine, account, { priority: 'high' });
    const critical = await createIncident(engine, account, { priority: 'critical' });
    await eventually(async () => (await runCount(engine, account)) === 2, 'two runs');

    const all = await engine.call('GET', '/runs?rule_id=page-critical');
    expect(all.status).toBe(200);
    expect(all.json.objects.map((run: Json) => [run.object.id, run.outcome])).toEqual([
      [critical.id, 'done'],
      [high.id, 'no_match'],
    ]);
    const [, missed] = all.json.objects;
    expect(missed.verdicts).toEqual({ 'page-critical': 'no_match' });
    expect(missed.rules).toEqual([]);
    expect(missed.detail.rules).toEqual([
      {
        ruleId: 'page-critical',
        file: expect.stringMatching(/page-critical\.yaml$/),
        verdict: 'no_match',
        reason: 'the condition (when) is false',
        details: [
          '/when: {"==":[{"var":"object.priority"},"critical"]} is false, because {"var":"object.priority"} is "high"',
        ],
      },
    ]);

    const missedOnly = await engine.call('GET', '/runs?rule_id=page-critical&matched=false');
    expect(missedOnly.json.objects.map((run: Json) => run.object.id)).toEqual([high.id]);
    const matchedOnly = await engine.call('GET', '/runs?rule_id=page-critical&matched=true');
    expect(matchedOnly.json.objects.map((run: Json) => run.object.id)).toEqual([critical.id]);
  });

  it('evaluates a scheduled rule with the tick as now: hours_since counts from at', async () => {
    const scheduleAccount = 62;
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000).toISOString();
    const incident = await createIncident(engine, scheduleAccount, { due_date: twoHoursAgo });
    await eventually(async () => (await runCount(engine, scheduleAccount)) === 1, 'the add');

    // Three hours ago the due date was an hour ahead: hours_since is negative, nothing is due.
    const earlier = new Date(Date.now() - 3 * 3_600_000).toISOString();
    const past = await engine.call('POST', '/admin/schedules/run', {
      body: { rules: ['overdue-log'], at: earlier, accounts: [scheduleAccount] },
    });
    expect(past.status, past.text).toBe(200);
    expect(past.json).toMatchObject({ objects: 1, outcomes: { done: 0, no_match: 1 } });
    // An account listed twice is read once: one account, one object, nothing read again and
    // counted as a duplicate (at another tick: a tick already run is not run again).
    const aMinuteEarlier = new Date(Date.parse(earlier) - 60_000).toISOString();
    const twice = await engine.call('POST', '/admin/schedules/run', {
      body: {
        rules: ['overdue-log'],
        at: aMinuteEarlier,
        accounts: [scheduleAccount, scheduleAccount],
      },
    });
    expect(twice.status, twice.text).toBe(200);
    expect(twice.json).toMatchObject({
      accounts: [scheduleAccount],
      objects: 1,
      duplicates: 0,
      outcomes: { done: 0, no_match: 1 },
    });
    const [pastRun] = (
      await engine.call('GET', `/runs?rule_id=overdue-log&object_id=${incident.id}`)
    ).json.objects;
    expect(pastRun.outcome).toBe('no_match');
    expect(pastRun.detail.rules[0].details[0]).toMatch(/ is -1(\.\d+)?$/);

    // With the real clock, it is two hours overdue: the rule acts.
    const now = await engine.call('POST', '/admin/schedules/run', {
      body: { rules: ['overdue-log'], accounts: [scheduleAccount] },
    });
    expect(now.status, now.text).toBe(200);
    expect(now.json).toMatchObject({ objects: 1, outcomes: { done: 1, no_match: 0 } });
    const matched = await engine.call(
      'GET',
      `/runs?rule_id=overdue-log&object_id=${incident.id}&matched=true`,
    );
    expect(matched.json.objects.map((run: Json) => run.detail.calls[0].detail)).toEqual([
      `overdue ${incident.id}`,
    ]);
  });

  it('refuses a future at with a 400 that says why and points to a dry run', async () => {
    const later = new Date(Date.now() + 2 * 60_000);
    const response = await engine.call('POST', '/admin/schedules/run', {
      body: { rules: ['overdue-log'], at: later.toISOString(), accounts: [account] },
    });
    expect(response.status).toBe(400);
    expect(response.json.error_code).toBe('invalid_parameters');
    expect(response.json.message).toContain('is in the future');
    expect(response.json.message).toContain('once-only work');
    expect(response.json.message).toContain('itsm-rules test --event FILE --now');
    expect(await runCount(engine, account)).toBe(2);
  });
});
