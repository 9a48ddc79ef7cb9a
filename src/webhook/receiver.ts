// The webhook receiver: `POST /webhooks/kloudless`. It reads the raw body under a size cap,
// verifies `X-Kloudless-Signature` on those exact bytes before looking at them, answers the
// registration handshake with the application id, and enqueues `{account, subscription}`,
// acknowledging at once: the events themselves are pulled later by the drain. Only an enqueued
// notification gets a 2xx, so the sender retries anything the engine could not take.
import type { Env, Hono, Schema } from 'hono';
import { describeBadAccountId, parseAccountId } from '../itsm/account-id.js';
import { JSON_TYPE } from '../itsm/json-response.js';
import { SIGNATURE_HEADER, verifySignature } from '../itsm/signature.js';
import { EngineHttpError, errorPayload, errorResponse } from './errors.js';
import type { EngineMetrics } from './metrics.js';

export const RECEIVER_PATH = '/webhooks/kloudless';
export { SIGNATURE_HEADER };
export const DEFAULT_RECEIVER_MAX_BODY = 64 * 1024;

export interface Notification {
  account: number;
  /** The webhook id the sender notified; null for the legacy form body, which has none. */
  subscription: number | null;
}

/**
 * The contract of verifySignature (constant time, any of the keys); it may answer at once, as
 * node:crypto can, or later, as WebCrypto does.
 */
type SignatureCheck = (
  body: Uint8Array,
  signature: string | null | undefined,
  keys: readonly string[],
) => boolean | Promise<boolean>;

export interface ReceiverOptions {
  /** The API key first, older keys during rotation; a function so a reload can change them. */
  keys: () => readonly string[];
  /** The application id, the plain-text answer to the registration handshake. */
  appId: string;
  /** Largest accepted body in bytes; larger ones get a 413. Default 64 KiB. */
  maxBodyBytes?: number;
  /**
   * Hands the notification to the queue; a throw or rejection makes the answer a 503. It may
   * return nothing when it is done at once (a promise is awaited only when there is one).
   */
  enqueue(notification: Notification): void | Promise<void>;
  metrics?: EngineMetrics;
  log?: (line: string) => void;
  /**
   * The request comes from a real HTTP parser that never delivers more bytes than the declared
   * Content-Length (Node's), so a body with a declared length within the limit can be read whole,
   * several times faster than through a stream reader. Leave it off where a Request can be built
   * by other code (tests, service bindings): a declared length could then lie.
   */
  trustContentLength?: boolean;
  /**
   * Checks a signature (same contract as verifySignature: constant time, any of the keys).
   * Default: WebCrypto, which runs everywhere; Node passes node:crypto, several times faster there.
   */
  verify?: SignatureCheck;
}

const FORM_TYPE = 'application/x-www-form-urlencoded';
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

export const badBody = (message: string) => new EngineHttpError(400, 'invalid_parameters', message);

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

/** A positive whole number given as a JSON number or a string of digits. */
function positiveWholeNumber(value: unknown, field: string): number {
  // Subscription ids follow the account id rule too: both are ids the API issues.
  const parsed = parseAccountId(value);
  if (parsed !== null) return parsed;
  throw badBody(`${describeBadAccountId(field, value)} (a JSON number or a string of digits)`);
}

function optionalSubscription(value: unknown): number | null {
  return value === undefined || value === null ? null : positiveWholeNumber(value, 'subscription');
}

function fromJson(value: unknown): Notification | 'handshake' {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw badBody(
      `the body must be a JSON object {"account", "subscription"}, got ${describe(value)}`,
    );
  }
  const record = value as Record<string, unknown>;
  if (!Object.hasOwn(record, 'account')) {
    // Only an empty object stands for the empty handshake body: anything else without an
    // account is a notification the sender got wrong, and answering it 200 would lose it.
    if (Object.keys(record).length === 0) return 'handshake';
    throw badBody(
      `the body has no "account" (it has ${Object.keys(record)
        .slice(0, 5)
        .map((key) => JSON.stringify(key))
        .join(
          ', ',
        )}): a notification is {"account", "subscription"}; only an empty body is the registration handshake`,
    );
  }
  return {
    account: positiveWholeNumber(record.account, 'account'),
    subscription: optionalSubscription(record.subscription),
  };
}

function single(params: URLSearchParams, name: string): string | undefined {
  const values = params.getAll(name);
  if (values.length > 1) throw badBody(`the form body gives ${name} ${values.length} times`);
  return values[0];
}

function fromForm(text: string): Notification | 'handshake' {
  const params = new URLSearchParams(text);
  const account = single(params, 'account');
  if (account === undefined) {
    throw badBody(
      'the form body has no account: a notification is account=<id>; only an empty body is the registration handshake',
    );
  }
  const subscription = single(params, 'subscription');
  return {
    account: positiveWholeNumber(account, 'account'),
    subscription:
      subscription === undefined ? null : positiveWholeNumber(subscription, 'subscription'),
  };
}

