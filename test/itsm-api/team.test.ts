// Team users over real HTTP (spec sections 2 and 8): users provisioned from the seed or created as
// sys_user generic objects, listed and fetched under team/users, their name following updates of
// the record everywhere a user object is shown, and kept to their own account.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAVID, SEED_USERS, TIMOTHY, VINOD } from '../fixtures/seed-examples.js';
import { type CreatedObject, listOrder, startTestItsm, type TestItsm } from '../helpers/itsm.js';

let itsm: TestItsm;

beforeAll(async () => {
  itsm = await startTestItsm({ users: SEED_USERS });
});

afterAll(async () => {
  await itsm.close();
});

function makeUser(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { first_name: 'Yu Ming', last_name: 'Lu', email: 'ymlu@kloudless.com', ...overrides };
}

/** Creates a sys_user in a fresh account; returns its object id and team user id. */
async function createUser(
  account: number,
  overrides: Record<string, unknown> = {},
): Promise<{ objectId: string; userId: string }> {
  const created = await itsm.call(
    'POST',
    `/v1/accounts/${account}/itsm/objects?raw_type=sys_user`,
    {
      body: makeUser(overrides),
    },
  );
  expect(created.status, created.text).toBe(201);
  const sysId = created.json.raw.id as string;
  return { objectId: created.json.id, userId: `u${Buffer.from(sysId).toString('base64')}` };
}

/** The seeded users' ids in the order lists show them: seed order, or the instance's (listOrder). */
async function seededOrder(): Promise<string[]> {
  const listed = await itsm.call('GET', '/v1/accounts/123/itsm/objects?raw_type=sys_user');
  const made: CreatedObject[] = [VINOD, TIMOTHY, DAVID].map((id, i) => {
    const sysId = SEED_USERS[i]?.sys_id ?? '';
    const record = listed.json.objects.find((o: { raw: { id: string } }) => o.raw.id === sysId);
    expect(record, `seeded user ${sysId}`).toBeDefined();
    return { id, created: record.raw.object.sys_created_on, sysId };
  });
  return listOrder(made);
}

