// Node's fast path for the receiver against the Hono route, over real HTTP: the same receiver
// served both ways must give the same answer (status, content type, body) and enqueue the same
// notifications, for every kind of request the receiver sees. Signatures are computed here with
// node:crypto, independently of src/itsm/signature.ts.
import { createHmac } from 'node:crypto';
import { createServer, request, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
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
import { answerWriter, isReceiverRequest, withNodeReceiver } from './node-receiver.js';

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
  /** How many connections the server holds. */
  connections(): Promise<number>;
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
    connections: () =>
      new Promise((resolve, reject) =>
        server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
      ),
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

describe('answers written together at the end of a turn', () => {
  it('gives each of a burst of notifications read in one turn its own answer, and enqueues each once', async () => {
    const side = await serveReceiver(true);
    const { port } = new URL(side.url);
    try {
      const bodies: { account: number | null; body: string; signed: boolean }[] = [];
      for (let account = 1; account <= 100; account++) {
        bodies.push({ account, body: JSON.stringify({ account, subscription: 1 }), signed: true });
        // Unsigned ones among them: a refusal must not take a neighbour's answer, or give its own.
        if (account % 5 === 0) {
          bodies.push({
            account: null,
            body: JSON.stringify({ account: 1000 + account }),
            signed: false,
          });
        }
      }
      // Every connection is open before any request is written, and all are written in one go:
      // the server then reads them in one turn of its loop and answers them as one batch.
      const sockets = await Promise.all(
        bodies.map(
          () =>
            new Promise<Socket>((resolve, reject) => {
              const socket = connect(Number(port), '127.0.0.1', () => resolve(socket));
              socket.on('error', reject);
            }),
        ),
      );
      // ...and accepted by the server, so that their requests are read in the same turn.
      while ((await side.connections()) < sockets.length) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const replies = sockets.map(
        (socket) =>
          new Promise<string>((resolve) => {
            const chunks: Buffer[] = [];
            socket.on('data', (chunk: Buffer) => chunks.push(chunk));
            socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
          }),
      );
      bodies.forEach(({ body, signed: isSigned }, i) => {
        const signature = isSigned ? `X-Kloudless-Signature: ${sign(body)}\r\n` : '';
        (sockets[i] as Socket).end(
          `POST ${PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n${signature}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        );
      });
      const texts = await Promise.all(replies);
      texts.forEach((text, i) => {
        const { account } = bodies[i] as { account: number | null };
        const status = Number(text.slice(9, 12));
        const body = text.slice(text.indexOf('\r\n\r\n') + 4);
        if (account === null) expect(status).toBe(401);
        else
          expect({ status, body: JSON.parse(body) }).toEqual({
            status: 200,
            body: { accepted: true, account },
          });
      });
      expect(side.enqueued.map((n) => n.account).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 100 }, (_, i) => i + 1),
      );
    } finally {
      await side.close();
    }
  });

  /**
   * A server that holds its requests until three have come in, then hands them to `onThree`;
   * `get` makes one request and resolves with its status, or the error code of its connection.
   */
  async function threeAtOnce(
    onThree: (waiting: [ServerResponse, ServerResponse, ServerResponse]) => void,
  ) {
    const waiting: ServerResponse[] = [];
    const server = createServer((_req, res) => {
      waiting.push(res);
      if (waiting.length === 3)
        onThree(waiting as [ServerResponse, ServerResponse, ServerResponse]);
    });
    const address = await listen(server, 0, '127.0.0.1');
    const get = (): Promise<number | string> =>
      new Promise((resolve) => {
        const req = request(`http://127.0.0.1:${address.port}/`, { agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', (error) => resolve((error as NodeJS.ErrnoException).code ?? 'error'));
        req.end();
      });
    return { get, close: () => closeServer(server) };
  }

  const ok = { status: 200, headers: { 'Content-Type': 'text/plain' }, body: 'ok' };

  it('writes an answer decided after a wait at once, while the answers of the turn are held', async () => {
    const send = answerWriter(() => {});
    const seen: boolean[][] = [];
    const server = await threeAtOnce((waiting) => {
      const [first, second, third] = waiting;
      send(first, ok);
      send(second, ok);
      // As the note batch's answers are handed over once its write is done.
      send(third, ok, false, true);
      seen.push(waiting.map((r) => r.headersSent));
    });
    try {
      const { get } = server;
      expect(await Promise.all([get(), get(), get()])).toEqual([200, 200, 200]);
      expect(seen).toEqual([[true, false, true]]);
    } finally {
      await server.close();
    }
  });

  it('writes the first answer of a turn at once and the rest after the turn; one that cannot be written does not hold back the others', async () => {
    const logs: string[] = [];
    const send = answerWriter((line) => logs.push(line));
    const seen: boolean[][] = [];
    const server = await threeAtOnce((waiting) => {
      const [first, second, third] = waiting;
      send(first, ok);
      // Status 99 makes Node's writeHead throw when the batch is written.
      send(second, { ...ok, status: 99 });
      send(third, ok);
      seen.push(waiting.map((r) => r.headersSent));
      setImmediate(() => seen.push(waiting.map((r) => r.headersSent)));
    });
    try {
      const { get } = server;
      const results = await Promise.all([get(), get(), get()]);
      expect(seen).toEqual([
        [true, false, false],
        [true, false, true],
      ]);
      expect(results.filter((r) => r === 200)).toHaveLength(2);
      expect(results.filter((r) => r !== 200)).toEqual(['ECONNRESET']);
      expect(logs).toHaveLength(1);
      expect(logs[0]).toMatch(
        /^engine: could not write the answer on POST \/webhooks\/kloudless \(.*99.*\); closed the connection$/,
      );
    } finally {
      await server.close();
    }
  });
});