/**
 * The notification in a (verified) body, or 'handshake' for an empty (or blank) body or an empty
 * JSON object. A body with anything else and no `account` is a 400: a sender's mistake, which a
 * 200 would lose. JSON is tried whatever the content type
 * says, since senders label it loosely; the legacy form body `account=<id>` is read only when
 * labelled as a form. Anything else throws an EngineHttpError 400 naming the problem.
 */
export function parseNotification(
  body: Uint8Array,
  contentType: string | null,
): Notification | 'handshake' {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw badBody('the body is not valid UTF-8');
  }
  if (text.trim() === '') return 'handshake';
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    const mediaType = contentType?.split(';')[0]?.trim().toLowerCase();
    if (mediaType === FORM_TYPE) return fromForm(text);
    throw badBody(
      `the body is not valid JSON (${(error as Error).message}); send {"account": <id>, "subscription": <id>} as application/json, or account=<id> as ${FORM_TYPE}`,
    );
  }
  return fromJson(json);
}

export const tooLarge = (max: number) =>
  new EngineHttpError(
    413,
    'payload_too_large',
    `the body is larger than the limit of ${max} bytes for a webhook notification`,
  );

/**
 * The raw body, refusing more than `max` bytes: by Content-Length before reading, and by counting
 * while reading, since a chunked body announces no length (and a declared one can lie).
 */
async function readBody(request: Request, max: number, trustLength: boolean): Promise<Uint8Array> {
  const declared = request.headers.get('Content-Length')?.trim();
  const length = declared && /^\d+$/.test(declared) ? Number(declared) : null;
  if (length !== null && length > max) throw tooLarge(max);
  if (length !== null && trustLength) {
    // @hono/node-server then reads the socket directly instead of building a web stream.
    try {
      const bytes = new Uint8Array(await request.arrayBuffer());
      if (bytes.byteLength > max) throw tooLarge(max);
      return bytes;
    } catch (error) {
      if (error instanceof EngineHttpError) throw error;
      throw badBody(`the body could not be read (${(error as Error).message})`);
    }
  }
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    let chunk: Awaited<ReturnType<typeof reader.read>>;
    try {
      chunk = await reader.read();
    } catch (error) {
      throw badBody(`the body could not be read (${(error as Error).message})`);
    }
    if (chunk.done) break;
    total += chunk.value.byteLength;
    if (total > max) {
      // Stop the sender's upload instead of draining bytes that will be thrown away.
      await reader.cancel().catch(() => {});
      throw tooLarge(max);
    }
    chunks.push(chunk.value);
  }
  const body = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

type RejectReason = 'signature' | 'body' | 'too_large' | 'unavailable';

/**
 * The receiver's answer, independent of the HTTP layer that sends it: the Hono route turns it into
 * a Response (every runtime), and Node's fast path (src/runtime/node-receiver.ts) writes it
 * straight to the socket. Either way the same code decided it.
 */
export interface ReceiverAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** The receiver's decisions, shared by every HTTP layer that serves RECEIVER_PATH. */
export interface Receiver {
  /** Bodies larger than this get a 413 (by Content-Length, or by counting a chunked body). */
  readonly maxBodyBytes: number;
  /** See ReceiverOptions.trustContentLength. */
  readonly trustContentLength: boolean;
  /**
   * Judges a complete raw body: the signature on those bytes first, then the notification or
   * handshake in it, then the queue. Bad input is an answer (401, 400, 503), never a throw (a
   * throw or rejection is a bug, answered 500 by the caller). The answer comes at once when the
   * signature check and the queue answer at once (node:crypto, the engine's in-memory queue once
   * the account is noted), and as a promise when either has to wait (WebCrypto, a D1 write).
   */
  receive(
    body: Uint8Array,
    signature: string | null | undefined,
    contentType: string | null,
  ): ReceiverAnswer | Promise<ReceiverAnswer>;
  /** The answer to a body refused before it was complete (413 too large, 400 unreadable). */
  refuse(error: EngineHttpError): ReceiverAnswer;
}

/** An error as the receiver answers it (the engine's JSON error shape). */
export function errorAnswer(error: EngineHttpError): ReceiverAnswer {
  return {
    status: error.status,
    headers: { ...error.headers, 'Content-Type': JSON_TYPE },
    body: JSON.stringify(errorPayload(error)),
  };
}

