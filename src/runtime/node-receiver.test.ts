// Node's fast path for the receiver against the Hono route, over real HTTP: the same receiver
// served both ways must give the same answer (status, content type, body) and enqueue the same
// notifications, for every kind of request the receiver sees. Signatures are computed here with
// node:crypto, independently of src/itsm/signature.ts.
import { createHmac } from 'node:crypto';
import { createServer, request } from 'node:http';
import { createAdaptorServer, getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngineMetrics } from '../webhook/metrics.js';
import {
  createReceiver,
  DEFAULT_RECEIVER_MAX_BODY,
  type Notification,
  registerReceiver,
} from '../webhook/receiver.js';
import { closeServer, listen, verifySignatureNode } from './node.js';
import { isReceiverRequest, withNodeReceiver } from './node-receiver.js';

const KEY = 'fast-path-key';
const PATH = '/webhooks/kloudless';
const sign = (body: string | Buffer) => createHmac('sha256', KEY).update(body).digest('base64');

describe('isReceiverRequest', () => {
  it.each([
    ['POST', '/webhooks/kloudless', true],
    ['POST', '/webhooks/kloudless/', true],
    ['POST', '/webhooks/kloudless?from=itsm', true],
    ['GET', '/webhooks/kloudless', false],
    ['PUT', '/webhooks/kloudless', false],
    ['POST', '/webhooks/kloudless/extra', false],
    ['POST', '/webhooks/kloudlessx', false],
    ['POST', '/webhooks', false],
    ['POST', '/v1/webhooks/kloudless', false],
  ])('%s %s -> %s', (method, url, expected) => {
    expect(isReceiverRequest(method, url)).toBe(expected);
  });
});

interface Side {
  url: string;
  enqueued: Notification[];
  close(): Promise<void>;
}

/** The receiver served by `fast` (Node's path, the app behind it) or by the app alone. */
async function serveReceiver(fast: boolean, failEnqueue = false): Promise<Side> {
  const enqueued: Notification[] = [];
  const receiver = createReceiver({
    keys: () => [KEY],
    appId: 'fast-path-app',
    enqueue: (notification) => {
      if (failEnqueue) throw new Error('queue closed');
      enqueued.push(notification);
    },
    metrics: createEngineMetrics(),
    trustContentLength: true,
    verify: verifySignatureNode,
  });
  const app = new Hono({ strict: false });
  registerReceiver(app, receiver);
  const server = fast
    ? createServer(withNodeReceiver(receiver, getRequestListener(app.fetch), () => {}))
    : createAdaptorServer({ fetch: app.fetch });
  const address = await listen(server, 0, '127.0.0.1');
  return {
    url: `http://127.0.0.1:${address.port}`,
    enqueued,
    close: () => closeServer(server),
  };
}

interface Case {
  name: string;
  method?: string;
  path?: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
  /** Send the body in chunks without Content-Length. */
  chunked?: boolean;
}

interface Answer {
  status: number;
  contentType: string | undefined;
  allow: string | undefined;
  body: string;
}

function send(base: string, c: Case): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = c.body === undefined ? undefined : Buffer.from(c.body);
    const headers: Record<string, string | number> = { ...c.headers };
    if (body && !c.chunked) headers['Content-Length'] = body.byteLength;
    const req = request(
      `${base}${c.path ?? PATH}`,
      { method: c.method ?? 'POST', headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: res.headers['content-type'],
            allow: res.headers.allow,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    // A refused upload may be cut off by the server once it has answered.
    req.on('error', (error) => (req.writableEnded ? undefined : reject(error)));
    if (body && c.chunked) {
      for (let at = 0; at < body.byteLength; at += 1000) req.write(body.subarray(at, at + 1000));
      req.end();
    } else {
      req.end(body);
    }
  });
}

const signed = (body: string, headers: Record<string, string> = {}): Case['headers'] => ({
  'Content-Type': 'application/json',
  'X-Kloudless-Signature': sign(body),
  ...headers,
});

