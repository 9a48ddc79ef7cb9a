// The client's node:http transport (what `serve --api-url` uses on Node) against a real embedded
// API over 127.0.0.1: the client's guarantees (retries, Idempotency-Keys, timeouts, error
// mapping) hold through it as through fetch, connections are kept and reused, their number is
// bounded, and an attempt the client gives up on takes its connection with it.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createItsmClient,
  type ItsmClient,
  type ItsmClientOptions,
  ItsmRequestError,
} from '../../src/itsm/client.js';
import { createNodeTransport, type NodeTransport } from '../../src/runtime/node-transport.js';
import type { FaultController } from '../../src/server/faults.js';
import { eventually } from '../helpers/eventually.js';
import { startTestItsm, TEST_API_KEY, type TestItsm } from '../helpers/itsm.js';

let itsm: TestItsm;
let faults: FaultController;
const transports: NodeTransport[] = [];

beforeAll(async () => {
  itsm = await startTestItsm({ faults: {} });
  if (!itsm.itsm.faults) throw new Error('the test server was started without fault injection');
  faults = itsm.itsm.faults;
});

afterAll(async () => {
  await itsm.close();
});

beforeEach(() => {
  faults.clear();
});

afterEach(() => {
  for (const transport of transports.splice(0)) transport.close();
});

let lastAccount = 3000;
const freshAccount = () => ++lastAccount;

function nodeClient(
  overrides: Partial<ItsmClientOptions> = {},
  transportOptions: Parameters<typeof createNodeTransport>[0] = {},
): { client: ItsmClient; transport: NodeTransport } {
  const transport = createNodeTransport(transportOptions);
  transports.push(transport);
  const client = createItsmClient({
    baseUrl: `${itsm.url}/v1`,
    auth: { apiKey: TEST_API_KEY },
    transport: transport.transport,
    retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
    ...overrides,
  });
  return { client, transport };
}

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

const INCIDENTS = (account: number) => `/v1/accounts/${account}/itsm/incidents`;

