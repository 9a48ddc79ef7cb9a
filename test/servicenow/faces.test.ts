// One record, two faces, over real HTTP against the spawned `itsm-rules itsm-server`: a write on
// the Table API is visible on /v1 at once (its raw record is the Table API record) and appends
// the same events and webhook notifications as a /v1 write, naming the ServiceNow user; a /v1
// write is visible on the Table API at once; journal fields append on both faces; deletes on
// either face leave one sys_audit_delete row each.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEED_USERS, VINOD } from '../fixtures/seed-examples.js';
import { eventually } from '../helpers/eventually.js';
import {
  type CallInit,
  type CallResult,
  callHttp,
  TEST_API_KEY,
  TEST_APP_ID,
} from '../helpers/itsm.js';
import { startReceiver, type TestReceiver } from '../helpers/receiver.js';
import { type CliProcess, spawnItsmServer } from '../helpers/serve.js';

let server: CliProcess & { url: string };
let receiver: TestReceiver;
const BASIC = `Basic ${btoa('ann:pw-ann')}`;
const APP = `Basic ${btoa(`1:${TEST_API_KEY}`)}`;
const RAW = { 'X-Kloudless-Raw-Data': 'true' };
const TABLE = '/api/now/table';

beforeAll(async () => {
  receiver = await startReceiver({ appId: TEST_APP_ID });
  server = await spawnItsmServer([
    '--port=0',
    '--db=:memory:',
    `--api-key=${TEST_API_KEY}`,
    `--app-id=${TEST_APP_ID}`,
    `--webhook=${receiver.url}`,
    '--sn-user=ann:pw-ann',
  ]);
  // The start-up webhook is registered after the handshake.
  await receiver.waitFor(1);
  // Ann's sys_user record is created (with its own add event) the first time she signs in.
  expect((await sn('GET', `${TABLE}/incident`)).status).toBe(200);
});

afterAll(async () => {
  await server?.stop();
  await receiver?.close();
});

const sn = (method: string, path: string, init: CallInit = {}): Promise<CallResult> =>
  callHttp(server.url, method, path, { auth: BASIC, ...init });
const v1 = (method: string, path: string, init: CallInit = {}): Promise<CallResult> =>
  callHttp(server.url, method, `/v1/accounts/1${path}`, init);

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
async function eventsAfter(cursor: string): Promise<any[]> {
  const listed = await v1('GET', `/events?cursor=${cursor}`, { headers: RAW });
  expect(listed.status).toBe(200);
  return listed.json.objects;
}

async function latest(): Promise<string> {
  return (await v1('GET', '/events/latest')).json.cursor;
}

/** The /v1 incident whose upstream sys_id is `sysId`. */
async function v1Incident(sysId: string) {
  const listed = await v1('GET', '/itsm/incidents?page_size=1000', { headers: RAW });
  return listed.json.objects.find((o: { raw: { sys_id: string } }) => o.raw.sys_id === sysId);
}

async function userIdOf(userName: string): Promise<string> {
  const users = await sn('GET', `${TABLE}/sys_user?sysparm_query=user_name=${userName}`);
  const sysId = users.json.result[0].sys_id as string;
  return `u${btoa(sysId)}`;
}

