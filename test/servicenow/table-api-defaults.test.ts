// What the Table API face fills in on an insert that leaves it out, as an instance does: the New
// state of incident (1), problem (101) and change_request (-5), opened_at (now), opened_by (the
// calling user), active; an incident's impact and urgency 3 and the priority derived from them;
// a change's requested_by (the calling user) and approval (not requested). Each default is what
// `/v1` shows for the same object, a value the insert names wins over it, and updates fill in
// nothing. Over real HTTP, against the embedded server on 127.0.0.1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callHttp, startTestItsm, TEST_API_KEY, type TestItsm } from '../helpers/itsm.js';

const TABLE = '/api/now/table';
const ANN = `Basic ${btoa('ann:pw-ann')}`;
const APPLICATION = `Basic ${btoa(`1:${TEST_API_KEY}`)}`;
const COLLECTION: Record<string, string> = {
  incident: 'incidents',
  problem: 'problems',
  change_request: 'changes',
};

let itsm: TestItsm;
let annSysId: string;
let boSysId: string;

/** `YYYY-MM-DD HH:mm:ss` of now, UTC, as the face writes date-times. */
const upstreamNow = () => new Date().toISOString().slice(0, 19).replace('T', ' ');

async function sysIdOf(name: string, password: string): Promise<string> {
  const answer = await callHttp(
    itsm.url,
    'GET',
    `${TABLE}/sys_user?sysparm_query=user_name=${name}`,
    { auth: `Basic ${btoa(`${name}:${password}`)}` },
  );
  expect(answer.status, answer.text).toBe(200);
  return answer.json.result[0].sys_id;
}

beforeAll(async () => {
  itsm = await startTestItsm({
    tableApi: {
      users: [
        { name: 'ann', password: 'pw-ann', account: 1 },
        { name: 'bo', password: 'pw-bo', account: 1 },
      ],
    },
  });
  annSysId = await sysIdOf('ann', 'pw-ann');
  boSysId = await sysIdOf('bo', 'pw-bo');
});

afterAll(async () => {
  await itsm?.close();
});

async function insert(table: string, body: Record<string, unknown>, auth = ANN) {
  const before = upstreamNow();
  const made = await callHttp(
    itsm.url,
    'POST',
    `${TABLE}/${table}?sysparm_exclude_reference_link=true`,
    {
      auth,
      body,
    },
  );
  const after = upstreamNow();
  expect(made.status, made.text).toBe(201);
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
  return { record: made.json.result as Record<string, any>, before, after };
}

/** The `/v1` object with the sys_id, raw included. */
async function v1Object(table: string, sysId: string) {
  const listed = await callHttp(
    itsm.url,
    'GET',
    `/v1/accounts/1/itsm/${COLLECTION[table]}?page_size=1000`,
    { headers: { 'X-Kloudless-Raw-Data': 'true' } },
  );
  expect(listed.status, listed.text).toBe(200);
  return listed.json.objects.find((o: { raw: { sys_id: string } }) => o.raw.sys_id === sysId);
}

const userIdOf = (sysId: string) => `u${btoa(sysId)}`;

