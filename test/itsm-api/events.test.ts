// The activity log over real HTTP (spec section 6): one event per create, update and delete,
// metadata as a GET returns the object, cursor walking without duplicates or gaps, events/latest,
// malformed, foreign and expired cursors, per-account logs and the acting user.
import { afterEach, describe, expect, it } from 'vitest';
import type { StartItsmServerOptions } from '../../src/runtime/node.js';
import { SEED_USERS, VINOD } from '../fixtures/seed-examples.js';
import { startTestItsm, type TestItsm } from '../helpers/itsm.js';

const servers: TestItsm[] = [];

async function start(overrides: Partial<StartItsmServerOptions> = {}): Promise<TestItsm> {
  const itsm = await startTestItsm(overrides);
  servers.push(itsm);
  return itsm;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((itsm) => itsm.close()));
});

function makeIncident(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { description: 'Mail server is down', impact: 'high', urgency: 'medium', ...overrides };
}

async function createIncident(
  itsm: TestItsm,
  account = 1,
  overrides: Record<string, unknown> = {},
): Promise<string> {
  const created = await itsm.call('POST', `/v1/accounts/${account}/itsm/incidents`, {
    body: makeIncident(overrides),
  });
  expect(created.status).toBe(201);
  return created.json.id as string;
}

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
async function listEvents(itsm: TestItsm, query = '', account = 1, headers = {}): Promise<any> {
  const listed = await itsm.call('GET', `/v1/accounts/${account}/events${query}`, { headers });
  expect(listed.status, listed.text).toBe(200);
  return listed.json;
}

const ISO_SECONDS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

