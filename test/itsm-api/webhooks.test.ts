// Webhooks of the embedded ITSM API over real HTTP (spec 7): registration and its handshake,
// management routes and their auth, start-up registration, signed notifications, retries with
// backoff, timeouts, and coalescing. Signatures are recomputed here with node:crypto,
// independently of src/itsm/signature.ts.
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { StartItsmServerOptions } from '../../src/runtime/node.js';
import { startTestItsm, TEST_API_KEY, TEST_APP_ID, type TestItsm } from '../helpers/itsm.js';
import {
  type Answer,
  deadUrl,
  type ReceivedRequest,
  startReceiver,
  type TestReceiver,
} from '../helpers/receiver.js';

const WEBHOOKS = `/v1/applications/${TEST_APP_ID}/webhooks`;
const FAST_RETRIES = { attempts: 4, baseDelayMs: 20, maxDelayMs: 50, timeoutMs: 2_000 };

/** X-Kloudless-Signature as a receiver computes it: Base64 HMAC-SHA256 of the raw bytes. */
function expectedSignature(body: Buffer | string): string {
  return createHmac('sha256', TEST_API_KEY).update(body).digest('base64');
}

const isHandshake = (request: ReceivedRequest) => request.body.length === 0;
const notificationsOf = (receiver: { requests: ReceivedRequest[] }) =>
  receiver.requests.filter((request) => !isHandshake(request));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  // Last started, first closed: servers stop delivering before their receivers go away.
  for (let cleanup = cleanups.pop(); cleanup; cleanup = cleanups.pop()) await cleanup();
});

async function itsm(overrides: Partial<StartItsmServerOptions> = {}): Promise<TestItsm> {
  const server = await startTestItsm({ delivery: FAST_RETRIES, ...overrides });
  cleanups.push(() => server.close());
  return server;
}

/**
 * A receiver that answers handshakes with the app id; `notification` decides the answer to
 * each notification from its 0-based index among notifications (handshakes not counted).
 */
async function receiver(notification?: (index: number) => Answer): Promise<TestReceiver> {
  let notifications = 0;
  const started = await startReceiver({
    appId: TEST_APP_ID,
    answer: (request) => {
      if (isHandshake(request)) return { status: 200, body: TEST_APP_ID };
      return notification?.(notifications++) ?? { status: 200, body: 'ok' };
    },
  });
  cleanups.push(() => started.close());
  return started;
}

async function register(server: TestItsm, url: string): Promise<number> {
  const response = await server.call('POST', WEBHOOKS, { body: { url } });
  expect(response.status, response.text).toBe(201);
  return response.json.id;
}

async function createIncident(server: TestItsm, account = 123, description = 'mail is down') {
  const response = await server.call('POST', `/v1/accounts/${account}/itsm/incidents`, {
    body: { description },
  });
  expect(response.status, response.text).toBe(201);
  return response.json;
}