describe('a Table API write, seen on /v1', () => {
  it('creates one record that /v1 reads at once, its raw equal to the Table API record', async () => {
    const cursor = await latest();
    const notified = receiver.requests.length;
    const created = await sn('POST', `${TABLE}/incident?sysparm_exclude_reference_link=true`, {
      body: {
        short_description: 'VPN down',
        description: 'VPN is down',
        impact: '1',
        urgency: '1',
        u_site: 'HQ',
      },
    });
    expect(created.status, created.text).toBe(201);
    const record = created.json.result;

    const object = await v1Incident(record.sys_id);
    expect(object).toMatchObject({
      description: 'VPN is down',
      impact: 'high',
      urgency: 'high',
      priority: 'critical',
    });
    for (const [column, value] of Object.entries(object.raw)) {
      expect(record[column], column).toBe(value);
    }

    const events = await eventsAfter(cursor);
    expect(events.map((e) => e.type)).toEqual(['add']);
    expect(events[0].user_id).toBe(await userIdOf('ann'));
    expect(events[0].metadata).toEqual(
      (await v1('GET', `/itsm/incidents/${object.id}`, { headers: RAW })).json,
    );
    await receiver.waitFor(notified + 1);
    expect(JSON.parse(receiver.requests.at(-1)?.body.toString() ?? '{}')).toMatchObject({
      account: 1,
    });
  });

  it('updates with an update event carrying the record before and after, by the same user', async () => {
    const created = (
      await sn('POST', `${TABLE}/incident`, {
        body: { short_description: 'Printer', impact: '3', urgency: '3' },
      })
    ).json.result;
    const cursor = await latest();
    const updated = await sn('PATCH', `${TABLE}/incident/${created.sys_id}`, {
      body: { impact: '1', state: '2' },
    });
    expect(updated.status).toBe(200);
    const events = await eventsAfter(cursor);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'update',
      user_id: await userIdOf('ann'),
      previous_metadata: { impact: 'low', priority: 'low' },
      metadata: {
        impact: 'high',
        status: 2,
        priority: 'medium',
        raw: { impact: '1', priority: '3', sys_mod_count: '1' },
      },
    });
  });

  it('deletes with the delete event /v1 describes, and /v1 no longer finds the object', async () => {
    const created = (
      await sn('POST', `${TABLE}/incident`, { body: { short_description: 'Gone soon' } })
    ).json.result;
    const object = await v1Incident(created.sys_id);
    const cursor = await latest();
    expect((await sn('DELETE', `${TABLE}/incident/${created.sys_id}`)).status).toBe(204);
    const plain = await v1('GET', `/events?cursor=${cursor}`);
    expect(plain.json.objects).toHaveLength(1);
    expect(plain.json.objects[0]).toMatchObject({ type: 'delete', user_id: await userIdOf('ann') });
    expect(plain.json.objects[0].metadata).toEqual({
      id: object.id,
      type: 'incident',
      api: 'itsm',
    });
    expect((await v1('GET', `/itsm/incidents/${object.id}`)).status).toBe(404);
  });

  it('writes as the application with Basic <account>:<application key>, as /v1 without a user', async () => {
    const cursor = await latest();
    const created = await callHttp(server.url, 'POST', `${TABLE}/problem`, {
      auth: APP,
      body: { short_description: 'by app' },
    });
    expect(created.status, created.text).toBe(201);
    expect(created.json.result.sys_created_by).toBe('system');
    const [event] = await eventsAfter(cursor);
    expect(event).toMatchObject({ type: 'add', user_id: null, metadata: { type: 'problem' } });
  });
});

