// All-in-one delivery of the API's notifications to the engine's own receiver, in process: the
// real receiver judges the signed body exactly as over HTTP (a bad signature is a 401 and queues
// nothing, a failing queue a 503 the notifier retries), and every other URL goes to the fallback,
// here fetch against a real server on 127.0.0.1.
import { createServer, type IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signBody } from '../itsm/signature.js';
import { closeServer, listen } from '../runtime/node.js';
import { fetchWebhookSender, type WebhookRequest } from '../server/webhook-delivery.js';
import { ownDeliverySender } from './own-delivery.js';
import { createReceiver, type Notification } from './receiver.js';

const KEY = 'own-delivery-key';
const OWN = 'http://127.0.0.1:1/webhooks/kloudless';

const elsewhere: { url: string; signature: string | undefined; body: string }[] = [];
const server = createServer((req: IncomingMessage, res) => {
  let body = '';
  req.on('data', (chunk) => {
    body += chunk;
  });
  req.on('end', () => {
    elsewhere.push({
      url: req.url ?? '',
      signature: req.headers['x-kloudless-signature'] as string | undefined,
      body,
    });
    res.writeHead(204).end();
  });
});
let other = '';

beforeAll(async () => {
  const address = await listen(server, 0, '127.0.0.1');
  other = `http://127.0.0.1:${address.port}/hooks/desk`;
});
afterAll(() => closeServer(server));

function setup(options: { failQueue?: boolean; listening?: boolean } = {}) {
  const enqueued: Notification[] = [];
  const receiver = createReceiver({
    keys: () => [KEY],
    appId: 'own-delivery-app',
    enqueue: (notification) => {
      if (options.failQueue) throw new Error('the pipeline database is locked');
      enqueued.push(notification);
    },
  });
  const send = ownDeliverySender({
    own: () => (options.listening === false ? null : { url: OWN, receiver }),
    fallback: fetchWebhookSender,
  });
  return { send, enqueued };
}

async function notification(url: string, key = KEY): Promise<WebhookRequest> {
  const body = JSON.stringify({ account: 7, subscription: 3 });
  return {
    url,
    body,
    // As the notifier sets them.
    headers: {
      'Content-Type': 'application/json',
      'User-Agent': 'kloudless-webhook/1.0',
      'X-Kloudless-Signature': await signBody(body, key),
    },
    timeoutMs: 2_000,
  };
}

describe('notifications to the engine itself, in process', () => {
  it('are verified and queued by the receiver, with no request on the network', async () => {
    const { send, enqueued } = setup();
    const before = elsewhere.length;
    expect(await send(await notification(OWN))).toEqual({ status: 200 });
    expect(enqueued).toEqual([{ account: 7, subscription: 3 }]);
    expect(elsewhere.length).toBe(before);
  });

  it('are refused with 401 when signed with another key, queueing nothing', async () => {
    const { send, enqueued } = setup();
    expect(await send(await notification(OWN, 'not-the-key'))).toEqual({ status: 401 });
    expect(enqueued).toEqual([]);
  });

  it('are answered 503 when the queue fails, so that the notifier tries again', async () => {
    const { send, enqueued } = setup({ failQueue: true });
    expect(await send(await notification(OWN))).toEqual({ status: 503 });
    expect(enqueued).toEqual([]);
  });

  it('go over the network before the engine listens, and to every other URL', async () => {
    for (const [listening, url] of [
      [false, OWN.replace(':1/', `:${new URL(other).port}/`)],
      [true, other],
    ] as const) {
      const { send, enqueued } = setup({ listening });
      const request = await notification(url);
      const before = elsewhere.length;
      expect(await send(request)).toEqual({ status: 204 });
      expect(enqueued).toEqual([]);
      expect(elsewhere.slice(before)).toEqual([
        {
          url: new URL(url).pathname,
          signature: request.headers['X-Kloudless-Signature'],
          body: request.body,
        },
      ]);
    }
  });
});