describe('webhook registration', () => {
  it('performs a signed handshake with an empty body before saving the URL, and answers 201 with {id, url}', async () => {
    const server = await itsm();
    const hook = await receiver();

    const response = await server.call('POST', WEBHOOKS, { body: { url: hook.url } });

    expect(response.status, response.text).toBe(201);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.json).toEqual({ id: expect.any(Number), url: hook.url });
    expect(hook.requests).toHaveLength(1);
    const [handshake] = hook.requests;
    expect(handshake?.method).toBe('POST');
    expect(handshake?.url).toBe('/hook');
    expect(handshake?.body.length).toBe(0);
    expect(handshake?.headers['x-kloudless-signature']).toBe(expectedSignature(''));
  });

  it('returns the same id with 200 when the same URL is registered again', async () => {
    const server = await itsm();
    const hook = await receiver();
    const id = await register(server, hook.url);

    const again = await server.call('POST', WEBHOOKS, { body: { url: hook.url } });

    expect(again.status, again.text).toBe(200);
    expect(again.json).toEqual({ id, url: hook.url });
    const list = await server.call('GET', WEBHOOKS);
    expect(list.json.objects).toEqual([{ id, url: hook.url }]);
  });

  it('stores a URL once when it is registered twice at the same time', async () => {
    const server = await itsm();
    const hook = await receiver();

    const answers = await Promise.all([
      server.call('POST', WEBHOOKS, { body: { url: hook.url } }),
      server.call('POST', WEBHOOKS, { body: { url: hook.url } }),
    ]);

    expect(answers.map((answer) => answer.status).sort()).toEqual([200, 201]);
    expect(answers[0]?.json.id).toBe(answers[1]?.json.id);
    expect((await server.call('GET', WEBHOOKS)).json.objects).toHaveLength(1);
  });

  it('lists registered webhooks as an object_list of {id, url}', async () => {
    const server = await itsm();
    const first = await receiver();
    const second = await receiver();
    const firstId = await register(server, first.url);
    const secondId = await register(server, second.url);

    const list = await server.call('GET', WEBHOOKS);

    expect(list.status).toBe(200);
    expect(list.headers.get('content-type')).toBe('application/json');
    expect(list.json).toMatchObject({ type: 'object_list', count: 2 });
    expect(list.json.objects).toEqual([
      { id: firstId, url: first.url },
      { id: secondId, url: second.url },
    ]);
    expect(firstId).not.toBe(secondId);
  });

  it('lists nothing before any webhook is registered', async () => {
    const server = await itsm();
    const list = await server.call('GET', WEBHOOKS);
    expect(list.status).toBe(200);
    expect(list.json).toMatchObject({ type: 'object_list', count: 0, objects: [] });
  });

  it('gets a webhook by id', async () => {
    const server = await itsm();
    const hook = await receiver();
    const id = await register(server, hook.url);

    const response = await server.call('GET', `${WEBHOOKS}/${id}`);

    expect(response.status).toBe(200);
    expect(response.json).toEqual({ id, url: hook.url });
  });

  it('deletes a webhook with 204, after which it is a 404 and no longer listed', async () => {
    const server = await itsm();
    const hook = await receiver();
    const id = await register(server, hook.url);

    const deleted = await server.call('DELETE', `${WEBHOOKS}/${id}`);
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');

    const get = await server.call('GET', `${WEBHOOKS}/${id}`);
    expect(get.status).toBe(404);
    expect(get.json).toMatchObject({ error_code: 'not_found', status_code: 404 });
    const again = await server.call('DELETE', `${WEBHOOKS}/${id}`);
    expect(again.status).toBe(404);
    expect((await server.call('GET', WEBHOOKS)).json.objects).toEqual([]);
  });

  it('answers 404 for a webhook id that never existed', async () => {
    const server = await itsm();
    expect((await server.call('GET', `${WEBHOOKS}/999`)).status).toBe(404);
    expect((await server.call('GET', `${WEBHOOKS}/not-a-number`)).status).toBe(404);
    expect((await server.call('DELETE', `${WEBHOOKS}/999`)).status).toBe(404);
  });

  it('tolerates a trailing slash on the webhook paths', async () => {
    const server = await itsm();
    const hook = await receiver();
    const id = await register(server, hook.url);

    const list = await server.call('GET', `${WEBHOOKS}/`);
    expect(list.status, list.text).toBe(200);
    expect(list.json.objects).toEqual([{ id, url: hook.url }]);
    const one = await server.call('GET', `${WEBHOOKS}/${id}/`);
    expect(one.status, one.text).toBe(200);
    expect(one.json).toEqual({ id, url: hook.url });
  });

  it('stops notifying a webhook once it is deleted', async () => {
    const server = await itsm();
    const hook = await receiver();
    const id = await register(server, hook.url);
    expect((await server.call('DELETE', `${WEBHOOKS}/${id}`)).status).toBe(204);

    await createIncident(server);
    await server.itsm.notifier.idle();
    await sleep(50);

    expect(notificationsOf(hook)).toHaveLength(0);
  });

  it('follows registrations and deletions made after writes were already notified', async () => {
    // The registrations every write reads are kept between writes: each change must show.
    const server = await itsm();
    const first = await receiver();
    const second = await receiver();
    const firstId = await register(server, first.url);
    await createIncident(server);
    await server.itsm.notifier.idle();

    const secondId = await register(server, second.url);
    await createIncident(server);
    await server.itsm.notifier.idle();
    expect(notificationsOf(second).map((r) => r.body.toString())).toEqual([
      `{"account":123,"subscription":${secondId}}`,
    ]);

    expect((await server.call('DELETE', `${WEBHOOKS}/${firstId}`)).status).toBe(204);
    const before = notificationsOf(first).length;
    await createIncident(server);
    await server.itsm.notifier.idle();
    expect(notificationsOf(first)).toHaveLength(before);
    expect(notificationsOf(second)).toHaveLength(2);
  });
});

