// Idempotency-Key on creates (spec 9) over real HTTP: a replay returns the first response and
// writes nothing, a reused key with another body is a 409, keys are per account, concurrent
// requests with one key create one object, and a failed request does not use its key up.
import { afterEach, describe, expect, it } from 'vitest';
import type { StartItsmServerOptions } from '../../src/runtime/node.js';
import { type CallResult, startTestItsm, type TestItsm } from '../helpers/itsm.js';

const INCIDENTS = (account: number) => `/v1/accounts/${account}/itsm/incidents`;
const SYS_USERS = (account: number) => `/v1/accounts/${account}/itsm/objects?raw_type=sys_user`;

const servers: TestItsm[] = [];
afterEach(async () => {
  for (let server = servers.pop(); server; server = servers.pop()) await server.close();
});

async function itsm(overrides: Partial<StartItsmServerOptions> = {}): Promise<TestItsm> {
  const server = await startTestItsm(overrides);
  servers.push(server);
  return server;
}

function post(server: TestItsm, path: string, body: unknown, key?: string): Promise<CallResult> {
  return server.call('POST', path, {
    body,
    headers: key === undefined ? {} : { 'Idempotency-Key': key },
  });
}

async function countObjects(server: TestItsm, path: string): Promise<number> {
  const list = await server.call('GET', path);
  expect(list.status, list.text).toBe(200);
  return list.json.total;
}

async function eventsOf(
  server: TestItsm,
  account: number,
): Promise<{ type: string; metadata: { id: string } }[]> {
  const events = await server.call('GET', `/v1/accounts/${account}/events?page_size=1000`);
  expect(events.status, events.text).toBe(200);
  return events.json.objects;
}

const incident = { description: 'mail is down', impact: 'high', urgency: 'medium' };

