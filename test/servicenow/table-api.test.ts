// The Table API face over real HTTP against `itsm-rules itsm-server` as users start it: CRUD on
// every mapped table, encoded queries, sysparm_fields with dot-walking, paging through
// X-Total-Count and Link, display values, input display values, the derived incident priority,
// and every bad input answered in ServiceNow's error shape without changing anything.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CallInit, type CallResult, callHttp, TEST_API_KEY } from '../helpers/itsm.js';
import { type CliProcess, spawnItsmServer } from '../helpers/serve.js';

let server: CliProcess & { url: string };
const BASIC = `Basic ${btoa('vinod:secret-1')}`;
const TABLE = '/api/now/table';

beforeAll(async () => {
  server = await spawnItsmServer([
    '--port=0',
    '--db=:memory:',
    `--api-key=${TEST_API_KEY}`,
    '--sn-user=vinod:secret-1',
  ]);
});

afterAll(async () => {
  await server?.stop();
});

const sn = (method: string, path: string, init: CallInit = {}): Promise<CallResult> =>
  callHttp(server.url, method, path, { auth: BASIC, ...init });

async function create(table: string, body: Record<string, unknown>, query = '') {
  const created = await sn('POST', `${TABLE}/${table}${query}`, { body });
  expect(created.status, created.text).toBe(201);
  return created.json.result as Record<string, string>;
}

async function eventCount(): Promise<number> {
  const events = await callHttp(server.url, 'GET', '/v1/accounts/1/events?page_size=1000');
  return events.json.count as number;
}

describe('CRUD on every mapped table', () => {
  it.each<[string, Record<string, string>, Record<string, string>, RegExp | null]>([
    [
      'incident',
      { short_description: 'Mail down', impact: '2', urgency: '2' },
      { state: '2' },
      /^INC\d{7}$/,
    ],
    [
      'problem',
      { short_description: 'Mail keeps failing', state: '101' },
      { state: '103' },
      /^PRB\d{7}$/,
    ],
    [
      'change_request',
      { short_description: 'Replace relay', risk: '3' },
      { approval: 'requested' },
      /^CHG\d{7}$/,
    ],
    [
      'kb_knowledge',
      { short_description: 'Restart mail', text: 'Do this' },
      { topic: 'Email' },
      /^KB\d{7}$/,
    ],
    ['alm_asset', { display_name: 'Relay 1', quantity: '2' }, { model: 'R-100' }, null],
    [
      'sys_user',
      { user_name: 'ann', first_name: 'Ann', last_name: 'Lee' },
      { email: 'ann@example.com' },
      null,
    ],
    ['sys_user_group', { name: 'Network' }, { description: 'Routers' }, null],
    ['cmdb_ci', { name: 'mail-01', ip_address: '10.0.0.5' }, { operational_status: '2' }, null],
  ])(
    'creates (201), reads, updates (PUT 200, PATCH 200) and deletes (204) a %s record',
    async (table, body, patch, number) => {
      const created = await create(table, body);
      expect(created).toMatchObject({ ...body, sys_mod_count: '0', sys_created_by: 'vinod' });
      expect(created.sys_id).toMatch(/^[0-9a-f]{32}$/);
      if (number) expect(created.number).toMatch(number);
      expect(created.sys_created_on).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);

      const read = await sn('GET', `${TABLE}/${table}/${created.sys_id}`);
      expect(read.status).toBe(200);
      expect(read.json.result).toEqual(created);

      const put = await sn('PUT', `/api/now/v1/table/${table}/${created.sys_id}`, { body: patch });
      expect(put.status, put.text).toBe(200);
      expect(put.json.result).toMatchObject({ ...body, ...patch, sys_mod_count: '1' });
      const patched = await sn('PATCH', `${TABLE}/${table}/${created.sys_id}`, {
        body: { u_note: 'x' },
      });
      expect(patched.status, patched.text).toBe(200);
      expect(patched.json.result).toMatchObject({ ...patch, u_note: 'x', sys_mod_count: '2' });

      const deleted = await sn('DELETE', `${TABLE}/${table}/${created.sys_id}`);
      expect(deleted.status).toBe(204);
      expect(deleted.text).toBe('');
      const gone = await sn('GET', `${TABLE}/${table}/${created.sys_id}`);
      expect(gone.status).toBe(404);
      expect(gone.json).toEqual({
        error: {
          message: 'No Record found',
          detail: expect.stringContaining(created.sys_id as string),
        },
        status: 'failure',
      });
    },
  );

  it('derives an incident priority from impact and urgency unless one is given', async () => {
    const derived = await create('incident', { short_description: 'p', impact: '1', urgency: '2' });
    expect(derived.priority).toBe('2');
    const raised = await sn('PATCH', `${TABLE}/incident/${derived.sys_id}`, {
      body: { urgency: '1' },
    });
    expect(raised.json.result.priority).toBe('1');
    const given = await create('incident', {
      short_description: 'p',
      impact: '3',
      urgency: '3',
      priority: '2',
    });
    expect(given.priority).toBe('2');
  });

  it('numbers records per table prefix in order', async () => {
    const first = await create('problem', { short_description: 'a' });
    const second = await create('problem', { short_description: 'b' });
    expect(Number(second.number?.slice(3))).toBe(Number(first.number?.slice(3)) + 1);
  });
});