describe('webhook handshake refused', () => {
  it.each<[string, Answer, RegExp]>([
    [
      'answers 200 with a text other than the application id',
      { status: 200, body: 'some-other-app' },
      /some-other-app|application id/,
    ],
    ['answers 500', { status: 500, body: TEST_APP_ID }, /500/],
    ['answers 200 with an empty body', { status: 200, body: '' }, /application id/],
  ])(
    'does not save a URL whose receiver %s, and says why in a 400',
    async (_label, answer, why) => {
      const server = await itsm();
      const hook = await startReceiver({ answer: () => answer });
      cleanups.push(() => hook.close());

      const response = await server.call('POST', WEBHOOKS, { body: { url: hook.url } });

      expect(response.status, response.text).toBe(400);
      expect(response.json).toMatchObject({ error_code: 'invalid_parameters', status_code: 400 });
      expect(response.json.message).toMatch(why);
      expect(hook.requests).toHaveLength(1);
      expect((await server.call('GET', WEBHOOKS)).json.objects).toEqual([]);
    },
  );

  it('does not save a URL where nothing listens, and says it could not be reached', async () => {
    const server = await itsm();
    const url = await deadUrl();

    const response = await server.call('POST', WEBHOOKS, { body: { url } });

    expect(response.status, response.text).toBe(400);
    expect(response.json.error_code).toBe('invalid_parameters');
    expect(response.json.message).toMatch(/could not be reached|ECONNREFUSED|refused/i);
    expect((await server.call('GET', WEBHOOKS)).json.objects).toEqual([]);
  });

  it('refuses a URL with a user name or password, without repeating them, and calls nothing', async () => {
    const server = await itsm();
    const hook = await startReceiver({ answer: () => ({ status: 200, body: TEST_APP_ID }) });
    cleanups.push(() => hook.close());

    for (const userinfo of ['ops:s3cret-pw@', 'ops@', ':s3cret-pw@']) {
      const url = hook.url.replace('http://', `http://${userinfo}`);
      const response = await server.call('POST', WEBHOOKS, { body: { url } });
      expect(response.status, response.text).toBe(400);
      expect(response.json.message).toContain('url must not carry a user name or password');
      expect(response.json.message).not.toContain('s3cret-pw');
      expect(response.json.message).not.toContain('ops');
    }
    expect(hook.requests).toEqual([]);
    expect((await server.call('GET', WEBHOOKS)).json.objects).toEqual([]);
  });
});

describe('webhook registration input', () => {
  it.each<[string, unknown, RegExp]>([
    ['an ftp URL', { url: 'ftp://x' }, /http/],
    ['text that is not a URL', { url: 'not a url' }, /not a valid URL/],
    ['a missing url', {}, /url is required/],
    ['an empty url', { url: '' }, /url is required/],
    ['a url that is not a string', { url: 42 }, /url/],
    ['an unknown field beside url', { url: 'http://127.0.0.1:1/hook', secret: 'x' }, /secret/],
    ['a body that is not JSON', 'url=http://x', /JSON/],
  ])('refuses %s with a 400', async (_label, body, why) => {
    const server = await itsm();

    const response = await server.call('POST', WEBHOOKS, { body });

    expect(response.status, response.text).toBe(400);
    expect(response.json).toMatchObject({ error_code: 'invalid_parameters', status_code: 400 });
    expect(response.json.message).toMatch(why);
    expect((await server.call('GET', WEBHOOKS)).json.objects).toEqual([]);
  });
});