describe('events for writes', () => {
  it('appends one add event whose metadata is the object as GET returns it', async () => {
    const itsm = await start({ users: SEED_USERS.map((u) => ({ ...u, account: 1 })) });
    const before = await listEvents(itsm);
    const id = await createIncident(itsm, 1, { assignee: VINOD });
    const got = await itsm.call('GET', `/v1/accounts/1/itsm/incidents/${id}`);

    const list = await listEvents(itsm, `?cursor=${before.cursor}`);
    expect(list.count).toBe(1);
    expect(list.objects).toHaveLength(1);
    const event = list.objects[0];
    expect(event).toMatchObject({
      account: 1,
      type: 'add',
      ip: '127.0.0.1',
      user_id: null,
      api: 'itsm',
    });
    expect(event.id).toMatch(/^\d+$/);
    expect(typeof event.action).toBe('string');
    expect(event.modified).toMatch(ISO_SECONDS);
    expect(event.metadata).toEqual(got.json);
    expect(event.metadata.assignee).toMatchObject({ id: VINOD, name: 'Vinod Chandru' });
    expect(event.metadata).not.toHaveProperty('raw');
    expect(event).not.toHaveProperty('previous_metadata');
  });

  it('appends one update event with the object before the change as previous_metadata', async () => {
    const itsm = await start();
    const id = await createIncident(itsm);
    const before = await itsm.call('GET', `/v1/accounts/1/itsm/incidents/${id}`);
    const { cursor } = await listEvents(itsm);

    const patched = await itsm.call('PATCH', `/v1/accounts/1/itsm/incidents/${id}`, {
      body: { impact: 'low', description: 'Mail server is back' },
    });
    expect(patched.status).toBe(200);
    const after = await itsm.call('GET', `/v1/accounts/1/itsm/incidents/${id}`);

    const list = await listEvents(itsm, `?cursor=${cursor}`);
    expect(list.objects).toHaveLength(1);
    const event = list.objects[0];
    expect(event).toMatchObject({ account: 1, type: 'update', ip: '127.0.0.1', api: 'itsm' });
    expect(event.metadata).toEqual(after.json);
    expect(event.previous_metadata).toEqual(before.json);
    expect(event.previous_metadata.impact).toBe('high');
    expect(event.metadata.impact).toBe('low');
  });

  it('appends one delete event whose metadata is only id, type and api', async () => {
    const itsm = await start();
    const id = await createIncident(itsm);
    const { cursor } = await listEvents(itsm);

    const deleted = await itsm.call('DELETE', `/v1/accounts/1/itsm/incidents/${id}`);
    expect(deleted.status).toBe(204);

    const list = await listEvents(itsm, `?cursor=${cursor}`);
    expect(list.objects).toHaveLength(1);
    const event = list.objects[0];
    expect(event).toMatchObject({ account: 1, type: 'delete', ip: '127.0.0.1', api: 'itsm' });
    expect(event.metadata).toEqual({ id, type: 'incident', api: 'itsm' });
    expect(event).not.toHaveProperty('previous_metadata');
  });

  it('records a generic object with its raw record, as GET returns it', async () => {
    const itsm = await start();
    const created = await itsm.call('POST', '/v1/accounts/1/itsm/objects?raw_type=sys_user', {
      body: { first_name: 'Yu Ming', last_name: 'Lu', email: 'ymlu@kloudless.com' },
    });
    expect(created.status).toBe(201);
    const got = await itsm.call(
      'GET',
      `/v1/accounts/1/itsm/objects/${created.json.id}?raw_type=sys_user`,
    );

    const list = await listEvents(itsm);
    expect(list.objects).toHaveLength(1);
    expect(list.objects[0].metadata).toEqual(got.json);
  });

  it('includes raw in metadata and previous_metadata only with X-Kloudless-Raw-Data: true', async () => {
    const itsm = await start();
    const id = await createIncident(itsm);
    const rawBefore = await itsm.call('GET', `/v1/accounts/1/itsm/incidents/${id}`, {
      headers: { 'X-Kloudless-Raw-Data': 'true' },
    });
    await itsm.call('PATCH', `/v1/accounts/1/itsm/incidents/${id}`, { body: { impact: 'low' } });
    const rawAfter = await itsm.call('GET', `/v1/accounts/1/itsm/incidents/${id}`, {
      headers: { 'X-Kloudless-Raw-Data': 'true' },
    });

    const withRaw = await listEvents(itsm, '', 1, { 'X-Kloudless-Raw-Data': 'true' });
    expect(withRaw.objects.map((e: { type: string }) => e.type)).toEqual(['add', 'update']);
    expect(withRaw.objects[0].metadata).toEqual(rawBefore.json);
    expect(withRaw.objects[1].previous_metadata).toEqual(rawBefore.json);
    expect(withRaw.objects[1].metadata).toEqual(rawAfter.json);
    expect(withRaw.objects[1].metadata.raw).toMatchObject({ impact: '3' });

    for (const headers of [{}, { 'X-Kloudless-Raw-Data': 'false' }]) {
      const plain = await listEvents(itsm, '', 1, headers);
      expect(plain.objects[0].metadata).not.toHaveProperty('raw');
      expect(plain.objects[1].metadata).not.toHaveProperty('raw');
      expect(plain.objects[1].previous_metadata).not.toHaveProperty('raw');
    }
  });

  it('appends no event for a rejected write', async () => {
    const itsm = await start();
    const id = await createIncident(itsm);
    const { cursor } = await listEvents(itsm);

    const badCreate = await itsm.call('POST', '/v1/accounts/1/itsm/incidents', {
      body: { impact: 'enormous' },
    });
    expect(badCreate.status).toBe(400);
    const badPatch = await itsm.call('PATCH', `/v1/accounts/1/itsm/incidents/${id}`, {
      body: { no_such_field: 1 },
    });
    expect(badPatch.status).toBe(400);
    const missing = await itsm.call('DELETE', '/v1/accounts/1/itsm/incidents/Fnope');
    expect(missing.status).toBe(404);

    const list = await listEvents(itsm, `?cursor=${cursor}`);
    expect(list.objects).toEqual([]);
    expect(list.remaining).toBe(0);
  });
  it('appends exactly one event per write when writes run concurrently', async () => {
    const itsm = await start();
    const created = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        itsm.call('POST', '/v1/accounts/1/itsm/incidents', {
          body: makeIncident({ description: `c${i}` }),
        }),
      ),
    );
    expect(created.map((r) => r.status)).toEqual(Array(20).fill(201));

    const list = await listEvents(itsm);
    expect(list.count).toBe(20);
    expect(new Set(list.objects.map((e: { id: string }) => e.id)).size).toBe(20);
    expect(new Set(list.objects.map((e: { metadata: { id: string } }) => e.metadata.id))).toEqual(
      new Set(created.map((r) => r.json.id)),
    );
  });

  it('appends no second event when a POST is replayed with the same Idempotency-Key', async () => {
    const itsm = await start();
    const send = () =>
      itsm.call('POST', '/v1/accounts/1/itsm/incidents', {
        body: makeIncident(),
        headers: { 'Idempotency-Key': 'create-once' },
      });
    const first = await send();
    const replay = await send();
    expect(first.status).toBe(201);
    expect(replay.status).toBe(201);
    expect(replay.json.id).toBe(first.json.id);

    const list = await listEvents(itsm);
    expect(list.objects).toHaveLength(1);
  });
});