describe('a sys_id given on insert', () => {
  it.each<[string, Record<string, string>]>([
    ['incident', { short_description: 'named by its sender' }],
    ['cmdb_ci', { name: 'named-ci' }],
    ['sys_user', { user_name: 'named.user' }],
  ])('keeps a 32-hex sys_id given on a %s insert, as an instance does', async (table, body) => {
    const sysId = `${table === 'incident' ? 'a' : table === 'cmdb_ci' ? 'b' : 'c'}${'0123456789abcdef'.repeat(2).slice(1)}`;
    const created = await sn('POST', `${TABLE}/${table}`, { body: { ...body, sys_id: sysId } });
    expect(created.status, created.text).toBe(201);
    expect(created.json.result.sys_id).toBe(sysId);
    expect(created.headers.get('Location')).toBe(`${server.url}${TABLE}/${table}/${sysId}`);
    const read = await sn('GET', `${TABLE}/${table}/${sysId}`);
    expect(read.json.result).toMatchObject({ ...body, sys_id: sysId });

    // The sys_id is taken now: the second insert fails as a whole and changes nothing.
    const before = await eventCount();
    const again = await sn('POST', `${TABLE}/${table}`, { body: { ...body, sys_id: sysId } });
    expect(again.status, again.text).toBe(403);
    expect(again.json).toEqual({
      error: {
        message: 'Operation Failed',
        detail: `Error during insert of ${table} (${sysId}): a record with this sys_id already exists`,
      },
      status: 'failure',
    });
    expect(await eventCount()).toBe(before);
    const listed = await sn('GET', `${TABLE}/${table}?sysparm_query=sys_id=${sysId}`);
    expect(listed.json.result).toHaveLength(1);
  });

  it('ignores a sys_id in an update body, as every system column', async () => {
    const created = await create('incident', { short_description: 'stays put' });
    const patched = await sn('PATCH', `${TABLE}/incident/${created.sys_id}`, {
      body: { sys_id: 'd'.repeat(32), short_description: 'moved?' },
    });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.json.result.sys_id).toBe(created.sys_id);
    expect((await sn('GET', `${TABLE}/incident/${'d'.repeat(32)}`)).status).toBe(404);
  });
});

