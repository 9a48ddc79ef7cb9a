// The receiver on Workers, as on Node: a signed notification is answered 200 only once it is on
// the Queue (and the account noted in D1 for the cron sweep); the handshake is answered with the
// app id; anything unsigned, wrongly signed, malformed or too large is refused with a clear 4xx
// and enqueues nothing. Plus the Worker's own edges: a Queue that refuses (503, so the sender
// retries), a missing setting (500 naming it), and the admin routes of a bundled rule set.
import { describe, expect, it } from 'vitest';
import type { WorkerEnv } from '../../src/runtime/worker.js';
import {
  APP_ID,
  eventually,
  type Json,
  newWorker,
  notify,
  pipelineStore,
  QUEUE_NAME,
  request,
  workerEnv,
} from './helpers.js';
import { delivered, mainWorker } from './main.js';
import { exampleRules } from './rules.js';

const worker = mainWorker;

const deliveredAccounts = () =>
  delivered.map((message) => (message.body as { account?: number }).account);

let barriers = 800;

/**
 * Sends an accepted notification for a fresh account and waits until it has come through the
 * Queue: whatever was enqueued before it has come through too. Returns that account.
 */
async function barrier(): Promise<number> {
  const account = ++barriers;
  const response = await notify(worker, JSON.stringify({ account, subscription: 1 }));
  expect(response.status).toBe(200);
  await eventually(() => deliveredAccounts().includes(account), `account ${account} on the queue`);
  return account;
}

describe('the receiver on Workers', () => {
  it('answers a signed notification 200 after queueing {account} and noting the account', async () => {
    const response = await notify(worker, JSON.stringify({ account: 601, subscription: 7 }));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ accepted: true, account: 601 });
    expect((await pipelineStore.getAccount(601))?.notifiedAt).toEqual(expect.any(Number));
    const message = await eventually(
      () => delivered.find((m) => (m.body as { account?: number }).account === 601),
      'the message of account 601',
    );
    expect(message).toEqual({ queue: QUEUE_NAME, body: { account: 601 }, attempts: 1 });
  });

  it('accepts the legacy form body account=<id>', async () => {
    const response = await notify(worker, 'account=602', {
      contentType: 'application/x-www-form-urlencoded',
    });
    expect(response.status).toBe(200);
    await eventually(() => deliveredAccounts().includes(602), 'account 602 on the queue');
  });

  it('answers the handshake (a signed empty body) with the app id, enqueueing nothing', async () => {
    const before = delivered.length;
    const response = await notify(worker, '');
    expect(response.status).toBe(200);
    expect(await response.text()).toBe(APP_ID);
    const last = await barrier();
    expect(delivered.slice(before).map((m) => m.body)).toEqual([{ account: last }]);
  });

  it.each([
    ['unsigned', 611, { key: null }, 401, /X-Kloudless-Signature is missing/],
    ['signed with another key', 612, { key: 'not-the-key' }, 401, /does not match the body/],
  ] as const)(
    'refuses a notification %s with 401 and enqueues nothing',
    async (_, account, options, status, message) => {
      const response = await notify(worker, JSON.stringify({ account }), options);
      expect(response.status).toBe(status);
      expect(((await response.json()) as Json).message).toMatch(message);
      await barrier();
      expect(deliveredAccounts()).not.toContain(account);
      expect(await pipelineStore.getAccount(account)).toBeNull();
    },
  );

  it.each([
    ['not JSON', '{"account": 613', 400, /not valid JSON/],
    [
      'an account that is not a number',
      '{"account": "six"}',
      400,
      /account must be a positive whole number/,
    ],
    ['a JSON array', '[613]', 400, /must be a JSON object/],
  ])(
    'refuses a signed body that is %s with 400 and enqueues nothing',
    async (_, body, status, message) => {
      const before = delivered.length;
      const response = await notify(worker, body);
      expect(response.status).toBe(status);
      expect(((await response.json()) as Json).message).toMatch(message);
      const last = await barrier();
      expect(delivered.slice(before).map((m) => m.body)).toEqual([{ account: last }]);
    },
  );

  it('refuses a body over 64 KiB with 413 and enqueues nothing', async () => {
    const body = JSON.stringify({ account: 614, padding: 'x'.repeat(70 * 1024) });
    const response = await notify(worker, body);
    expect(response.status).toBe(413);
    expect(((await response.json()) as Json).error_code).toBe('payload_too_large');
    await barrier();
    expect(deliveredAccounts()).not.toContain(614);
    expect(await pipelineStore.getAccount(614)).toBeNull();
  });

  it('answers 503 when the Queue refuses the message, so that the sender retries', async () => {
    // A fake, named so: miniflare's Queue cannot be made to fail a send.
    const refusingQueue = {
      send: async () => {
        throw new Error('queue unavailable (test fake)');
      },
      sendBatch: async () => {
        throw new Error('queue unavailable (test fake)');
      },
    } as unknown as WorkerEnv['QUEUE'];
    const logs: string[] = [];
    const own = newWorker(logs);
    const response = await notify(own, JSON.stringify({ account: 615 }), {
      env: { ...workerEnv, QUEUE: refusingQueue },
    });
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ error_code: 'unavailable' });
    expect(logs.join('\n')).toMatch(/could not enqueue the notification of account 615.*503/);
  });
});

