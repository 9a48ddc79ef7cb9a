// End to end, all-in-one: the engine and the embedded ITSM API in one server on 127.0.0.1, the
// receiver registered as the API's webhook, the example rules (with the pager pointed at a test
// receiver). Each test works in its own account, so the tests of a file share one engine.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReceiver, type TestReceiver } from '../helpers/receiver.js';
import {
  copyExampleRules,
  eventually,
  startTestEngine,
  type TestEngine,
  writeRules,
} from '../helpers/serve.js';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
type Json = any;

async function create(engine: TestEngine, account: number, type: string, body: object) {
  const response = await engine.call('POST', `/v1/accounts/${account}/itsm/${type}`, { body });
  expect(response.status, response.text).toBe(201);
  return response.json as Json;
}

async function get(engine: TestEngine, account: number, type: string, id: string) {
  const response = await engine.call('GET', `/v1/accounts/${account}/itsm/${type}/${id}`);
  expect(response.status, response.text).toBe(200);
  return response.json as Json;
}

async function list(engine: TestEngine, account: number, type: string): Promise<Json[]> {
  const response = await engine.call('GET', `/v1/accounts/${account}/itsm/${type}?page_size=1000`);
  expect(response.status, response.text).toBe(200);
  return response.json.objects;
}

async function events(engine: TestEngine, account: number): Promise<Json[]> {
  const response = await engine.call('GET', `/v1/accounts/${account}/events?page_size=1000`);
  expect(response.status, response.text).toBe(200);
  return response.json.objects;
}

async function runs(engine: TestEngine, query: string): Promise<Json[]> {
  const response = await engine.call('GET', `/runs?page_size=100&${query}`);
  expect(response.status, response.text).toBe(200);
  return response.json.objects;
}

/**
 * Waits until every event of the account has its run record. The runs are read before the
 * events: a run is written after its plan's calls, so every event its calls caused is then
 * already in the log, and equal counts mean nothing is left to do.
 */
async function settle(engine: TestEngine, account: number): Promise<void> {
  await eventually(async () => {
    await engine.idle();
    const done = (await runs(engine, `account=${account}`)).filter(
      (run: Json) => run.event.type !== 'schedule',
    );
    const all = await events(engine, account);
    return all.length > 0 && done.length === all.length;
  }, `every event of account ${account} to have a run`);
}

