// The connector (`itsm-server --servicenow URL`) over real HTTP, with the embedded Table API face
// as the ServiceNow instance in a separate process: /v1 objects live in the instance (raw is its
// record), writes come back as events with their X-Kloudless-As-User, changes made on the
// instance become add / update / delete events through the change feed (no repeats), the push
// endpoint reads a record at once, and one instance is one account. The connector runs in the
// test process with polling off, so each test drives the feed with `pollOnce` and waits for
// nothing.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type CallResult, callHttp, startTestItsm, type TestItsm } from '../helpers/itsm.js';
import { type CliProcess, spawnItsmServer } from '../helpers/serve.js';

const FACE_KEY = 'face-key';
const PUSH_SECRET = 'push-secret-0123456789';
const RAW = { 'X-Kloudless-Raw-Data': 'true' };

let face: CliProcess & { url: string };
let account = 0;
let connector: TestItsm;

/**
 * The instance's Table API as ann, a person working on the instance itself. The face binds a
 * user name to one account, so the test's account has its own ann (`ann<account>`).
 */
function onInstance(method: string, path: string, body?: unknown) {
  return callHttp(face.url, method, `/api/now/table/${path}`, {
    auth: `Basic ${btoa(`ann${account}:pw`)}`,
    ...(body !== undefined && { body }),
  });
}

async function events(after = 0) {
  const answer = await connector.call('GET', `/v1/accounts/${account}/events?cursor=${after}`, {
    headers: RAW,
  });
  expect(answer.status).toBe(200);
  return answer.json.objects as CallResult['json'][];
}

beforeAll(async () => {
  // Every test gets its own account of the instance (1..24), so none sees another's records.
  face = await spawnItsmServer([
    '--port=0',
    '--db=:memory:',
    `--api-key=${FACE_KEY}`,
    ...Array.from({ length: 24 }, (_, i) => `--sn-user=integration${i + 1}:s3cret:${i + 1}`),
    ...Array.from({ length: 24 }, (_, i) => `--sn-user=ann${i + 1}:pw:${i + 1}`),
  ]);
});

afterAll(async () => {
  await face?.stop();
});

beforeEach(async () => {
  account += 1;
  connector = await startTestItsm({
    servicenow: {
      instanceUrl: face.url,
      auth: { kind: 'basic', username: `integration${account}`, password: 's3cret' },
      account,
      pollIntervalMs: 0,
      pushSecret: PUSH_SECRET,
      retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50 },
    },
  });
});

afterEach(async () => {
  await connector?.close();
});