describe('lists', () => {
  const tag = `list-${Date.now()}`;
  const sysIds: string[] = [];
  let callerId = '';

  beforeAll(async () => {
    const caller = await create('sys_user', {
      user_name: 'dana',
      first_name: 'Dana',
      last_name: 'Cole',
    });
    callerId = caller.sys_id as string;
    for (let i = 1; i <= 5; i++) {
      const made = await create('incident', {
        short_description: `${tag} number ${i}`,
        category: tag,
        impact: String(((i - 1) % 3) + 1),
        urgency: '1',
        caller_id: i <= 2 ? callerId : '',
      });
      sysIds.push(made.sys_id as string);
    }
  });

  const list = (query: string) =>
    sn('GET', `${TABLE}/incident?sysparm_query=category=${tag}${query}`);
  const numbersOf = (r: CallResult) =>
    (r.json.result as { short_description: string }[]).map((x) =>
      Number(x.short_description.split(' ').at(-1)),
    );

  it.each<[string, number[]]>([
    ['', [1, 2, 3, 4, 5]],
    ['^impact=1', [1, 4]],
    ['^impact=1^ORimpact=2', [1, 2, 4, 5]],
    ['^impactIN2,3^ORDERBYDESCshort_description', [5, 3, 2]],
    ['^short_descriptionLIKEnumber 3', [3]],
    [`^short_descriptionENDSWITH5^NQcategory=${tag}^impact=3`, [3, 5]],
    ['^caller_idISNOTEMPTY', [1, 2]],
    ['^caller_id.user_name=dana', [1, 2]],
    ['^priority<2', [1, 4]],
    ['^sys_created_on>=2000-01-01 00:00:00^ORDERBYDESCnumber', [5, 4, 3, 2, 1]],
    ['^sys_created_on<2000-01-01', []],
  ])('filters with sysparm_query=category=…%s', async (query, expected) => {
    const listed = await list(encodeURIComponent(query));
    expect(listed.status, listed.text).toBe(200);
    const got = numbersOf(listed);
    expect(query.includes('ORDERBY') ? got : got.sort()).toEqual(expected);
    expect(listed.headers.get('X-Total-Count')).toBe(String(expected.length));
  });

  it('pages with sysparm_limit and sysparm_offset, and Link walks every record once', async () => {
    const seen: number[] = [];
    let next: string | null = `${TABLE}/incident?sysparm_query=category=${tag}&sysparm_limit=2`;
    const rels: string[][] = [];
    while (next) {
      const page: CallResult = await sn('GET', next);
      expect(page.status).toBe(200);
      expect(page.headers.get('X-Total-Count')).toBe('5');
      seen.push(...numbersOf(page));
      const link = page.headers.get('Link') ?? '';
      rels.push([...link.matchAll(/rel="(\w+)"/g)].map((m) => m[1] as string));
      const found = /<([^>]+)>;rel="next"/.exec(link);
      next = found ? (found[1] as string).replace(server.url, '') : null;
    }
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect(rels).toEqual([
      ['first', 'next', 'last'],
      ['first', 'prev', 'next', 'last'],
      ['first', 'prev', 'last'],
    ]);
    const last = await sn(
      'GET',
      `${TABLE}/incident?sysparm_query=category=${tag}&sysparm_limit=2&sysparm_offset=4`,
    );
    expect(last.headers.get('Link')).toContain('sysparm_offset=4&sysparm_limit=2>;rel="last"');
  });

  it('leaves out X-Total-Count with sysparm_no_count and Link with sysparm_suppress_pagination_header', async () => {
    const listed = await list('&sysparm_no_count=true&sysparm_suppress_pagination_header=true');
    expect(listed.headers.has('X-Total-Count')).toBe(false);
    expect(listed.headers.has('Link')).toBe(false);
  });

  it('selects sysparm_fields, dot-walking one level', async () => {
    const listed = await list(
      '^ORDERBYshort_description&sysparm_fields=short_description,caller_id.name,caller_id.email,impact&sysparm_limit=1',
    );
    expect(listed.json.result).toEqual([
      {
        short_description: `${tag} number 1`,
        'caller_id.name': 'Dana Cole',
        'caller_id.email': '',
        impact: '1',
      },
    ]);
  });

  it.each<[string, unknown]>([
    [
      '',
      {
        link: expect.stringMatching(/\/api\/now\/table\/sys_user\/[0-9a-f]{32}$/),
        value: expect.any(String),
      },
    ],
    ['&sysparm_exclude_reference_link=true', expect.stringMatching(/^[0-9a-f]{32}$/)],
    ['&sysparm_display_value=true', { display_value: 'Dana Cole', link: expect.any(String) }],
    [
      '&sysparm_display_value=all&sysparm_exclude_reference_link=true',
      { display_value: 'Dana Cole', value: expect.any(String) },
    ],
  ])('shows references and display values with %s', async (params, callerValue) => {
    const listed = await list(
      `^ORDERBYshort_description&sysparm_limit=1&sysparm_fields=caller_id,impact${params}`,
    );
    expect(listed.json.result[0].caller_id).toEqual(callerValue);
    const impact = listed.json.result[0].impact;
    if (params.includes('display_value=true')) expect(impact).toBe('1 - High');
    else if (params.includes('display_value=all'))
      expect(impact).toEqual({ display_value: '1 - High', value: '1' });
    else expect(impact).toBe('1');
  });

  it('writes choices and references by display value with sysparm_input_display_value', async () => {
    const made = await create(
      'incident',
      {
        short_description: 'by display',
        impact: 'High',
        urgency: '3 - Low',
        caller_id: 'Dana Cole',
      },
      '?sysparm_input_display_value=true',
    );
    expect(made).toMatchObject({ impact: '1', urgency: '3', priority: '3' });
    expect(made.caller_id).toMatchObject({ value: callerId });
  });
});