const notification = JSON.stringify({ account: 7, subscription: 2 });
const big = JSON.stringify({ account: 7, pad: 'x'.repeat(DEFAULT_RECEIVER_MAX_BODY) });
const atLimit = JSON.stringify({
  account: 9,
  pad: 'y'.repeat(DEFAULT_RECEIVER_MAX_BODY - 22),
});

const CASES: Case[] = [
  { name: 'a signed notification', body: notification, headers: signed(notification) },
  {
    name: 'a signed notification to the path with a slash and a query',
    path: `${PATH}/?via=test`,
    body: notification,
    headers: signed(notification),
  },
  {
    name: 'a chunked signed notification',
    body: notification,
    headers: signed(notification),
    chunked: true,
  },
  {
    name: 'a form notification',
    body: 'account=8',
    headers: {
      'Content-Type': 'application/x-www-form-urlencoded',
      'X-Kloudless-Signature': sign('account=8'),
    },
  },
  { name: 'the handshake', body: '', headers: signed('') },
  { name: 'an unsigned notification', body: notification, headers: { 'Content-Type': 'x/y' } },
  {
    name: 'a wrong signature',
    body: notification,
    headers: signed(notification, { 'X-Kloudless-Signature': sign('other') }),
  },
  { name: 'a signed non-JSON body', body: 'not json', headers: signed('not json') },
  {
    name: 'a signed bad account',
    body: '{"account":-1}',
    headers: signed('{"account":-1}'),
  },
  { name: 'a signed body at the size limit', body: atLimit, headers: signed(atLimit) },
  { name: 'a body over the limit, by Content-Length', body: big, headers: signed(big) },
  { name: 'a body over the limit, chunked', body: big, headers: signed(big), chunked: true },
  { name: 'GET on the receiver path', method: 'GET' },
  { name: 'PUT on the receiver path', method: 'PUT', body: notification },
  { name: 'another path', path: '/nowhere', body: notification, headers: signed(notification) },
];

describe("Node's fast path answers exactly as the Hono route", () => {
  let fast: Side;
  let hono: Side;
  beforeAll(async () => {
    [fast, hono] = await Promise.all([serveReceiver(true), serveReceiver(false)]);
  });
  afterAll(async () => {
    await Promise.all([fast.close(), hono.close()]);
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const before = [fast.enqueued.length, hono.enqueued.length];
    const [viaFast, viaHono] = [await send(fast.url, c), await send(hono.url, c)];
    expect(viaFast).toEqual(viaHono);
    expect(fast.enqueued.slice(before[0])).toEqual(hono.enqueued.slice(before[1]));
  });

  it('accepts, refuses and enqueues as the receiver decides (not only alike)', async () => {
    const ok = await send(fast.url, CASES[0] as Case);
    expect(ok).toMatchObject({ status: 200, contentType: 'application/json' });
    expect(JSON.parse(ok.body)).toEqual({ accepted: true, account: 7 });
    expect((await send(fast.url, CASES[5] as Case)).status).toBe(401);
    expect((await send(fast.url, CASES[10] as Case)).status).toBe(413);
    expect((await send(fast.url, CASES[11] as Case)).status).toBe(413);
    expect(await send(fast.url, CASES[4] as Case)).toMatchObject({
      status: 200,
      body: 'fast-path-app',
    });
  });

  it('answers 503 alike when the queue refuses, and enqueues nothing', async () => {
    const [failingFast, failingHono] = await Promise.all([
      serveReceiver(true, true),
      serveReceiver(false, true),
    ]);
    try {
      const c = CASES[0] as Case;
      const [a, b] = [await send(failingFast.url, c), await send(failingHono.url, c)];
      expect(a).toEqual(b);
      expect(a.status).toBe(503);
      expect(failingFast.enqueued).toEqual([]);
    } finally {
      await Promise.all([failingFast.close(), failingHono.close()]);
    }
  });
});