describe('Idempotency-Key on unified objects', () => {
  it('replays the first response, byte for byte, for the same key and body, marked Idempotent-Replayed', async () => {
    const server = await itsm();

    const first = await post(server, INCIDENTS(123), incident, 'key-1');
    const second = await post(server, INCIDENTS(123), incident, 'key-1');

    expect(first.status, first.text).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(second.status, second.text).toBe(201);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(second.headers.get('content-type')).toBe('application/json');
    expect(second.text).toBe(first.text);
    expect(second.json.id).toBe(first.json.id);
  });

  it('creates only one object and appends only one event for a replayed key', async () => {
    const server = await itsm();

    const first = await post(server, INCIDENTS(123), incident, 'key-1');
    await post(server, INCIDENTS(123), incident, 'key-1');
    await post(server, INCIDENTS(123), incident, 'key-1');

    expect(await countObjects(server, INCIDENTS(123))).toBe(1);
    const events = await eventsOf(server, 123);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'add', metadata: { id: first.json.id } });
  });

  it('creates a second object for the same body without a key', async () => {
    const server = await itsm();

    const first = await post(server, INCIDENTS(123), incident);
    const second = await post(server, INCIDENTS(123), incident);

    expect(second.status).toBe(201);
    expect(second.json.id).not.toBe(first.json.id);
    expect(await countObjects(server, INCIDENTS(123))).toBe(2);
  });

  it('creates a second object for the same body with a different key', async () => {
    const server = await itsm();

    const first = await post(server, INCIDENTS(123), incident, 'key-1');
    const second = await post(server, INCIDENTS(123), incident, 'key-2');

    expect(second.status).toBe(201);
    expect(second.headers.get('idempotent-replayed')).toBeNull();
    expect(second.json.id).not.toBe(first.json.id);
    expect(await countObjects(server, INCIDENTS(123))).toBe(2);
  });

  it('treats the same fields in another key order as the same body', async () => {
    const server = await itsm();

    const first = await post(server, INCIDENTS(123), incident, 'key-order');
    const reordered = { urgency: 'medium', impact: 'high', description: 'mail is down' };
    const second = await post(server, INCIDENTS(123), reordered, 'key-order');

    expect(second.status, second.text).toBe(201);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(second.json.id).toBe(first.json.id);
    expect(await countObjects(server, INCIDENTS(123))).toBe(1);
  });

  it('answers 409 conflict to the same key with a different body, and creates nothing', async () => {
    const server = await itsm();
    await post(server, INCIDENTS(123), incident, 'key-1');

    const conflict = await post(server, INCIDENTS(123), { ...incident, impact: 'low' }, 'key-1');

    expect(conflict.status, conflict.text).toBe(409);
    expect(conflict.headers.get('content-type')).toBe('application/json');
    expect(conflict.json).toMatchObject({ error_code: 'conflict', status_code: 409 });
    expect(conflict.json.message).toMatch(/Idempotency-Key/);
    expect(await countObjects(server, INCIDENTS(123))).toBe(1);
    expect(await eventsOf(server, 123)).toHaveLength(1);
  });

  it('keeps keys per account: the same key in another account creates an object there', async () => {
    const server = await itsm();

    const inFirst = await post(server, INCIDENTS(123), incident, 'shared-key');
    const inSecond = await post(server, INCIDENTS(456), incident, 'shared-key');

    expect(inSecond.status, inSecond.text).toBe(201);
    expect(inSecond.headers.get('idempotent-replayed')).toBeNull();
    expect(inSecond.json.id).not.toBe(inFirst.json.id);
    expect(await countObjects(server, INCIDENTS(123))).toBe(1);
    expect(await countObjects(server, INCIDENTS(456))).toBe(1);

    const replayInFirst = await post(server, INCIDENTS(123), incident, 'shared-key');
    expect(replayInFirst.json.id).toBe(inFirst.json.id);
  });

  it('does not let another account with a different body make the key conflict', async () => {
    const server = await itsm();
    await post(server, INCIDENTS(123), incident, 'shared-key');

    const other = await post(
      server,
      INCIDENTS(456),
      { description: 'something else' },
      'shared-key',
    );

    expect(other.status, other.text).toBe(201);
  });

  it('creates exactly one object when 10 requests with the same key and body arrive at once', async () => {
    const server = await itsm();

    const answers = await Promise.all(
      Array.from({ length: 10 }, () => post(server, INCIDENTS(123), incident, 'concurrent-key')),
    );

    for (const answer of answers) expect(answer.status, answer.text).toBe(201);
    const ids = new Set(answers.map((answer) => answer.json.id));
    expect(ids.size).toBe(1);
    expect(new Set(answers.map((answer) => answer.text)).size).toBe(1);
    expect(
      answers.filter((answer) => answer.headers.get('idempotent-replayed') === 'true'),
    ).toHaveLength(9);
    expect(await countObjects(server, INCIDENTS(123))).toBe(1);
    expect(await eventsOf(server, 123)).toHaveLength(1);
  });

  it('answers 409 to concurrent requests that reuse the key with a different body, creating one object', async () => {
    const server = await itsm();

    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        post(server, INCIDENTS(123), { description: `body ${i % 2}` }, 'contested-key'),
      ),
    );

    const created = answers.filter((answer) => answer.status === 201);
    const conflicts = answers.filter((answer) => answer.status === 409);
    expect(created.length + conflicts.length).toBe(6);
    expect(new Set(created.map((answer) => answer.json.id)).size).toBe(1);
    expect(conflicts.length).toBe(3);
    expect(await countObjects(server, INCIDENTS(123))).toBe(1);
  });

  it('refuses a key longer than 255 characters with a 400, creating nothing', async () => {
    const server = await itsm();

    const response = await post(server, INCIDENTS(123), incident, 'k'.repeat(256));

    expect(response.status, response.text).toBe(400);
    expect(response.json).toMatchObject({ error_code: 'invalid_parameters', status_code: 400 });
    expect(response.json.message).toMatch(/Idempotency-Key/);
    expect(await countObjects(server, INCIDENTS(123))).toBe(0);
  });

  it('accepts a key of exactly 255 characters', async () => {
    const server = await itsm();
    const key = 'k'.repeat(255);

    const first = await post(server, INCIDENTS(123), incident, key);
    const second = await post(server, INCIDENTS(123), incident, key);

    expect(first.status, first.text).toBe(201);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(second.json.id).toBe(first.json.id);
  });

  it('does not use up a key on a request that failed validation', async () => {
    const server = await itsm();

    const refused = await post(server, INCIDENTS(123), { impact: 'enormous' }, 'retry-key');
    expect(refused.status, refused.text).toBe(400);
    const valid = await post(server, INCIDENTS(123), incident, 'retry-key');

    expect(valid.status, valid.text).toBe(201);
    expect(valid.headers.get('idempotent-replayed')).toBeNull();
    expect(await countObjects(server, INCIDENTS(123))).toBe(1);
  });

  it('does not use up a key on a request naming a reference that does not exist', async () => {
    const server = await itsm();

    const refused = await post(
      server,
      INCIDENTS(123),
      { ...incident, problem: 'Fmissing' },
      'retry-key',
    );
    expect(refused.status, refused.text).toBe(400);
    const valid = await post(server, INCIDENTS(123), incident, 'retry-key');

    expect(valid.status, valid.text).toBe(201);
    expect(valid.headers.get('idempotent-replayed')).toBeNull();
  });

  it('replays the first response even after the object has changed', async () => {
    const server = await itsm();
    const first = await post(server, INCIDENTS(123), incident, 'key-1');
    const patched = await server.call('PATCH', `${INCIDENTS(123)}/${first.json.id}`, {
      body: { impact: 'low' },
    });
    expect(patched.status).toBe(200);

    const replay = await post(server, INCIDENTS(123), incident, 'key-1');

    expect(replay.status).toBe(201);
    expect(replay.text).toBe(first.text);
  });

  it('forgets a key once its retention has passed', async () => {
    const server = await itsm({ idempotencyTtlMs: 50 });
    const first = await post(server, INCIDENTS(123), incident, 'short-lived');
    await new Promise((resolve) => setTimeout(resolve, 120));

    const later = await post(server, INCIDENTS(123), incident, 'short-lived');

    expect(later.status).toBe(201);
    expect(later.headers.get('idempotent-replayed')).toBeNull();
    expect(later.json.id).not.toBe(first.json.id);
  });
});