describe('an insert with only short_description', () => {
  it.each<[string, Record<string, string>, (annUserId: string) => Record<string, unknown>]>([
    [
      'incident',
      { state: '1', impact: '3', urgency: '3', priority: '4' },
      () => ({ status: 1, impact: 'low', urgency: 'low', priority: 'low' }),
    ],
    ['problem', { state: '101' }, (ann) => ({ status: 101, requester: { id: ann } })],
    [
      'change_request',
      { state: '-5', approval: 'not requested' },
      (ann) => ({ status: -5, requester: { id: ann } }),
    ],
  ])('gets the defaults of a new %s, which /v1 shows too', async (table, expected, v1) => {
    const { record, before, after } = await insert(table, { short_description: 'defaults' });
    expect(record).toMatchObject({ ...expected, active: 'true', opened_by: annSysId });
    expect(record.opened_at >= before && record.opened_at <= after, record.opened_at).toBe(true);
    if (table === 'change_request') expect(record.requested_by).toBe(annSysId);
    // Kept, not only answered: a read gives the same record.
    const read = await callHttp(
      itsm.url,
      'GET',
      `${TABLE}/${table}/${record.sys_id}?sysparm_exclude_reference_link=true`,
      { auth: ANN },
    );
    expect(read.json.result).toEqual(record);

    const object = await v1Object(table, record.sys_id);
    expect(object).toMatchObject({ ...v1(userIdOf(annSysId)), active: true });
    expect(object.raw).toMatchObject({
      state: expected.state,
      opened_at: record.opened_at,
      opened_by: annSysId,
    });
  });

  it('derives an incident priority from the impact given and the default urgency', async () => {
    const { record } = await insert('incident', { short_description: 'x', impact: '1' });
    expect(record).toMatchObject({ impact: '1', urgency: '3', priority: '3' });
    expect(await v1Object('incident', record.sys_id)).toMatchObject({
      impact: 'high',
      urgency: 'low',
      priority: 'medium',
    });
  });

  it('leaves the user columns empty for the application, which is no sys_user', async () => {
    const { record } = await insert('change_request', { short_description: 'x' }, APPLICATION);
    expect(record).toMatchObject({ state: '-5', opened_by: '', requested_by: '' });
    expect(record.opened_at).not.toBe('');
    expect((await v1Object('change_request', record.sys_id)).requester).toBeUndefined();
  });

  it('gives a table that is not a task (kb_knowledge) no state or opened_at', async () => {
    const { record } = await insert('kb_knowledge', { short_description: 'x' });
    expect(record.opened_at).toBeUndefined();
    expect(record.state).toBeUndefined();
  });
});

describe('a value the insert names', () => {
  it.each<[string, Record<string, string>, () => Record<string, string>]>([
    ['incident', { state: '2' }, () => ({ state: '2' })],
    ['incident', { state: '' }, () => ({ state: '' })],
    ['incident', { priority: '1' }, () => ({ impact: '3', urgency: '3', priority: '1' })],
    ['incident', { impact: '1', urgency: '1' }, () => ({ priority: '1' })],
    [
      'incident',
      { opened_at: '2024-05-01 09:30:00' },
      () => ({ opened_at: '2024-05-01 09:30:00' }),
    ],
    ['incident', { opened_by: 'BO' }, () => ({ opened_by: boSysId })],
    ['problem', { state: '102' }, () => ({ state: '102' })],
    ['problem', { opened_by: 'BO' }, () => ({ opened_by: boSysId })],
    [
      'change_request',
      { state: '-4', approval: 'requested', requested_by: 'BO' },
      () => ({ state: '-4', approval: 'requested', requested_by: boSysId }),
    ],
  ])('wins over the default (%s %j)', async (table, given, expected) => {
    const body = Object.fromEntries(
      Object.entries(given).map(([column, value]) => [column, value === 'BO' ? boSysId : value]),
    );
    const { record } = await insert(table, { short_description: 'explicit', ...body });
    expect(record).toMatchObject(expected());
  });
});

describe('an update', () => {
  it('fills in no default', async () => {
    const made = await callHttp(itsm.url, 'POST', '/v1/accounts/1/itsm/incidents', {
      body: { description: 'made through /v1' },
      headers: { 'X-Kloudless-Raw-Data': 'true' },
    });
    expect(made.status, made.text).toBe(201);
    const patched = await callHttp(
      itsm.url,
      'PATCH',
      `${TABLE}/incident/${made.json.raw.sys_id}?sysparm_exclude_reference_link=true`,
      { auth: ANN, body: { short_description: 'patched' } },
    );
    expect(patched.status, patched.text).toBe(200);
    expect(patched.json.result).toMatchObject({
      short_description: 'patched',
      state: '',
      opened_at: '',
      opened_by: '',
      impact: '',
      priority: '',
    });
  });
});