describe('the /v1 API over a ServiceNow instance', () => {
  it('creates an incident in the instance and shows its record as raw, exactly', async () => {
    const created = await connector.call('POST', `/v1/accounts/${account}/itsm/incidents`, {
      body: { description: 'Printer on fire', impact: 'high', urgency: 'medium' },
      headers: RAW,
    });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      type: 'incident',
      description: 'Printer on fire',
      impact: 'high',
      urgency: 'medium',
      priority: 'high',
    });
    const sysId = created.json.raw.sys_id as string;
    expect(created.json.id).toBe(`incident.${sysId}`);
    expect(created.json.raw.number).toMatch(/^INC\d{7}$/);

    const onSn = await callHttp(
      face.url,
      'GET',
      `/api/now/table/incident/${sysId}?sysparm_exclude_reference_link=true`,
      { auth: `Basic ${btoa(`integration${account}:s3cret`)}` },
    );
    expect(onSn.status).toBe(200);
    const got = await connector.call(
      'GET',
      `/v1/accounts/${account}/itsm/incidents/${created.json.id}`,
      { headers: RAW },
    );
    expect(got.json.raw).toEqual(onSn.json.result);
  });

  it('lists, updates and deletes through the instance', async () => {
    const base = `/v1/accounts/${account}/itsm/problems`;
    const a = await connector.call('POST', base, { body: { description: 'first' } });
    const b = await connector.call('POST', base, { body: { description: 'second' } });
    expect([a.status, b.status]).toEqual([201, 201]);
    const first = await connector.call('GET', `${base}?page_size=1`);
    expect(first.json).toMatchObject({ total: 2, count: 1, next_page: 2 });
    const second = await connector.call('GET', `${base}?page_size=1&page=2`);
    // Oldest first, ties (one second) by sys_id: the order an instance can give.
    expect([first.json.objects[0].id, second.json.objects[0].id].sort()).toEqual(
      [a.json.id, b.json.id].sort(),
    );

    const patched = await connector.call('PATCH', `${base}/${b.json.id}`, {
      body: { impact: 'low' },
      headers: RAW,
    });
    expect(patched.status).toBe(200);
    expect(patched.json.raw.impact).toBe('3');
    expect(patched.json.raw.sys_mod_count).toBe('1');

    expect((await connector.call('DELETE', `${base}/${b.json.id}`)).status).toBe(204);
    expect((await connector.call('GET', `${base}/${b.json.id}`)).status).toBe(404);
    const sysId = (b.json.id as string).split('.')[1];
    expect((await onInstance('GET', `problem/${sysId}`)).status).toBe(404);
  });

  it('reports writes made through it with their X-Kloudless-As-User, once, though the feed reads them too', async () => {
    const created = await connector.call('POST', `/v1/accounts/${account}/itsm/incidents`, {
      body: { description: 'as a user' },
      headers: { 'X-Kloudless-As-User': 'uEngine' },
    });
    await connector.call('PATCH', `/v1/accounts/${account}/itsm/incidents/${created.json.id}`, {
      body: { impact: 'high' },
      headers: { 'X-Kloudless-As-User': 'uEngine' },
    });
    await connector.feed?.pollOnce();
    const log = (await events()).filter((e) => e.metadata.type === 'incident');
    expect(log.map((e) => [e.type, e.user_id, e.metadata.id])).toEqual([
      ['add', 'uEngine', created.json.id],
      ['update', 'uEngine', created.json.id],
    ]);
    // The instance gave the new incident its default impact (3 - Low), as an instance does.
    expect(log[1]?.previous_metadata?.impact).toBe('low');
    expect(log[1]?.metadata.impact).toBe('high');
  });

  it('turns changes made on the instance into add, update and delete events, each once', async () => {
    const made = await onInstance('POST', 'incident', {
      short_description: 'disk full',
      impact: '2',
      urgency: '2',
    });
    expect(made.status).toBe(201);
    const sysId = made.json.result.sys_id as string;
    await connector.feed?.pollOnce();
    await onInstance('PATCH', `incident/${sysId}`, { impact: '1' });
    await connector.feed?.pollOnce();
    await onInstance('DELETE', `incident/${sysId}`);
    await connector.feed?.pollOnce();
    // The poll reads back over its watermark: nothing is reported twice.
    expect(await connector.feed?.pollOnce()).toBe(0);

    const log = (await events()).filter((e) => e.metadata.type === 'incident');
    const ann = log[0]?.user_id as string;
    expect(ann).toMatch(/^u/);
    expect(log.map((e) => [e.type, e.user_id, e.metadata.id])).toEqual([
      ['add', ann, `incident.${sysId}`],
      ['update', ann, `incident.${sysId}`],
      ['delete', ann, `incident.${sysId}`],
    ]);
    expect(log[1]?.metadata.impact).toBe('high');
    expect(log[1]?.previous_metadata.impact).toBe('medium');
    // The delete carries the last record the feed saw.
    expect(log[2]?.metadata.raw.sys_id).toBe(sysId);
  });

  it('reads a pushed record at once, and a pushed delete from sys_audit_delete', async () => {
    const made = await onInstance('POST', 'change_request', { description: 'pushed' });
    const sysId = made.json.result.sys_id as string;
    const push = (table: string, id: string, secret = PUSH_SECRET) =>
      connector.call('POST', '/servicenow/push', {
        auth: `Bearer ${secret}`,
        body: { table, sys_id: id },
      });
    const pushed = await push('change_request', sysId);
    expect(pushed.status).toBe(200);
    expect(pushed.json.events).toBe(1);
    expect((await push('change_request', sysId)).json.events).toBe(0);

    await onInstance('DELETE', `change_request/${sysId}`);
    expect((await push('change_request', sysId)).json.events).toBe(1);
    const log = await events();
    expect(log.map((e) => e.type)).toEqual(['add', 'delete']);
  });

  it('refuses a push without the push secret or with a bad body', async () => {
    const wrong = await connector.call('POST', '/servicenow/push', {
      auth: 'Bearer not-the-secret',
      body: { table: 'incident', sys_id: '0'.repeat(32) },
    });
    expect(wrong.status).toBe(401);
    const appKey = await connector.call('POST', '/servicenow/push', {
      body: { table: 'incident', sys_id: '0'.repeat(32) },
    });
    expect(appKey.status).toBe(401);
    const bad = await connector.call('POST', '/servicenow/push', {
      auth: `Bearer ${PUSH_SECRET}`,
      body: { table: 'incident', sys_id: 'INC0010001' },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.message).toMatch(/sys_id must be 32 lower-case hex digits/);
  });

  it.each([
    [{ table: 'incident; drop', sys_id: '0'.repeat(32) }, /table must be a table name/],
    [{ table: 'cmdb_ci', sys_id: '0'.repeat(32) }, /does not watch table "cmdb_ci"/],
    [{ table: 'incident', sys_id: '0'.repeat(32), account: 99_999 }, /account must be an account/],
    [{ table: 'incident', sys_id: '0'.repeat(32), account: '1' }, /account must be an account/],
  ])('refuses the push %j with a 400 naming the problem', async (body, message) => {
    const refused = await connector.call('POST', '/servicenow/push', {
      auth: `Bearer ${PUSH_SECRET}`,
      body,
    });
    expect(refused.status).toBe(400);
    expect(refused.json.message).toMatch(message);
  });

  it('documents the push endpoint in its OpenAPI document', async () => {
    const doc = await connector.call('GET', '/openapi.json');
    expect(Object.keys(doc.json.paths['/servicenow/push'])).toEqual(['post']);
    const pushRoutes = connector.itsm.app.routes.filter((r) => r.path === '/servicenow/push');
    expect(pushRoutes.map((r) => r.method)).toEqual(['POST']);
  });

  it('serves the instance as its one account only', async () => {
    const other = await connector.call('GET', `/v1/accounts/${account + 100}/itsm/incidents`);
    expect(other.status).toBe(404);
    expect(other.json.message).toMatch(`as account ${account}`);
  });

  it('lists team users from sys_user', async () => {
    const users = await connector.call('GET', `/v1/accounts/${account}/team/users`);
    expect(users.status).toBe(200);
    const names = users.json.objects.map((u: { name?: string }) => u.name);
    expect(names).toContain(`integration${account}`);
  });

  it('answers 400 naming the field when the instance refuses it, and changes nothing', async () => {
    const created = await connector.call('POST', `/v1/accounts/${account}/itsm/incidents`, {
      body: { description: 'x' },
    });
    const refused = await connector.call(
      'PATCH',
      `/v1/accounts/${account}/itsm/incidents/${created.json.id}`,
      { body: { raw: { object: { no_such_column: 'x' } } } },
    );
    expect(refused.status).toBe(400);
    expect(refused.json.message).toMatch(/ServiceNow instance refused.*no_such_column/);
    expect((await events()).map((e) => e.type)).toEqual(['add']);
  });

  it('answers 403 when the instance forbids the write', async () => {
    const refused = await connector.call(
      'POST',
      `/v1/accounts/${account}/itsm/objects?raw_type=sys_audit_delete`,
      { body: { tablename: 'incident' } },
    );
    expect(refused.status).toBe(403);
    expect(refused.json.message).toMatch(/does not allow the connector's user/);
  });
});
