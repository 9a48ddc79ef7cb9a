// The five unified types and generic objects over real HTTP (shared/spec/itsm-api.md §2, §4, §5):
// the seed's example bodies through create, get, list, update and delete; response shapes;
// user expansion; singular create paths; trailing slashes; raw data; reference clearing; and
// the error body and exact Content-Type of every JSON response.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createItsmClient } from '../../src/itsm/client.js';
import {
  DAVID,
  SEED_ARTICLE_CREATE,
  SEED_ARTICLE_UPDATE,
  SEED_ASSET_CREATE,
  SEED_ASSET_UPDATE,
  SEED_CHANGE_CREATE,
  SEED_CHANGE_UPDATE,
  SEED_INCIDENT_CREATE,
  SEED_INCIDENT_UPDATE,
  SEED_OBJECT_CREATE,
  SEED_OBJECT_UPDATE,
  SEED_PROBLEM_CREATE,
  SEED_PROBLEM_UPDATE,
  SEED_USERS,
  TIMOTHY,
  VINOD,
} from '../fixtures/seed-examples.js';
import {
  type CallResult,
  OVER_SERVICENOW,
  startTestItsm,
  TEST_API_KEY,
  type TestItsm,
} from '../helpers/itsm.js';

const ACCOUNT_PATH = '/v1/accounts/123';
const ITSM = `${ACCOUNT_PATH}/itsm`;
const ISO_SECONDS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const SYS_ID = /^[0-9a-f]{32}$/;
const RAW = { 'X-Kloudless-Raw-Data': 'true' };

const VINOD_SYS_ID = '5137153cc611227c000bbd1bd8cd2007';
const TIMOTHY_SYS_ID = '5137153cc611227c000bbd1bd8cd2006';
const DAVID_SYS_ID = '46d14f04a9fe19810142e40c6b071512';

const VINOD_USER = {
  type: 'user',
  api: 'team',
  id: VINOD,
  name: 'Vinod Chandru',
  email: 'vinod@kloudless.com',
};
const TIMOTHY_USER = {
  type: 'user',
  api: 'team',
  id: TIMOTHY,
  name: 'Timothy Liu',
  email: 'timothy@kloudless.com',
};
const DAVID_USER = {
  type: 'user',
  api: 'team',
  id: DAVID,
  name: 'David Thorman',
  email: 'dthorman@kloudless.com',
};

type Body = Record<string, unknown>;

function expectJsonContentType(response: CallResult): void {
  expect(response.headers.get('content-type')).toBe('application/json');
}

function expectError(response: CallResult, status: number, code: string): void {
  expect(response.status, response.text).toBe(status);
  expectJsonContentType(response);
  expect(response.json).toEqual({
    error_code: code,
    message: expect.any(String),
    id: expect.any(String),
    status_code: status,
  });
  expect(response.json.message).not.toBe('');
  expect(response.json.id).not.toBe('');
}

function expectStatus(response: CallResult, status: number): CallResult {
  expect(response.status, response.text).toBe(status);
  if (status !== 204) expectJsonContentType(response);
  return response;
}

async function create(
  itsm: TestItsm,
  plural: string,
  body: Body,
  headers?: Record<string, string>,
): Promise<Body> {
  const response = await itsm.call('POST', `${ITSM}/${plural}`, { body, headers });
  expectStatus(response, 201);
  return response.json;
}

/** The common read-only fields every unified object carries. */
function common(itsm: TestItsm, type: string, plural: string) {
  return {
    id: expect.stringMatching(/^\S+$/),
    type,
    api: 'itsm',
    created: expect.stringMatching(ISO_SECONDS),
    modified: expect.stringMatching(ISO_SECONDS),
    href: expect.stringMatching(new RegExp(`^${escapeRegExp(itsm.url)}${ITSM}/${plural}/[^/?#]+$`)),
  };
}

/**
 * Over the connector, what the instance fills in on an insert that leaves it out: an incident,
 * problem or change comes back in its table's New state (1, 101, -5), as on a real instance.
 */
