// The ITSM client's transport on Node when the API is another process (`serve --api-url`):
// node:http(s) with kept-alive connections, instead of `fetch`, whose web Request, AbortSignal and
// body streams per call were about a sixth of the engine's busy CPU in that shape
// (bench/pipeline-shape.ts). Only the sending is Node's: auth, retries, Idempotency-Keys,
// timeouts and error mapping stay the client's (src/itsm/client.ts). At the client's timeout the
// request is destroyed with its socket, so an answer nobody waits for never holds a connection.
import type { IncomingMessage } from 'node:http';
import type { ItsmTransport, TransportAnswer } from '../itsm/client.js';
import { createKeepAliveAgents, headersOf } from './node-agents.js';

/**
 * Connections to the API at most, by default. The engine has at most 16 accounts x 8 objects in
 * hand, but on a small machine the API answers no faster with more connections than it has
 * cores to spare; further requests wait in the agent's queue (inside the client's timeout).
 */
export const DEFAULT_API_SOCKETS = 32;

export interface NodeTransportOptions {
  /** Connections per API origin at most; default DEFAULT_API_SOCKETS. */
  maxSockets?: number;
  /** How long an idle connection is kept (the server's hint may shorten it); default 4 s. */
  idleMs?: number;
}

export interface NodeTransport {
  transport: ItsmTransport;
  /** Connections open now (busy and idle, not being closed): tests check that none is leaked. */
  sockets(): number;
  /** Closes every connection; requests in flight fail. */
  close(): void;
}

/** A request cut off before its answer was complete. */
class IncompleteAnswerError extends Error {
  readonly code = 'ITSM_INCOMPLETE_ANSWER';
}

export function createNodeTransport(options: NodeTransportOptions = {}): NodeTransport {
  // A request sent on a connection the server was closing (ECONNRESET) is a network error,
  // which the client retries for reads and for writes with an Idempotency-Key.
  const agents = createKeepAliveAgents('createNodeTransport', {
    maxSockets: options.maxSockets ?? DEFAULT_API_SOCKETS,
    ...(options.idleMs !== undefined && { idleMs: options.idleMs }),
  });

  const transport: ItsmTransport = (request, attempt) =>
    new Promise<TransportAnswer>((resolve, reject) => {
      const headers =
        request.body === undefined
          ? request.headers
          : { ...request.headers, 'Content-Length': String(Buffer.byteLength(request.body)) };
      const req = agents.request(request.url, { method: request.method, headers });
      req.on('response', (res: IncomingMessage) => {
        let text = '';
        // A StringDecoder: a character split between two chunks is joined, not replaced.
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, headers: headersOf(res.rawHeaders), text });
        });
        // After 'end' this settles nothing; before it, the answer broke off (a cut connection).
        res.on('close', () => {
          if (!res.complete) {
            reject(
              new IncompleteAnswerError(
                `the connection closed before the whole answer (status ${res.statusCode}) was read`,
              ),
            );
          }
        });
      });
      req.on('error', reject);
      attempt?.onAbandon(() => {
        req.destroy(new Error(`abandoned at the client's timeout of ${attempt.timeoutMs} ms`));
      });
      req.end(request.body);
    });

  return { transport, sockets: agents.sockets, close: agents.close };
}