describe('team users', () => {
  it('lists the provisioned users as a paginated object_list of user objects', async () => {
    const listed = await itsm.call('GET', '/v1/accounts/123/team/users');
    expect(listed.status).toBe(200);
    expect(listed.headers.get('content-type')).toBe('application/json');
    expect(listed.json).toMatchObject({
      total: 3,
      count: 3,
      page: 1,
      next_page: null,
      type: 'object_list',
      api: 'team',
    });
    const users: Record<string, unknown> = {
      [VINOD]: {
        type: 'user',
        api: 'team',
        id: VINOD,
        name: 'Vinod Chandru',
        email: 'vinod@kloudless.com',
      },
      [TIMOTHY]: {
        type: 'user',
        api: 'team',
        id: TIMOTHY,
        name: 'Timothy Liu',
        email: 'timothy@kloudless.com',
      },
      [DAVID]: {
        type: 'user',
        api: 'team',
        id: DAVID,
        name: 'David Thorman',
        email: 'dthorman@kloudless.com',
      },
    };
    expect(listed.json.objects).toEqual((await seededOrder()).map((id) => users[id]));
  });

  it('pages team users with page_size and page', async () => {
    const first = await itsm.call('GET', '/v1/accounts/123/team/users?page_size=2');
    expect(first.json).toMatchObject({ total: 3, count: 2, page: 1, next_page: 2 });
    const second = await itsm.call('GET', '/v1/accounts/123/team/users?page_size=2&page=2');
    expect(second.json).toMatchObject({ total: 3, count: 1, page: 2, next_page: null });
    expect(second.json.objects[0].id).toBe((await seededOrder())[2]);

    const bad = await itsm.call('GET', '/v1/accounts/123/team/users?page_size=0');
    expect(bad.status).toBe(400);
    expect(bad.json.error_code).toBe('invalid_parameters');
  });

  it('derives the user id from the sys_id: 5137153cc611227c000bbd1bd8cd2007 is Vinod Chandru', async () => {
    expect(VINOD).toBe('uNTEzNzE1M2NjNjExMjI3YzAwMGJiZDFiZDhjZDIwMDc=');
    const got = await itsm.call('GET', `/v1/accounts/123/team/users/${VINOD}`);
    expect(got.status).toBe(200);
    expect(got.headers.get('content-type')).toBe('application/json');
    expect(got.json).toEqual({
      type: 'user',
      api: 'team',
      id: 'uNTEzNzE1M2NjNjExMjI3YzAwMGJiZDFiZDhjZDIwMDc=',
      name: 'Vinod Chandru',
      email: 'vinod@kloudless.com',
    });
  });

  it('shows a user created as a sys_user object with its first and last name joined', async () => {
    const account = 200;
    const { userId } = await createUser(account);

    const got = await itsm.call('GET', `/v1/accounts/${account}/team/users/${userId}`);
    expect(got.status).toBe(200);
    expect(got.json).toEqual({
      type: 'user',
      api: 'team',
      id: userId,
      name: 'Yu Ming Lu',
      email: 'ymlu@kloudless.com',
    });

    const listed = await itsm.call('GET', `/v1/accounts/${account}/team/users`);
    expect(listed.json.objects).toEqual([got.json]);
  });

  it('takes the user id from a sys_id given on create', async () => {
    const account = 201;
    const sysId = '0123456789abcdef0123456789abcdef';
    const created = await itsm.call(
      'POST',
      `/v1/accounts/${account}/itsm/objects?raw_type=sys_user`,
      {
        body: makeUser({ sys_id: sysId }),
      },
    );
    expect(created.status).toBe(201);
    const userId = `u${Buffer.from(sysId).toString('base64')}`;
    const got = await itsm.call('GET', `/v1/accounts/${account}/team/users/${userId}`);
    expect(got.status).toBe(200);
    expect(got.json.name).toBe('Yu Ming Lu');
  });

  it('follows a last_name update in team users and in the assignee of an incident', async () => {
    const account = 202;
    const { objectId, userId } = await createUser(account, {
      first_name: 'Ada',
      last_name: 'Byron',
    });
    const incident = await itsm.call('POST', `/v1/accounts/${account}/itsm/incidents`, {
      body: { description: 'Analytical engine overheats', assignee: userId },
    });
    expect(incident.status).toBe(201);
    expect(incident.json.assignee).toEqual({
      type: 'user',
      api: 'team',
      id: userId,
      name: 'Ada Byron',
      email: 'ymlu@kloudless.com',
    });

    const patched = await itsm.call(
      'PATCH',
      `/v1/accounts/${account}/itsm/objects/${objectId}?raw_type=sys_user`,
      { body: { last_name: 'Lovelace' } },
    );
    expect(patched.status).toBe(200);

    const user = await itsm.call('GET', `/v1/accounts/${account}/team/users/${userId}`);
    expect(user.json.name).toBe('Ada Lovelace');
    const listed = await itsm.call('GET', `/v1/accounts/${account}/team/users`);
    expect(listed.json.objects.map((u: { name: string }) => u.name)).toEqual(['Ada Lovelace']);

    const got = await itsm.call(
      'GET',
      `/v1/accounts/${account}/itsm/incidents/${incident.json.id}`,
    );
    expect(got.json.assignee).toMatchObject({ id: userId, name: 'Ada Lovelace' });
    const incidents = await itsm.call('GET', `/v1/accounts/${account}/itsm/incidents`);
    expect(incidents.json.objects[0].assignee).toMatchObject({ id: userId, name: 'Ada Lovelace' });
  });

  it('drops a deleted sys_user from team users', async () => {
    const account = 203;
    const { objectId, userId } = await createUser(account);
    const deleted = await itsm.call(
      'DELETE',
      `/v1/accounts/${account}/itsm/objects/${objectId}?raw_type=sys_user`,
    );
    expect(deleted.status).toBe(204);
    expect((await itsm.call('GET', `/v1/accounts/${account}/team/users/${userId}`)).status).toBe(
      404,
    );
    expect((await itsm.call('GET', `/v1/accounts/${account}/team/users`)).json.total).toBe(0);
  });

  it.each([
    [
      'a well-formed id of no user',
      `u${Buffer.from('ffffffffffffffffffffffffffffffff').toString('base64')}`,
    ],
    ['an id that is not Base64', 'u!!!'],
    ['an id without the u prefix', 'NTEzNzE1M2NjNjExMjI3YzAwMGJiZDFiZDhjZDIwMDc='],
    ['a plain word', 'nobody'],
  ])('answers %s with a 404', async (_what, id) => {
    const got = await itsm.call('GET', `/v1/accounts/123/team/users/${encodeURIComponent(id)}`);
    expect(got.status).toBe(404);
    expect(got.headers.get('content-type')).toBe('application/json');
    expect(got.json).toMatchObject({ error_code: 'not_found', status_code: 404 });
  });

  it('keeps the users of account 123 out of account 124', async () => {
    const listed = await itsm.call('GET', '/v1/accounts/124/team/users');
    expect(listed.status).toBe(200);
    expect(listed.json).toMatchObject({ total: 0, count: 0, objects: [], next_page: null });

    const got = await itsm.call('GET', `/v1/accounts/124/team/users/${VINOD}`);
    expect(got.status).toBe(404);

    const incident = await itsm.call('POST', '/v1/accounts/124/itsm/incidents', {
      body: { description: 'Who is Vinod?', assignee: VINOD },
    });
    expect(incident.status).toBe(201);
    expect(incident.json.assignee).toEqual({ type: 'user', api: 'team', id: VINOD });
  });
});