describe('Idempotency-Key retention and the purge of forgotten keys', () => {
  const HOUR = 3_600_000;
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('forgets a key at its retention even while the purge of old keys has not run', async () => {
    const server = await itsm({ idempotencyTtlMs: 50, idempotencyPurgeIntervalMs: HOUR });
    const first = await post(server, INCIDENTS(123), incident, 'expired');
    await sleep(120);

    const again = await post(server, INCIDENTS(123), incident, 'expired');
    const other = await post(
      server,
      INCIDENTS(123),
      { ...incident, description: 'another body' },
      'expired-too',
    );
    await sleep(120);
    const otherBody = await post(
      server,
      INCIDENTS(123),
      { ...incident, description: 'a third body' },
      'expired-too',
    );

    expect(again.status, again.text).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBeNull();
    expect(again.json.id).not.toBe(first.json.id);
    // A forgotten key taken with another body is a new request, not a 409.
    expect(other.status, other.text).toBe(201);
    expect(otherBody.status, otherBody.text).toBe(201);
    expect(otherBody.json.id).not.toBe(other.json.id);
    expect(await countObjects(server, INCIDENTS(123))).toBe(4);
  });

  it('replays the request that took a forgotten key again', async () => {
    const server = await itsm({ idempotencyTtlMs: 200, idempotencyPurgeIntervalMs: HOUR });
    await post(server, INCIDENTS(123), incident, 'reused');
    await sleep(300);

    const second = await post(server, INCIDENTS(123), incident, 'reused');
    const replay = await post(server, INCIDENTS(123), incident, 'reused');

    expect(second.headers.get('idempotent-replayed')).toBeNull();
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.text).toBe(second.text);
  });

  it('does not purge old keys on every keyed write', async () => {
    const server = await itsm({ idempotencyTtlMs: 50, idempotencyPurgeIntervalMs: HOUR });
    await post(server, INCIDENTS(123), incident, 'old');
    await sleep(120);

    await post(server, INCIDENTS(123), incident, 'new');

    expect(await server.store.getIdempotencyRecord(123, 'old')).not.toBeNull();
  });

  it('purges forgotten keys from the store once the purge interval has passed', async () => {
    const server = await itsm({ idempotencyTtlMs: 50, idempotencyPurgeIntervalMs: 50 });
    await post(server, INCIDENTS(123), incident, 'old');
    await sleep(120);

    await post(server, INCIDENTS(123), incident, 'new');

    expect(await server.store.getIdempotencyRecord(123, 'old')).toBeNull();
    expect(await server.store.getIdempotencyRecord(123, 'new')).not.toBeNull();
  });
});