describe('all-in-one with the example rules', () => {
  let engine: TestEngine;
  let pager: TestReceiver;
  let rules: { dir: string; remove(): void };

  beforeAll(async () => {
    pager = await startReceiver({ answer: () => ({ status: 202, body: '{"ok":true}' }) });
    rules = copyExampleRules(`${pager.url}/v1/alerts`);
    engine = await startTestEngine({
      rulesDir: rules.dir,
      httpAllow: [new URL(pager.url).host],
    });
  });

  afterAll(async () => {
    await engine?.close();
    await pager?.close();
    rules?.remove();
  });

  it('escalates a major incident to critical once and pages on-call once', async () => {
    const account = 11;
    const incident = await create(engine, account, 'incidents', {
      description: 'VPN down for the whole office',
      impact: 'high',
      urgency: 'high',
      priority: 'medium',
    });
    await settle(engine, account);

    const after = await get(engine, account, 'incidents', incident.id);
    expect(after.priority).toBe('critical');
    expect(after.escalation).toBe(1);

    const pages = pager.requests.filter((r) => r.body.includes(incident.id));
    expect(pages).toHaveLength(1);
    const page = JSON.parse(pages[0]?.body.toString() ?? '{}');
    expect(page).toMatchObject({
      summary: `Critical incident ${incident.id}: VPN down for the whole office`,
      severity: 'critical',
      incident: incident.href,
    });
    expect(pages[0]?.headers['idempotency-key']).toMatch(/page-on-call-for-critical/);
  });

  it("does not let the engine's own escalation trigger the escalation rule again", async () => {
    const account = 12;
    const incident = await create(engine, account, 'incidents', {
      impact: 'high',
      urgency: 'high',
      priority: 'low',
    });
    await settle(engine, account);

    const log = await events(engine, account);
    // The escalation, then the work note of work-note-on-escalation (on.self) about it.
    expect(log.map((e: Json) => [e.type, e.user_id])).toEqual([
      ['add', null],
      ['update', 'itsm-rules'],
      ['update', 'itsm-rules'],
    ]);
    const [note, echo, first] = await runs(engine, `object_id=${incident.id}`);
    expect(note.self_hops).toBe(2);
    expect(note.rules).toEqual([]);
    expect(first.self_hops).toBe(0);
    expect(first.rules).toEqual(['escalate-major-incidents']);
    expect(echo.self_hops).toBe(1);
    expect(echo.event.type).toBe('update');
    expect(echo.detail.rules).toContainEqual(
      expect.objectContaining({
        ruleId: 'escalate-major-incidents',
        verdict: 'skipped',
        reason: 'the change was made by the engine itself, and the rule has no on.self',
      }),
    );
    expect((await get(engine, account, 'incidents', incident.id)).escalation).toBe(1);
  });

  it('opens one linked problem for three incidents of a category within the hour', async () => {
    const account = 13;
    const incidents = [];
    for (let i = 0; i < 4; i++) {
      incidents.push(
        await create(engine, account, 'incidents', {
          category: 'Network',
          impact: 'low',
          description: `switch ${i}`,
        }),
      );
    }
    await settle(engine, account);

    const problems = await list(engine, account, 'problems');
    expect(problems).toHaveLength(1);
    const problem = problems[0];
    expect(problem.description).toBe('Recurring incidents in category network: 3 in the last hour');
    expect(problem.category).toBe('Network');
    const linked = await Promise.all(
      incidents.map(async (i) => (await get(engine, account, 'incidents', i.id)).problem ?? null),
    );
    expect(linked).toEqual([problem.id, problem.id, problem.id, null]);
    const [fourth] = await runs(engine, `object_id=${incidents[3].id}`);
    expect(fourth.outcome).toBe('no_match');
    expect(fourth.detail.rules).toContainEqual(
      expect.objectContaining({
        ruleId: 'recurring-incidents-open-problem',
        reason: 'once_per: already done for "network" within the window',
      }),
    );
  });

  it('opens one linked change when a problem is put in fix, however often', async () => {
    const account = 14;
    const problem = await create(engine, account, 'problems', {
      description: 'Disk firmware bug',
      impact: 'medium',
      urgency: 'medium',
      status: 101,
    });
    const patch = (status: number) =>
      engine.call('PATCH', `/v1/accounts/${account}/itsm/problems/${problem.id}`, {
        body: { status },
      });
    expect((await patch(104)).status).toBe(200);
    await settle(engine, account);
    expect((await patch(103)).status).toBe(200);
    expect((await patch(104)).status).toBe(200);
    await settle(engine, account);

    const changes = await list(engine, account, 'changes');
    expect(changes).toHaveLength(1);
    expect(changes[0].problem).toBe(problem.id);
    expect(changes[0].description).toBe(`Fix for problem ${problem.id}: Disk firmware bug`);
    expect((await get(engine, account, 'problems', problem.id)).change).toBe(changes[0].id);
  });

  it('escalates overdue incidents when an operator runs the schedules, once per tick', async () => {
    const account = 15;
    const overdue = await create(engine, account, 'incidents', {
      priority: 'low',
      due_date: '2026-01-01T00:00:00Z',
    });
    const onTime = await create(engine, account, 'incidents', {
      priority: 'low',
      due_date: '2999-01-01T00:00:00Z',
    });
    await settle(engine, account);

    const body = { accounts: [account], at: '2026-11-28T10:15:00Z' };
    const first = await engine.call('POST', '/admin/schedules/run', { body });
    expect(first.status, first.text).toBe(200);
    expect(first.json).toMatchObject({
      tick: '2026-11-28T10:15:00Z',
      rules: ['overdue-incident-escalation'],
      accounts: [account],
      objects: 2,
      duplicates: 0,
      outcomes: { done: 1, no_match: 1, failed: 0, skipped: 0 },
      errors: [],
    });
    const again = await engine.call('POST', '/admin/schedules/run', { body });
    expect(again.json).toMatchObject({ objects: 0, duplicates: 2 });
    await settle(engine, account);

    expect((await get(engine, account, 'incidents', overdue.id)).priority).toBe('medium');
    expect((await get(engine, account, 'incidents', onTime.id)).priority).toBe('low');
    const scheduled = await runs(
      engine,
      `object_id=${overdue.id}&rule_id=overdue-incident-escalation`,
    );
    expect(scheduled.map((r: Json) => [r.key, r.outcome])).toEqual([
      [`s:${account}:overdue-incident-escalation:2026-11-28T10:15:00Z:${overdue.id}`, 'done'],
    ]);
  });

  it('changes nothing more when a notification is replayed five times and in the legacy form', async () => {
    const account = 16;
    const incident = await create(engine, account, 'incidents', {
      impact: 'high',
      urgency: 'high',
      priority: 'medium',
    });
    await settle(engine, account);
    const before = {
      incident: await get(engine, account, 'incidents', incident.id),
      events: (await events(engine, account)).length,
      runs: (await runs(engine, `account=${account}`)).length,
      pages: pager.requests.length,
    };

    for (let i = 0; i < 5; i++) {
      const replay = await engine.notify(JSON.stringify({ account, subscription: 1 }));
      expect(replay.status).toBe(200);
    }
    const legacy = await engine.notify(`account=${account}`, {
      contentType: 'application/x-www-form-urlencoded',
    });
    expect(legacy.status).toBe(200);
    expect(legacy.json).toEqual({ accepted: true, account });
    await engine.idle();

    expect(await get(engine, account, 'incidents', incident.id)).toEqual(before.incident);
    expect((await events(engine, account)).length).toBe(before.events);
    expect((await runs(engine, `account=${account}`)).length).toBe(before.runs);
    expect(pager.requests.length).toBe(before.pages);
  });

  it.each([
    ['no signature', null, JSON.stringify({ account: 17 })],
    ['a signature made with another key', 'not-the-key', JSON.stringify({ account: 17 })],
  ])('refuses a notification with %s and changes nothing', async (_, key, body) => {
    const rejected = engine.metrics.webhooksRejected.value({ reason: 'signature' });
    const response = await engine.notify(body, { key });
    expect(response.status).toBe(401);
    expect(response.json.error_code).toBe('unauthorized');
    await engine.idle();
    expect(await engine.pipelineStore.getAccount(17)).toBeNull();
    expect(engine.metrics.webhooksRejected.value({ reason: 'signature' })).toBe(rejected + 1);
  });

  it('refuses a notification whose body was changed after signing', async () => {
    const signedFor = JSON.stringify({ account: 18 });
    const { signBody } = await import('../../src/itsm/signature.js');
    const signature = await signBody(signedFor, 'test-api-key');
    const response = await engine.call('POST', '/webhooks/kloudless', {
      body: JSON.stringify({ account: 18, subscription: 1 }),
      headers: { 'X-Kloudless-Signature': signature },
      auth: null,
    });
    expect(response.status).toBe(401);
    expect(await engine.pipelineStore.getAccount(18)).toBeNull();
  });

  it('answers the handshake of a signed request without an account with the application id', async () => {
    const response = await engine.notify('');
    expect(response.status).toBe(200);
    expect(response.text).toBe('test-app');
  });
});

