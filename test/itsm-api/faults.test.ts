// Fault injection of the embedded API, a testing aid (src/server/faults.ts), over real HTTP:
// scripted faults and their filters, a write applied and then answered 500, latency, seeded
// random faults that repeat run for run, counters, and the routes that are never faulted.
import { afterEach, describe, expect, it } from 'vitest';
import { createItsmClient, ItsmRequestError } from '../../src/itsm/client.js';
import type { StartItsmServerOptions } from '../../src/runtime/node.js';
import {
  createFaultInjector,
  FAULTS_PATH,
  type FaultController,
  parseFaultSpec,
} from '../../src/server/faults.js';
import { SEED_USERS } from '../fixtures/seed-examples.js';
import { startTestItsm, TEST_API_KEY, type TestItsm } from '../helpers/itsm.js';

const INCIDENTS = '/v1/accounts/1/itsm/incidents';

const servers: TestItsm[] = [];
afterEach(async () => {
  for (let server = servers.pop(); server; server = servers.pop()) await server.close();
});

async function itsm(
  overrides: Partial<StartItsmServerOptions> = { faults: {} },
): Promise<{ server: TestItsm; faults: FaultController }> {
  const server = await startTestItsm(overrides);
  servers.push(server);
  if (!server.itsm.faults) throw new Error('the server was started without fault injection');
  return { server, faults: server.itsm.faults };
}

async function statuses(server: TestItsm, n: number, method = 'GET'): Promise<number[]> {
  const seen: number[] = [];
  for (let i = 0; i < n; i++) {
    const body = method === 'POST' ? { description: `#${i}` } : undefined;
    seen.push((await server.call(method, INCIDENTS, { body })).status);
  }
  return seen;
}