export function createReceiver(options: ReceiverOptions): Receiver {
  const verify = options.verify ?? verifySignature;
  const log = options.log ?? (() => {});
  const reject = (reason: RejectReason, error: EngineHttpError): ReceiverAnswer => {
    options.metrics?.webhooksRejected.inc({ reason });
    return errorAnswer(error);
  };
  // Shared by every answer that carries them, so frozen: no HTTP layer may write into them.
  const handshake: ReceiverAnswer = Object.freeze({
    status: 200,
    headers: Object.freeze({ 'Content-Type': 'text/plain; charset=utf-8' }),
    body: options.appId,
  });
  const acceptedHeaders = Object.freeze({ 'Content-Type': JSON_TYPE });

  const unsigned = (signature: string | null | undefined): ReceiverAnswer => {
    // The signature itself is never logged: a valid one could be replayed.
    const problem = signature ? 'does not match the body' : 'is missing';
    log(`webhook: refused a notification whose ${SIGNATURE_HEADER} ${problem}`);
    return reject(
      'signature',
      new EngineHttpError(
        401,
        'unauthorized',
        `${SIGNATURE_HEADER} ${problem}: it must be the Base64 HMAC-SHA256 of the exact body, keyed with the API key`,
      ),
    );
  };

  const accepted = (notification: Notification): ReceiverAnswer => {
    options.metrics?.webhooksAccepted.inc();
    return {
      status: 200,
      headers: acceptedHeaders,
      body: `{"accepted":true,"account":${notification.account}}`,
    };
  };

  const unavailable = (notification: Notification, error: unknown): ReceiverAnswer => {
    const reason = error instanceof Error ? error.message : String(error);
    log(
      `webhook: could not enqueue the notification of account ${notification.account} (${reason}); answered 503 so the sender retries`,
    );
    return reject(
      'unavailable',
      new EngineHttpError(
        503,
        'unavailable',
        'the notification could not be queued; retry later',
        {},
        { cause: error },
      ),
    );
  };

  /** What follows a good signature: the notification or handshake in the body, then the queue. */
  const signed = (
    body: Uint8Array,
    contentType: string | null,
  ): ReceiverAnswer | Promise<ReceiverAnswer> => {
    let notification: Notification | 'handshake';
    try {
      notification = parseNotification(body, contentType);
    } catch (error) {
      if (!(error instanceof EngineHttpError)) throw error;
      log(`webhook: refused a signed notification: ${error.message}`);
      return reject('body', error);
    }
    if (notification === 'handshake') return handshake;
    let queued: void | Promise<void>;
    try {
      queued = options.enqueue(notification);
    } catch (error) {
      return unavailable(notification, error);
    }
    // Waited for only when the queue had to wait: no promise per notification otherwise.
    return queued
      ? Promise.resolve(queued).then(
          () => accepted(notification),
          (error: unknown) => unavailable(notification, error),
        )
      : accepted(notification);
  };

  return {
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_RECEIVER_MAX_BODY,
    trustContentLength: options.trustContentLength === true,

    refuse(error) {
      log(`webhook: refused a notification: ${error.message}`);
      return reject(error.status === 413 ? 'too_large' : 'body', error);
    },

    receive(body, signature, contentType) {
      // Nothing about the body is looked at before this: unsigned input gets a 401 whatever it
      // holds.
      const verdict = verify(body, signature, options.keys());
      if (typeof verdict === 'boolean') {
        return verdict ? signed(body, contentType) : unsigned(signature);
      }
      // Promise.resolve: a later answer is always a real promise, which is what callers test for.
      return Promise.resolve(verdict).then((valid) =>
        valid ? signed(body, contentType) : unsigned(signature),
      );
    },
  };
}

const toResponse = (answer: ReceiverAnswer): Response =>
  new Response(answer.body, { status: answer.status, headers: answer.headers });

/**
 * Adds the receiver route (and a 405 for every other method on its path) to `app`, served by
 * `receiver` (on Node, shared with the fast path).
 */
export function registerReceiver<E extends Env, S extends Schema, B extends string>(
  app: Hono<E, S, B>,
  receiver: Receiver,
): void {
  // Answers are built rather than thrown, so the route behaves the same under any onError.
  app.post(RECEIVER_PATH, async (c) => {
    let body: Uint8Array;
    try {
      body = await readBody(c.req.raw, receiver.maxBodyBytes, receiver.trustContentLength);
    } catch (error) {
      if (!(error instanceof EngineHttpError)) throw error;
      return toResponse(receiver.refuse(error));
    }
    return toResponse(
      await receiver.receive(
        body,
        c.req.header(SIGNATURE_HEADER),
        c.req.header('Content-Type') ?? null,
      ),
    );
  });

  app.all(RECEIVER_PATH, () =>
    errorResponse(
      new EngineHttpError(
        405,
        'method_not_allowed',
        `${RECEIVER_PATH} accepts only POST (signed webhook notifications)`,
        { Allow: 'POST' },
      ),
    ),
  );
}