function instanceDefaults(type: string, body: Body): Body {
  const newStatus: Record<string, number> = { incident: 1, problem: 101, change: -5 };
  const status = newStatus[type];
  return OVER_SERVICENOW && status !== undefined && body.status === undefined ? { status } : {};
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function hrefOf(itsm: TestItsm, plural: string, id: unknown): string {
  return `${itsm.url}${ITSM}/${plural}/${String(id)}`;
}

interface TypeCase {
  type: string;
  plural: string;
  /** The seed's create body, reference ids swapped for objects that exist in this account. */
  seedBody: (itsm: TestItsm) => Promise<Body>;
  /** What the seed's response shows beyond the common fields (users expanded, defaults filled). */
  expected: (body: Body) => Body;
  update: Body;
  /** Values that differ from the seed update, so that the update is observable. */
  before: Body;
}

const TYPE_CASES: TypeCase[] = [
  {
    type: 'incident',
    plural: 'incidents',
    seedBody: async (itsm) => {
      const problem = await create(itsm, 'problems', { description: 'the linked problem' });
      return { ...SEED_INCIDENT_CREATE, problem: problem.id };
    },
    expected: (body) => ({
      category: 'hardware',
      due_date: '2017-10-04T20:15:37Z',
      description: 'User cannot access email on mail.company.com.',
      impact: 'high',
      assignee: VINOD_USER,
      priority: 'medium',
      urgency: 'medium',
      requester: TIMOTHY_USER,
      active: true,
      problem: body.problem,
      escalation: 0,
    }),
    update: SEED_INCIDENT_UPDATE,
    before: { priority: 'low', description: 'an older description' },
  },
  {
    type: 'problem',
    plural: 'problems',
    seedBody: async (itsm) => {
      const incident = await create(itsm, 'incidents', { description: 'the linked incident' });
      const { problem: _notAProblemField, ...body } = SEED_PROBLEM_CREATE;
      return { ...body, incident: incident.id };
    },
    expected: (body) => ({
      incident: body.incident,
      category: 'hardware',
      due_date: '2017-10-04T20:15:37Z',
      description: 'SP2 is causing several applications not to work anymore.',
      impact: 'high',
      assignee: VINOD_USER,
      priority: 'medium',
      urgency: 'medium',
      requester: TIMOTHY_USER,
      escalation: 0,
      active: true,
    }),
    update: SEED_PROBLEM_UPDATE,
    before: { description: 'an older description', impact: 'low' },
  },
  {
    type: 'change',
    plural: 'changes',
    // The seed sends incident and problem as "": no link, so nothing to swap.
    seedBody: async () => ({ ...SEED_CHANGE_CREATE }),
    expected: () => ({
      category: 'Software',
      impact: 'low',
      description: 'We are going to put another 100 GB drive on the floor 2 server',
      start_date: '2017-12-01T15:10:00Z',
      end_date: '2017-12-01T15:20:00Z',
      priority: 'high',
      assignee: VINOD_USER,
      status: 0,
      urgency: 'high',
      escalation: 1,
      active: true,
    }),
    update: SEED_CHANGE_UPDATE,
    before: { escalation: 0, impact: 'high' },
  },
  {
    type: 'article',
    plural: 'articles',
    seedBody: async () => ({ ...SEED_ARTICLE_CREATE }),
    expected: () => ({
      category: 'Software',
      description: 'detail steps on how to set up the dev env',
      author: DAVID_USER,
      text: '<p>Follow the instructions below</p>',
      topic: 'Development environment set up manual',
      active: true,
    }),
    update: SEED_ARTICLE_UPDATE,
    before: { text: '<p>Older instructions</p>' },
  },
  {
    type: 'asset',
    plural: 'assets',
    seedBody: async () => ({ ...SEED_ASSET_CREATE }),
    expected: () => ({
      assignee: VINOD_USER,
      model: 'f10008893710200044e0bfc8bcbe5d80',
      name: 'Samsung SyncMaster 24" Class BackLight LED',
      quantity: 1,
      active: true,
    }),
    update: SEED_ASSET_UPDATE,
    before: { quantity: 3 },
  },
];

describe('the five unified types with the seed example bodies', () => {
  let itsm: TestItsm;
  beforeEach(async () => {
    itsm = await startTestItsm({ users: SEED_USERS });
  });
  afterEach(async () => {
    await itsm.close();
  });

  describe.each(TYPE_CASES)('$type', ({ type, plural, seedBody, expected, update, before }) => {
    it(`creates a ${type} from the seed body and answers 201 with the seed's response shape`, async () => {
      const body = await seedBody(itsm);
      const response = expectStatus(await itsm.call('POST', `${ITSM}/${plural}`, { body }), 201);
      expect(response.json).toEqual({
        ...common(itsm, type, plural),
        ...expected(body),
        ...instanceDefaults(type, body),
      });
      expect(response.json.href).toBe(hrefOf(itsm, plural, response.json.id));
      expect(response.json.modified).toBe(response.json.created);
    });

    it(`reads a created ${type} back with GET exactly as the create returned it`, async () => {
      const created = await create(itsm, plural, await seedBody(itsm));
      const response = expectStatus(await itsm.call('GET', `${ITSM}/${plural}/${created.id}`), 200);
      expect(response.json).toEqual(created);
    });

    it(`lists a created ${type} in an object_list`, async () => {
      const created = await create(itsm, plural, await seedBody(itsm));
      const response = expectStatus(await itsm.call('GET', `${ITSM}/${plural}`), 200);
      expect(response.json).toEqual({
        total: 1,
        count: 1,
        page: 1,
        next_page: null,
        objects: [created],
        type: 'object_list',
        api: 'itsm',
      });
    });

    it(`updates a ${type} with the seed update body and answers 200 with the modified fields`, async () => {
      const created = await create(itsm, plural, { ...(await seedBody(itsm)), ...before });
      const response = expectStatus(
        await itsm.call('PATCH', `${ITSM}/${plural}/${created.id}`, { body: update }),
        200,
      );
      expect(response.json).toEqual({
        ...created,
        ...update,
        modified: expect.stringMatching(ISO_SECONDS),
      });
      expect(response.json.modified >= String(created.modified)).toBe(true);
      const read = await itsm.call('GET', `${ITSM}/${plural}/${created.id}`);
      expect(read.json).toEqual(response.json);
    });

    it(`deletes a ${type} with 204 and an empty body, after which it is a 404`, async () => {
      const created = await create(itsm, plural, await seedBody(itsm));
      const deleted = await itsm.call('DELETE', `${ITSM}/${plural}/${created.id}`);
      expect(deleted.status).toBe(204);
      expect(deleted.text).toBe('');
      expectError(await itsm.call('GET', `${ITSM}/${plural}/${created.id}`), 404, 'not_found');
      expectError(await itsm.call('DELETE', `${ITSM}/${plural}/${created.id}`), 404, 'not_found');
      const list = await itsm.call('GET', `${ITSM}/${plural}`);
      expect(list.json).toMatchObject({ total: 0, count: 0, objects: [] });
    });
  });

  it('refuses the verbatim seed problem body with a 400 naming its `problem` field, storing nothing', async () => {
    const incident = await create(itsm, 'incidents', { description: 'the linked incident' });
    const response = await itsm.call('POST', `${ITSM}/problems`, {
      body: { ...SEED_PROBLEM_CREATE, incident: incident.id },
    });
    expectError(response, 400, 'invalid_parameters');
    expect(response.json.message).toMatch(/\bproblem\b/);
    const list = await itsm.call('GET', `${ITSM}/problems`);
    expect(list.json).toMatchObject({ total: 0, objects: [] });
  });

  it('fills in active true and escalation 0 where the type has them and the body leaves them out', async () => {
    const incident = await create(itsm, 'incidents', { description: 'x' });
    const problem = await create(itsm, 'problems', { description: 'x' });
    const change = await create(itsm, 'changes', { description: 'x' });
    const article = await create(itsm, 'articles', { description: 'x' });
    const asset = await create(itsm, 'assets', { description: 'x' });
    for (const task of [incident, problem, change]) {
      expect(task).toMatchObject({ active: true, escalation: 0 });
    }
    expect(article.active).toBe(true);
    expect(article).not.toHaveProperty('escalation');
    expect(asset.active).toBe(true);
    expect(asset).not.toHaveProperty('escalation');
  });

  it('keeps an explicit active false and a non-zero escalation instead of the defaults', async () => {
    const incident = await create(itsm, 'incidents', { active: false, escalation: 2 });
    expect(incident).toMatchObject({ active: false, escalation: 2 });
  });
});

describe('response shapes', () => {
  let itsm: TestItsm;
  afterEach(async () => {
    await itsm.close();
  });

  it('returns a user field as just {type, api, id} when the user is not provisioned', async () => {
    itsm = await startTestItsm();
    const incident = await create(itsm, 'incidents', { assignee: VINOD, requester: TIMOTHY });
    expect(incident.assignee).toEqual({ type: 'user', api: 'team', id: VINOD });
    expect(incident.requester).toEqual({ type: 'user', api: 'team', id: TIMOTHY });
    if (OVER_SERVICENOW) {
      // An instance's user field holds a sys_user sys_id, and a user id there is u + Base64 of
      // one: an id naming no sys_id cannot be stored, so the connector refuses it by name.
      const refused = await itsm.call('POST', `${ITSM}/articles`, {
        body: { author: 'uNotAUserOfThisAccount' },
      });
      expectStatus(refused, 400);
      expect(refused.json.error_code).toBe('invalid_parameters');
      expect(refused.json.message).toContain(
        'author: "uNotAUserOfThisAccount" is not a user of this ServiceNow instance',
      );
      const articles = await itsm.call('GET', `${ITSM}/articles`);
      expect(articles.json.total).toBe(0);
      return;
    }
    const article = await create(itsm, 'articles', { author: 'uNotAUserOfThisAccount' });
    expect(article.author).toEqual({ type: 'user', api: 'team', id: 'uNotAUserOfThisAccount' });
  });

  it('expands a user field to name and email once the user is provisioned, on every read', async () => {
    itsm = await startTestItsm({ users: SEED_USERS });
    const incident = await create(itsm, 'incidents', { assignee: VINOD });
    expect(incident.assignee).toEqual(VINOD_USER);
    const read = await itsm.call('GET', `${ITSM}/incidents/${incident.id}`);
    expect(read.json.assignee).toEqual(VINOD_USER);
    const list = await itsm.call('GET', `${ITSM}/incidents`);
    expect(list.json.objects[0].assignee).toEqual(VINOD_USER);
  });

  it('builds href as an absolute URL from the request origin', async () => {
    itsm = await startTestItsm();
    const incident = await create(itsm, 'incidents', { description: 'x' });
    const href = new URL(String(incident.href));
    expect(href.origin).toBe(itsm.url);
    expect(href.pathname).toBe(`${ITSM}/incidents/${incident.id}`);
    const followed = await itsm.call('GET', href.pathname);
    expect(followed.json).toEqual(incident);
  });
});

describe('paths', () => {
  let itsm: TestItsm;
  beforeEach(async () => {
    itsm = await startTestItsm({ users: SEED_USERS });
  });
  afterEach(async () => {
    await itsm.close();
  });

  it.each([
    ['incident', 'incidents'],
    ['problem', 'problems'],
    ['change', 'changes'],
    ['article', 'articles'],
    ['asset', 'assets'],
  ])('creates a %s through the singular path POST .../itsm/%s', async (singular, plural) => {
    const response = expectStatus(
      await itsm.call('POST', `${ITSM}/${singular}`, {
        body: { description: 'made by the singular path' },
      }),
      201,
    );
    expect(response.json).toMatchObject({
      type: singular,
      description: 'made by the singular path',
    });
    expect(response.json.href).toBe(hrefOf(itsm, plural, response.json.id));
    const read = await itsm.call('GET', `${ITSM}/${plural}/${response.json.id}`);
    expect(read.json).toEqual(response.json);
  });

  it('creates a generic object through the singular path POST .../itsm/object?raw_type=', async () => {
    const response = expectStatus(
      await itsm.call('POST', `${ITSM}/object?raw_type=cmdb_ci`, { body: { name: 'server-1' } }),
      201,
    );
    expect(response.json.href).toBe(
      `${hrefOf(itsm, 'objects', response.json.id)}?raw_type=cmdb_ci`,
    );
  });

  it('tolerates a trailing slash on every verb of collections and items', async () => {
    const created = expectStatus(
      await itsm.call('POST', `${ITSM}/incidents/`, { body: { description: 'slash' } }),
      201,
    );
    const id = String(created.json.id);
    const list = expectStatus(await itsm.call('GET', `${ITSM}/incidents/`), 200);
    expect(list.json.objects).toEqual([created.json]);
    const read = expectStatus(await itsm.call('GET', `${ITSM}/incidents/${id}/`), 200);
    expect(read.json).toEqual(created.json);
    const patched = expectStatus(
      await itsm.call('PATCH', `${ITSM}/incidents/${id}/`, { body: { impact: 'low' } }),
      200,
    );
    expect(patched.json.impact).toBe('low');
    expect((await itsm.call('DELETE', `${ITSM}/incidents/${id}/`)).status).toBe(204);
    expectError(await itsm.call('GET', `${ITSM}/incidents/${id}/`), 404, 'not_found');
  });

  it('answers an unknown collection with a 404 error body', async () => {
    expectError(await itsm.call('GET', `${ITSM}/widgets`), 404, 'not_found');
    expectError(
      await itsm.call('POST', `${ITSM}/widgets`, { body: { name: 'x' } }),
      404,
      'not_found',
    );
    expectError(await itsm.call('GET', `${ITSM}/widgets/Fabc`), 404, 'not_found');
  });

  it('answers an id of another type, or no object at all, with a 404', async () => {
    const problem = await create(itsm, 'problems', { description: 'x' });
    expectError(await itsm.call('GET', `${ITSM}/incidents/${problem.id}`), 404, 'not_found');
    expectError(
      await itsm.call('PATCH', `${ITSM}/incidents/${problem.id}`, { body: { impact: 'low' } }),
      404,
      'not_found',
    );
    expectError(await itsm.call('DELETE', `${ITSM}/incidents/${problem.id}`), 404, 'not_found');
    expectError(await itsm.call('GET', `${ITSM}/incidents/Fdoesnotexist`), 404, 'not_found');
    const read = await itsm.call('GET', `${ITSM}/problems/${problem.id}`);
    expect(read.json).toEqual(problem);
  });

  it('answers PUT on a collection with a 405 and an Allow header', async () => {
    const response = await itsm.call('PUT', `${ITSM}/incidents`, { body: { description: 'x' } });
    expectError(response, 405, 'method_not_allowed');
    const allow = (response.headers.get('allow') ?? '').split(',').map((m) => m.trim());
    expect(allow).toEqual(expect.arrayContaining(['GET', 'POST']));
    expect(allow).not.toContain('PUT');
  });

  it('answers PUT on an item with a 405 whose Allow header lists GET, PATCH and DELETE', async () => {
    const incident = await create(itsm, 'incidents', { description: 'x' });
    const response = await itsm.call('PUT', `${ITSM}/incidents/${incident.id}`, {
      body: { description: 'y' },
    });
    expectError(response, 405, 'method_not_allowed');
    const allow = (response.headers.get('allow') ?? '').split(',').map((m) => m.trim());
    expect(allow).toEqual(expect.arrayContaining(['GET', 'PATCH', 'DELETE']));
  });
});

describe('generic objects (raw_type=sys_user)', () => {
  let itsm: TestItsm;
  beforeEach(async () => {
    itsm = await startTestItsm();
  });
  afterEach(async () => {
    await itsm.close();
  });

  const OBJECTS = `${ITSM}/objects`;

  async function createUserRecord(): Promise<Body> {
    const response = await itsm.call('POST', `${OBJECTS}?raw_type=sys_user`, {
      body: SEED_OBJECT_CREATE,
    });
    expectStatus(response, 201);
    return response.json;
  }

  it('creates an object from the seed body and answers {id, type, api, raw {type, id, object}, href}', async () => {
    const created = await createUserRecord();
    expect(created).toEqual({
      id: expect.stringMatching(/^\S+$/),
      type: 'object',
      api: 'itsm',
      raw: {
        type: 'sys_user',
        id: expect.stringMatching(SYS_ID),
        object: expect.objectContaining(SEED_OBJECT_CREATE),
      },
      href: `${hrefOf(itsm, 'objects', created.id)}?raw_type=sys_user`,
    });
  });

  it('reads and lists an object exactly as the create returned it', async () => {
    const created = await createUserRecord();
    const read = expectStatus(
      await itsm.call('GET', `${OBJECTS}/${created.id}?raw_type=sys_user`),
      200,
    );
    expect(read.json).toEqual(created);
    const list = expectStatus(await itsm.call('GET', `${OBJECTS}?raw_type=sys_user`), 200);
    expect(list.json).toEqual({
      total: 1,
      count: 1,
      page: 1,
      next_page: null,
      objects: [created],
      type: 'object_list',
      api: 'itsm',
    });
  });

  it('lists only the objects of the raw_type asked for', async () => {
    const user = await createUserRecord();
    expectStatus(
      await itsm.call('POST', `${OBJECTS}?raw_type=cmdb_ci`, { body: { name: 'server-1' } }),
      201,
    );
    const list = await itsm.call('GET', `${OBJECTS}?raw_type=sys_user`);
    expect(list.json.objects).toEqual([user]);
  });

  it('updates an object with the seed update body, keeping the fields it does not name', async () => {
    const created = await createUserRecord();
    const response = expectStatus(
      await itsm.call('PATCH', `${OBJECTS}/${created.id}?raw_type=sys_user`, {
        body: SEED_OBJECT_UPDATE,
      }),
      200,
    );
    expect(response.json).toMatchObject({
      id: created.id,
      type: 'object',
      api: 'itsm',
      href: created.href,
    });
    expect(response.json.raw.object).toMatchObject({
      ...SEED_OBJECT_CREATE,
      ...SEED_OBJECT_UPDATE,
    });
    const read = await itsm.call('GET', `${OBJECTS}/${created.id}?raw_type=sys_user`);
    expect(read.json).toEqual(response.json);
  });

  it('deletes an object with 204, after which it is a 404', async () => {
    const created = await createUserRecord();
    const deleted = await itsm.call('DELETE', `${OBJECTS}/${created.id}?raw_type=sys_user`);
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');
    expectError(
      await itsm.call('GET', `${OBJECTS}/${created.id}?raw_type=sys_user`),
      404,
      'not_found',
    );
  });

  it.each([
    ['GET', 'collection'],
    ['POST', 'collection'],
    ['GET', 'item'],
    ['PATCH', 'item'],
    ['DELETE', 'item'],
  ])('answers %s on the %s without raw_type with a 400 naming raw_type', async (method, where) => {
    const created = await createUserRecord();
    const path = where === 'collection' ? OBJECTS : `${OBJECTS}/${created.id}`;
    const body = method === 'POST' || method === 'PATCH' ? SEED_OBJECT_UPDATE : undefined;
    const response = await itsm.call(method, path, { body });
    expectError(response, 400, 'invalid_parameters');
    expect(response.json.message).toContain('raw_type');
    const read = await itsm.call('GET', `${OBJECTS}/${created.id}?raw_type=sys_user`);
    expect(read.json).toEqual(created);
    const list = await itsm.call('GET', `${OBJECTS}?raw_type=sys_user`);
    expect(list.json.total).toBe(1);
  });

  it('answers a GET with the wrong raw_type with a 404', async () => {
    const created = await createUserRecord();
    expectError(
      await itsm.call('GET', `${OBJECTS}/${created.id}?raw_type=cmdb_ci`),
      404,
      'not_found',
    );
  });
});

describe('raw data (X-Kloudless-Raw-Data)', () => {
  let itsm: TestItsm;
  beforeEach(async () => {
    itsm = await startTestItsm({ users: SEED_USERS });
  });
  afterEach(async () => {
    await itsm.close();
  });

  async function seedIncident(
    headers?: Record<string, string>,
  ): Promise<{ incident: Body; problem: Body }> {
    const problem = await create(itsm, 'problems', { description: 'the linked problem' });
    const incident = await create(
      itsm,
      'incidents',
      { ...SEED_INCIDENT_CREATE, problem: problem.id },
      headers,
    );
    return { incident, problem };
  }

  it('gives a ServiceNow-shaped raw record of string values with the header', async () => {
    const { incident, problem } = await seedIncident(RAW);
    const raw = incident.raw as Record<string, unknown>;
    expect(raw).toBeDefined();
    for (const [column, value] of Object.entries(raw)) {
      expect(typeof value, `raw.${column}`).toBe('string');
    }
    expect(raw.sys_id).toMatch(SYS_ID);
    expect(raw.number).toMatch(/^INC\d{7}$/);
    expect(raw).toMatchObject({
      impact: '1',
      urgency: '2',
      priority: '3',
      assigned_to: VINOD_SYS_ID,
      caller_id: TIMOTHY_SYS_ID,
      active: 'true',
      escalation: '0',
    });
    const problemRaw = await itsm.call('GET', `${ITSM}/problems/${problem.id}`, { headers: RAW });
    expect(problemRaw.json.raw.sys_id).toMatch(SYS_ID);
    expect(raw.problem_id).toBe(problemRaw.json.raw.sys_id);
  });

  it('gives raw on GET, list and PATCH only when the request carries the header', async () => {
    const { incident } = await seedIncident();
    expect(incident).not.toHaveProperty('raw');
    const path = `${ITSM}/incidents/${incident.id}`;
    expect((await itsm.call('GET', path)).json).not.toHaveProperty('raw');
    expect((await itsm.call('GET', path, { headers: RAW })).json.raw).toMatchObject({
      impact: '1',
    });
    expect((await itsm.call('GET', `${ITSM}/incidents`)).json.objects[0]).not.toHaveProperty('raw');
    expect(
      (await itsm.call('GET', `${ITSM}/incidents`, { headers: RAW })).json.objects[0].raw,
    ).toMatchObject({
      impact: '1',
    });
    const patched = await itsm.call('PATCH', path, { body: { impact: 'low' } });
    expect(patched.json).not.toHaveProperty('raw');
    const patchedRaw = await itsm.call('PATCH', path, { body: { impact: 'medium' }, headers: RAW });
    expect(patchedRaw.json.raw).toMatchObject({ impact: '2' });
  });

  it.each([
    ['incidents', /^INC\d{7}$/],
    ['problems', /^PRB\d{7}$/],
    ['changes', /^CHG\d{7}$/],
    ['articles', /^KB\d{7}$/],
    ['assets', /^AST\d{7}$/],
  ])('numbers %s like the upstream service (%s)', async (plural, pattern) => {
    const first = await create(itsm, plural, { description: 'first' }, RAW);
    const second = await create(itsm, plural, { description: 'second' }, RAW);
    const firstRaw = first.raw as Record<string, string>;
    const secondRaw = second.raw as Record<string, string>;
    expect(firstRaw.number).toMatch(pattern);
    expect(secondRaw.number).toMatch(pattern);
    expect(secondRaw.number).not.toBe(firstRaw.number);
    expect(firstRaw.sys_id).toMatch(SYS_ID);
    expect(secondRaw.sys_id).not.toBe(firstRaw.sys_id);
  });

  it('numbers the first incident of an account INC0010001', async () => {
    const incident = await create(itsm, 'incidents', { description: 'first' }, RAW);
    expect((incident.raw as Record<string, string>).number).toBe('INC0010001');
  });

  it.each([
    ['critical', '1'],
    ['high', '2'],
    ['medium', '3'],
    ['low', '4'],
  ])('stores priority %s as the upstream code %s', async (priority, code) => {
    const incident = await create(itsm, 'incidents', { priority }, RAW);
    expect((incident.raw as Record<string, string>).priority).toBe(code);
  });

  it.each([
    ['high', '1'],
    ['medium', '2'],
    ['low', '3'],
  ])('stores impact and urgency %s as the upstream code %s', async (level, code) => {
    const incident = await create(itsm, 'incidents', { impact: level, urgency: level }, RAW);
    expect(incident.raw).toMatchObject({ impact: code, urgency: code });
  });

  it.each([
    ['very high', '1'],
    ['high', '2'],
    ['moderate', '3'],
    ['low', '4'],
  ])(
    'stores the risk %s of a change as the upstream code %s, and reads it back',
    async (risk, code) => {
      const change = await create(itsm, 'changes', { description: 'patch', risk }, RAW);
      expect(change).toMatchObject({ risk, raw: { risk: code } });
      const read = await itsm.call('GET', `${ITSM}/changes/${change.id}`);
      expect(read.json.risk).toBe(risk);
    },
  );

  // Before risk was a choice, the embedded store kept whatever text was written ("medium", or a
  // Table API code such as "3"). Such a change stays readable, by /v1 and by the typed client
  // the engine reads with: risk is left out (no word for it), raw still shows the text.
  it.skipIf(OVER_SERVICENOW)(
    'reads a change whose risk was stored as free text, without its risk; raw still shows it',
    async () => {
      const change = await create(itsm, 'changes', { description: 'old change', risk: 'low' });
      const stored = await itsm.store.getObject(123, String(change.id));
      if (!stored) throw new Error('the change was not stored');
      const legacy = { ...stored, fields: { ...stored.fields, risk: 'medium' }, version: 2 };
      await itsm.store.commit({
        write: { kind: 'update', object: legacy, expectedVersion: stored.version },
        event: {
          account: 123,
          type: 'update',
          action: 'update',
          modified: stored.modified,
          ip: null,
          userId: null,
          metadata: { id: stored.id, type: 'change', api: 'itsm' },
        },
        retention: 10_000,
      });

      const read = await itsm.call('GET', `${ITSM}/changes/${change.id}`, { headers: RAW });
      expect(read.status, read.text).toBe(200);
      expect(read.json).not.toHaveProperty('risk');
      expect(read.json).toMatchObject({ description: 'old change', raw: { risk: 'medium' } });
      const client = createItsmClient({
        baseUrl: `${itsm.url}/v1`,
        auth: { apiKey: TEST_API_KEY },
      });
      const typed = await client.get(123, 'change', String(change.id));
      expect(typed).toMatchObject({ description: 'old change' });
      expect(typed).not.toHaveProperty('risk');
    },
  );

  it('holds the user sys_id in the upstream user columns of articles and assets', async () => {
    const article = await create(itsm, 'articles', { ...SEED_ARTICLE_CREATE }, RAW);
    expect(article.raw).toMatchObject({ author: DAVID_SYS_ID });
    const asset = await create(itsm, 'assets', { ...SEED_ASSET_CREATE }, RAW);
    expect(asset.raw).toMatchObject({ assigned_to: VINOD_SYS_ID });
  });

  it('shows an upstream-only field written through raw.object in raw, and nowhere else', async () => {
    const incident = await create(itsm, 'incidents', {
      description: 'x',
      raw: { object: { u_custom: 'x' } },
    });
    expect(incident).not.toHaveProperty('raw');
    expect(incident).not.toHaveProperty('u_custom');
    const read = await itsm.call('GET', `${ITSM}/incidents/${incident.id}`, { headers: RAW });
    expect(read.json.raw).toMatchObject({ u_custom: 'x' });
    const patched = await itsm.call('PATCH', `${ITSM}/incidents/${incident.id}`, {
      body: { raw: { object: { u_custom: 'y', u_other: 'z' } } },
      headers: RAW,
    });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.json.raw).toMatchObject({ u_custom: 'y', u_other: 'z' });
    expect(patched.json.description).toBe('x');
  });

  it.each(['impact', 'assigned_to', 'sys_id', 'number'])(
    'refuses to write the mapped column %s through raw.object with a 400 naming it',
    async (column) => {
      const response = await itsm.call('POST', `${ITSM}/incidents`, {
        body: { description: 'x', raw: { object: { [column]: '1' } } },
      });
      expectError(response, 400, 'invalid_parameters');
      expect(response.json.message).toContain(column);
      const list = await itsm.call('GET', `${ITSM}/incidents`);
      expect(list.json.total).toBe(0);
    },
  );

  it('refuses a mapped column in raw.object on PATCH and leaves the object unchanged', async () => {
    const incident = await create(itsm, 'incidents', { impact: 'low' });
    const response = await itsm.call('PATCH', `${ITSM}/incidents/${incident.id}`, {
      body: { raw: { object: { impact: '1' } } },
    });
    expectError(response, 400, 'invalid_parameters');
    expect(response.json.message).toContain('impact');
    expect((await itsm.call('GET', `${ITSM}/incidents/${incident.id}`)).json).toEqual(incident);
  });
});