describe('Idempotency-Key on generic objects', () => {
  const user = { first_name: 'Ada', last_name: 'Lovelace', email: 'ada@example.com' };

  it('replays the first response for the same key and record, creating one object', async () => {
    const server = await itsm();

    const first = await post(server, SYS_USERS(123), user, 'user-key');
    const second = await post(server, SYS_USERS(123), user, 'user-key');

    expect(first.status, first.text).toBe(201);
    expect(second.status, second.text).toBe(201);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(second.text).toBe(first.text);
    expect(await countObjects(server, SYS_USERS(123))).toBe(1);
    expect(await eventsOf(server, 123)).toHaveLength(1);
  });

  it('answers 409 to the same key with a different record', async () => {
    const server = await itsm();
    await post(server, SYS_USERS(123), user, 'user-key');

    const conflict = await post(
      server,
      SYS_USERS(123),
      { ...user, email: 'other@example.com' },
      'user-key',
    );

    expect(conflict.status, conflict.text).toBe(409);
    expect(conflict.json.error_code).toBe('conflict');
    expect(await countObjects(server, SYS_USERS(123))).toBe(1);
  });

  it('replays a create that named its sys_id instead of reporting the sys_id as taken', async () => {
    const server = await itsm();
    const record = { ...user, sys_id: '0123456789abcdef0123456789abcdef' };

    const first = await post(server, SYS_USERS(123), record, 'sys-id-key');
    const second = await post(server, SYS_USERS(123), record, 'sys-id-key');

    expect(first.status, first.text).toBe(201);
    expect(second.status, second.text).toBe(201);
    expect(second.json.id).toBe(first.json.id);
  });

  it('creates exactly one generic object when 10 requests with the same key arrive at once', async () => {
    const server = await itsm();

    const answers = await Promise.all(
      Array.from({ length: 10 }, () => post(server, SYS_USERS(123), user, 'concurrent-user')),
    );

    for (const answer of answers) expect(answer.status, answer.text).toBe(201);
    expect(new Set(answers.map((answer) => answer.json.id)).size).toBe(1);
    expect(await countObjects(server, SYS_USERS(123))).toBe(1);
  });

  it('does not use up a key on a request refused for its raw_type', async () => {
    const server = await itsm();

    const refused = await post(server, '/v1/accounts/123/itsm/objects', user, 'user-key');
    expect(refused.status, refused.text).toBe(400);
    const valid = await post(server, SYS_USERS(123), user, 'user-key');

    expect(valid.status, valid.text).toBe(201);
    expect(valid.headers.get('idempotent-replayed')).toBeNull();
  });
});