describe('webhook management auth', () => {
  const routes: [string, string, unknown?][] = [
    ['GET', WEBHOOKS],
    ['POST', WEBHOOKS, { url: 'http://127.0.0.1:1/hook' }],
    ['GET', `${WEBHOOKS}/1`],
    ['DELETE', `${WEBHOOKS}/1`],
  ];

  it.each(routes)(
    'answers 404 to %s %s under another application id',
    async (method, path, body) => {
      const server = await itsm();
      const response = await server.call(method, path.replace(TEST_APP_ID, 'other-app'), { body });
      expect(response.status, response.text).toBe(404);
      expect(response.json.error_code).toBe('not_found');
    },
  );

  it.each(routes)('answers 403 to %s %s with a Bearer token', async (method, path, body) => {
    const server = await itsm({ tokens: { 'token-123': { account: 123 } } });
    const response = await server.call(method, path, { body, auth: 'Bearer token-123' });
    expect(response.status, response.text).toBe(403);
    expect(response.json.error_code).toBe('forbidden');
  });

  it.each(routes)('answers 401 to %s %s without credentials', async (method, path, body) => {
    const server = await itsm();
    const response = await server.call(method, path, { body, auth: null });
    expect(response.status, response.text).toBe(401);
    expect(response.json.error_code).toBe('unauthorized');
  });

  it('answers 401 to a wrong API key', async () => {
    const server = await itsm();
    const response = await server.call('GET', WEBHOOKS, { auth: 'APIKey wrong-key' });
    expect(response.status).toBe(401);
    expect(response.json.error_code).toBe('unauthorized');
  });

  it('does not contact the URL when the request is not authorised', async () => {
    const server = await itsm({ tokens: { 'token-123': { account: 123 } } });
    const hook = await receiver();

    await server.call('POST', WEBHOOKS, { body: { url: hook.url }, auth: 'Bearer token-123' });
    await server.call('POST', WEBHOOKS, { body: { url: hook.url }, auth: null });

    expect(hook.requests).toHaveLength(0);
    expect((await server.call('GET', WEBHOOKS)).json.objects).toEqual([]);
  });
});

describe('start-up registration', () => {
  it('registers the configured URLs with the handshake once the server listens', async () => {
    const hook = await receiver();
    const server = await itsm({ webhooks: [hook.url] });

    await server.webhooksReady;

    const list = await server.call('GET', WEBHOOKS);
    expect(list.json.objects).toEqual([{ id: expect.any(Number), url: hook.url }]);
    expect(hook.requests.filter(isHandshake)).toHaveLength(1);
    expect(hook.requests[0]?.headers['x-kloudless-signature']).toBe(expectedSignature(''));
  });

  it('notifies a webhook registered at start-up', async () => {
    const hook = await receiver();
    const server = await itsm({ webhooks: [hook.url] });
    await server.webhooksReady;
    const [webhook] = (await server.call('GET', WEBHOOKS)).json.objects;

    await createIncident(server);
    await server.itsm.notifier.idle();

    expect(notificationsOf(hook).map((r) => r.body.toString())).toEqual([
      JSON.stringify({ account: 123, subscription: webhook.id }),
    ]);
  });
});

describe('webhook notifications', () => {
  it('POSTs {account, subscription} as JSON, with the user agent and a signature over the exact bytes', async () => {
    const server = await itsm();
    const hook = await receiver();
    const id = await register(server, hook.url);

    await createIncident(server, 123);
    await server.itsm.notifier.idle();

    const notifications = notificationsOf(hook);
    expect(notifications).toHaveLength(1);
    const [notification] = notifications;
    expect(notification?.method).toBe('POST');
    expect(notification?.url).toBe('/hook');
    expect(notification?.headers['content-type']).toBe('application/json');
    expect(notification?.headers['user-agent']).toBe('kloudless-webhook/1.0');
    expect(notification?.body.toString('utf8')).toBe(`{"account":123,"subscription":${id}}`);
    expect(notification?.headers['x-kloudless-signature']).toBe(
      expectedSignature(notification?.body ?? ''),
    );
  });

  it('notifies after updates and deletes as well as creates', async () => {
    const server = await itsm();
    const hook = await receiver();
    await register(server, hook.url);
    const incident = await createIncident(server);
    await server.itsm.notifier.idle();

    const patched = await server.call('PATCH', `/v1/accounts/123/itsm/incidents/${incident.id}`, {
      body: { priority: 'high' },
    });
    expect(patched.status).toBe(200);
    await server.itsm.notifier.idle();
    expect(notificationsOf(hook)).toHaveLength(2);

    const deleted = await server.call('DELETE', `/v1/accounts/123/itsm/incidents/${incident.id}`);
    expect(deleted.status).toBe(204);
    await server.itsm.notifier.idle();
    expect(notificationsOf(hook)).toHaveLength(3);
  });

  it('names the account that changed in each notification', async () => {
    const server = await itsm();
    const hook = await receiver();
    const id = await register(server, hook.url);

    await createIncident(server, 1);
    await createIncident(server, 2);
    await server.itsm.notifier.idle();

    const bodies = notificationsOf(hook).map((r) => JSON.parse(r.body.toString()));
    expect(bodies).toContainEqual({ account: 1, subscription: id });
    expect(bodies).toContainEqual({ account: 2, subscription: id });
  });

  it('notifies every registered webhook, each with its own subscription id', async () => {
    const server = await itsm();
    const first = await receiver();
    const second = await receiver();
    const firstId = await register(server, first.url);
    const secondId = await register(server, second.url);

    await createIncident(server);
    await server.itsm.notifier.idle();

    expect(notificationsOf(first).map((r) => r.body.toString())).toEqual([
      `{"account":123,"subscription":${firstId}}`,
    ]);
    expect(notificationsOf(second).map((r) => r.body.toString())).toEqual([
      `{"account":123,"subscription":${secondId}}`,
    ]);
  });

  it('sends nothing for a write that failed', async () => {
    const server = await itsm();
    const hook = await receiver();
    await register(server, hook.url);

    const refused = await server.call('POST', '/v1/accounts/123/itsm/incidents', {
      body: { impact: 'huge' },
    });
    expect(refused.status).toBe(400);
    await server.itsm.notifier.idle();
    await sleep(50);

    expect(notificationsOf(hook)).toHaveLength(0);
  });
});

