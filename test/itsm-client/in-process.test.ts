// The client's in-process transport (what the engine uses all-in-one) against a real embedded API:
// the call goes through the same app as over HTTP, so auth, validation, the body limit,
// idempotency and injected faults behave the same, only without a socket or web Request.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createItsmClient,
  type ItsmApiError,
  type ItsmClient,
  type ItsmClientOptions,
  ItsmRequestError,
} from '../../src/itsm/client.js';
import { createInProcessTransport } from '../../src/itsm/in-process.js';
import type { FaultController } from '../../src/server/faults.js';
import { startTestItsm, TEST_API_KEY, type TestItsm } from '../helpers/itsm.js';

let itsm: TestItsm;
let faults: FaultController;

beforeAll(async () => {
  itsm = await startTestItsm({ faults: {}, maxBodyBytes: 1024 });
  if (!itsm.itsm.faults) throw new Error('the test server was started without fault injection');
  faults = itsm.itsm.faults;
});

afterAll(async () => {
  await itsm.close();
});

beforeEach(() => {
  faults.clear();
});

let lastAccount = 2000;
const freshAccount = () => ++lastAccount;

function inProcessClient(overrides: Partial<ItsmClientOptions> = {}): ItsmClient {
  return createItsmClient({
    // The app's origin (it writes it into each href), never dialled: the transport hands each
    // call to the app.
    baseUrl: `${itsm.url}/v1`,
    auth: { apiKey: TEST_API_KEY },
    transport: createInProcessTransport(itsm.itsm.app),
    retry: { maxAttempts: 2, baseDelayMs: 0, maxDelayMs: 0 },
    ...overrides,
  });
}

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

