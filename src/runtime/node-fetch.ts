// The `http` action's fetch on Node (serve, both shapes): node:http(s) with kept-alive
// connections instead of undici's fetch, whose Request, fetch controller and body streams were
// about a sixth of the engine's busy CPU with one `http` action per change
// (bench/pipeline-shape.ts). It is the subset of fetch the action uses (src/engine/execute.ts):
// a URL and an init with method, headers, a string body, `redirect: 'manual'` (nothing is
// followed) and an abort signal; anything else is refused with a TypeError rather than sent
// differently. It settles as fetch does: with the answer's status and headers as soon as they
// arrive, the body readable (or cancelled, which closes a connection still receiving it); a
// network failure rejects with fetch's `TypeError('fetch failed')` and the system error as its
// cause, an abort with the signal's reason.
import type { IncomingMessage } from 'node:http';
import { createKeepAliveAgents, headersOf } from './node-agents.js';

/** Connections per origin at most: the engine calls few outside hosts, each with bounded concurrency. */
export const DEFAULT_HTTP_ACTION_SOCKETS = 64;

/** Statuses whose answer has no body: fetch's Response refuses one for them. */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

export interface NodeFetch {
  fetch: typeof fetch;
  /** Connections open now (busy and idle): tests check that none is leaked. */
  sockets(): number;
  /** Closes every connection; requests in flight fail. */
  close(): void;
  /**
   * From now on every request fails at once, those in flight included, with `fetch failed: why`
   * and a cause of code `ENGINE_STOPPING`: a stopping engine does not wait for a call
   * that hangs (its action is parked and made again after the restart, with the same key).
   */
  stop(why: string): void;
}

/** A request failed by `stop`: fetch's error, saying why, with a cause of code ENGINE_STOPPING. */
function stoppedFetch(why: string): TypeError {
  const cause = Object.assign(new Error(why), { code: 'ENGINE_STOPPING' });
  return new TypeError(`fetch failed: ${why}`, { cause });
}

export function createNodeFetch(options: { maxSockets?: number; idleMs?: number } = {}): NodeFetch {
  const agents = createKeepAliveAgents('createNodeFetch', {
    maxSockets: options.maxSockets ?? DEFAULT_HTTP_ACTION_SOCKETS,
    ...(options.idleMs !== undefined && { idleMs: options.idleMs }),
  });

  /** Set by stop(): why every request fails now. */
  let stopped: string | null = null;
  /** Requests not answered yet, each with how to fail it. */
  const inFlight = new Set<(why: string) => void>();

  const nodeFetch = (input: string | URL | Request, init: RequestInit = {}): Promise<Response> =>
    new Promise<Response>((resolve, reject) => {
      if (typeof input !== 'string' && !(input instanceof URL)) {
        throw new TypeError('the node:http fetch takes a URL and an init, not a Request');
      }
      if (init.redirect !== 'manual') {
        throw new TypeError(
          'the node:http fetch follows no redirects: call it with redirect: "manual"',
        );
      }
      const body = init.body ?? undefined;
      if (body !== undefined && typeof body !== 'string') {
        throw new TypeError('the node:http fetch sends string bodies only');
      }
      const url = typeof input === 'string' ? new URL(input) : input;
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw new TypeError(
          `the node:http fetch calls http and https URLs only, not ${url.protocol}`,
        );
      }
      const signal = init.signal ?? undefined;
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      if (stopped !== null) {
        reject(stoppedFetch(stopped));
        return;
      }
      const method = (init.method ?? 'GET').toUpperCase();
      const headers: Record<string, string> = {};
      new Headers(init.headers).forEach((value, name) => {
        headers[name] = value;
      });
      // What fetch sends when the caller does not say otherwise.
      headers.accept ??= '*/*';
      headers['user-agent'] ??= 'node';
      if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
      else if (method !== 'GET' && method !== 'HEAD') headers['content-length'] = '0';

      const req = agents.request(url, { method, headers });
      let answered = false;
      const onAbort = () => {
        req.destroy();
        reject(signal?.reason);
      };
      const onStop = (why: string) => {
        req.destroy();
        reject(stoppedFetch(why));
      };
      inFlight.add(onStop);
      signal?.addEventListener('abort', onAbort, { once: true });
      const settled = () => signal?.removeEventListener('abort', onAbort);
      req.on('error', (error) => {
        settled();
        inFlight.delete(onStop);
        if (!answered)
          reject(signal?.aborted ? signal.reason : new TypeError('fetch failed', { cause: error }));
      });
      req.on('response', (res: IncomingMessage) => {
        answered = true;
        inFlight.delete(onStop);
        const status = res.statusCode ?? 0;
        let stream: ReadableStream<Uint8Array> | null = null;
        if (NULL_BODY_STATUSES.has(status) || method === 'HEAD') {
          res.on('end', settled);
          res.resume();
        } else {
          stream = bodyStream(res, signal, settled);
        }
        resolve(
          new Response(stream, {
            status,
            statusText: res.statusMessage ?? '',
            headers: headersOf(res.rawHeaders),
          }),
        );
      });
      req.end(body);
    });

  return {
    fetch: nodeFetch as typeof fetch,
    sockets: agents.sockets,
    close: agents.close,
    stop(why) {
      stopped = why;
      for (const fail of [...inFlight]) fail(why);
      inFlight.clear();
    },
  };
}

/**
 * The answer's body as fetch gives it: read as it arrives; cancelled, it closes a connection
 * still receiving it (a complete answer leaves it to the agent); an abort or a cut connection
 * errors it.
 */
function bodyStream(
  res: IncomingMessage,
  signal: AbortSignal | undefined,
  settled: () => void,
): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      res.on('data', (chunk: Buffer) => controller.enqueue(new Uint8Array(chunk)));
      res.on('end', () => {
        settled();
        controller.close();
      });
      res.on('error', (error) => {
        settled();
        controller.error(
          signal?.aborted ? signal.reason : new TypeError('terminated', { cause: error }),
        );
      });
      // Without an error event (the request was destroyed by the abort): the body ends in error.
      res.on('close', () => {
        if (!res.complete) {
          settled();
          try {
            controller.error(signal?.aborted ? signal.reason : new TypeError('terminated'));
          } catch {
            // already closed or errored
          }
        }
      });
    },
    cancel() {
      settled();
      res.destroy();
    },
  });
}