describe('chains of on.self rules', () => {
  let engine: TestEngine;
  let rules: { dir: string; remove(): void };

  // incident -> problem -> change -> article -> asset -> object -> (incident): each rule follows
  // the engine's own write of the one before. No two rules trigger each other (the checks refuse
  // loops), so only the 5-hop cap can stop the chain before the last rule.
  const step = (type: string, create: string, self = true) => `
on:
  type: ${type}
  events: [add]
  self: ${self}
then:
  - ${create}
`;
  beforeAll(async () => {
    rules = writeRules({
      'a-incident.yaml': step(
        'incident',
        'create: {type: problem, fields: {description: hop}}',
        false,
      ),
      'b-problem.yaml': step('problem', 'create: {type: change, fields: {description: hop}}'),
      'c-change.yaml': step('change', 'create: {type: article, fields: {description: hop}}'),
      'd-article.yaml': step('article', 'create: {type: asset, fields: {name: hop}}'),
      'e-asset.yaml': step('asset', 'object: {raw_type: u_hop, fields: {name: hop}}'),
      'f-object.yaml': step('object', 'create: {type: incident, fields: {description: hop 6}}'),
    });
    engine = await startTestEngine({ rulesDir: rules.dir });
  });

  afterAll(async () => {
    await engine?.close();
    rules?.remove();
  });

  it('follows the engine’s own writes for 5 hops and stops there', async () => {
    const account = 21;
    await create(engine, account, 'incidents', { description: 'start' });
    await settle(engine, account);

    for (const type of ['problems', 'changes', 'articles', 'assets']) {
      expect(await list(engine, account, type), type).toHaveLength(1);
    }
    const incidents = await list(engine, account, 'incidents');
    expect(incidents.map((i: Json) => i.description)).toEqual(['start']);
    const all = await runs(engine, `account=${account}`);
    expect(all.map((r: Json) => [r.object.type, r.self_hops, r.outcome]).reverse()).toEqual([
      ['incident', 0, 'done'],
      ['problem', 1, 'done'],
      ['change', 2, 'done'],
      ['article', 3, 'done'],
      ['asset', 4, 'done'],
      ['object', 5, 'skipped'],
    ]);
    expect(all[0].summary).toBe(
      "the engine's own write at hop 5: chains of on.self rules stop after 5 hops",
    );
  });
});
