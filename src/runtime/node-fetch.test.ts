// The node:http fetch of the engine's `http` action against undici's fetch, the same calls to a
// real host on 127.0.0.1: what the host receives, and what the caller gets back (status,
// headers, body, redirects not followed, the timeout's abort, a refused connection), must be
// the same for everything src/engine/execute.ts does with it.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createNodeFetch, type NodeFetch } from './node-fetch.js';

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (let cleanup = cleanups.pop(); cleanup; cleanup = cleanups.pop()) await cleanup();
});

/** A host that records each request and answers as `answer` says (after `delayMs`). */
async function host(
  answer: (request: Received) => {
    status: number;
    headers?: Record<string, string>;
    body?: string;
    delayMs?: number;
  } = () => ({ status: 200, body: '{"ok":true}' }),
) {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      const request = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      received.push(request);
      const { status, headers, body: text, delayMs } = answer(request);
      setTimeout(() => {
        if (res.destroyed) return;
        res.writeHead(status, headers);
        res.end(text);
      }, delayMs ?? 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, received };
}

function nodeFetch(): NodeFetch {
  const made = createNodeFetch();
  cleanups.push(() => made.close());
  return made;
}

// Each implementation under the name a failure shows; `node` is set for the node:http one.
const implementations: [string, () => { fetch: typeof fetch; node?: NodeFetch }][] = [
  ['undici fetch', () => ({ fetch: globalThis.fetch })],
  [
    'node:http fetch',
    () => {
      const node = nodeFetch();
      return { fetch: node.fetch, node };
    },
  ],
];

describe.each(implementations)('the http action through %s', (_name, make) => {
  it('sends the method, headers and body, and reads the status, headers and body', async () => {
    const { fetch: call } = make();
    const target = await host(() => ({
      status: 201,
      headers: { 'Content-Type': 'application/json', 'Retry-After': '7' },
      body: '{"id":"a1"}',
    }));
    const headers = new Headers({ 'X-Team': 'ops', 'Content-Type': 'application/json' });
    headers.set('Idempotency-Key', 'rule-1:event-2');

    const response = await call(new URL(`${target.url}/hook?x=1`), {
      method: 'PATCH',
      headers,
      body: '{"priority":"critical","note":"é"}',
      redirect: 'manual',
      signal: AbortSignal.timeout(5_000),
    });

    expect(response.status).toBe(201);
    expect(response.ok).toBe(true);
    expect(response.headers.get('retry-after')).toBe('7');
    expect(await response.json()).toEqual({ id: 'a1' });
    const [request] = target.received;
    expect(request?.method).toBe('PATCH');
    expect(request?.url).toBe('/hook?x=1');
    expect(request?.body).toBe('{"priority":"critical","note":"é"}');
    expect(request?.headers['content-type']).toBe('application/json');
    expect(request?.headers['content-length']).toBe(
      String(Buffer.byteLength('{"priority":"critical","note":"é"}')),
    );
    expect(request?.headers['idempotency-key']).toBe('rule-1:event-2');
    expect(request?.headers['x-team']).toBe('ops');
    expect(request?.headers.accept).toBe('*/*');
  });

  it('answers a redirect with its own status and Location, following nothing', async () => {
    const { fetch: call } = make();
    const target = await host((request) =>
      request.url === '/moved'
        ? { status: 302, headers: { Location: '/elsewhere' }, body: 'moved' }
        : { status: 200 },
    );

    const response = await call(`${target.url}/moved`, {
      method: 'POST',
      redirect: 'manual',
    });
    await response.body?.cancel();

    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('/elsewhere');
    expect(target.received.map((r) => r.url)).toEqual(['/moved']);
    expect(target.received[0]?.headers['content-length']).toBe('0');
  });

  it('reads a 204 and a 503 as fetch does', async () => {
    const { fetch: call } = make();
    const target = await host((request) =>
      request.url === '/empty' ? { status: 204 } : { status: 503, body: 'down' },
    );

    const empty = await call(`${target.url}/empty`, { method: 'DELETE', redirect: 'manual' });
    const down = await call(`${target.url}/down`, { method: 'GET', redirect: 'manual' });

    expect(empty.status).toBe(204);
    expect(empty.body).toBeNull();
    expect(down.status).toBe(503);
    expect(down.ok).toBe(false);
    expect(await down.text()).toBe('down');
  });

  it('rejects with the signal timeout reason when the host answers too late', async () => {
    const { fetch: call, node } = make();
    const target = await host(() => ({ status: 200, delayMs: 2_000 }));

    const failed = await call(`${target.url}/slow`, {
      method: 'POST',
      body: '{}',
      redirect: 'manual',
      signal: AbortSignal.timeout(100),
    }).catch((error: unknown) => error as Error);

    expect(failed).toBeInstanceOf(Error);
    expect((failed as Error).name).toBe('TimeoutError');
    // The abandoned request's connection is closed, not kept waiting for the late answer.
    if (node) expect(node.sockets()).toBe(0);
  });

  it('rejects a refused connection as "fetch failed" with the system error as its cause', async () => {
    const { fetch: call } = make();
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));

    const failed = (await call(`http://127.0.0.1:${port}/hook`, {
      method: 'POST',
      body: '{}',
      redirect: 'manual',
    }).catch((error: unknown) => error)) as Error & { cause?: { code?: string } };

    expect(failed).toBeInstanceOf(TypeError);
    expect(failed.message).toBe('fetch failed');
    expect(failed.cause?.code).toBe('ECONNREFUSED');
  });
});

describe('the node:http fetch', () => {
  it('carries calls in a row over one kept-alive connection', async () => {
    const node = nodeFetch();
    const target = await host();

    for (let i = 0; i < 5; i++) {
      const response = await node.fetch(`${target.url}/hook`, {
        method: 'POST',
        body: `{"n":${i}}`,
        redirect: 'manual',
      });
      await response.body?.cancel();
    }

    expect(target.received).toHaveLength(5);
    expect(node.sockets()).toBe(1);
  });

  it.each([
    ['a redirect to follow', { redirect: 'follow' as const }],
    ['a body that is not a string', { redirect: 'manual' as const, body: new Uint8Array(2) }],
  ])('refuses %s rather than send it differently from fetch', async (_what, init) => {
    const node = nodeFetch();
    const target = await host();

    await expect(node.fetch(`${target.url}/hook`, { method: 'POST', ...init })).rejects.toThrow(
      TypeError,
    );
    expect(target.received).toHaveLength(0);
  });
});