describe('the in-process transport', () => {
  it('writes and reads the same objects as a client over HTTP', async () => {
    const account = freshAccount();
    const created = await inProcessClient().create(account, 'incident', {
      impact: 'high',
      description: 'résumé of the outage',
    });
    const overHttp = await itsm.call('GET', `/v1/accounts/${account}/itsm/incidents/${created.id}`);
    expect(overHttp.status).toBe(200);
    expect(overHttp.json).toEqual(created);
    const events = await inProcessClient().events(account);
    expect(events.objects.map((e) => e.type)).toEqual(['add']);
  });

  it('refuses a wrong API key with 401, as over HTTP', async () => {
    const error = (await failureOf(
      inProcessClient({ auth: { apiKey: 'wrong' } }).get(freshAccount(), 'incident', 'x'),
    )) as ItsmApiError;
    expect(error).toMatchObject({ status: 401, errorCode: 'unauthorized' });
  });

  it('answers a malformed JSON body with 400 and stores nothing', async () => {
    const account = freshAccount();
    const answer = await createInProcessTransport(itsm.itsm.app)({
      method: 'POST',
      url: `${itsm.url}/v1/accounts/${account}/itsm/incidents`,
      headers: { Authorization: `APIKey ${TEST_API_KEY}`, 'Content-Type': 'application/json' },
      body: '{"impact": "high",',
    });
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.text)).toMatchObject({ error_code: 'invalid_parameters' });
    const list = await itsm.call('GET', `/v1/accounts/${account}/itsm/incidents`);
    expect(list.json.count).toBe(0);
  });

  it('answers a field the schema refuses with 400 naming it', async () => {
    const error = (await failureOf(
      inProcessClient().create(freshAccount(), 'incident', { impact: 'enormous' as 'high' }),
    )) as ItsmApiError;
    expect(error).toMatchObject({ status: 400, errorCode: 'invalid_parameters' });
    expect(error.message).toContain('impact');
  });

  it('counts the body limit in UTF-8 bytes, not characters', async () => {
    // 700 characters, 1400 bytes: over the 1024-byte limit only when counted in bytes.
    const error = (await failureOf(
      inProcessClient().create(freshAccount(), 'incident', { description: 'é'.repeat(700) }),
    )) as ItsmApiError;
    expect(error).toMatchObject({ status: 413, errorCode: 'payload_too_large' });
  });

  it('replays a write repeated with its Idempotency-Key and refuses the key for another body', async () => {
    const account = freshAccount();
    const client = inProcessClient();
    const path = `accounts/${account}/itsm/incidents`;
    const first = await client.request({
      method: 'POST',
      path,
      body: { impact: 'high' },
      idempotencyKey: 'in-process-1',
    });
    const again = await client.request({
      method: 'POST',
      path,
      body: { impact: 'high' },
      idempotencyKey: 'in-process-1',
    });
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('Idempotent-Replayed')).toBe('true');
    const list = await itsm.call('GET', `/v1/accounts/${account}/itsm/incidents`);
    expect(list.json.count).toBe(1);
    const conflict = (await failureOf(
      client.request({
        method: 'POST',
        path,
        body: { impact: 'low' },
        idempotencyKey: 'in-process-1',
      }),
    )) as ItsmApiError;
    expect(conflict).toMatchObject({ status: 409, errorCode: 'conflict' });
  });

  it('sees an answer cut off mid-body as a network error, and its retry writes nothing twice', async () => {
    const account = freshAccount();
    faults.inject({ drop: true, method: 'POST' });
    const created = await inProcessClient().create(
      account,
      'incident',
      { impact: 'high' },
      { idempotencyKey: 'dropped-once' },
    );
    expect(faults.pending()).toBe(0);
    const list = await itsm.call('GET', `/v1/accounts/${account}/itsm/incidents`);
    expect(list.json.objects.map((o: { id: string }) => o.id)).toEqual([created.id]);

    faults.inject({ drop: true, method: 'POST' });
    const error = await failureOf(
      inProcessClient({ retry: { maxAttempts: 1 } }).create(account, 'incident', {}),
    );
    expect(error).toBeInstanceOf(ItsmRequestError);
    expect(error).toMatchObject({ code: 'ITSM_NETWORK_ERROR' });
  });

  it('times out a call that does not answer within timeoutMs', async () => {
    faults.inject({ latencyMs: 300, method: 'GET' });
    const error = await failureOf(
      inProcessClient({ timeoutMs: 50, retry: { maxAttempts: 1 } }).get(
        freshAccount(),
        'incident',
        'x',
      ),
    );
    expect(error).toBeInstanceOf(ItsmRequestError);
    expect(error).toMatchObject({ code: 'ITSM_TIMEOUT' });
  });
});

describe('the URL of each call', () => {
  /** The URL as the client built it before it joined plain paths as text: URL's resolution. */
  function resolved(path: string, query: Record<string, string | number | null | undefined>) {
    const url = new URL(path.replace(/^\/+/, ''), `${itsm.url}/v1/`);
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
    }
    return url.href;
  }

  it.each([
    ['accounts/1/events', {}],
    ['/accounts/1/events', { page_size: 5, cursor: 'a b&c=d/é' }],
    ['accounts/1/itsm/incidents/a%2Fb', { raw_type: 'u_thing' }],
    ['accounts/1/itsm/incidents/café', {}],
    ['accounts/1/itsm/incidents/a b', {}],
    ['accounts/1/itsm/../events', {}],
    ['accounts/1/./events', { skipped: null, absent: undefined }],
    ['accounts/1/itsm/incidents/..', {}],
    ['accounts/1/itsm/incidents/x?y=1', {}],
    ['accounts/1/itsm/incidents/~a_b-c.d', {}],
  ] as const)('sends %s with %j where URL resolves it', async (path, query) => {
    const urls: string[] = [];
    const transport = createInProcessTransport(itsm.itsm.app);
    const client = inProcessClient({
      transport: (request, attempt) => {
        urls.push(request.url);
        return transport(request, attempt);
      },
    });
    await client.request({ method: 'GET', path, query }).catch(() => {});
    expect(urls).toEqual([resolved(path, query)]);
  });
});