describe('webhook delivery retries', () => {
  it('retries a notification answered with 500 until it is accepted', async () => {
    const server = await itsm({ delivery: { attempts: 6, baseDelayMs: 20, maxDelayMs: 50 } });
    const hook = await receiver((index) =>
      index < 2 ? { status: 500, body: 'down' } : { status: 200 },
    );
    const id = await register(server, hook.url);

    await createIncident(server);
    await server.itsm.notifier.idle();
    await sleep(100);

    const notifications = notificationsOf(hook);
    expect(notifications).toHaveLength(3);
    for (const notification of notifications) {
      expect(notification.body.toString()).toBe(`{"account":123,"subscription":${id}}`);
      expect(notification.headers['x-kloudless-signature']).toBe(
        expectedSignature(notification.body),
      );
    }
  });

  it('gives up after the configured number of attempts and says so in the log', async () => {
    const attempts = 3;
    const server = await itsm({ delivery: { attempts, baseDelayMs: 20, maxDelayMs: 50 } });
    const hook = await receiver(() => ({ status: 503, body: 'unavailable' }));
    await register(server, hook.url);

    await createIncident(server);
    await server.itsm.notifier.idle();
    expect(notificationsOf(hook)).toHaveLength(attempts);

    await sleep(200);
    expect(notificationsOf(hook)).toHaveLength(attempts);
    expect(server.logs.join('\n')).toMatch(/gave up|giving up/i);
    expect(server.logs.join('\n')).toContain(hook.url);
  });

  it('treats a receiver slower than the timeout as a failure and retries', async () => {
    const server = await itsm({
      delivery: { attempts: 4, baseDelayMs: 20, maxDelayMs: 50, timeoutMs: 100 },
    });
    const hook = await receiver((index) =>
      index === 0 ? { status: 200, delayMs: 400 } : { status: 200 },
    );
    await register(server, hook.url);

    await createIncident(server);
    await server.itsm.notifier.idle();

    expect(notificationsOf(hook)).toHaveLength(2);
    expect(server.logs.join('\n')).toMatch(/timed out/);
    expect(server.logs.join('\n')).not.toMatch(/gave up/);
  });

  it('cancels a retry that is waiting when the server closes', async () => {
    const server = await startTestItsm({
      delivery: { attempts: 6, baseDelayMs: 4_000, maxDelayMs: 4_000 },
    });
    const hook = await receiver(() => ({ status: 500 }));
    let closedIn = Number.POSITIVE_INFINITY;
    try {
      await register(server, hook.url);
      await createIncident(server);
      await hook.waitFor(2);
      await sleep(50);
    } finally {
      const started = performance.now();
      await server.close();
      closedIn = performance.now() - started;
    }
    expect(closedIn).toBeLessThan(1_000);
    await sleep(50);
    expect(notificationsOf(hook)).toHaveLength(1);
  });

  it('does not wait for a retry when the server closes while a failing notification is in flight', async () => {
    const server = await startTestItsm({
      delivery: { attempts: 6, baseDelayMs: 4_000, maxDelayMs: 4_000 },
    });
    const hook = await receiver(() => ({ status: 500, delayMs: 100 }));
    let closedIn = Number.POSITIVE_INFINITY;
    try {
      await register(server, hook.url);
      await createIncident(server);
      await hook.waitFor(2);
    } finally {
      const started = performance.now();
      await server.close();
      closedIn = performance.now() - started;
    }
    // The request in flight may finish (100 ms); the 2-4 s retry delay must not be waited out.
    expect(closedIn).toBeLessThan(1_000);
    expect(notificationsOf(hook)).toHaveLength(1);
  });

  it('waits longer before each retry (exponential backoff)', async () => {
    const server = await itsm({ delivery: { attempts: 4, baseDelayMs: 40, maxDelayMs: 1_000 } });
    const arrivals: number[] = [];
    const hook = await receiver(() => {
      arrivals.push(performance.now());
      return { status: 500 };
    });
    await register(server, hook.url);

    await createIncident(server);
    await server.itsm.notifier.idle();

    expect(notificationsOf(hook)).toHaveLength(4);
    const gaps = arrivals.slice(1).map((at, i) => at - (arrivals[i] ?? at));
    // Delays are jittered within the upper half of 40, 80, 160 ms.
    expect(gaps[0]).toBeGreaterThanOrEqual(18);
    expect(gaps[1]).toBeGreaterThanOrEqual(38);
    expect(gaps[2]).toBeGreaterThanOrEqual(78);
  });
});