describe('reference fields', () => {
  let itsm: TestItsm;
  beforeEach(async () => {
    itsm = await startTestItsm({ users: SEED_USERS });
  });
  afterEach(async () => {
    await itsm.close();
  });

  it.each([
    ['""', ''],
    ['null', null],
  ])('clears a link when the reference is written as %s', async (_label, empty) => {
    const problem = await create(itsm, 'problems', { description: 'linked' });
    const incident = await create(itsm, 'incidents', { description: 'x', problem: problem.id });
    expect(incident.problem).toBe(problem.id);
    const path = `${ITSM}/incidents/${incident.id}`;
    const patched = expectStatus(await itsm.call('PATCH', path, { body: { problem: empty } }), 200);
    expect(patched.json).not.toHaveProperty('problem');
    expect(patched.json.description).toBe('x');
    const read = await itsm.call('GET', path, { headers: RAW });
    expect(read.json).not.toHaveProperty('problem');
    expect(read.json.raw.problem_id).toBe('');
  });

  it.each([
    ['""', ''],
    ['null', null],
  ])('creates an object without a link when the reference is %s', async (_label, empty) => {
    const incident = await create(itsm, 'incidents', {
      description: 'x',
      problem: empty,
      change: empty,
    });
    expect(incident).not.toHaveProperty('problem');
    expect(incident).not.toHaveProperty('change');
  });

  it('links a change to an incident and a problem, with their sys_ids in raw', async () => {
    const incident = await create(itsm, 'incidents', { description: 'i' }, RAW);
    const problem = await create(itsm, 'problems', { description: 'p' }, RAW);
    const change = await create(
      itsm,
      'changes',
      { incident: incident.id, problem: problem.id },
      RAW,
    );
    expect(change).toMatchObject({ incident: incident.id, problem: problem.id });
    expect(change.raw).toMatchObject({
      u_incident: (incident.raw as Record<string, string>).sys_id,
      u_problem: (problem.raw as Record<string, string>).sys_id,
    });
  });
});