describe('scripted faults', () => {
  it('answers the next n requests with the Kloudless error body, then serves normally', async () => {
    const { server, faults } = await itsm();
    faults.inject({ status: 503, times: 2 });
    expect(faults.pending()).toBe(2);

    const first = await server.call('GET', INCIDENTS);
    expect(first.status).toBe(503);
    expect(first.headers.get('content-type')).toBe('application/json');
    expect(first.json).toMatchObject({ error_code: 'service_unavailable', status_code: 503 });
    expect(first.json.message).toContain('injected fault');
    expect(first.json.id).toBe(first.headers.get('x-request-id'));
    expect(first.headers.get('retry-after')).toBeNull();

    expect(await statuses(server, 2)).toEqual([503, 200]);
    expect(faults.pending()).toBe(0);
  });

  it('sends Retry-After with a 429, one second unless told otherwise', async () => {
    const { server, faults } = await itsm();
    faults.inject({ status: 429 });
    faults.inject({ status: 429, retryAfter: 7 });

    const first = await server.call('GET', INCIDENTS);
    const second = await server.call('GET', INCIDENTS);

    expect(first.status).toBe(429);
    expect(first.json).toMatchObject({ error_code: 'rate_limit_exceeded', status_code: 429 });
    expect(first.headers.get('retry-after')).toBe('1');
    expect(second.headers.get('retry-after')).toBe('7');
  });

  it('faults only the requests that match its method and path', async () => {
    const { server, faults } = await itsm();
    faults.inject({ status: 500, method: 'post', path: '/v1/accounts/1/itsm/incidents/' });
    faults.inject({ status: 500, path: /\/events$/ });

    expect((await server.call('GET', INCIDENTS)).status).toBe(200);
    expect((await server.call('POST', '/v1/accounts/2/itsm/incidents', { body: {} })).status).toBe(
      201,
    );
    expect(faults.pending()).toBe(2);
    expect((await server.call('POST', INCIDENTS, { body: {} })).status).toBe(500);
    expect((await server.call('GET', '/v1/accounts/1/events/latest')).status).toBe(200);
    expect((await server.call('GET', '/v1/accounts/1/events')).status).toBe(500);
    expect(faults.pending()).toBe(0);
  });

  it('applies a write and then answers 500 when the fault is afterWrite', async () => {
    const { server, faults } = await itsm();
    faults.inject({ status: 500, afterWrite: true });

    // afterWrite faults wait for a write: this read passes through.
    expect((await server.call('GET', INCIDENTS)).status).toBe(200);
    const created = await server.call('POST', INCIDENTS, { body: { description: 'applied' } });

    expect(created.status).toBe(500);
    expect(created.json).toMatchObject({ error_code: 'internal_error', status_code: 500 });
    expect(created.json.message).toContain('applied');
    const listed = await server.call('GET', INCIDENTS);
    expect(listed.json.total).toBe(1);
    expect(listed.json.objects[0].description).toBe('applied');
    const events = await server.call('GET', '/v1/accounts/1/events');
    expect(events.json.objects.map((e: { type: string }) => e.type)).toEqual(['add']);
    expect(faults.counters().byKind).toMatchObject({ afterWrite: 1, status500: 0 });
  });

  it('delays a request by latencyMs and then serves it', async () => {
    const { server, faults } = await itsm();
    faults.inject({ latencyMs: 150 });

    const started = performance.now();
    const answer = await server.call('GET', INCIDENTS);

    expect(answer.status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(faults.counters()).toMatchObject({ requests: 1, faults: 1, byKind: { latency: 1 } });
  });

  it('drops pending scripted faults on clear', async () => {
    const { server, faults } = await itsm();
    faults.inject({ status: 500, times: 3 });
    faults.clear();
    expect(faults.pending()).toBe(0);
    expect(await statuses(server, 1)).toEqual([200]);
  });

  it.each([
    [{ status: 500, times: 0 }, /times must be a whole number/],
    [{ status: 404 }, /status must be one of 429, 500, 503/],
    [{}, /give a status/],
    [{ latencyMs: -1 }, /latencyMs must be a number >= 0/],
    [{ latencyMs: 10, afterWrite: true }, /afterWrite needs the status/],
    [{ drop: true, status: 500 }, /drop cuts the connection, so it takes no status/],
  ])('refuses the scripted fault %j', async (fault, message) => {
    const { faults } = await itsm();
    expect(() => faults.inject(fault as Parameters<FaultController['inject']>[0])).toThrow(message);
  });
});

describe('random faults', () => {
  const rates = { rate500: 0.3, rate429: 0.2, retryAfterSeconds: 2 };

  it('repeats the same fault sequence for the same seed', async () => {
    const a = await itsm({ faults: { ...rates, seed: 42 } });
    const b = await itsm({ faults: { ...rates, seed: 42 } });
    const c = await itsm({ faults: { ...rates, seed: 7 } });

    const first = await statuses(a.server, 40);
    const second = await statuses(b.server, 40);
    const other = await statuses(c.server, 40);

    expect(second).toEqual(first);
    expect(other).not.toEqual(first);
    expect(new Set(first)).toEqual(new Set([200, 429, 500]));
    expect(a.faults.seed).toBe(42);
    expect(a.faults.counters()).toEqual({
      requests: 40,
      faults: first.filter((s) => s !== 200).length,
      byKind: {
        status429: first.filter((s) => s === 429).length,
        status500: first.filter((s) => s === 500).length,
        status503: 0,
        afterWrite: 0,
        drop: 0,
        latency: 0,
      },
    });
    expect(a.server.logs.join('\n')).toContain('fault injection is on');
    expect(a.server.logs.join('\n')).toContain('seed=42');
  });

  it('sends retryAfterSeconds with random 429s', async () => {
    const { server } = await itsm({ faults: { rate429: 1 } });
    const answer = await server.call('GET', INCIDENTS);
    expect(answer.status).toBe(429);
    expect(answer.headers.get('retry-after')).toBe('1');

    const { server: slow } = await itsm({ faults: { rate429: 1, retryAfterSeconds: 3 } });
    expect((await slow.call('GET', INCIDENTS)).headers.get('retry-after')).toBe('3');
  });

  it('applies writes and answers 500 at afterWriteRate, leaving reads alone', async () => {
    const { server, faults } = await itsm({ faults: { afterWriteRate: 1, seed: 1 } });

    expect(await statuses(server, 3, 'POST')).toEqual([500, 500, 500]);
    const listed = await server.call('GET', INCIDENTS);

    expect(listed.status).toBe(200);
    expect(listed.json.total).toBe(3);
    expect(faults.counters().byKind.afterWrite).toBe(3);
  });

  it('restarts the sequence when setRates gives a seed, and stops faulting at rate 0', async () => {
    const { server, faults } = await itsm({ faults: { ...rates, seed: 42 } });
    const first = await statuses(server, 20);
    faults.setRates({ ...rates, seed: 42 });
    expect(await statuses(server, 20)).toEqual(first);

    faults.setRates({});
    expect(await statuses(server, 10)).toEqual(Array(10).fill(200));
  });

  it.each([
    [{ rate500: 1.5 }, /rate500 must be a share from 0 to 1/],
    [{ rate500: 0.6, rate429: 0.6 }, /rate500 \+ rate429 must be at most 1/],
    [{ latencyMs: Number.NaN }, /latencyMs must be a number >= 0/],
    [{ dropRate: -0.1 }, /dropRate must be a share from 0 to 1/],
    [{ afterWriteRate: 0.5, dropRate: 0.6 }, /afterWriteRate \+ dropRate must be at most 1/],
  ])('refuses the rates %j', (rates, message) => {
    expect(() => createFaultInjector(rates)).toThrow(message);
  });
});

describe('what is never faulted', () => {
  it('never faults /healthz nor counts it', async () => {
    const { server, faults } = await itsm({ faults: { rate500: 1 } });
    faults.inject({ status: 503, times: 5 });

    for (let i = 0; i < 5; i++) expect((await server.call('GET', '/healthz')).status).toBe(200);

    expect(faults.counters().requests).toBe(0);
    expect(faults.pending()).toBe(5);
    expect((await server.call('GET', INCIDENTS)).status).toBe(503);
  });

  it('leaves paths outside /v1 to the normal 404', async () => {
    const { server, faults } = await itsm({ faults: { rate500: 1 } });
    const answer = await server.call('GET', '/nope');
    expect(answer.status).toBe(404);
    expect(answer.json.error_code).toBe('not_found');
    expect(faults.counters().requests).toBe(0);
  });

  it('provisions seed users at start-up even when every request would fail', async () => {
    const { server, faults } = await itsm({ users: SEED_USERS, faults: { rate500: 1 } });
    expect(faults.counters().requests).toBe(0);
    faults.setRates({});
    const users = await server.call('GET', '/v1/accounts/123/team/users');
    expect(users.json.total).toBe(3);
  });

  it('is off without the faults option: no controller, no faults', async () => {
    const server = await startTestItsm();
    servers.push(server);
    expect(server.itsm.faults).toBeUndefined();
    expect((await server.call('GET', INCIDENTS)).status).toBe(200);
  });
});

describe('counters', () => {
  it('counts every API request and each fault by kind until reset', async () => {
    const { server, faults } = await itsm();
    faults.inject({ status: 429 });
    faults.inject({ status: 500 });
    faults.inject({ status: 503, latencyMs: 20 });

    expect(await statuses(server, 5)).toEqual([429, 500, 503, 200, 200]);
    expect(faults.counters()).toEqual({
      requests: 5,
      faults: 3,
      byKind: { status429: 1, status500: 1, status503: 1, afterWrite: 0, drop: 0, latency: 1 },
    });

    const snapshot = faults.counters();
    faults.resetCounters();
    expect(snapshot.requests).toBe(5);
    expect(faults.counters()).toMatchObject({ requests: 0, faults: 0, byKind: { status429: 0 } });
  });
});

describe('dropped connections', () => {
  const post = (server: TestItsm, description: string, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${INCIDENTS}`, {
      method: 'POST',
      headers: {
        Authorization: `APIKey ${TEST_API_KEY}`,
        'Content-Type': 'application/json',
        ...headers,
      },
      body: JSON.stringify({ description }),
    }).then((response) => response.text());

  it('applies the write, then cuts the connection: the client gets no HTTP answer', async () => {
    const { server, faults } = await itsm();
    faults.inject({ drop: true });

    // A drop waits for a write: this read passes through.
    expect((await server.call('GET', INCIDENTS)).status).toBe(200);
    const error = await post(server, 'applied').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(TypeError);
    expect(String((error as Error).cause)).toMatch(/closed|terminated|reset/i);
    const listed = await server.call('GET', INCIDENTS);
    expect(listed.json.total).toBe(1);
    expect(listed.json.objects[0].description).toBe('applied');
    expect(faults.counters().byKind).toMatchObject({ drop: 1, afterWrite: 0, status500: 0 });
    // The server is fine afterwards: the next request on a new connection is served.
    expect(JSON.parse(await post(server, 'next')).description).toBe('next');
  });

  it('cuts an in-process answer too: reading the body of app.fetch rejects', async () => {
    const { server, faults } = await itsm();
    faults.inject({ drop: true });
    const response = await server.itsm.app.fetch(
      new Request(`http://in-process${INCIDENTS}`, {
        method: 'POST',
        headers: { Authorization: `APIKey ${TEST_API_KEY}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ description: 'in process' }),
      }),
    );
    await expect(response.text()).rejects.toThrow(/connection .* was cut after the write/);
    expect((await server.call('GET', INCIDENTS)).json.total).toBe(1);
  });

  it('drops writes at dropRate, after the write is applied, and leaves reads alone', async () => {
    const { server, faults } = await itsm({ faults: { dropRate: 1, seed: 3 } });
    for (let i = 0; i < 3; i++) await expect(post(server, `#${i}`)).rejects.toThrow();
    expect((await server.call('GET', INCIDENTS)).json.total).toBe(3);
    expect(faults.counters().byKind.drop).toBe(3);
  });

  it('makes the client retry a POST with an Idempotency-Key: one object, not two', async () => {
    const { server, faults } = await itsm();
    const client = createItsmClient({
      baseUrl: `${server.url}/v1`,
      auth: { apiKey: TEST_API_KEY },
      retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
    });
    faults.inject({ drop: true });
    faults.inject({ status: 500, afterWrite: true });

    const first = await client.create(
      1,
      'incident',
      { description: 'once' },
      {
        idempotencyKey: 'k-1',
      },
    );

    expect(faults.counters().byKind).toMatchObject({ drop: 1, afterWrite: 1 });
    const listed = await server.call('GET', INCIDENTS);
    expect(listed.json.total).toBe(1);
    expect(listed.json.objects[0].id).toBe(first.id);
  });

  it('makes the client retry a PATCH and a DELETE with an Idempotency-Key: one update event, one delete event', async () => {
    const { server, faults } = await itsm();
    const client = createItsmClient({
      baseUrl: `${server.url}/v1`,
      auth: { apiKey: TEST_API_KEY },
      retry: { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 5 },
    });
    const incident = await client.create(1, 'incident', { description: 'once' });
    faults.inject({ drop: true, method: 'PATCH' });
    faults.inject({ status: 500, afterWrite: true, method: 'PATCH' });
    faults.inject({ drop: true, method: 'DELETE' });

    const updated = await client.update(
      1,
      'incident',
      incident.id,
      { impact: 'low' },
      { idempotencyKey: 'u-1' },
    );
    await client.delete(1, 'incident', incident.id, { idempotencyKey: 'd-1' });

    expect(updated.impact).toBe('low');
    expect(faults.counters().byKind).toMatchObject({ drop: 2, afterWrite: 1 });
    const events = await server.call('GET', '/v1/accounts/1/events');
    expect(events.json.objects.map((event: { type: string }) => event.type)).toEqual([
      'add',
      'update',
      'delete',
    ]);
  });

  it('makes the client give up at once on a dropped POST without a key (it may be applied)', async () => {
    const { server, faults } = await itsm();
    const client = createItsmClient({
      baseUrl: `${server.url}/v1`,
      auth: { apiKey: TEST_API_KEY },
      retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
    });
    faults.inject({ drop: true });

    const error = await client.create(1, 'incident', { description: 'x' }).catch((e) => e);

    expect(error).toBeInstanceOf(ItsmRequestError);
    expect(error).toMatchObject({ code: 'ITSM_NETWORK_ERROR', retryable: false, attempts: 1 });
    expect(error.message).toContain('not retried');
    expect((await server.call('GET', INCIDENTS)).json.total).toBe(1);
  });
});

describe('the fault counters endpoint', () => {
  it('answers the seed, the rates and the counters to the application key only', async () => {
    const { server, faults } = await itsm({ faults: { rate500: 1, seed: 9 } });
    await server.call('GET', INCIDENTS);

    const answer = await server.call('GET', FAULTS_PATH);
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({
      seed: 9,
      rates: { rate500: 1, dropRate: 0 },
      requests: 1,
      byKind: { status500: 1 },
    });
    expect((await server.call('GET', FAULTS_PATH, { auth: null })).status).toBe(401);
    expect((await server.call('GET', FAULTS_PATH, { auth: 'APIKey wrong' })).status).toBe(401);
    expect(faults.counters().requests).toBe(1);
  });

  it('does not exist when faults are off', async () => {
    const server = await startTestItsm();
    servers.push(server);
    expect((await server.call('GET', FAULTS_PATH)).status).toBe(404);
  });
});

describe('parseFaultSpec (the --faults text)', () => {
  it('reads every part', () => {
    expect(
      parseFaultSpec(
        '500=0.1, 429=5%,retry-after=2,latency=20ms,latency-rate=0.5,after-write=.05,drop=0.05,seed=42',
      ),
    ).toEqual({
      rate500: 0.1,
      rate429: 0.05,
      retryAfterSeconds: 2,
      latencyMs: 20,
      latencyRate: 0.5,
      afterWriteRate: 0.05,
      dropRate: 0.05,
      seed: 42,
    });
    expect(parseFaultSpec('latency=1s')).toEqual({ latencyMs: 1000 });
    expect(parseFaultSpec('latency=15')).toEqual({ latencyMs: 15 });
  });

  it.each([
    ['', /at least one name=value/],
    ['500=0.1,', /"": unknown fault ""/],
    ['503=0.1', /"503=0.1": unknown fault "503"; the names are/],
    ['500', /"500": 500 must be a share from 0 to 1/],
    ['500=1.5', /"500=1.5": 500 must be a share/],
    ['429=150%', /"429=150%": 429 must be a share/],
    ['drop=abc', /"drop=abc": drop must be a share/],
    ['latency=fast', /"latency=fast": latency must be a duration such as 20ms/],
    ['retry-after=0.5', /"retry-after=0.5": retry-after must be a whole number of seconds/],
    ['seed=-1', /"seed=-1": seed must be a whole number from 0 to 4294967295/],
    ['seed=4294967296', /seed must be a whole number/],
    ['drop=0.1,drop=0.2', /"drop=0.2": drop given twice/],
    ['500=0.6,429=0.6', /500 \+ 429 must be at most 1, got 0.6 \+ 0.6/],
    ['after-write=0.7,drop=0.7', /after-write \+ drop must be at most 1/],
  ])('refuses %j, naming the bad part', (spec, message) => {
    expect(() => parseFaultSpec(spec)).toThrow(message);
  });
});
