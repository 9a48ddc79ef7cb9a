// End to end, the ServiceNow vocabulary of rules: `itsm-rules serve` spawned all-in-one on
// 127.0.0.1 with test/fixtures/servicenow-rules (copies of the shipped ServiceNow examples and of escalate-major-incidents).
// Real HTTP throughout: groups are created through /v1 generic objects, incidents and changes
// through /v1, the engine's writes are read back through /v1 with X-Kloudless-Raw-Data and
// through the Table API face (sys_journal_field). Each test works in its own account.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callHttp } from '../helpers/itsm.js';
import { type CliProcess, eventually, spawnServe, TEST_API_KEY } from '../helpers/serve.js';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
type Json = any;

const RAW = { 'X-Kloudless-Raw-Data': 'true' };
const basic = (account: number) => `Basic ${btoa(`${account}:${TEST_API_KEY}`)}`;

let serve: CliProcess & { url: string };

beforeAll(async () => {
  serve = await spawnServe([
    '--port',
    '0',
    '--db',
    ':memory:',
    '--api-key',
    TEST_API_KEY,
    '--rules',
    'test/fixtures/servicenow-rules',
    '--no-schedules',
  ]);
}, 30_000);

afterAll(async () => {
  await serve?.stop();
});

async function call(
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>,
) {
  const response = await callHttp(serve.url, method, path, {
    ...(body !== undefined && { body }),
    ...(headers && { headers }),
  });
  expect(response.status, `${method} ${path}: ${response.text}`).toBeLessThan(300);
  return response.json as Json;
}

async function createGroup(account: number, name: string): Promise<string> {
  const group = await call('POST', `/v1/accounts/${account}/itsm/objects?raw_type=sys_user_group`, {
    name,
    description: `${name} (test group)`,
  });
  return group.raw.id;
}

async function readRaw(account: number, plural: string, id: string): Promise<Json> {
  return call('GET', `/v1/accounts/${account}/itsm/${plural}/${id}`, undefined, RAW);
}

/** Journal entries of a record, through the Table API face (newest first). */
async function journal(account: number, sysId: string): Promise<Json[]> {
  const response = await callHttp(
    serve.url,
    'GET',
    `/api/now/table/sys_journal_field?sysparm_query=element_id=${sysId}`,
    { auth: basic(account) },
  );
  expect(response.status, response.text).toBe(200);
  return response.json.result;
}

/** Waits until every event of the account has its run record (runs are read first). */
async function settle(account: number): Promise<Json[]> {
  return eventually(async () => {
    const runs = (await call('GET', `/runs?page_size=100&account=${account}`)).objects;
    const events = (await call('GET', `/v1/accounts/${account}/events?page_size=1000`)).objects;
    return events.length > 0 && runs.length === events.length ? runs : undefined;
  }, `every event of account ${account} to have a run`);
}