describe('Idempotency-Key on updates and deletes', () => {
  const ITEM = (account: number, id: string) => `${INCIDENTS(account)}/${id}`;

  function send(
    server: TestItsm,
    method: 'PATCH' | 'DELETE',
    path: string,
    key: string,
    body?: unknown,
  ): Promise<CallResult> {
    return server.call(method, path, { body, headers: { 'Idempotency-Key': key } });
  }

  async function created(server: TestItsm, account = 123): Promise<string> {
    const answer = await post(server, INCIDENTS(account), incident);
    expect(answer.status, answer.text).toBe(201);
    return answer.json.id;
  }

  const writes = async (server: TestItsm, account = 123) =>
    (await eventsOf(server, account)).filter((event) => event.type !== 'add');

  it('replays the first PATCH response for the same key and body: one update, one event', async () => {
    const server = await itsm();
    const id = await created(server);

    const first = await send(server, 'PATCH', ITEM(123, id), 'u-1', { impact: 'low' });
    const second = await send(server, 'PATCH', ITEM(123, id), 'u-1', { impact: 'low' });

    expect(first.status, first.text).toBe(200);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(second.status, second.text).toBe(200);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(second.text).toBe(first.text);
    expect(await writes(server)).toHaveLength(1);
  });

  it('does not undo a later change when a PATCH is repeated with its key', async () => {
    const server = await itsm();
    const id = await created(server);
    await send(server, 'PATCH', ITEM(123, id), 'u-1', { impact: 'low' });
    await server.call('PATCH', ITEM(123, id), { body: { impact: 'medium' } });

    const replay = await send(server, 'PATCH', ITEM(123, id), 'u-1', { impact: 'low' });

    expect(replay.json.impact).toBe('low');
    expect((await server.call('GET', ITEM(123, id))).json.impact).toBe('medium');
    expect(await writes(server)).toHaveLength(2);
  });

  it('applies a PATCH twice without a key (the key is what makes a repeat recognisable)', async () => {
    const server = await itsm();
    const id = await created(server);
    await server.call('PATCH', ITEM(123, id), { body: { impact: 'low' } });
    await server.call('PATCH', ITEM(123, id), { body: { impact: 'low' } });
    expect(await writes(server)).toHaveLength(2);
  });

  it('replays a DELETE for the same key: 204 with no body, one delete event', async () => {
    const server = await itsm();
    const id = await created(server);

    const first = await send(server, 'DELETE', ITEM(123, id), 'd-1');
    const second = await send(server, 'DELETE', ITEM(123, id), 'd-1');

    expect(first.status).toBe(204);
    expect(second.status, second.text).toBe(204);
    expect(second.text).toBe('');
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect((await writes(server)).map((e) => e.type)).toEqual(['delete']);
    // Without the key the object is simply gone.
    expect((await server.call('DELETE', ITEM(123, id))).status).toBe(404);
  });

  it.each<[string, (server: TestItsm, id: string, other: string) => Promise<CallResult>]>([
    [
      'a PATCH with another body',
      (s, id) => send(s, 'PATCH', ITEM(123, id), 'k', { impact: 'high' }),
    ],
    [
      'a PATCH of another object',
      (s, _id, other) => send(s, 'PATCH', ITEM(123, other), 'k', { impact: 'low' }),
    ],
    ['a DELETE of the same object', (s, id) => send(s, 'DELETE', ITEM(123, id), 'k')],
    ['a POST with the same body', (s) => post(s, INCIDENTS(123), { impact: 'low' }, 'k')],
  ])(
    'answers 409 conflict to the PATCH key reused in %s, and writes nothing',
    async (_name, reuse) => {
      const server = await itsm();
      const id = await created(server);
      const other = await created(server);
      await send(server, 'PATCH', ITEM(123, id), 'k', { impact: 'low' });

      const conflict = await reuse(server, id, other);

      expect(conflict.status, conflict.text).toBe(409);
      expect(conflict.json).toMatchObject({ error_code: 'conflict', status_code: 409 });
      expect(conflict.json.message).toMatch(
        /Idempotency-Key "k" was already used with a different request/,
      );
      expect(await writes(server)).toHaveLength(1);
      expect(await countObjects(server, INCIDENTS(123))).toBe(2);
    },
  );

  it('answers 409 to a POST key reused on a PATCH', async () => {
    const server = await itsm();
    const first = await post(server, INCIDENTS(123), incident, 'k');
    const conflict = await send(server, 'PATCH', ITEM(123, first.json.id), 'k', { impact: 'low' });
    expect(conflict.status, conflict.text).toBe(409);
    expect(await writes(server)).toHaveLength(0);
  });

  it('applies exactly one update when 10 PATCHes with the same key arrive at once', async () => {
    const server = await itsm();
    const id = await created(server);

    const answers = await Promise.all(
      Array.from({ length: 10 }, () =>
        send(server, 'PATCH', ITEM(123, id), 'burst', { impact: 'low' }),
      ),
    );

    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    expect(new Set(answers.map((a) => a.text)).size).toBe(1);
    expect(await writes(server)).toHaveLength(1);
  });

  it('does not use up a PATCH key on a request that failed validation', async () => {
    const server = await itsm();
    const id = await created(server);
    const refused = await send(server, 'PATCH', ITEM(123, id), 'v', { impact: 'enormous' });
    expect(refused.status).toBe(400);
    const accepted = await send(server, 'PATCH', ITEM(123, id), 'v', { impact: 'low' });
    expect(accepted.status, accepted.text).toBe(200);
    expect(accepted.headers.get('idempotent-replayed')).toBeNull();
  });

  it('forgets a PATCH key once its retention has passed', async () => {
    const server = await itsm({ idempotencyTtlMs: 0 });
    const id = await created(server);
    await send(server, 'PATCH', ITEM(123, id), 'ttl', { impact: 'low' });
    await new Promise((resolve) => setTimeout(resolve, 5));
    const again = await send(server, 'PATCH', ITEM(123, id), 'ttl', { impact: 'low' });
    expect(again.headers.get('idempotent-replayed')).toBeNull();
    expect(await writes(server)).toHaveLength(2);
  });
});
