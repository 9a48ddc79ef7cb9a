// A webhook receiver for tests: a real HTTP server on 127.0.0.1 that records every request
// (headers and exact body bytes) and answers as the test says. It stands for a system outside
// the project (whatever the user points webhooks at), so it is a plain node:http server.
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface Answer {
  status: number;
  body?: string;
  /** Wait this long before answering (to provoke timeouts). */
  delayMs?: number;
  /** Answer only once this settles: the test holds the caller in its call until it says so. */
  until?: Promise<unknown>;
}

export interface TestReceiver {
  url: string;
  requests: ReceivedRequest[];
  /** Resolves when at least `count` requests have arrived (rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  close(): Promise<void>;
}

/**
 * `answer` decides each response from the request and its 0-based index. By default the
 * receiver answers handshakes (empty body) with `appId` and notifications with 200.
 */
export async function startReceiver(
  options: { appId?: string; answer?: (request: ReceivedRequest, index: number) => Answer } = {},
): Promise<TestReceiver> {
  const requests: ReceivedRequest[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request: ReceivedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
      };
      const index = requests.length;
      requests.push(request);
      for (const waiter of waiters.filter((w) => requests.length >= w.count)) waiter.resolve();
      const answer =
        options.answer?.(request, index) ??
        (request.body.length === 0
          ? { status: 200, body: options.appId ?? '' }
          : { status: 200, body: 'ok' });
      const send = () =>
        setTimeout(() => {
          res.writeHead(answer.status, { 'Content-Type': 'text/plain' });
          res.end(answer.body ?? '');
        }, answer.delayMs ?? 0);
      if (answer.until) void answer.until.then(send, send);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    requests,
    waitFor(count, timeoutMs = 10_000) {
      if (requests.length >= count) return Promise.resolve(requests);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`expected ${count} requests, got ${requests.length}`)),
          timeoutMs,
        );
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve(requests);
          },
        });
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A URL on 127.0.0.1 where nothing listens. */
export async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/hook`;
}