describe('bad input gets a 400 in ServiceNow’s shape and changes nothing', () => {
  let incident = '';
  beforeAll(async () => {
    incident = (await create('incident', { short_description: 'target' })).sys_id as string;
  });

  it.each<[string, string, string, unknown, number, RegExp]>([
    [
      'an unknown table',
      'GET',
      `${TABLE}/no_such_table`,
      undefined,
      400,
      /Invalid table no_such_table/,
    ],
    [
      'a table name that cannot be one',
      'GET',
      `${TABLE}/Bad-Name`,
      undefined,
      400,
      /Invalid table/,
    ],
    [
      'a malformed query',
      'GET',
      `${TABLE}/incident?sysparm_query=priority~1`,
      undefined,
      400,
      /no operator after the field priority/,
    ],
    [
      'an unknown field in a query',
      'GET',
      `${TABLE}/incident?sysparm_query=nonsense=1`,
      undefined,
      400,
      /unknown field nonsense in table incident/,
    ],
    [
      'a negative offset',
      'GET',
      `${TABLE}/incident?sysparm_offset=-1`,
      undefined,
      400,
      /sysparm_offset must be a whole number >= 0/,
    ],
    [
      'a zero limit',
      'GET',
      `${TABLE}/incident?sysparm_limit=0`,
      undefined,
      400,
      /sysparm_limit must be a whole number >= 1/,
    ],
    [
      'a bad display value mode',
      'GET',
      `${TABLE}/incident?sysparm_display_value=maybe`,
      undefined,
      400,
      /true, false or all/,
    ],
    [
      'an unknown field in a create',
      'POST',
      `${TABLE}/incident`,
      { short_description: 'x', nonsense: 1 },
      400,
      /unknown field nonsense in table incident/,
    ],
    [
      'a wrong type in a create',
      'POST',
      `${TABLE}/incident`,
      { short_description: { a: 1 } },
      400,
      /short_description must be a string/,
    ],
    [
      'an impact out of range',
      'POST',
      `${TABLE}/incident`,
      { impact: '9' },
      400,
      /impact must be one of 1 \(1 - High\)/,
    ],
    [
      'a reference to nothing',
      'POST',
      `${TABLE}/incident`,
      { problem_id: 'f'.repeat(32) },
      400,
      /problem_id: no problem record with sys_id/,
    ],
    [
      'a body that is not JSON',
      'POST',
      `${TABLE}/incident`,
      '{nope',
      400,
      /the body must be a JSON object/,
    ],
    ['a body that is an array', 'POST', `${TABLE}/incident`, '[]', 400, /got an array/],
    [
      'a sys_id on insert that is not 32 lower-case hex digits',
      'POST',
      `${TABLE}/incident`,
      { short_description: 'x', sys_id: 'ABCDEF0123456789ABCDEF0123456789' },
      400,
      /sys_id must be 32 lower-case hex digits/,
    ],
    [
      'a sys_id on insert that is not a string',
      'POST',
      `${TABLE}/cmdb_ci`,
      { name: 'x', sys_id: 42 },
      400,
      /sys_id must be 32 lower-case hex digits/,
    ],
    [
      'an unknown field in an update',
      'PATCH',
      'INCIDENT',
      { nonsense: 'x' },
      400,
      /unknown field nonsense/,
    ],
    [
      'a bad date in an update',
      'PUT',
      'INCIDENT',
      { due_date: 'tomorrow' },
      400,
      /due_date must be a date-time/,
    ],
    [
      'an unknown record',
      'PATCH',
      `${TABLE}/incident/${'0'.repeat(32)}`,
      { short_description: 'x' },
      404,
      /No Record found/,
    ],
    [
      'a delete of an unknown record',
      'DELETE',
      `${TABLE}/incident/${'0'.repeat(32)}`,
      undefined,
      404,
      /No Record found/,
    ],
    [
      'a write to the audit of deletes',
      'POST',
      `${TABLE}/sys_audit_delete`,
      { tablename: 'x' },
      403,
      /User Not Authorized/,
    ],
    [
      'a method tables do not have',
      'DELETE',
      `${TABLE}/incident`,
      undefined,
      405,
      /Method not Supported/,
    ],
    [
      'a path the face does not serve',
      'GET',
      '/api/now/attachment/x',
      undefined,
      404,
      /no such endpoint/,
    ],
    [
      'a body over the size limit',
      'POST',
      `${TABLE}/incident`,
      { short_description: 'x'.repeat(1_100_000) },
      413,
      /larger than the limit/,
    ],
  ])('%s', async (_name, method, path, body, status, message) => {
    const before = await eventCount();
    const target = path === 'INCIDENT' ? `${TABLE}/incident/${incident}` : path;
    const answer = await sn(method, target, body === undefined ? {} : { body });
    expect(answer.status, answer.text).toBe(status);
    expect(answer.headers.get('Content-Type')).toMatch(/^application\/json/);
    expect(answer.json).toEqual({
      error: { message: expect.any(String), detail: expect.anything() },
      status: 'failure',
    });
    expect(`${answer.json.error.message} ${answer.json.error.detail}`).toMatch(message);
    expect(await eventCount()).toBe(before);
    const record = await sn('GET', `${TABLE}/incident/${incident}`);
    expect(record.json.result).toMatchObject({ short_description: 'target', sys_mod_count: '0' });
  });
});