describe('the acting user of an event', () => {
  it.each([
    {
      when: 'a Bearer token bound to a user',
      auth: 'Bearer alice-token',
      headers: {},
      userId: 'uYWxpY2U=',
    },
    {
      when: 'the API key with X-Kloudless-As-User',
      auth: undefined,
      headers: { 'X-Kloudless-As-User': 'uYm9i' },
      userId: 'uYm9i',
    },
    { when: 'the API key alone', auth: undefined, headers: {}, userId: null },
    {
      when: 'a Bearer token without a user',
      auth: 'Bearer service-token',
      headers: {},
      userId: null,
    },
    {
      when: 'a Bearer token that asks to act as another user (only the application may)',
      auth: 'Bearer alice-token',
      headers: { 'X-Kloudless-As-User': 'uYm9i' },
      userId: 'uYWxpY2U=',
    },
  ] as { when: string; auth?: string; headers: Record<string, string>; userId: string | null }[])(
    'records user_id $userId for $when',
    async ({ auth, headers, userId }) => {
      const itsm = await start({
        tokens: {
          'alice-token': { account: 1, userId: 'uYWxpY2U=' },
          'service-token': { account: 1 },
        },
      });
      const created = await itsm.call('POST', '/v1/accounts/1/itsm/incidents', {
        body: makeIncident(),
        headers,
        ...(auth !== undefined && { auth }),
      });
      expect(created.status).toBe(201);

      const list = await listEvents(itsm);
      expect(list.objects).toHaveLength(1);
      expect(list.objects[0].user_id).toBe(userId);
    },
  );
});

