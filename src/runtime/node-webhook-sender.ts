// The embedded API's webhook notifications on Node: node:http(s) with kept-alive connections,
// instead of fetch, whose web Request, AbortSignal and body streams per delivery were 6-11% of
// the API process's busy CPU with the engine in another process (bench/pipeline-shape.ts).
// Only the sending is Node's: the signature, headers, timeout, retries and backoff stay the
// notifier's (src/server/webhook-delivery.ts). The answer's body is never read: it is drained
// so the connection can carry the next notification, and a connection still busy at the
// timeout is closed, as fetch's abort does.
import type { IncomingMessage } from 'node:http';
import type { WebhookSender } from '../server/webhook-delivery.js';
import { createKeepAliveAgents } from './node-agents.js';

/**
 * Connections per receiver origin at most. Notifications are coalesced per account, so a burst
 * over many accounts can have hundreds in flight; beyond this many they wait in the agent's queue,
 * inside their timeout (a receiver on a small machine answers no faster with more).
 */
export const DEFAULT_WEBHOOK_SOCKETS = 64;

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
  // A notification sent on a connection the receiver was closing fails that attempt, which the
  // notifier retries.
  const agents = createKeepAliveAgents('createNodeWebhookSender', {
    maxSockets: options.maxSockets ?? DEFAULT_WEBHOOK_SOCKETS,
    ...(options.idleMs !== undefined && { idleMs: options.idleMs }),
  });

  const send: WebhookSender = (request) =>
    new Promise((resolve, reject) => {
      const req = agents.request(request.url, {
        method: 'POST',
        headers: { ...request.headers, 'Content-Length': String(Buffer.byteLength(request.body)) },
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

  return { send, sockets: agents.sockets, close: agents.close };
}
