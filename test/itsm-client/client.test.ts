// The typed ITSM client over real HTTP against the embedded API on 127.0.0.1: every method,
// page iteration, auth, Kloudless errors, and the retry rules under faults injected by the
// server (429 with Retry-After, 5xx, a write applied and then answered 500, latency past the
// timeout) and a refused connection. A recording HTTP server stands in for an API that speaks
// the contract wrongly, which the embedded one never does.
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createItsmClient,
  type ItsmApiError,
  type ItsmClient,
  type ItsmClientOptions,
  ItsmRequestError,
  ItsmResponseError,
  parseRetryAfter,
  type RetryInfo,
} from '../../src/itsm/client.js';
import type { UnifiedType } from '../../src/itsm/fields.js';
import type { FaultController } from '../../src/server/faults.js';
import { SEED_USERS, TIMOTHY, VINOD } from '../fixtures/seed-examples.js';
import { startTestItsm, TEST_API_KEY, type TestItsm } from '../helpers/itsm.js';
import { deadUrl } from '../helpers/receiver.js';

const TOKEN = 'token-of-account-7';

let itsm: TestItsm;
let faults: FaultController;

beforeAll(async () => {
  itsm = await startTestItsm({
    users: SEED_USERS,
    tokens: { [TOKEN]: { account: 7, userId: 'uc2Vy' } },
    faults: {},
  });
  if (!itsm.itsm.faults) throw new Error('the test server was started without fault injection');
  faults = itsm.itsm.faults;
});

afterAll(async () => {
  await itsm.close();
});

beforeEach(() => {
  faults.clear();
  faults.resetCounters();
});

let lastAccount = 1000;
/** Each test writes to an account of its own. */
const freshAccount = () => ++lastAccount;

interface TestClient {
  client: ItsmClient;
  /** Delays the client asked to sleep, in order. */
  delays: number[];
  retries: RetryInfo[];
}

/** A client of the test server that records its waits instead of sleeping. */
function makeClient(overrides: Partial<ItsmClientOptions> = {}): TestClient {
  const delays: number[] = [];
  const retries: RetryInfo[] = [];
  const client = createItsmClient({
    baseUrl: `${itsm.url}/v1`,
    auth: { apiKey: TEST_API_KEY },
    retry: { maxAttempts: 5, baseDelayMs: 5, maxDelayMs: 20 },
    sleep: async (ms) => {
      delays.push(ms);
    },
    onRetry: (info) => retries.push(info),
    ...overrides,
  });
  return { client, delays, retries };
}

async function collect<T>(iterator: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterator) items.push(item);
  return items;
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the call to fail, and it succeeded');
}

async function apiFailure(promise: Promise<unknown>): Promise<ItsmApiError> {
  const error = await failure(promise);
  expect(error.name, error.message).toBe('ItsmApiError');
  return error as ItsmApiError;
}

const CREATE_BODIES: Record<UnifiedType, Record<string, unknown>> = {
  incident: { description: 'mail is down', impact: 'high', urgency: 'medium', assignee: VINOD },
  problem: { description: 'SP2 breaks applications', priority: 'critical' },
  change: { description: 'add a drive', risk: 'low', start_date: '2017-12-01T15:10:00Z' },
  article: { topic: 'Dev set-up', text: '<p>Follow the steps</p>', author: TIMOTHY },
  asset: { name: 'Monitor', model: 'SyncMaster', quantity: 2 },
};