describe('the node:http transport', () => {
  it('sends a non-ASCII body whole: its length is counted in bytes', async () => {
    const { client } = nodeClient();
    const account = freshAccount();
    const description = 'café ☕ 日本 🎉 '.repeat(20);

    const created = await client.create(account, 'incident', { description, impact: 'high' });

    expect(created.description).toBe(description);
    expect((await client.get(account, 'incident', created.id)).description).toBe(description);
  });

  it('keeps one connection for calls made one after another', async () => {
    const { client, transport } = nodeClient();
    const account = freshAccount();
    for (let i = 0; i < 5; i++) await client.create(account, 'incident', { description: `${i}` });
    await client.latestCursor(account);

    expect(transport.sockets()).toBe(1);
    expect((await itsm.call('GET', INCIDENTS(account))).json.total).toBe(5);
  });

  it('opens no more connections than maxSockets, and answers every call', async () => {
    const { client, transport } = nodeClient({}, { maxSockets: 3 });
    const account = freshAccount();
    faults.inject({ latencyMs: 50, times: 12 });
    let most = 0;
    const calls = Array.from({ length: 12 }, (_, i) =>
      client.create(account, 'incident', { description: `${i}` }).finally(() => {
        most = Math.max(most, transport.sockets());
      }),
    );
    most = Math.max(most, transport.sockets());

    await Promise.all(calls);

    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(3);
    expect((await itsm.call('GET', INCIDENTS(account))).json.total).toBe(12);
  });

  it('retries a POST with an Idempotency-Key after a cut answer and a 500 after the write: one object', async () => {
    const { client } = nodeClient();
    const account = freshAccount();
    faults.inject({ drop: true });
    faults.inject({ status: 500, afterWrite: true });

    const created = await client.create(
      account,
      'incident',
      { description: 'once' },
      { idempotencyKey: 'node-transport-1' },
    );

    expect(faults.counters().byKind).toMatchObject({ drop: 1, afterWrite: 1 });
    const listed = await itsm.call('GET', INCIDENTS(account));
    expect(listed.json.total).toBe(1);
    expect(listed.json.objects[0].id).toBe(created.id);
  });

  it('gives up at once on a cut answer to a POST without a key, as a network error', async () => {
    const { client } = nodeClient();
    const account = freshAccount();
    faults.inject({ drop: true });

    const error = await failureOf(client.create(account, 'incident', { description: 'x' }));

    expect(error).toBeInstanceOf(ItsmRequestError);
    expect(error).toMatchObject({ code: 'ITSM_NETWORK_ERROR', retryable: false, attempts: 1 });
    expect((error as Error).message).toContain('not retried');
    // It was applied before the cut: the client must not have sent it again.
    expect((await itsm.call('GET', INCIDENTS(account))).json.total).toBe(1);
  });

  it('times out a stalled attempt, retries it, and closes the abandoned connection', async () => {
    // Idle connections kept far longer than this test runs: one left behind would still count.
    const { client, transport } = nodeClient(
      { timeoutMs: 100, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1 } },
      { idleMs: 600_000 },
    );
    const account = freshAccount();
    const before = faults.counters().byKind.latency;
    faults.inject({ latencyMs: 400, method: 'POST' });

    const created = await client.create(
      account,
      'incident',
      { description: 'late' },
      { idempotencyKey: 'node-transport-2' },
    );

    // The stalled attempt is applied too, late; its key makes the retry's answer the same object.
    expect(faults.counters().byKind.latency - before).toBe(1);
    const listed = await eventually(async () => {
      const answer = await itsm.call('GET', INCIDENTS(account));
      return answer.json.total >= 1 && answer;
    }, 'the object');
    expect(listed.json.total).toBe(1);
    expect(listed.json.objects[0].id).toBe(created.id);
    // The retry's connection stays for the next call; the abandoned one was destroyed at the
    // timeout rather than left busy with the late answer.
    expect(transport.sockets()).toBe(1);
    await client.latestCursor(account);
    expect(transport.sockets()).toBe(1);
  });

  it('throws ITSM_TIMEOUT when every attempt stalls, and leaves no connection open', async () => {
    const { client, transport } = nodeClient(
      { timeoutMs: 50, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1 } },
      { idleMs: 600_000 },
    );
    const before = faults.counters().requests;
    faults.inject({ latencyMs: 300, times: 2 });

    const error = await failureOf(client.latestCursor(freshAccount()));

    expect(error).toBeInstanceOf(ItsmRequestError);
    expect(error).toMatchObject({ code: 'ITSM_TIMEOUT', retryable: true, attempts: 2 });
    expect(faults.counters().requests - before).toBe(2);
    // Both were destroyed at their timeouts, not left waiting for answers nobody reads.
    expect(transport.sockets()).toBe(0);
  });

  it('throws ITSM_NETWORK_ERROR naming ECONNREFUSED, after retrying, when nothing listens', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const { client } = nodeClient({
      baseUrl: `http://127.0.0.1:${port}/v1`,
      retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1 },
    });

    const error = await failureOf(client.latestCursor(1));

    expect(error).toMatchObject({ code: 'ITSM_NETWORK_ERROR', retryable: true, attempts: 2 });
    expect((error as Error).message).toContain('ECONNREFUSED');
    // A refused connection never sent the request: a POST without a key is repeated too.
    const post = await failureOf(client.create(1, 'incident', { description: 'never sent' }));
    expect(post).toMatchObject({ code: 'ITSM_NETWORK_ERROR', retryable: true, attempts: 2 });
    expect((post as Error).message).not.toContain('may have been applied');
  });

  it('answers the API error body and Retry-After of a 429 as the client maps them', async () => {
    const { client } = nodeClient({ retry: { maxAttempts: 1 } });
    faults.inject({ status: 429 });

    const error = await failureOf(client.latestCursor(freshAccount()));

    expect(error).toMatchObject({ status: 429, errorCode: 'rate_limit_exceeded' });
  });

  it('closes every connection when closed', async () => {
    const { client, transport } = nodeClient();
    await client.latestCursor(freshAccount());
    expect(transport.sockets()).toBe(1);

    transport.close();

    expect(transport.sockets()).toBe(0);
  });

  it('refuses a maxSockets that is not a whole number of at least 1', () => {
    expect(() => createNodeTransport({ maxSockets: 0 })).toThrow(
      /maxSockets must be a whole number of at least 1, got 0/,
    );
  });
});