describe('ServiceNow vocabulary in rules, end to end', () => {
  it('assigns a network incident to the group found by name and leaves one work note', async () => {
    const account = 21;
    const groupId = await createGroup(account, 'Network Operations');
    await createGroup(account, 'Service Desk');
    const incident = await call('POST', `/v1/accounts/${account}/itsm/incidents`, {
      description: 'Branch office cannot reach the VPN',
      category: 'network',
      impact: 'medium',
      urgency: 'medium',
    });
    await settle(account);

    const after = await readRaw(account, 'incidents', incident.id);
    expect(after.raw.assignment_group).toBe(groupId);
    expect(after.raw.work_notes).toContain(
      'Assigned to Network Operations by itsm-rules: the category is network.',
    );
    const entries = await journal(account, after.raw.sys_id);
    expect(entries.map((e: Json) => [e.element, e.value, e.sys_created_by])).toEqual([
      [
        'work_notes',
        'Assigned to Network Operations by itsm-rules: the category is network.',
        'itsm-rules',
      ],
    ]);
    // The Table API face shows the same reference, with the group's name as its display value.
    const row = await callHttp(
      serve.url,
      'GET',
      `/api/now/table/incident/${after.raw.sys_id}?sysparm_display_value=true&sysparm_fields=assignment_group`,
      { auth: basic(account) },
    );
    expect(row.json.result.assignment_group.display_value).toBe('Network Operations');
  });

  it('writes nothing when no group has the name, and says so in the run record', async () => {
    const account = 22;
    await createGroup(account, 'Network Ops');
    const incident = await call('POST', `/v1/accounts/${account}/itsm/incidents`, {
      description: 'Switch port flapping',
      category: 'network',
    });
    const runs = await settle(account);

    const after = await readRaw(account, 'incidents', incident.id);
    expect(after.raw.assignment_group).toBeUndefined();
    expect(after.raw.work_notes ?? '').toBe('');
    expect(await journal(account, after.raw.sys_id)).toEqual([]);
    const run = runs.find((r: Json) => r.object?.id === incident.id);
    expect(run.rules).toContain('assign-network-incidents');
    expect(run.detail.notes.map((n: Json) => n.message)).toEqual(
      expect.arrayContaining([
        'update: not written, raw.assignment_group: lookup found no sys_user_group record whose name is "Network Operations"',
        expect.stringMatching(/^note: the text is empty/),
      ]),
    );
  });

  it("notes the engine's own escalation once, and the note does not trigger the rule again", async () => {
    const account = 23;
    const incident = await call('POST', `/v1/accounts/${account}/itsm/incidents`, {
      description: 'Payments API down',
      category: 'software',
      impact: 'high',
      urgency: 'high',
      priority: 'medium',
    });
    const runs = await settle(account);

    const after = await readRaw(account, 'incidents', incident.id);
    expect(after.priority).toBe('critical');
    expect(after.escalation).toBe(1);
    const entries = await journal(account, after.raw.sys_id);
    expect(entries.map((e: Json) => [e.element, e.value])).toEqual([
      ['work_notes', 'Escalated to critical priority (escalation 1).'],
    ]);
    // add -> escalation (engine, hop 1) -> note (engine, hop 2, which no rule follows).
    const events = (await call('GET', `/v1/accounts/${account}/events?page_size=1000`)).objects;
    expect(events.map((e: Json) => [e.type, e.user_id])).toEqual([
      ['add', null],
      ['update', 'itsm-rules'],
      ['update', 'itsm-rules'],
    ]);
    const byHop = runs.map((r: Json) => [r.self_hops, r.rules]).sort();
    expect(byHop).toEqual([
      [0, ['escalate-major-incidents']],
      [1, ['work-note-on-escalation']],
      [2, []],
    ]);
  });

  it('sends an unapproved change back to Scheduled with a comment, and lets an approved one through', async () => {
    const account = 24;
    const change = await call('POST', `/v1/accounts/${account}/itsm/changes`, {
      description: 'Upgrade the core router',
      status: -2,
    });
    await call('PATCH', `/v1/accounts/${account}/itsm/changes/${change.id}`, { status: -1 });
    await settle(account);

    let after = await readRaw(account, 'changes', change.id);
    expect(after.status).toBe(-2);
    expect(after.raw.state).toBe('-2');
    const comments = await journal(account, after.raw.sys_id);
    expect(comments.map((e: Json) => [e.element, e.value])).toEqual([
      [
        'comments',
        'Moved back to Scheduled: a change is implemented only once it is approved (approval: not requested).',
      ],
    ]);

    // Approved (an upstream column the unified model lacks), then moved to Implement: it stays.
    await call('PATCH', `/v1/accounts/${account}/itsm/changes/${change.id}`, {
      raw: { object: { approval: 'approved' } },
    });
    await call('PATCH', `/v1/accounts/${account}/itsm/changes/${change.id}`, { status: -1 });
    await settle(account);
    after = await readRaw(account, 'changes', change.id);
    expect(after.raw.state).toBe('-1');
    expect(after.raw.approval).toBe('approved');
    expect(await journal(account, after.raw.sys_id)).toHaveLength(1);
  });
});