describe('reading and writing objects', () => {
  it('iterates every object of every page, following next_page', async () => {
    const { client } = makeClient();
    const account = freshAccount();
    const created: string[] = [];
    for (let i = 0; i < 25; i++) {
      created.push((await client.create(account, 'incident', { description: `#${i}` })).id);
    }
    faults.resetCounters();

    const listed = await collect(client.list(account, 'incident', { pageSize: 10 }));

    expect(listed.map((incident) => incident.id)).toEqual(created);
    expect(listed.every((incident) => incident.type === 'incident')).toBe(true);
    expect(faults.counters().requests).toBe(3);
  });

  it('returns one page with its total, count and next_page', async () => {
    const { client } = makeClient();
    const account = freshAccount();
    for (let i = 0; i < 3; i++) await client.create(account, 'asset', { name: `asset ${i}` });

    const first = await client.listPage(account, 'asset', { pageSize: 2 });
    const second = await client.listPage(account, 'asset', { page: 2, pageSize: 2 });

    expect(first).toMatchObject({ total: 3, count: 2, page: 1, next_page: 2, type: 'object_list' });
    expect(second).toMatchObject({ total: 3, count: 1, page: 2, next_page: null });
    expect(second.objects[0]?.name).toBe('asset 2');
  });

  it('yields nothing for an empty collection', async () => {
    const { client } = makeClient();
    expect(await collect(client.list(freshAccount(), 'problem'))).toEqual([]);
  });

  it.each(Object.keys(CREATE_BODIES) as UnifiedType[])(
    'creates, gets, updates, lists and deletes a %s',
    async (type) => {
      const { client } = makeClient();
      const account = freshAccount();

      const created = await client.create(account, type, CREATE_BODIES[type]);
      expect(created).toMatchObject({ type, api: 'itsm' });
      expect(created.raw).toBeUndefined();
      const fetched = await client.get(account, type, created.id);
      expect(fetched).toEqual(created);

      const updated = await client.update(account, type, created.id, { description: 'changed' });
      expect(updated.description).toBe('changed');
      expect((await client.get(account, type, created.id)).description).toBe('changed');
      expect((await collect(client.list(account, type))).map((o) => o.id)).toEqual([created.id]);

      await client.delete(account, type, created.id);
      const gone = await apiFailure(client.get(account, type, created.id));
      expect(gone.status).toBe(404);
    },
  );

  it('reads user fields back as user objects with name and email', async () => {
    const { client } = makeClient();
    const incident = await client.create(123, 'incident', CREATE_BODIES.incident);
    expect(incident.assignee).toEqual({
      type: 'user',
      api: 'team',
      id: VINOD,
      name: 'Vinod Chandru',
      email: 'vinod@kloudless.com',
    });
  });

  it('creates, gets, updates, lists and deletes generic objects of a raw type', async () => {
    const { client } = makeClient();
    const account = freshAccount();
    const rawType = 'u_widget';

    const created = await client.create(account, 'object', { name: 'gear', size: 3 }, { rawType });
    expect(created.raw).toMatchObject({ type: rawType, object: { name: 'gear', size: 3 } });
    expect(created.href).toContain('raw_type=u_widget');
    expect(await client.get(account, 'object', created.id, { rawType })).toEqual(created);

    const updated = await client.update(account, 'object', created.id, { size: 4 }, { rawType });
    expect(updated.raw.object).toMatchObject({ name: 'gear', size: 4 });
    const listed = await collect(client.list(account, 'object', { rawType }));
    expect(listed.map((o) => o.id)).toEqual([created.id]);
    expect(await collect(client.list(account, 'object', { rawType: 'u_other' }))).toEqual([]);

    await client.delete(account, 'object', created.id, { rawType });
    expect((await apiFailure(client.get(account, 'object', created.id, { rawType }))).status).toBe(
      404,
    );
  });

  it('refuses generic-object calls without rawType before sending anything', async () => {
    const { client } = makeClient();
    const account = freshAccount();

    await expect(client.get(account, 'object', 'F1')).rejects.toThrow(/needs \{ rawType \}/);
    await expect(client.create(account, 'object', { a: 1 })).rejects.toThrow(/sys_user/);
    expect(() => client.list(account, 'object')).toThrow(TypeError);
    await expect(client.get(account, 'incident', 'F1', { rawType: 'x' })).rejects.toThrow(
      /only applies to generic objects/,
    );
    expect(faults.counters().requests).toBe(0);
  });

  it('asks for the upstream record when rawData is on', async () => {
    const { client } = makeClient({ rawData: true });
    const incident = await client.create(freshAccount(), 'incident', { impact: 'high' });
    expect(incident.raw).toMatchObject({ impact: '1' });
    expect(String(incident.raw?.number)).toMatch(/^INC\d{7}$/);
  });

  it('returns the first object again when a create is repeated with the same Idempotency-Key', async () => {
    const { client } = makeClient();
    const account = freshAccount();
    const first = await client.create(
      account,
      'problem',
      { description: 'p' },
      { idempotencyKey: 'k1' },
    );
    const again = await client.create(
      account,
      'problem',
      { description: 'p' },
      { idempotencyKey: 'k1' },
    );
    expect(again.id).toBe(first.id);
    expect(await collect(client.list(account, 'problem'))).toHaveLength(1);
  });
});