interface PullingReceiver {
  url: string;
  notifications: number;
  seen: Set<string>;
  close(): Promise<void>;
}

/**
 * A receiver as the spec intends one: on each notification it verifies the signature, pulls the
 * account's events with its own cursor, and only then answers 200 (after `thinkMs`, so that a
 * burst of writes lands while a notification is in flight).
 */
async function startPullingReceiver(apiUrl: () => string, thinkMs = 30): Promise<PullingReceiver> {
  const seen = new Set<string>();
  let cursor = '';
  const state = { notifications: 0 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      if (body.length === 0) {
        res.end(TEST_APP_ID);
        return;
      }
      if (req.headers['x-kloudless-signature'] !== expectedSignature(body)) {
        res.statusCode = 401;
        res.end('bad signature');
        return;
      }
      state.notifications++;
      const { account } = JSON.parse(body.toString()) as { account: number };
      for (;;) {
        const response = await fetch(
          `${apiUrl()}/v1/accounts/${account}/events?page_size=1000${cursor ? `&cursor=${cursor}` : ''}`,
          { headers: { Authorization: `APIKey ${TEST_API_KEY}` } },
        );
        const page = (await response.json()) as {
          objects: { metadata: { id: string } }[];
          cursor: string;
          remaining: number;
        };
        for (const event of page.objects) seen.add(event.metadata.id);
        cursor = page.cursor;
        if (page.remaining === 0) break;
      }
      await sleep(thinkMs);
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    get notifications() {
      return state.notifications;
    },
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

describe('webhook coalescing', () => {
  it('coalesces a burst of writes into far fewer notifications, the last one after the last write', async () => {
    let apiUrl = '';
    const hook = await startPullingReceiver(() => apiUrl);
    cleanups.push(() => hook.close());
    const server = await itsm();
    apiUrl = server.url;
    await register(server, hook.url);

    const created: string[] = [];
    for (let i = 0; i < 20; i++) created.push((await createIncident(server, 123, `burst ${i}`)).id);
    await server.itsm.notifier.idle();

    expect(hook.notifications).toBeGreaterThanOrEqual(1);
    expect(hook.notifications).toBeLessThan(10);
    expect([...hook.seen].sort()).toEqual([...created].sort());
  });

  it('coalesces concurrent writes and still delivers a notification after the last of them', async () => {
    let apiUrl = '';
    const hook = await startPullingReceiver(() => apiUrl);
    cleanups.push(() => hook.close());
    const server = await itsm();
    apiUrl = server.url;
    await register(server, hook.url);

    const created = await Promise.all(
      Array.from({ length: 20 }, (_, i) => createIncident(server, 123, `concurrent ${i}`)),
    );
    await server.itsm.notifier.idle();

    expect(hook.notifications).toBeGreaterThanOrEqual(1);
    expect(hook.notifications).toBeLessThan(10);
    expect([...hook.seen].sort()).toEqual(created.map((incident) => incident.id).sort());
  });
});
