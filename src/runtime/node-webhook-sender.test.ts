// The embedded API's webhook notifications through each sender, fetch (the runtime-neutral
// default) and node:http (what `itsm-server` and all-in-one `serve` use): the notifier must
// deliver the same request, count the same retries, time out the same way and describe the same
// failures whichever one sends. A real receiver on 127.0.0.1 and a real SQLite store.
import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Answer,
  deadUrl,
  type ReceivedRequest,
  startReceiver,
  type TestReceiver,
} from '../../test/helpers/receiver.js';
import {
  fetchWebhookSender,
  WEBHOOK_USER_AGENT,
  WebhookNotifier,
  type WebhookSender,
} from '../server/webhook-delivery.js';
import type { ItsmStore } from '../storage/port.js';
import { openSqliteStore } from './node.js';
import { signBodyNode } from './node-crypto.js';
import { createNodeWebhookSender, type NodeWebhookSender } from './node-webhook-sender.js';

const KEY = 'sender-test-key';
const APP = 'sender-test';
const ACCOUNT = 42;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (let cleanup = cleanups.pop(); cleanup; cleanup = cleanups.pop()) await cleanup();
});

/** Each sender, under the name a failure message shows. */
function senders(): [string, () => { send: WebhookSender; node?: NodeWebhookSender }][] {
  return [
    ['fetch', () => ({ send: fetchWebhookSender })],
    [
      'node:http',
      () => {
        const node = createNodeWebhookSender();
        cleanups.push(() => node.close());
        return { send: node.send, node };
      },
    ],
  ];
}

async function receiver(answer?: (request: ReceivedRequest, index: number) => Answer) {
  const started = await startReceiver({ appId: APP, ...(answer && { answer }) });
  cleanups.push(() => started.close());
  return started;
}

/** A notifier over a fresh store with `url` registered, sending through `send`. */
async function notifier(
  send: WebhookSender,
  url: string,
  delivery: { attempts?: number; timeoutMs?: number } = {},
) {
  const store: ItsmStore = openSqliteStore(':memory:');
  const { webhook } = await store.addWebhook(APP, url, new Date().toISOString());
  const logs: string[] = [];
  const sender = new WebhookNotifier({
    store,
    appId: APP,
    apiKey: KEY,
    sign: signBodyNode,
    send,
    log: (line) => logs.push(line),
    baseDelayMs: 10,
    maxDelayMs: 20,
    ...delivery,
  });
  cleanups.push(async () => {
    await sender.stop();
    await store.close();
  });
  return { notifier: sender, logs, subscription: webhook.id };
}

const notificationsOf = (hook: TestReceiver) => hook.requests.filter((r) => r.body.length > 0);

describe.each(senders())('webhook notifications sent through %s', (_name, make) => {
  it('arrive as a signed JSON POST with every header the notifier sets', async () => {
    const { send } = make();
    const hook = await receiver();
    const { notifier: sender, subscription } = await notifier(send, hook.url);

    sender.notify(ACCOUNT);
    await sender.idle();

    const [request, ...more] = notificationsOf(hook);
    expect(more).toHaveLength(0);
    const body = `{"account":${ACCOUNT},"subscription":${subscription}}`;
    expect(request?.method).toBe('POST');
    expect(request?.url).toBe('/hook');
    expect(request?.body.toString()).toBe(body);
    expect(request?.headers['content-type']).toBe('application/json');
    expect(request?.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(request?.headers['user-agent']).toBe(WEBHOOK_USER_AGENT);
    expect(request?.headers['x-kloudless-signature']).toBe(
      createHmac('sha256', KEY).update(body).digest('base64'),
    );
    expect(sender.stats).toEqual({ delivered: 1, abandoned: 0, failedAttempts: 0 });
  });

  it('retries a notification answered 500 and 302 until a 2xx, the same request each time', async () => {
    const { send } = make();
    const answers = [{ status: 500 }, { status: 302 }, { status: 204 }];
    const hook = await receiver((request) =>
      request.body.length === 0 ? { status: 200, body: APP } : (answers.shift() ?? { status: 200 }),
    );
    const { notifier: sender, logs } = await notifier(send, hook.url, { attempts: 5 });

    sender.notify(ACCOUNT);
    await sender.idle();

    const notifications = notificationsOf(hook);
    expect(notifications).toHaveLength(3);
    for (const notification of notifications.slice(1)) {
      expect(notification.body).toEqual(notifications[0]?.body);
      expect(notification.headers['x-kloudless-signature']).toBe(
        notifications[0]?.headers['x-kloudless-signature'],
      );
    }
    expect(sender.stats).toEqual({ delivered: 1, abandoned: 0, failedAttempts: 2 });
    expect(logs.join('\n')).toContain('failed with status 500; retry 1/4');
    expect(logs.join('\n')).toContain('failed with status 302; retry 2/4');
  });

  it('abandons an attempt at the timeout and retries it', async () => {
    const { send, node } = make();
    const hook = await receiver((_request, index) =>
      index === 0 ? { status: 200, delayMs: 1_000 } : { status: 200 },
    );
    const { notifier: sender, logs } = await notifier(send, hook.url, {
      attempts: 3,
      timeoutMs: 100,
    });

    sender.notify(ACCOUNT);
    await sender.idle();

    expect(notificationsOf(hook)).toHaveLength(2);
    expect(sender.stats).toEqual({ delivered: 1, abandoned: 0, failedAttempts: 1 });
    expect(logs.join('\n')).toContain('failed with timed out; retry 1/2');
    // The abandoned request's connection was closed, not left waiting for its answer.
    if (node) expect(node.sockets()).toBeLessThanOrEqual(1);
  });

  it('gives up after its attempts at a URL where nothing listens, naming the error', async () => {
    const { send } = make();
    const url = await deadUrl();
    const { notifier: sender, logs } = await notifier(send, url, { attempts: 2 });

    sender.notify(ACCOUNT);
    await sender.idle();

    expect(sender.stats).toEqual({ delivered: 0, abandoned: 1, failedAttempts: 2 });
    expect(logs.join('\n')).toContain('failed with ECONNREFUSED; retry 1/1');
    expect(logs.join('\n')).toContain(`gave up notifying ${url} of account ${ACCOUNT}`);
  });
});

describe('the node:http webhook sender', () => {
  it('sends one notification after another over one kept-alive connection', async () => {
    const node = createNodeWebhookSender();
    cleanups.push(() => node.close());
    const hook = await receiver();
    const { notifier: sender } = await notifier(node.send, hook.url);

    for (let i = 0; i < 5; i++) {
      sender.notify(ACCOUNT + i);
      await sender.idle();
    }

    expect(notificationsOf(hook)).toHaveLength(5);
    expect(node.sockets()).toBe(1);
  });
});