describe('cursor walking', () => {
  it('walks five events two at a time with remaining 3, 1, 0 and no duplicates or gaps', async () => {
    const itsm = await start();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await createIncident(itsm, 1, { description: `n${i}` }));

    const pages = [];
    let cursor: string | undefined;
    for (let i = 0; i < 3; i++) {
      const page = await listEvents(itsm, `?page_size=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(typeof page.cursor).toBe('string');
      expect(page.type).toBe('object_list');
      expect(page.count).toBe(page.objects.length);
      pages.push(page);
      cursor = page.cursor;
    }

    expect(pages.map((p) => p.objects.length)).toEqual([2, 2, 1]);
    expect(pages.map((p) => p.remaining)).toEqual([3, 1, 0]);
    const events = pages.flatMap((p) => p.objects);
    expect(events.map((e: { metadata: { id: string } }) => e.metadata.id)).toEqual(ids);
    const eventIds = events.map((e: { id: string }) => e.id);
    expect(new Set(eventIds).size).toBe(5);
    expect(eventIds.map(Number)).toEqual([...eventIds.map(Number)].sort((a, b) => a - b));

    const drained = await listEvents(itsm, `?page_size=2&cursor=${cursor}`);
    expect(drained.objects).toEqual([]);
    expect(drained.remaining).toBe(0);
    expect(drained.cursor).toBe(cursor);
  });

  it('lists the events created after the last cursor on the next call', async () => {
    const itsm = await start();
    for (let i = 0; i < 3; i++) await createIncident(itsm);
    const first = await listEvents(itsm);
    expect(first.objects).toHaveLength(3);
    expect(first.remaining).toBe(0);

    const later = [await createIncident(itsm), await createIncident(itsm)];
    const next = await listEvents(itsm, `?cursor=${first.cursor}`);
    expect(next.objects.map((e: { metadata: { id: string } }) => e.metadata.id)).toEqual(later);
    expect(next.remaining).toBe(0);
    expect(Number(next.cursor)).toBeGreaterThan(Number(first.cursor));
  });

  it('lists from the oldest retained event when no cursor is given', async () => {
    const itsm = await start();
    const ids = [await createIncident(itsm), await createIncident(itsm)];
    await itsm.call('PATCH', `/v1/accounts/1/itsm/incidents/${ids[0]}`, {
      body: { impact: 'low' },
    });

    const list = await listEvents(itsm);
    expect(list.objects.map((e: { type: string }) => e.type)).toEqual(['add', 'add', 'update']);
    expect(list.objects[0].metadata.id).toBe(ids[0]);
  });

  it('returns from events/latest the cursor of the newest event, and only later events follow it', async () => {
    const itsm = await start();
    await createIncident(itsm);
    await createIncident(itsm);
    const all = await listEvents(itsm);

    const latest = await itsm.call('GET', '/v1/accounts/1/events/latest');
    expect(latest.status).toBe(200);
    expect(latest.headers.get('content-type')).toBe('application/json');
    expect(latest.json).toEqual({ cursor: all.cursor });

    const nothingYet = await listEvents(itsm, `?cursor=${latest.json.cursor}`);
    expect(nothingYet.objects).toEqual([]);
    expect(nothingYet.remaining).toBe(0);

    const newer = await createIncident(itsm);
    const after = await listEvents(itsm, `?cursor=${latest.json.cursor}`);
    expect(after.objects.map((e: { metadata: { id: string } }) => e.metadata.id)).toEqual([newer]);
  });

  it('gives an account without events a latest cursor from which its first event is listed', async () => {
    const itsm = await start();
    await createIncident(itsm, 1);
    const latest = await itsm.call('GET', '/v1/accounts/2/events/latest');
    expect(latest.status).toBe(200);
    expect(latest.json.cursor).toMatch(/^\d+$/);

    const id = await createIncident(itsm, 2);
    const list = await listEvents(itsm, `?cursor=${latest.json.cursor}`, 2);
    expect(list.objects.map((e: { metadata: { id: string } }) => e.metadata.id)).toEqual([id]);
  });

  it.each(['abc', '-1', '1.5', '1e3', ' 1'])(
    'refuses the malformed cursor %j with a 400',
    async (cursor) => {
      const itsm = await start();
      await createIncident(itsm);
      const listed = await itsm.call(
        'GET',
        `/v1/accounts/1/events?cursor=${encodeURIComponent(cursor)}`,
      );
      expect(listed.status).toBe(400);
      expect(listed.headers.get('content-type')).toBe('application/json');
      expect(listed.json).toMatchObject({ error_code: 'invalid_parameters', status_code: 400 });
    },
  );

  it('refuses a cursor the server never issued, far beyond the newest event', async () => {
    const itsm = await start();
    await createIncident(itsm);
    const { cursor } = (await itsm.call('GET', '/v1/accounts/1/events/latest')).json;
    const listed = await itsm.call(
      'GET',
      `/v1/accounts/1/events?cursor=${Number(cursor) + 1_000_000}`,
    );
    expect(listed.status).toBe(400);
    expect(listed.json).toMatchObject({ error_code: 'invalid_parameters', status_code: 400 });
  });
});

describe('event retention', () => {
  it('reports a cursor older than the retained events as expired instead of skipping events', async () => {
    const itsm = await start({ eventRetention: 3 });
    await createIncident(itsm);
    const { cursor } = (await itsm.call('GET', '/v1/accounts/1/events/latest')).json;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await createIncident(itsm));

    const listed = await itsm.call('GET', `/v1/accounts/1/events?cursor=${cursor}`);
    expect(listed.status).toBe(400);
    expect(listed.headers.get('content-type')).toBe('application/json');
    expect(listed.json).toMatchObject({ error_code: 'invalid_parameters', status_code: 400 });
    expect(listed.json.message).toMatch(/expired/i);

    const restart = await listEvents(itsm);
    expect(restart.objects.map((e: { metadata: { id: string } }) => e.metadata.id)).toEqual(
      ids.slice(2),
    );
  });

  it('applies retention to each account separately', async () => {
    const itsm = await start({ eventRetention: 3 });
    const { cursor } = (await itsm.call('GET', '/v1/accounts/1/events/latest')).json;
    const mine = [await createIncident(itsm, 1), await createIncident(itsm, 1)];
    for (let i = 0; i < 6; i++) await createIncident(itsm, 2);

    const list = await listEvents(itsm, `?cursor=${cursor}`, 1);
    expect(list.objects.map((e: { metadata: { id: string } }) => e.metadata.id)).toEqual(mine);
    expect((await listEvents(itsm, '', 2)).count).toBe(3);
  });

  it('lists exactly the newest retained events when no cursor is given', async () => {
    const itsm = await start({ eventRetention: 3 });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await createIncident(itsm));

    const list = await listEvents(itsm);
    expect(list.count).toBe(3);
    expect(list.remaining).toBe(0);
    expect(list.objects.map((e: { metadata: { id: string } }) => e.metadata.id)).toEqual(
      ids.slice(3),
    );
  });

  it('still accepts a cursor that points just before the oldest retained event', async () => {
    const itsm = await start({ eventRetention: 3 });
    for (let i = 0; i < 3; i++) await createIncident(itsm);
    const first = await listEvents(itsm, '?page_size=1');
    const newer = await createIncident(itsm);

    const rest = await listEvents(itsm, `?cursor=${first.cursor}`);
    expect(rest.objects.map((e: { metadata: { id: string } }) => e.metadata.id)).toHaveLength(3);
    expect(rest.objects.at(-1).metadata.id).toBe(newer);
  });
});

describe('events per account', () => {
  it('keeps each account to its own events', async () => {
    const itsm = await start();
    const one = await createIncident(itsm, 1);
    const two = await createIncident(itsm, 2);
    const oneAgain = await createIncident(itsm, 1);

    const accountOne = await listEvents(itsm, '', 1);
    expect(accountOne.objects.map((e: { metadata: { id: string } }) => e.metadata.id)).toEqual([
      one,
      oneAgain,
    ]);
    expect(accountOne.objects.every((e: { account: number }) => e.account === 1)).toBe(true);

    const accountTwo = await listEvents(itsm, '', 2);
    expect(accountTwo.objects.map((e: { metadata: { id: string } }) => e.metadata.id)).toEqual([
      two,
    ]);
    expect(accountTwo.objects[0].account).toBe(2);

    const accountThree = await listEvents(itsm, '', 3);
    expect(accountThree.objects).toEqual([]);
    expect(accountThree.remaining).toBe(0);
  });

  it("does not count another account's events as remaining", async () => {
    const itsm = await start();
    await createIncident(itsm, 1);
    for (let i = 0; i < 4; i++) await createIncident(itsm, 2);
    await createIncident(itsm, 1);

    const page = await listEvents(itsm, '?page_size=1', 1);
    expect(page.remaining).toBe(1);
    const rest = await listEvents(itsm, `?page_size=1&cursor=${page.cursor}`, 1);
    expect(rest.objects).toHaveLength(1);
    expect(rest.remaining).toBe(0);
  });
});

describe('event page size', () => {
  it.each(['0', '1001', '-1', 'abc', '2.5'])(
    'refuses page_size %s with a 400',
    async (pageSize) => {
      const itsm = await start();
      const listed = await itsm.call('GET', `/v1/accounts/1/events?page_size=${pageSize}`);
      expect(listed.status).toBe(400);
      expect(listed.json).toMatchObject({ error_code: 'invalid_parameters', status_code: 400 });
    },
  );

  it('returns 100 events per page by default and up to 1000 when asked', async () => {
    const itsm = await start();
    for (let i = 0; i < 105; i++) await createIncident(itsm);

    const byDefault = await listEvents(itsm);
    expect(byDefault.count).toBe(100);
    expect(byDefault.remaining).toBe(5);

    const large = await listEvents(itsm, '?page_size=1000');
    expect(large.count).toBe(105);
    expect(large.remaining).toBe(0);
  });
});