describe('events, cursors and team users', () => {
  it('pages events after a cursor and hands back the cursor to continue from', async () => {
    const { client } = makeClient();
    const account = freshAccount();
    const start = await client.latestCursor(account);
    const incident = await client.create(account, 'incident', { description: 'a' });
    await client.update(account, 'incident', incident.id, { description: 'b' });
    await client.delete(account, 'incident', incident.id);

    const first = await client.events(account, { cursor: start, pageSize: 2 });
    expect(first.objects.map((e) => e.type)).toEqual(['add', 'update']);
    expect(first.remaining).toBe(1);
    expect(first.objects[1]?.previous_metadata).toMatchObject({ description: 'a' });
    const second = await client.events(account, { cursor: first.cursor });
    expect(second.objects.map((e) => e.type)).toEqual(['delete']);
    expect(second.objects[0]?.metadata).toEqual({ id: incident.id, type: 'incident', api: 'itsm' });
    expect(second.remaining).toBe(0);
    expect(second.cursor).toBe(await client.latestCursor(account));

    const fromStart = await client.events(account);
    expect(fromStart.objects).toHaveLength(3);
  });

  it('records the asUser header as the user of the events the application causes', async () => {
    const { client } = makeClient({ asUser: VINOD });
    const account = freshAccount();
    await client.create(account, 'incident', { description: 'as Vinod' });
    const events = await client.events(account);
    expect(events.objects[0]?.user_id).toBe(VINOD);
  });

  it('iterates every team user across pages and fetches one by id', async () => {
    const { client } = makeClient();
    const users = await collect(client.teamUsers(123, { pageSize: 2 }));
    expect(users.map((u) => u.name)).toEqual(['Vinod Chandru', 'Timothy Liu', 'David Thorman']);
    expect(await client.teamUser(123, TIMOTHY)).toEqual({
      type: 'user',
      api: 'team',
      id: TIMOTHY,
      name: 'Timothy Liu',
      email: 'timothy@kloudless.com',
    });
    const missing = await apiFailure(client.teamUser(123, 'unope'));
    expect(missing).toMatchObject({ status: 404, errorCode: 'not_found' });
  });
});

