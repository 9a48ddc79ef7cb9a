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

/**
 * Hands an answer to be written to its response; `now` writes it at once, for an answer decided
 * after a wait (see answer()).
 */
type Send = (res: ServerResponse, answer: ReceiverAnswer, close?: boolean, now?: boolean) => void;

function write(res: ServerResponse, answer: ReceiverAnswer, close: boolean): void {
  // A flat [name, value, ...] list: Node writes it as given, without copying the answer's headers
  // into a new object (which, like the answer, may be shared and is frozen).
  const headers: (string | number)[] = ['Content-Length', Buffer.byteLength(answer.body)];
  for (const name in answer.headers) headers.push(name, answer.headers[name] as string);
  // A refused upload may still be arriving: close the connection rather than read it all.
  if (close) headers.push('Connection', 'close');
  res.writeHead(answer.status, headers);
  res.end(answer.body);
}

/**
 * Writes the first answer of each turn of the event loop at once, and the answers decided after
 * it in the same turn together, once the loop has read every request that was waiting
 * (setImmediate runs right after the poll phase). Under a burst from many connections, answers
 * one by one, each between the reading and verifying of the next request, make the sender (a
 * load balancer or proxy on the same host, or a load generator) be woken once per answer; written
 * together, they reach it while it is awake reading the first. On 2 cores this took the receiver
 * from about 80% to about 100% of a bare Hono route's rate (bench/README.md). An answer waits at
 * most for the other requests read in its turn, and a lone sender waits for nothing. Only the
 * writing waits: each notification is queued before its answer is handed here. An answer handed
 * with `now` (decided after a wait, together with the others of its batch) is written at once.
 */
export function answerWriter(log: (line: string) => void): Send {
  const writeOrClose = (res: ServerResponse, answer: ReceiverAnswer, close: boolean) => {
    try {
      write(res, answer, close);
    } catch (error) {
      // One answer that cannot be written must not keep the rest of the batch from theirs.
      log(
        `engine: could not write the answer on POST ${RECEIVER_PATH} (${error instanceof Error ? error.message : String(error)}); closed the connection`,
      );
      res.destroy();
    }
  };
  /** The answers waiting for the end of this turn; null when none has been sent in it yet. */
  let due: { res: ServerResponse; answer: ReceiverAnswer; close: boolean }[] | null = null;
  const flush = () => {
    const batch = due ?? [];
    due = null;
    for (const { res, answer, close } of batch) writeOrClose(res, answer, close);
  };
  return (res, answer, close = false, now = false) => {
    if (now) {
      writeOrClose(res, answer, close);
      return;
    }
    if (due === null) {
      // The first answer of a turn goes at once: a lone sender waits for nothing.
      due = [];
      setImmediate(flush);
      writeOrClose(res, answer, close);
      return;
    }
    due.push({ res, answer, close });
  };
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

/** As the app's error handler does: the details to the log, a plain 500 to the sender. */
function failed(
  res: ServerResponse,
  error: unknown,
  send: Send,
  log: (line: string) => void,
): void {
  log(
    `engine: unexpected error on POST ${RECEIVER_PATH}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
  );
  if (res.headersSent) {
    res.destroy();
    return;
  }
  send(res, errorAnswer(internalError()));
}

/** Judges the body and hands the answer to `send`: at once when the receiver answers at once. */
function answer(
  receiver: Receiver,
  body: Buffer,
  req: IncomingMessage,
  res: ServerResponse,
  send: Send,
  log: (line: string) => void,
): void {
  const signature = req.headers[SIGNATURE];
  let judged: ReceiverAnswer | Promise<ReceiverAnswer>;
  try {
    judged = receiver.receive(
      body,
      Array.isArray(signature) ? signature.join(', ') : signature,
      req.headers['content-type'] ?? null,
    );
  } catch (error) {
    failed(res, error, send, log);
    return;
  }
  if (judged instanceof Promise) {
    // Decided after a wait (the note batch of the turn, written once the loop has read every
    // waiting request): the answers of one batch are decided together, in one run of the
    // microtasks, so they are written at once. Held for the next turn, they waited behind its
    // poll and the drains it starts (bench/README.md, 2026-12-04 21:35).
    judged.then(
      (later) => send(res, later, false, true),
      (error: unknown) => failed(res, error, send, log),
    );
  } else {
    send(res, judged);
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
  const send = answerWriter(log);
  return (req, res) => {
    if (!isReceiverRequest(req.method, req.url)) return fallback(req, res);
    readBody(req, receiver.maxBodyBytes, (read) => {
      if (read === null) return;
      if ('refused' in read) send(res, receiver.refuse(read.refused), true);
      else answer(receiver, read.body, req, res, send, log);
    });
  };
}