describe('Content-Type and error bodies', () => {
  let itsm: TestItsm;
  let incidentId: string;
  beforeEach(async () => {
    itsm = await startTestItsm({ users: SEED_USERS });
    incidentId = String((await create(itsm, 'incidents', { description: 'x' })).id);
  });
  afterEach(async () => {
    await itsm.close();
  });

  const SUCCESSES: [string, string, () => string, unknown, Record<string, string>, number][] = [
    ['a list', 'GET', () => `${ITSM}/incidents`, undefined, {}, 200],
    ['a raw list', 'GET', () => `${ITSM}/incidents`, undefined, RAW, 200],
    ['a create', 'POST', () => `${ITSM}/incidents`, { description: 'y' }, {}, 201],
    ['a read', 'GET', () => `${ITSM}/incidents/${incidentId}`, undefined, {}, 200],
    ['a raw read', 'GET', () => `${ITSM}/incidents/${incidentId}`, undefined, RAW, 200],
    ['an update', 'PATCH', () => `${ITSM}/incidents/${incidentId}`, { impact: 'low' }, {}, 200],
    [
      'a generic object create',
      'POST',
      () => `${ITSM}/objects?raw_type=sys_user`,
      SEED_OBJECT_CREATE,
      {},
      201,
    ],
  ];

  it.each(SUCCESSES)(
    'answers %s with Content-Type exactly application/json',
    async (_what, method, path, body, headers, status) => {
      const response = await itsm.call(method, path(), { body, headers });
      expect(response.status, response.text).toBe(status);
      expect(response.headers.get('content-type')).toBe('application/json');
    },
  );

  const FAILURES: [
    string,
    string,
    () => string,
    unknown,
    string | null | undefined,
    number,
    string,
  ][] = [
    [
      'a bad body',
      'POST',
      () => `${ITSM}/incidents`,
      { impact: 'urgent' },
      undefined,
      400,
      'invalid_parameters',
    ],
    ['missing credentials', 'GET', () => `${ITSM}/incidents`, undefined, null, 401, 'unauthorized'],
    [
      'a wrong API key',
      'GET',
      () => `${ITSM}/incidents`,
      undefined,
      'APIKey wrong',
      401,
      'unauthorized',
    ],
    [
      'an unknown object',
      'GET',
      () => `${ITSM}/incidents/Fnope`,
      undefined,
      undefined,
      404,
      'not_found',
    ],
    [
      'an unknown endpoint',
      'GET',
      () => '/v1/nothing-here',
      undefined,
      undefined,
      404,
      'not_found',
    ],
    [
      'a wrong method',
      'PUT',
      () => `${ITSM}/incidents`,
      { description: 'x' },
      undefined,
      405,
      'method_not_allowed',
    ],
    [
      'malformed JSON',
      'PATCH',
      () => `${ITSM}/incidents/${incidentId}`,
      '{"impact":',
      undefined,
      400,
      'invalid_parameters',
    ],
  ];

  it.each(FAILURES)(
    'answers %s with the Kloudless error body and Content-Type exactly application/json',
    async (_what, method, path, body, auth, status, code) => {
      const response = await itsm.call(method, path(), { body, auth });
      expectError(response, status, code);
    },
  );
});