describe('auth and the generic request', () => {
  it('speaks to accounts/me with a Bearer token', async () => {
    const { client } = makeClient({ auth: { bearer: TOKEN } });
    const created = await client.create('me', 'incident', { description: 'mine' });
    expect((await client.get(7, 'incident', created.id)).id).toBe(created.id);
    expect((await collect(client.list('me', 'incident'))).map((o) => o.id)).toContain(created.id);
    const events = await client.events('me', { cursor: '0' });
    expect(events.objects.at(-1)?.user_id).toBe('uc2Vy');
  });

  it('returns status, parsed JSON and headers, and null for a 204', async () => {
    const { client } = makeClient({ baseUrl: `${itsm.url}/v1/` });
    const account = freshAccount();
    const created = await client.request({
      method: 'POST',
      path: `/accounts/${account}/itsm/incidents`,
      body: { description: 'raw call' },
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('content-type')).toBe('application/json');
    const id = (created.body as { id: string }).id;
    const page = await client.request({
      method: 'get',
      path: `accounts/${account}/itsm/incidents`,
      query: { page_size: 1, page: undefined },
    });
    expect(page.body).toMatchObject({ total: 1, count: 1 });
    const deleted = await client.request({
      method: 'DELETE',
      path: `accounts/${account}/itsm/incidents/${id}`,
    });
    expect(deleted).toMatchObject({ status: 204, body: null });
  });
});

describe('options', () => {
  it.each([
    [{ baseUrl: 'itsm.local/v1' }, /baseUrl must be an absolute URL/],
    [{ timeoutMs: 0 }, /timeoutMs must be a number > 0/],
    [{ retry: { maxAttempts: 0 } }, /retry.maxAttempts must be a whole number >= 1/],
    [{ retry: { baseDelayMs: -1 } }, /retry.baseDelayMs must be a number >= 0/],
  ])('refuses the option %j with a message naming it', (override, message) => {
    expect(() => makeClient(override as Partial<ItsmClientOptions>)).toThrow(message);
  });

  it.each([-1, 0, 1.5, 2 ** 53])(
    'refuses the account %s (not an account id nor me) before sending anything',
    async (account) => {
      const { client } = makeClient();
      await expect(client.get(account, 'incident', 'F1')).rejects.toThrow(
        /account must be a positive whole number .*, or 'me'/,
      );
      await expect(client.get(1, 'incident', '')).rejects.toThrow(/non-empty string/);
      expect(faults.counters().requests).toBe(0);
    },
  );
});

describe('API errors', () => {
  it('turns a 401 into an ItsmApiError with the Kloudless body and does not retry it', async () => {
    const { client, retries } = makeClient({ auth: { apiKey: 'wrong' } });
    const error = await apiFailure(client.get(1, 'incident', 'F1'));

    expect(error).toMatchObject({
      code: 'ITSM_API_ERROR',
      status: 401,
      errorCode: 'unauthorized',
      method: 'GET',
      path: 'accounts/1/itsm/incidents/F1',
      retryable: false,
      attempts: 1,
    });
    expect(error.body).toMatchObject({ error_code: 'unauthorized', status_code: 401 });
    expect(error.requestId).toBe(error.body?.id);
    expect(error.message).toContain('GET accounts/1/itsm/incidents/F1 answered 401 unauthorized');
    expect(error.message).toContain('check the API key');
    expect(retries).toEqual([]);
    expect(faults.counters().requests).toBe(1);
  });

  it('turns a 403 from a token used on another account into an ItsmApiError', async () => {
    const { client } = makeClient({ auth: { bearer: TOKEN } });
    const error = await apiFailure(collect(client.list(8, 'incident')));
    expect(error).toMatchObject({ status: 403, errorCode: 'forbidden' });
  });

  it('turns a 404 into an ItsmApiError naming the missing object', async () => {
    const { client } = makeClient();
    const error = await apiFailure(client.get(1, 'problem', 'Fmissing'));
    expect(error).toMatchObject({ status: 404, errorCode: 'not_found', retryable: false });
    expect(error.body?.message).toContain('Fmissing');
  });

  it('turns a 400 into an ItsmApiError whose message names the bad field', async () => {
    const { client } = makeClient();
    const error = await apiFailure(
      client.create(freshAccount(), 'incident', { impact: 'severe' } as Record<string, unknown>),
    );
    expect(error).toMatchObject({ status: 400, errorCode: 'invalid_parameters' });
    expect(error.message).toContain('impact must be one of low, medium, high');
    expect(faults.counters().requests).toBe(1);
  });

  it('turns a reused Idempotency-Key with another body into a 409 that is not retried', async () => {
    const { client } = makeClient();
    const account = freshAccount();
    await client.create(account, 'incident', { description: 'one' }, { idempotencyKey: 'same' });
    const error = await apiFailure(
      client.create(account, 'incident', { description: 'two' }, { idempotencyKey: 'same' }),
    );
    expect(error).toMatchObject({ status: 409, errorCode: 'conflict', retryable: false });
  });
});

describe('retries', () => {
  it('waits at least Retry-After after a 429, then succeeds', async () => {
    const { client, delays, retries } = makeClient();
    const account = freshAccount();
    const incident = await client.create(account, 'incident', { description: 'x' });
    faults.resetCounters();
    faults.inject({ status: 429, retryAfter: 1, times: 2 });

    const fetched = await client.get(account, 'incident', incident.id);

    expect(fetched.id).toBe(incident.id);
    expect(delays).toHaveLength(2);
    for (const delay of delays) expect(delay).toBeGreaterThanOrEqual(1000);
    expect(retries.map((r) => r.reason)).toEqual([
      '429 rate_limit_exceeded (Retry-After 1 s)',
      '429 rate_limit_exceeded (Retry-After 1 s)',
    ]);
    expect(faults.counters().byKind.status429).toBe(2);
  });

  it('really sleeps for the Retry-After of a 429 with the default sleep', async () => {
    const client = createItsmClient({
      baseUrl: `${itsm.url}/v1`,
      auth: { apiKey: TEST_API_KEY },
      retry: { baseDelayMs: 1, maxDelayMs: 5 },
    });
    faults.inject({ status: 429, retryAfter: 1 });

    const started = performance.now();
    await client.latestCursor(freshAccount());
    const elapsed = performance.now() - started;

    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(faults.counters()).toMatchObject({ requests: 2, byKind: { status429: 1 } });
  });

  it('retries 500 and 503 answers and then succeeds', async () => {
    const { client, retries } = makeClient();
    faults.inject({ status: 500, times: 2 });
    faults.inject({ status: 503 });

    const users = await collect(client.teamUsers(123));

    expect(users).toHaveLength(3);
    expect(retries.map((r) => r.reason)).toEqual([
      '500 internal_error',
      '500 internal_error',
      '503 service_unavailable',
    ]);
    expect(faults.counters()).toMatchObject({
      requests: 4,
      byKind: { status500: 2, status503: 1 },
    });
  });

  it('throws the last ItsmApiError when every attempt fails, after maxAttempts requests', async () => {
    const { client, retries } = makeClient({ retry: { maxAttempts: 3, baseDelayMs: 1 } });
    faults.inject({ status: 500, times: 10 });

    const error = await apiFailure(client.latestCursor(freshAccount()));

    expect(error).toMatchObject({
      status: 500,
      errorCode: 'internal_error',
      attempts: 3,
      retryable: true,
    });
    expect(error.message).toContain('after 3 attempts');
    expect(retries).toHaveLength(2);
    expect(faults.counters()).toMatchObject({ requests: 3, byKind: { status500: 3 } });
  });

  it('backs off exponentially with full jitter, capped at maxDelayMs', async () => {
    const { client, delays } = makeClient({
      retry: { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 300 },
      random: () => 0.5,
    });
    faults.inject({ status: 500, times: 4 });

    await client.latestCursor(freshAccount());

    expect(delays).toEqual([50, 100, 150, 150]);
  });

  it('does not retry a POST without an Idempotency-Key after a 500', async () => {
    const { client, retries } = makeClient();
    const account = freshAccount();
    faults.inject({ status: 500, method: 'POST' });

    const error = await apiFailure(client.create(account, 'incident', { description: 'once' }));

    expect(error).toMatchObject({ status: 500, retryable: false, attempts: 1 });
    expect(error.message).toContain(
      'not retried: a POST without an Idempotency-Key may have been applied',
    );
    expect(retries).toEqual([]);
    expect(faults.counters().requests).toBe(1);
  });

  it('retries a POST without an Idempotency-Key after a 429, which the server did not process', async () => {
    const { client } = makeClient();
    const account = freshAccount();
    faults.inject({ status: 429, method: 'POST', retryAfter: 0 });

    await client.create(account, 'incident', { description: 'once' });

    expect(await collect(client.list(account, 'incident'))).toHaveLength(1);
    expect(faults.counters().byKind.status429).toBe(1);
  });

  it('leaves the outcome to the caller when a POST without a key is applied and answered 500', async () => {
    const { client } = makeClient();
    const account = freshAccount();
    faults.inject({ status: 500, afterWrite: true });

    const error = await apiFailure(client.create(account, 'incident', { description: 'x' }));

    expect(error.retryable).toBe(false);
    expect(await collect(client.list(account, 'incident'))).toHaveLength(1);
  });

  it('creates exactly one object when a keyed POST is applied, answered 500 and retried', async () => {
    const { client, retries } = makeClient();
    const account = freshAccount();
    faults.inject({ status: 500, afterWrite: true, method: 'POST' });

    const created = await client.create(
      account,
      'problem',
      { description: 'linked problem' },
      { idempotencyKey: 'rule-x:event-1' },
    );

    const problems = await collect(client.list(account, 'problem'));
    expect(problems.map((p) => p.id)).toEqual([created.id]);
    expect(retries).toHaveLength(1);
    expect(faults.counters()).toMatchObject({ byKind: { afterWrite: 1 } });
    const events = await client.events(account);
    expect(events.objects.map((e) => e.type)).toEqual(['add']);
  });

  /** The account's update and delete events: one per write the API applied. */
  async function writesOf(client: ItsmClient, account: number): Promise<string[]> {
    const page = await client.events(account, { pageSize: 1000 });
    return page.objects.filter((event) => event.type !== 'add').map((event) => event.type);
  }

  it.each(['after-write 500', 'drop'])(
    'retries a PATCH with an Idempotency-Key after an uncertain %s, and the API applies it once',
    async (fault) => {
      const { client, retries } = makeClient();
      const account = freshAccount();
      const incident = await client.create(account, 'incident', { escalation: 0 });
      faults.inject(
        fault === 'drop'
          ? { drop: true, method: 'PATCH' }
          : { status: 500, method: 'PATCH', afterWrite: true },
      );

      const updated = await client.update(
        account,
        'incident',
        incident.id,
        { escalation: 1 },
        { idempotencyKey: 'patch-1' },
      );

      expect(updated.escalation).toBe(1);
      expect(retries).toHaveLength(1);
      expect(await writesOf(client, account)).toEqual(['update']);
    },
  );

  it('does not retry a PATCH without an Idempotency-Key after an applied-then-500 attempt', async () => {
    const { client, retries } = makeClient();
    const account = freshAccount();
    const incident = await client.create(account, 'incident', { escalation: 0 });
    faults.inject({ status: 500, method: 'PATCH', afterWrite: true });

    const error = await apiFailure(
      client.update(account, 'incident', incident.id, { escalation: 1 }),
    );

    expect(error.status).toBe(500);
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('not retried: a PATCH without an Idempotency-Key');
    expect(retries).toHaveLength(0);
    expect(await writesOf(client, account)).toEqual(['update']);
  });

  it('retries a DELETE with an Idempotency-Key after an applied-then-500 attempt: the replay is a 204', async () => {
    const { client, retries } = makeClient();
    const account = freshAccount();
    const asset = await client.create(account, 'asset', { name: 'old laptop' });
    faults.inject({ status: 500, method: 'DELETE', afterWrite: true });

    await client.delete(account, 'asset', asset.id, { idempotencyKey: 'delete-1' });

    expect(retries).toHaveLength(1);
    expect(await collect(client.list(account, 'asset'))).toEqual([]);
    expect(await writesOf(client, account)).toEqual(['delete']);
    const error = await apiFailure(client.delete(account, 'asset', asset.id));
    expect(error.status).toBe(404);
  });

  it('times out an attempt that takes longer than timeoutMs, and retries it', async () => {
    const { client, retries } = makeClient({ timeoutMs: 100 });
    faults.inject({ latencyMs: 400 });

    const cursor = await client.latestCursor(freshAccount());

    expect(cursor).toBe('0');
    expect(retries).toHaveLength(1);
    expect(retries[0]?.reason).toBe('timeout after 100 ms');
    expect(retries[0]?.error).toBeInstanceOf(ItsmRequestError);
    expect(faults.counters()).toMatchObject({ requests: 2, byKind: { latency: 1 } });
  });

  it('throws ITSM_TIMEOUT when every attempt times out', async () => {
    const { client } = makeClient({ timeoutMs: 50, retry: { maxAttempts: 2, baseDelayMs: 1 } });
    faults.inject({ latencyMs: 300, times: 2 });

    const error = await failure(client.get(1, 'incident', 'F1'));

    expect(error).toBeInstanceOf(ItsmRequestError);
    expect(error).toMatchObject({ code: 'ITSM_TIMEOUT', retryable: true, attempts: 2 });
    expect(error.message).toContain('timed out');
    expect(error.message).toContain('gave up after 2 attempts');
    expect(faults.counters().requests).toBe(2);
  });

  it('does not retry a POST without a key that timed out', async () => {
    const { client } = makeClient({ timeoutMs: 50 });
    faults.inject({ latencyMs: 300, method: 'POST' });

    const error = await failure(client.create(freshAccount(), 'incident', { description: 'x' }));

    expect(error).toMatchObject({ code: 'ITSM_TIMEOUT', retryable: false, attempts: 1 });
  });

  it('throws ITSM_NETWORK_ERROR, after retrying, when the connection is refused', async () => {
    const { client, retries } = makeClient({
      baseUrl: (await deadUrl()).replace(/\/hook$/, '/v1'),
      retry: { maxAttempts: 2, baseDelayMs: 1 },
    });

    const error = await failure(client.latestCursor(1));

    expect(error).toBeInstanceOf(ItsmRequestError);
    expect(error).toMatchObject({ code: 'ITSM_NETWORK_ERROR', retryable: true, attempts: 2 });
    expect(error.cause).toBeDefined();
    expect(error.message).toContain('ECONNREFUSED');
    expect(retries.map((r) => r.reason)).toEqual([expect.stringContaining('network error')]);
  });

  it('retries a POST without an Idempotency-Key whose connection was refused: it was never sent', async () => {
    const { client, retries } = makeClient({
      baseUrl: (await deadUrl()).replace(/\/hook$/, '/v1'),
      retry: { maxAttempts: 3, baseDelayMs: 1 },
    });

    const error = await failure(client.create(1, 'incident', { description: 'never sent' }));

    expect(error).toMatchObject({ code: 'ITSM_NETWORK_ERROR', retryable: true, attempts: 3 });
    expect(error.message).toContain('ECONNREFUSED');
    expect(error.message).toContain('gave up after 3 attempts');
    expect(error.message).not.toContain('may have been applied');
    expect(retries).toHaveLength(2);
  });
});

/** A recording HTTP server: answers what the test says and keeps each request's headers. */
async function startRecordingServer(
  answer: (path: string) => { status: number; body: string; headers?: Record<string, string> },
) {
  const requests: { method: string; path: string; headers: IncomingHttpHeaders }[] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers });
    req.resume();
    const { status, body, headers } = answer(req.url ?? '');
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

