// The embedded API's webhook notifications on Node: node:http(s) with kept-alive connections,
// instead of fetch, whose web Request, AbortSignal and body streams per delivery were 6-11% of
// the API process's busy CPU with the engine in another process (bench/pipeline-shape.ts).
// Only the sending is Node's: the signature, headers, timeout, retries and backoff stay the
// notifier's (src/server/webhook-delivery.ts). The answer's body is never read: it is drained
// so the connection can carry the next notification, and a connection still busy at the
// timeout is closed, as fetch's abort does.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { WebhookSender } from '../server/webhook-delivery.js';

/**
 * Connections per receiver origin at most. Notifications are coalesced per account, so a burst
 * over many accounts can have hundreds in flight; beyond this many they wait in the agent's queue,
 * inside their timeout (a receiver on a small machine answers no faster with more).
 */
export const DEFAULT_WEBHOOK_SOCKETS = 64;

/**
 * An idle connection is closed after this long, or a second before the receiver's own
 * `Keep-Alive: timeout=N` (Node's agent reads it), so that a notification is rarely sent on a
 * connection the receiver is closing; one that is anyway fails that attempt, which is retried.
 */
const IDLE_SOCKET_MS = 4_000;

export interface NodeWebhookSenderOptions {
  /** Connections per receiver origin at most; default DEFAULT_WEBHOOK_SOCKETS. */
  maxSockets?: number;
  /** How long an idle connection is kept (the receiver's hint may shorten it); default 4 s. */
  idleMs?: number;
}

export interface NodeWebhookSender {
  send: WebhookSender;
  /** Connections open now (busy and idle): tests check that none is leaked. */
  sockets(): number;
  /** Closes every connection; notifications in flight fail. */
  close(): void;
}

/** A receiver that did not begin its answer within the notifier's timeout. */
export class WebhookTimeoutError extends Error {
  readonly code = 'WEBHOOK_TIMEOUT';
  // The notifier reports an error of this name as "timed out", as it does fetch's abort.
  override readonly name = 'TimeoutError';
}

export function createNodeWebhookSender(options: NodeWebhookSenderOptions = {}): NodeWebhookSender {
  const maxSockets = options.maxSockets ?? DEFAULT_WEBHOOK_SOCKETS;
  if (!Number.isInteger(maxSockets) || maxSockets < 1) {
    throw new TypeError(
      `createNodeWebhookSender: maxSockets must be a whole number of at least 1, got ${maxSockets}`,
    );
  }
  const agentOptions = {
    keepAlive: true,
    maxSockets,
    maxFreeSockets: maxSockets,
    timeout: options.idleMs ?? IDLE_SOCKET_MS,
    // The most recently used connection first: a lull lets the others idle out.
    scheduling: 'lifo' as const,
  };
  const http = new HttpAgent(agentOptions);
  const https = new HttpsAgent(agentOptions);

  const send: WebhookSender = (request) =>
    new Promise((resolve, reject) => {
      const secure = request.url.startsWith('https:');
      const req = (secure ? httpsRequest : httpRequest)(request.url, {
        method: 'POST',
        headers: { ...request.headers, 'Content-Length': String(Buffer.byteLength(request.body)) },
        agent: secure ? https : http,
      });
      // From the send to the end of the answer: the status settles the send, and a body that
      // is still coming at the timeout closes the connection rather than hold it.
      const timer = setTimeout(() => {
        req.destroy(
          new WebhookTimeoutError(
            `${request.url} did not answer within ${request.timeoutMs} ms; the request was abandoned`,
          ),
        );
      }, request.timeoutMs);
      req.on('response', (res: IncomingMessage) => {
        resolve({ status: res.statusCode ?? 0 });
        res.on('close', () => clearTimeout(timer));
        // The status has settled the send; a body cut off after it changes nothing.
        res.on('error', () => {});
        res.resume();
      });
      req.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      req.end(request.body);
    });

  const count = (agent: HttpAgent) => {
    let open = 0;
    for (const lists of [agent.sockets, agent.freeSockets]) {
      for (const list of Object.values(lists)) {
        for (const socket of list ?? []) if (!socket.destroyed) open++;
      }
    }
    return open;
  };
  return {
    send,
    sockets: () => count(http) + count(https),
    close() {
      http.destroy();
      https.destroy();
    },
  };
}