describe('the Worker without its settings', () => {
  it.each([
    [
      'ITSM_API_KEY',
      /ITSM_API_KEY is not set; set the secret with `npx wrangler secret put ITSM_API_KEY`/,
    ],
    ['ITSM_API_URL', /ITSM_API_URL is not set/],
    ['ITSM_APP_ID', /ITSM_APP_ID is not set/],
  ] as const)('answers 500 naming %s, and logs it, without crashing', async (name, message) => {
    const logs: string[] = [];
    const own = newWorker(logs);
    const env = { ...workerEnv, [name]: undefined } as WorkerEnv;
    for (let i = 0; i < 2; i++) {
      const response = await notify(own, JSON.stringify({ account: 616 }), { env });
      expect(response.status).toBe(500);
      expect(((await response.json()) as Json).message).toMatch(message);
    }
    expect(logs).toHaveLength(2);
    expect(logs[0]).toMatch(message);
    expect(await pipelineStore.getAccount(616)).toBeNull();
  });

  it('answers 500 naming a setting that is not valid', async () => {
    const own = newWorker();
    const response = await request(own, 'GET', '/healthz', {
      env: { ...workerEnv, ITSM_RULES_PAGE_SIZE: '0' },
    });
    expect(response.status).toBe(500);
    expect(((await response.json()) as Json).message).toMatch(
      /ITSM_RULES_PAGE_SIZE must be a whole number from 1 to 1000, got "0"/,
    );
  });
});

describe('the routes beside the receiver', () => {
  it('reports health with the bundled rules and the runtime', async () => {
    const response = await request(worker, 'GET', '/healthz');
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      ok: true,
      app_id: APP_ID,
      rules: exampleRules.length,
      scheduled: 1,
      runtime: 'workers',
    });
  });

  it('answers /admin/rules/reload with 404: rules are bundled at build time', async () => {
    const response = await request(worker, 'POST', '/admin/rules/reload', { auth: true });
    expect(response.status).toBe(404);
    expect(((await response.json()) as Json).message).toMatch(/bundled at build time/);
  });

  it('keeps run records and metrics behind the API key', async () => {
    expect((await request(worker, 'GET', '/runs')).status).toBe(401);
    expect((await request(worker, 'GET', '/runs', { auth: true })).status).toBe(200);
    const metrics = await request(worker, 'GET', '/metrics', { auth: true });
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toMatch(/itsm_rules_webhooks_accepted_total \d+/);
    // The bundled rules are this isolate's successful load: not reported as a refused reload.
    expect(text).toMatch(/^itsm_rules_reload_success 1$/m);
    expect(text).toMatch(/^itsm_rules_reload_timestamp_seconds [1-9]\d*$/m);
  });

  it('counts the drain lag on /metrics from the oldest notification not yet drained, not the newest', async () => {
    // Nothing drains here (the Queue's messages are only collected): both notifications wait.
    const account = 621;
    expect((await notify(worker, JSON.stringify({ account, subscription: 1 }))).status).toBe(200);
    const first = (await pipelineStore.getAccount(account))?.notifiedAt as number;
    expect(first).toEqual(expect.any(Number));
    await eventually(() => Date.now() > first, 'the clock to move past the first notification');
    expect((await notify(worker, JSON.stringify({ account, subscription: 1 }))).status).toBe(200);
    const state = await pipelineStore.getAccount(account);
    expect(state?.notifiedAt).toBeGreaterThan(first);
    expect(state?.pendingSince).toBe(first);

    const before = Date.now();
    const text = await (await request(worker, 'GET', '/metrics', { auth: true })).text();
    const after = Date.now();
    const lag = Number(
      new RegExp(`^itsm_rules_drain_lag_seconds\\{account="${account}"\\} (\\S+)$`, 'm').exec(
        text,
      )?.[1],
    );
    // A millisecond either side: the gauge is seconds, a float.
    expect(lag * 1000).toBeGreaterThanOrEqual(before - first - 1);
    expect(lag * 1000).toBeLessThanOrEqual(after - first + 1);
  });
});