describe('the wire, seen by a recording server', () => {
  it('sends auth, user agent, as-user, raw-data, JSON and Idempotency-Key headers', async () => {
    const recorder = await startRecordingServer(() => ({ status: 200, body: '{}' }));
    try {
      const client = createItsmClient({
        baseUrl: `${recorder.url}/v1/`,
        auth: { bearer: 'tok' },
        userAgent: 'rules-engine/1.0',
        asUser: 'u123',
        rawData: true,
      });
      await client.request({
        method: 'PATCH',
        path: 'accounts/1/itsm/incidents/F1',
        query: { raw_type: undefined },
        body: { escalation: 1 },
        idempotencyKey: 'rule:event',
      });
      const [seen] = recorder.requests;
      expect(seen?.method).toBe('PATCH');
      expect(seen?.path).toBe('/v1/accounts/1/itsm/incidents/F1');
      expect(seen?.headers).toMatchObject({
        authorization: 'Bearer tok',
        'user-agent': 'rules-engine/1.0',
        'x-kloudless-as-user': 'u123',
        'x-kloudless-raw-data': 'true',
        'content-type': 'application/json',
        'idempotency-key': 'rule:event',
      });
    } finally {
      await recorder.close();
    }
  });

  it('rejects a 2xx body that does not parse, naming the field that is wrong', async () => {
    const recorder = await startRecordingServer(() => ({
      status: 200,
      body: JSON.stringify({ id: 'F1', type: 'incident', api: 'itsm', impact: 'severe' }),
    }));
    try {
      const client = createItsmClient({ baseUrl: recorder.url, auth: { apiKey: 'k' } });
      const error = await failure(client.get(1, 'incident', 'F1'));
      expect(error).toBeInstanceOf(ItsmResponseError);
      expect(error).toMatchObject({ code: 'ITSM_INVALID_RESPONSE', status: 200, retryable: false });
      expect(error.message).toContain('is not a incident');
      expect(error.message).toContain('impact');
      expect(error.message).toContain('created');
    } finally {
      await recorder.close();
    }
  });

  it('stops iterating when next_page does not move forward instead of looping', async () => {
    const page = {
      total: 2,
      count: 1,
      page: 1,
      next_page: 1,
      objects: [],
      type: 'object_list',
      api: 'itsm',
    };
    const recorder = await startRecordingServer(() => ({
      status: 200,
      body: JSON.stringify(page),
    }));
    try {
      const client = createItsmClient({ baseUrl: recorder.url, auth: { apiKey: 'k' } });
      const error = await failure(collect(client.list(1, 'incident')));
      expect(error).toBeInstanceOf(ItsmResponseError);
      expect(error.message).toContain('does not move forward');
    } finally {
      await recorder.close();
    }
  });

  it('retries a 502 whose body is not a Kloudless error and reports it without a body', async () => {
    const recorder = await startRecordingServer(() => ({
      status: 502,
      body: '<html>Bad Gateway</html>',
      headers: { 'Content-Type': 'text/html' },
    }));
    try {
      const client = createItsmClient({
        baseUrl: recorder.url,
        auth: { apiKey: 'k' },
        retry: { maxAttempts: 2, baseDelayMs: 1 },
      });
      const error = await apiFailure(client.latestCursor(1));
      expect(error).toMatchObject({ status: 502, errorCode: null, body: null, attempts: 2 });
      expect(recorder.requests).toHaveLength(2);
    } finally {
      await recorder.close();
    }
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2024-05-01T12:00:00Z');
  it.each([
    ['1', 1000],
    ['0', 0],
    ['2.5', 2500],
    ['Wed, 01 May 2024 12:00:03 GMT', 3000],
    ['Wed, 01 May 2024 11:59:00 GMT', 0],
    ['soon', null],
    [null, null],
  ])('reads %j as %j ms', (value, expected) => {
    expect(parseRetryAfter(value, now)).toBe(expected);
  });
});