describe('a /v1 write, seen on the Table API', () => {
  it('shows a /v1 incident with its references and users as the Table API record', async () => {
    for (const user of SEED_USERS) {
      await v1('POST', '/itsm/objects?raw_type=sys_user', { body: user });
    }
    const problem = (await v1('POST', '/itsm/problems', { body: { description: 'root' } })).json;
    const incident = (
      await v1('POST', '/itsm/incidents', {
        body: {
          description: 'Mail down',
          impact: 'medium',
          urgency: 'low',
          assignee: VINOD,
          problem: problem.id,
        },
        headers: RAW,
      })
    ).json;
    const read = await sn(
      'GET',
      `${TABLE}/incident/${incident.raw.sys_id}?sysparm_display_value=all&sysparm_fields=impact,assigned_to,problem_id,sys_created_by`,
    );
    expect(read.status, read.text).toBe(200);
    const problemRaw = (await v1('GET', `/itsm/problems/${problem.id}`, { headers: RAW })).json.raw;
    expect(read.json.result).toEqual({
      impact: { display_value: '2 - Medium', value: '2' },
      assigned_to: {
        display_value: expect.any(String),
        link: expect.stringContaining(`/api/now/table/sys_user/${incident.raw.assigned_to}`),
        value: incident.raw.assigned_to,
      },
      problem_id: {
        display_value: problemRaw.number,
        link: expect.stringContaining(`/api/now/table/problem/${problemRaw.sys_id}`),
        value: problemRaw.sys_id,
      },
      sys_created_by: { display_value: 'system', value: 'system' },
    });
  });

  it('maps a change risk both ways: words on /v1, the choice codes 1 to 4 on the Table API', async () => {
    const change = (
      await v1('POST', '/itsm/changes', { body: { risk: 'very high' }, headers: RAW })
    ).json;
    const path = `${TABLE}/change_request/${change.raw.sys_id}`;
    const shown = await sn('GET', `${path}?sysparm_display_value=all&sysparm_fields=risk`);
    expect(shown.json.result).toEqual({ risk: { display_value: 'Very High', value: '1' } });

    const byCode = await sn('PATCH', path, { body: { risk: '3' } });
    expect(byCode.status, byCode.text).toBe(200);
    expect((await v1('GET', `/itsm/changes/${change.id}`)).json.risk).toBe('moderate');
    const byLabel = await sn('PATCH', `${path}?sysparm_input_display_value=true`, {
      body: { risk: 'Low' },
    });
    expect(byLabel.status, byLabel.text).toBe(200);
    expect((await v1('GET', `/itsm/changes/${change.id}`)).json.risk).toBe('low');

    // Only the instance's codes: a word is a 400 naming them, and changes nothing.
    const refused = await sn('PATCH', path, { body: { risk: 'moderate' } });
    expect(refused.status).toBe(400);
    expect(refused.json.error.detail).toContain('1 (Very High), 2 (High), 3 (Moderate), 4 (Low)');
    expect((await v1('GET', `/itsm/changes/${change.id}`)).json.risk).toBe('low');
  });

  it('appends journal entries written through either face, newest first, and lists them in sys_journal_field', async () => {
    const created = (
      await sn('POST', `${TABLE}/incident`, {
        body: { short_description: 'Journal', work_notes: 'first, by ann' },
      })
    ).json.result;
    const object = await v1Incident(created.sys_id);
    await v1('PATCH', `/itsm/incidents/${object.id}`, {
      body: { raw: { object: { work_notes: 'second, by the app' } } },
    });
    await sn('PATCH', `${TABLE}/incident/${created.sys_id}`, {
      body: { comments: 'a customer-visible comment' },
    });
    await sn('PATCH', `${TABLE}/incident/${created.sys_id}`, { body: { work_notes: '' } });

    const record = (await sn('GET', `${TABLE}/incident/${created.sys_id}`)).json.result;
    expect(record.work_notes).toMatch(
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - system \(Work notes\)\nsecond, by the app\n\n\S.* - ann \(Work notes\)\nfirst, by ann\n\n$/,
    );
    expect(record.comments).toMatch(
      / - ann \(Additional comments\)\na customer-visible comment\n\n$/,
    );
    expect((await v1Incident(created.sys_id)).raw.work_notes).toBe(record.work_notes);

    const entries = await sn(
      'GET',
      `${TABLE}/sys_journal_field?sysparm_query=element_id=${created.sys_id}&sysparm_fields=element,value,sys_created_by,name`,
    );
    expect(entries.json.result).toEqual([
      { element: 'work_notes', value: 'first, by ann', sys_created_by: 'ann', name: 'incident' },
      {
        element: 'work_notes',
        value: 'second, by the app',
        sys_created_by: 'system',
        name: 'incident',
      },
      {
        element: 'comments',
        value: 'a customer-visible comment',
        sys_created_by: 'ann',
        name: 'incident',
      },
    ]);
  });

  it('refuses to let /v1 set who wrote a record: raw.object is a 400, a generic record keeps the real writer', async () => {
    const refused = await v1('POST', '/itsm/incidents', {
      body: {
        description: 'forged',
        raw: { object: { sys_created_by: 'mallory', sys_mod_count: '9' } },
      },
    });
    expect(refused.status).toBe(400);
    expect(refused.json.message).toMatch(/sys_created_by, sys_mod_count/);
    const generic = await v1('POST', '/itsm/objects?raw_type=cmdb_ci', {
      body: {
        name: 'forged-ci',
        sys_created_by: 'mallory',
        sys_updated_by: 'mallory',
        sys_mod_count: '9',
      },
    });
    expect(generic.status).toBe(201);
    const read = await sn('GET', `${TABLE}/cmdb_ci/${generic.json.raw.id}`);
    expect(read.json.result).toMatchObject({
      sys_created_by: 'system',
      sys_updated_by: 'system',
      sys_mod_count: '0',
    });
  });

  it('keeps one sys_audit_delete row per delete on either face', async () => {
    const viaSn = (
      await sn('POST', `${TABLE}/change_request`, { body: { short_description: 'a' } })
    ).json.result;
    const viaV1 = (
      await v1('POST', '/itsm/objects?raw_type=cmdb_ci', { body: { name: 'mail-02' } })
    ).json;
    await sn('DELETE', `${TABLE}/change_request/${viaSn.sys_id}`);
    await v1('DELETE', `/itsm/objects/${viaV1.id}?raw_type=cmdb_ci`);
    const audit = await sn(
      'GET',
      `${TABLE}/sys_audit_delete?sysparm_query=documentkeyIN${viaSn.sys_id},${viaV1.raw.id}&sysparm_fields=tablename,documentkey,display_value,sys_created_by`,
    );
    expect(audit.json.result).toEqual([
      {
        tablename: 'change_request',
        documentkey: viaSn.sys_id,
        display_value: viaSn.number,
        sys_created_by: 'ann',
      },
      {
        tablename: 'cmdb_ci',
        documentkey: viaV1.raw.id,
        display_value: 'mail-02',
        sys_created_by: 'system',
      },
    ]);
    const row = await sn(
      'GET',
      `${TABLE}/sys_audit_delete?sysparm_query=documentkey=${viaSn.sys_id}`,
    );
    expect(row.json.result[0].sys_created_on).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    await eventually(
      async () => (await sn('GET', `${TABLE}/change_request/${viaSn.sys_id}`)).status === 404,
      'the change to be gone',
    );
  });
});
