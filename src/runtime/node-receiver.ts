// Node's fast path for the webhook receiver: `POST /webhooks/kloudless` answered straight from
// node:http, without building a web Request and Response or routing through Hono, which on Node
// cost more than the receiver's own work (bench/README.md). What to answer is decided by the
// shared Receiver (src/webhook/receiver.ts), the same code the Hono route runs on Workers and for
// every request this path does not take: here only the reading of the body and the writing of the
// answer are Node's. Other paths, and other methods on this one (their 405), go to the app.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { type EngineHttpError, internalError } from '../webhook/errors.js';
import {
  badBody,
  errorAnswer,
  RECEIVER_PATH,
  type Receiver,
  type ReceiverAnswer,
  SIGNATURE_HEADER,
  tooLarge,
} from '../webhook/receiver.js';

const SIGNATURE = SIGNATURE_HEADER.toLowerCase();

/** The receiver's path exactly (as the app routes it: a trailing slash and a query allowed). */
export function isReceiverRequest(method: string | undefined, url: string | undefined): boolean {
  if (method !== 'POST' || url === undefined) return false;
  const query = url.indexOf('?');
  const path = query < 0 ? url : url.slice(0, query);
  return path === RECEIVER_PATH || path === `${RECEIVER_PATH}/`;
}

function send(res: ServerResponse, answer: ReceiverAnswer, close = false): void {
  const headers: Record<string, string | number> = {
    ...answer.headers,
    'Content-Length': Buffer.byteLength(answer.body),
  };
  // A refused upload may still be arriving: close the connection rather than read it all.
  if (close) headers.Connection = 'close';
  res.writeHead(answer.status, headers);
  res.end(answer.body);
}

type BodyRead = { body: Buffer } | { refused: EngineHttpError };

/**
 * Reads the raw body under the receiver's limit and calls `done` once: refused by Content-Length
 * before reading, and by counting while reading (a chunked body announces no length); null when
 * the client went away before the end, which leaves nobody to answer. Callbacks rather than a
 * promise: this runs for every notification.
 */
function readBody(req: IncomingMessage, max: number, done: (read: BodyRead | null) => void): void {
  const declared = req.headers['content-length'];
  // Node's parser has checked the header: digits only, one value, never more body than it says.
  if (declared !== undefined && Number(declared) > max) {
    done({ refused: tooLarge(max) });
    return;
  }
  const chunks: Buffer[] = [];
  let total = 0;
  let finished = false;
  const finish = (read: BodyRead | null) => {
    if (finished) return;
    finished = true;
    req.off('data', onData);
    done(read);
  };
  const onData = (chunk: Buffer) => {
    total += chunk.byteLength;
    if (total > max) {
      req.pause();
      finish({ refused: tooLarge(max) });
      return;
    }
    chunks.push(chunk);
  };
  req.on('data', onData);
  req.on('end', () =>
    finish({ body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total) }),
  );
  req.on('error', (error) =>
    finish(
      req.destroyed ? null : { refused: badBody(`the body could not be read (${error.message})`) },
    ),
  );
  req.on('close', () => finish(null));
}

async function answer(
  receiver: Receiver,
  body: Buffer,
  req: IncomingMessage,
  res: ServerResponse,
  log: (line: string) => void,
): Promise<void> {
  try {
    const signature = req.headers[SIGNATURE];
    send(
      res,
      await receiver.receive(
        body,
        Array.isArray(signature) ? signature.join(', ') : signature,
        req.headers['content-type'] ?? null,
      ),
    );
  } catch (error) {
    // As the app's error handler does: the details to the log, a plain 500 to the sender.
    log(
      `engine: unexpected error on POST ${RECEIVER_PATH}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    if (res.headersSent) {
      res.destroy();
      return;
    }
    send(res, errorAnswer(internalError()));
  }
}

/**
 * A request listener that answers the receiver's requests itself and hands every other request
 * to `fallback` (the Hono app's listener).
 */
export function withNodeReceiver(
  receiver: Receiver,
  fallback: RequestListener,
  log: (line: string) => void,
): RequestListener {
  return (req, res) => {
    if (!isReceiverRequest(req.method, req.url)) return fallback(req, res);
    readBody(req, receiver.maxBodyBytes, (read) => {
      if (read === null) return;
      if ('refused' in read) send(res, receiver.refuse(read.refused), true);
      else void answer(receiver, read.body, req, res, log);
    });
  };
}
