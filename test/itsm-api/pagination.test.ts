// Lists and pagination over real HTTP (spec section 3): page_size and page, the object_list
// envelope with total, count, page and an always-present next_page, oldest-first order that
// stays stable while objects are created between page requests, and 400s for bad paging values.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CreatedObject, listOrder, startTestItsm, type TestItsm } from '../helpers/itsm.js';

let itsm: TestItsm;
let nextAccount = 100;

beforeAll(async () => {
  itsm = await startTestItsm();
});

afterAll(async () => {
  await itsm.close();
});

/** Each test gets an account of its own, so collection totals are its own. */
function freshAccount(): number {
  nextAccount += 1;
  return nextAccount;
}

function makeIncident(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { description: 'Printer on floor 2 is jammed', impact: 'low', ...overrides };
}

async function createIncidents(account: number, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const created = await itsm.call('POST', `/v1/accounts/${account}/itsm/incidents`, {
      body: makeIncident({ description: `incident ${i}` }),
    });
    expect(created.status).toBe(201);
    ids.push(created.json.id);
  }
  return ids;
}

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
async function listPage(account: number, query = ''): Promise<any> {
  const listed = await itsm.call('GET', `/v1/accounts/${account}/itsm/incidents${query}`);
  expect(listed.status, listed.text).toBe(200);
  expect(listed.headers.get('content-type')).toBe('application/json');
  return listed.json;
}

const idsOf = (page: { objects: { id: string }[] }) => page.objects.map((o) => o.id);

describe('pagination', () => {
  it('lists 10 objects per page by default, oldest first', async () => {
    const account = freshAccount();
    const ids = await createIncidents(account, 12);

    const first = await listPage(account);
    expect(first).toMatchObject({
      total: 12,
      count: 10,
      page: 1,
      next_page: 2,
      type: 'object_list',
      api: 'itsm',
    });
    expect(idsOf(first)).toEqual(ids.slice(0, 10));

    const second = await listPage(account, '?page=2');
    expect(second).toMatchObject({ total: 12, count: 2, page: 2, next_page: null });
    expect(idsOf(second)).toEqual(ids.slice(10));
  });

  it('honours page_size and page and names the next page until the last one', async () => {
    const account = freshAccount();
    const ids = await createIncidents(account, 7);

    const pages = [];
    for (const page of [1, 2, 3]) pages.push(await listPage(account, `?page_size=3&page=${page}`));

    expect(pages.map((p) => p.page)).toEqual([1, 2, 3]);
    expect(pages.map((p) => p.count)).toEqual([3, 3, 1]);
    expect(pages.map((p) => p.total)).toEqual([7, 7, 7]);
    expect(pages.map((p) => p.next_page)).toEqual([2, 3, null]);
    expect(pages.flatMap(idsOf)).toEqual(ids);
  });

  it('ends exactly on a full last page with next_page null', async () => {
    const account = freshAccount();
    await createIncidents(account, 6);
    const last = await listPage(account, '?page_size=3&page=2');
    expect(last).toMatchObject({ count: 3, total: 6, next_page: null });
  });

  it('always includes next_page, null when the whole collection fits on one page', async () => {
    const account = freshAccount();
    const empty = await listPage(account);
    expect(empty).toHaveProperty('next_page', null);
    expect(empty).toMatchObject({ total: 0, count: 0, page: 1, objects: [] });

    await createIncidents(account, 2);
    const one = await listPage(account);
    expect(one).toHaveProperty('next_page', null);
    expect(one).toMatchObject({ total: 2, count: 2 });
  });

  it('returns an empty page with next_page null past the end', async () => {
    const account = freshAccount();
    await createIncidents(account, 4);
    const beyond = await listPage(account, '?page_size=3&page=5');
    expect(beyond).toMatchObject({ total: 4, count: 0, page: 5, next_page: null, objects: [] });
  });

  it('counts only the objects of the listed type', async () => {
    const account = freshAccount();
    await createIncidents(account, 2);
    const problem = await itsm.call('POST', `/v1/accounts/${account}/itsm/problems`, {
      body: { description: 'Root cause of the jams' },
    });
    expect(problem.status).toBe(201);

    expect((await listPage(account)).total).toBe(2);
    const problems = await itsm.call('GET', `/v1/accounts/${account}/itsm/problems`);
    expect(problems.json).toMatchObject({ total: 1, count: 1, next_page: null });
  });

  it('never repeats an object and misses none that existed at the start when objects are created between pages', async () => {
    const account = freshAccount();
    const existing = await createIncidents(account, 8);

    const seen: string[] = [];
    let page: number | null = 1;
    for (let guard = 0; page !== null; guard++) {
      expect(guard).toBeLessThan(50);
      const listed = await listPage(account, `?page_size=3&page=${page}`);
      seen.push(...idsOf(listed));
      page = listed.next_page;
      if (page !== null) await createIncidents(account, 2);
    }

    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.slice(0, existing.length)).toEqual(existing);
  });

  it('keeps the order after updates: a modified object does not move', async () => {
    const account = freshAccount();
    const ids = await createIncidents(account, 4);
    const patched = await itsm.call('PATCH', `/v1/accounts/${account}/itsm/incidents/${ids[0]}`, {
      body: { impact: 'high' },
    });
    expect(patched.status).toBe(200);
    expect(idsOf(await listPage(account))).toEqual(ids);
  });

  it('accepts the largest page_size of 1000', async () => {
    const account = freshAccount();
    await createIncidents(account, 3);
    expect(await listPage(account, '?page_size=1000')).toMatchObject({ count: 3, next_page: null });
  });

  it.each([
    ['page_size=0'],
    ['page_size=1001'],
    ['page_size=-1'],
    ['page_size=abc'],
    ['page_size=2.5'],
    ['page_size='],
    ['page=0'],
    ['page=-2'],
    ['page=x'],
    ['page=1.5'],
  ])('refuses %s with a 400 invalid_parameters', async (query) => {
    const account = freshAccount();
    const listed = await itsm.call('GET', `/v1/accounts/${account}/itsm/incidents?${query}`);
    expect(listed.status).toBe(400);
    expect(listed.headers.get('content-type')).toBe('application/json');
    expect(listed.json).toMatchObject({ error_code: 'invalid_parameters', status_code: 400 });
    expect(listed.json.message).toMatch(/page/);
  });

  it('paginates generic objects of one raw_type the same way', async () => {
    const account = freshAccount();
    const made: CreatedObject[] = [];
    for (const name of ['a', 'b', 'c']) {
      const created = await itsm.call(
        'POST',
        `/v1/accounts/${account}/itsm/objects?raw_type=cmdb_ci`,
        {
          body: { name },
        },
      );
      expect(created.status).toBe(201);
      made.push({
        id: created.json.id,
        created: created.json.raw.object.sys_created_on,
        sysId: created.json.raw.id,
      });
    }
    // Creation order; over an instance, records of one second by sys_id (see listOrder).
    const ids = listOrder(made);
    const first = await itsm.call(
      'GET',
      `/v1/accounts/${account}/itsm/objects?raw_type=cmdb_ci&page_size=2`,
    );
    expect(first.json).toMatchObject({ total: 3, count: 2, page: 1, next_page: 2 });
    const second = await itsm.call(
      'GET',
      `/v1/accounts/${account}/itsm/objects?raw_type=cmdb_ci&page_size=2&page=2`,
    );
    expect(second.json).toMatchObject({ total: 3, count: 1, page: 2, next_page: null });
    expect([...idsOf(first.json), ...idsOf(second.json)]).toEqual(ids);
  });
});
