// The typed HTTP client of the ITSM API (docs/api.md) over `fetch`, for Node and
// Cloudflare Workers alike: auth headers, per-attempt timeouts, retries with capped exponential
// backoff, full jitter and Retry-After, page iteration, and zod parsing of every response at the
// edge. It owns the retry safety rule: a write (POST, PATCH, PUT, DELETE) is repeated after an
// uncertain outcome (5xx, network error, timeout) only when it carries an Idempotency-Key.
import type { z } from 'zod';
import { describeBadAccountId, parseAccountId } from './account-id.js';
import {
  COLLECTION_PATHS,
  type FieldKind,
  type LEVELS,
  type ObjectType,
  type PRIORITIES,
  type RISKS,
  type TYPE_FIELDS,
} from './fields.js';
import {
  describeIssues,
  type ErrorBody,
  type EventList,
  errorBodySchema,
  eventListSchema,
  latestCursorSchema,
  type ObjectList,
  objectListSchema,
  READ_SCHEMAS,
  type User,
  userSchema,
} from './schemas.js';

// ---------------------------------------------------------------------------------------------
// Types

/** An account id, or `'me'` for the account a Bearer token is bound to. */
export type AccountRef = number | 'me';

export type ItsmAuth = { apiKey: string } | { bearer: string };

/** What `list`, `get`, `create` and `update` return for each type. */
export type ObjectOf<T extends ObjectType> = z.infer<(typeof READ_SCHEMAS)[T]>;

type WriteValue<K extends FieldKind> = K extends 'boolean'
  ? boolean
  : K extends 'number' | 'count'
    ? number
    : K extends 'level'
      ? (typeof LEVELS)[number]
      : K extends 'priority'
        ? (typeof PRIORITIES)[number]
        : K extends 'risk'
          ? (typeof RISKS)[number]
          : K extends 'status'
            ? number | string
            : string;

type UnifiedWriteBody<F extends Record<string, FieldKind>> = {
  [K in keyof F]?: WriteValue<F[K]> | null;
} & { raw?: { object: Record<string, unknown> } };

/**
 * The body of a create or update: the unified fields of the type (user and reference fields as
 * id strings, `null` clears), or for generic objects the upstream record itself. Other fields
 * are let through to the server, which answers 400 naming them.
 */
export type WriteBody<T extends ObjectType> = (T extends keyof typeof TYPE_FIELDS
  ? UnifiedWriteBody<(typeof TYPE_FIELDS)[T]>
  : unknown) &
  Record<string, unknown>;

export interface RetryOptions {
  /** Attempts in all, the first included. Default 5. */
  maxAttempts?: number;
  /** Cap of the first backoff; doubles with each attempt. Default 200 ms. */
  baseDelayMs?: number;
  /** Largest backoff (a longer Retry-After is still honoured). Default 10,000 ms. */
  maxDelayMs?: number;
}

export interface RetryInfo {
  /** The attempt that failed (1-based); the next one is `attempt + 1`. */
  attempt: number;
  maxAttempts: number;
  /** How long the client waits before the next attempt. */
  delayMs: number;
  /** Why, in words: `429 rate_limit_exceeded (Retry-After 1 s)`, `timeout after 10000 ms`. */
  reason: string;
  method: string;
  path: string;
  error: ItsmApiError | ItsmRequestError;
}

export interface ItsmClientOptions {
  /** The API base, e.g. `http://127.0.0.1:8788/v1` (a trailing slash is fine). */
  baseUrl: string;
  auth: ItsmAuth;
  /** Timeout of each attempt, body included. Default 10,000 ms. */
  timeoutMs?: number;
  retry?: RetryOptions;
  fetch?: typeof globalThis.fetch;
  /**
   * Reaches the API some other way than `fetch`: an app in this very process
   * (createInProcessTransport), or node:http with kept-alive connections on Node
   * (src/runtime/node-transport.ts). Takes precedence over `fetch`; timeouts and retries still
   * apply.
   */
  transport?: ItsmTransport;
  /** Waits between attempts; tests pass one that records the delays. */
  sleep?: (ms: number) => Promise<void>;
  /** A number in [0, 1) for the jitter; default Math.random. */
  random?: () => number;
  /** Called before each wait between attempts, e.g. to log it. */
  onRetry?: (info: RetryInfo) => void;
  /** `User-Agent` header; default `itsm-rules-client`. */
  userAgent?: string;
  /** `X-Kloudless-As-User`: the user the application acts as (API key only). */
  asUser?: string;
  /** `X-Kloudless-Raw-Data: true`: include the upstream record as `raw`. Default false. */
  rawData?: boolean;
}

export type QueryValue = string | number | boolean | null | undefined;

export interface ItsmRequest {
  method: string;
  /** Relative to the base URL: `accounts/1/itsm/incidents`. */
  path: string;
  query?: Record<string, QueryValue>;
  /** Sent as JSON. */
  body?: unknown;
  idempotencyKey?: string;
  headers?: Record<string, string>;
}

export interface ItsmResponse {
  status: number;
  /** Parsed JSON, or null for an empty body (204). */
  body: unknown;
  headers: Headers;
}

/** One attempt as a transport sends it: an absolute URL, the headers and the JSON text. */
export interface TransportRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | undefined;
}

/** An answer with its body read. */
export interface TransportAnswer {
  status: number;
  headers: Headers;
  text: string;
}

/**
 * What the client tells a transport about one attempt. No abort signal (making and wiring one is
 * a good part of a cheap call's cost): a hook, called at most once, when the client stops waiting.
 */
export interface TransportAttempt {
  /** The client's timeout of this attempt, body included. */
  timeoutMs: number;
  /**
   * Registers what to do when the client gives up on the attempt (its timeout): a transport over
   * a connection drops the request there, so that no socket stays busy with an answer nobody
   * reads. A transport that leaves the call to finish (an app in process) need not register one.
   */
  onAbandon(cancel: () => void): void;
}

/**
 * How the client reaches the API when it is not over `fetch`. Resolves with the answer, body
 * read; rejects when no complete answer came (the client counts that as a network error). The
 * client's timer bounds the wait whatever the transport does.
 */
export type ItsmTransport = (
  request: TransportRequest,
  /** Absent when a caller other than the client sends one request itself. */
  attempt?: TransportAttempt,
) => Promise<TransportAnswer>;

export interface ListOptions {
  /** 1..1000; default the server's (10). */
  pageSize?: number;
  /** Required for generic objects (`type` 'object'): the upstream table, e.g. `sys_user`. */
  rawType?: string;
  /** `X-Kloudless-Raw-Data: true` on these requests alone: each object carries `raw`. */
  rawData?: boolean;
}

export interface ListPageOptions extends ListOptions {
  /** 1-based page number, or the `next_page` of the previous page as given; default 1. */
  page?: number | string;
}

export interface TypeOptions {
  /** Required for generic objects (`type` 'object'). */
  rawType?: string;
}

export interface WriteOptions extends TypeOptions {
  /**
   * Sent as `Idempotency-Key`; makes a write safe to retry after an uncertain outcome (the API
   * answers a repeat with the first answer and writes nothing). Without one, a create, update or
   * delete that may have been applied is not repeated.
   */
  idempotencyKey?: string;
}

export interface EventsOptions {
  /** Events after this cursor; none: from the oldest retained event. */
  cursor?: string;
  /** 1..1000; default the server's (100). */
  pageSize?: number;
  /**
   * `X-Kloudless-Raw-Data: true` on this request alone: each event's metadata (and
   * previous_metadata) carries the object's upstream record as `raw`.
   */
  rawData?: boolean;
}

export interface ItsmClient {
  /** Every object of the type, page after page, following `next_page`. */
  list<T extends ObjectType>(
    account: AccountRef,
    type: T,
    options?: ListOptions,
  ): AsyncIterableIterator<ObjectOf<T>>;
  listPage<T extends ObjectType>(
    account: AccountRef,
    type: T,
    options?: ListPageOptions,
  ): Promise<ObjectList<ObjectOf<T>>>;
  get<T extends ObjectType>(
    account: AccountRef,
    type: T,
    id: string,
    options?: TypeOptions,
  ): Promise<ObjectOf<T>>;
  create<T extends ObjectType>(
    account: AccountRef,
    type: T,
    body: WriteBody<T>,
    options?: WriteOptions,
  ): Promise<ObjectOf<T>>;
  update<T extends ObjectType>(
    account: AccountRef,
    type: T,
    id: string,
    body: WriteBody<T>,
    options?: WriteOptions,
  ): Promise<ObjectOf<T>>;
  /**
   * Deletes the object. A 404 on a retry that follows an uncertain attempt (5xx, network
   * error, timeout) counts as done: the first attempt most likely deleted it.
   */
  delete(account: AccountRef, type: ObjectType, id: string, options?: WriteOptions): Promise<void>;
  /** One page of the account's events after `cursor`. */
  events(account: AccountRef, options?: EventsOptions): Promise<EventList>;
  /** The cursor of the newest event: start here to see only what happens from now on. */
  latestCursor(account: AccountRef): Promise<string>;
  /** Every team user of the account, page after page. */
  teamUsers(account: AccountRef, options?: { pageSize?: number }): AsyncIterableIterator<User>;
  teamUser(account: AccountRef, id: string): Promise<User>;
  /** One API call with auth, timeout and retries; throws ItsmApiError on a non-2xx answer. */
  request(request: ItsmRequest): Promise<ItsmResponse>;
}

// ---------------------------------------------------------------------------------------------
// Errors

/** The API answered with an error status. */
export class ItsmApiError extends Error {
  readonly code = 'ITSM_API_ERROR';
  override readonly name = 'ItsmApiError';
  readonly status: number;
  /** Kloudless `error_code` (`not_found`), or null when the body is not a Kloudless error. */
  readonly errorCode: string | null;
  /** The parsed Kloudless error body, or null when the answer carried none. */
  readonly body: ErrorBody | null;
  /** `X-Request-Id`, else the body's `id`: quote it when asking about a failure. */
  readonly requestId: string | null;
  readonly method: string;
  /** The request path relative to the base URL. */
  readonly path: string;
  /** Transient and safe to repeat: the client retries it while it has attempts left. */
  readonly retryable: boolean;
  /** Attempts made before giving up, this one included. */
  readonly attempts: number;
  /** The response headers (Retry-After and the like). */
  readonly headers: Headers;

  constructor(init: {
    status: number;
    body: ErrorBody | null;
    method: string;
    path: string;
    retryable: boolean;
    attempts: number;
    requestId: string | null;
    headers: Headers;
  }) {
    const errorCode = init.body?.error_code ?? null;
    const requestId = init.requestId ?? init.body?.id ?? null;
    super(
      `ITSM API ${init.method} ${init.path} answered ${init.status}${errorCode ? ` ${errorCode}` : ''}: ${
        init.body?.message ?? 'no Kloudless error body'
      }${requestId ? ` (request id ${requestId})` : ''}${
        init.attempts > 1 ? ` after ${init.attempts} attempts` : ''
      }; ${adviceFor(init.status, init.method, init.retryable)}`,
    );
    this.status = init.status;
    this.errorCode = errorCode;
    this.body = init.body;
    this.requestId = requestId;
    this.method = init.method;
    this.path = init.path;
    this.retryable = init.retryable;
    this.attempts = init.attempts;
    this.headers = init.headers;
  }
}

/** The request got no answer: the connection failed or the attempt timed out. */
export class ItsmRequestError extends Error {
  override readonly name = 'ItsmRequestError';
  readonly code: 'ITSM_NETWORK_ERROR' | 'ITSM_TIMEOUT';
  readonly method: string;
  readonly path: string;
  /** Safe to repeat: the client retries it while it has attempts left. */
  readonly retryable: boolean;
  readonly attempts: number;

  constructor(
    message: string,
    init: {
      code: 'ITSM_NETWORK_ERROR' | 'ITSM_TIMEOUT';
      method: string;
      path: string;
      retryable: boolean;
      attempts: number;
      cause: unknown;
    },
  ) {
    super(message, { cause: init.cause });
    this.code = init.code;
    this.method = init.method;
    this.path = init.path;
    this.retryable = init.retryable;
    this.attempts = init.attempts;
  }
}

/** The API answered 2xx with a body that is not what the contract says. Never retried. */
export class ItsmResponseError extends Error {
  readonly code = 'ITSM_INVALID_RESPONSE';
  override readonly name = 'ItsmResponseError';
  readonly retryable = false;
  readonly status: number;
  readonly method: string;
  readonly path: string;
  /** One line per problem: `objects.3.impact: Invalid option: ...`. */
  readonly issues: string[];

  constructor(
    message: string,
    init: { status: number; method: string; path: string; issues: string[]; cause?: unknown },
  ) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.method = init.method;
    this.path = init.path;
    this.issues = init.issues;
  }
}

/** Methods that change something: repeated after an uncertain outcome only with a key. */
const WRITE_METHODS = new Set(['POST', 'PATCH', 'PUT', 'DELETE']);

function adviceFor(status: number, method: string, retryable: boolean): string {
  if (status === 401) return 'check the API key or bearer token the client is configured with';
  if (status === 403) {
    return 'a bearer token only reaches its own account; use that account or an API key';
  }
  if (status === 404) return 'check the account, the type and the id';
  if (status === 409) {
    return 'it conflicts with an earlier request (an Idempotency-Key reused with another body, or an existing sys_id); use a new key or id';
  }
  if (status === 429) return 'the API is rate limiting; slow down or raise retry.maxAttempts';
  if (status >= 500 && !retryable && WRITE_METHODS.has(method)) {
    return `not retried: a ${method} without an Idempotency-Key may have been applied, so check before repeating it`;
  }
  if (status >= 500) return 'the server failed; try again later and quote the request id';
  return 'fix the request as the message says';
}

// ---------------------------------------------------------------------------------------------
// Client

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_RETRY = { maxAttempts: 5, baseDelayMs: 200, maxDelayMs: 10_000 };

function checkOption(name: string, value: number, rule: 'positive' | 'count' | 'non-negative') {
  const ok =
    Number.isFinite(value) &&
    (rule === 'positive'
      ? value > 0
      : rule === 'count'
        ? Number.isInteger(value) && value >= 1
        : value >= 0);
  if (!ok) {
    const what = {
      positive: 'a number > 0',
      count: 'a whole number >= 1',
      'non-negative': 'a number >= 0',
    };
    throw new TypeError(`createItsmClient: ${name} must be ${what[rule]}, got ${value}`);
  }
  return value;
}

/** Milliseconds to wait from a Retry-After value: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const date = Date.parse(text);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

function accountPath(account: AccountRef): string {
  if (account === 'me' || (typeof account === 'number' && parseAccountId(account) !== null)) {
    return `accounts/${account}`;
  }
  throw new TypeError(`${describeBadAccountId('account', account)}, or 'me'`);
}

function collectionPath(account: AccountRef, type: ObjectType): string {
  const paths = COLLECTION_PATHS[type];
  if (!paths) {
    throw new TypeError(
      `unknown ITSM object type ${JSON.stringify(type)}; use one of ${Object.keys(COLLECTION_PATHS).join(', ')}`,
    );
  }
  return `${accountPath(account)}/itsm/${paths.plural}`;
}

function itemPath(account: AccountRef, type: ObjectType, id: string): string {
  if (typeof id !== 'string' || id === '') {
    throw new TypeError(
      `the id of a ${type} must be a non-empty string, got ${JSON.stringify(id)}`,
    );
  }
  return `${collectionPath(account, type)}/${encodeURIComponent(id)}`;
}

function rawTypeQuery(method: string, type: ObjectType, rawType: string | undefined) {
  if (type === 'object') {
    if (!rawType) {
      throw new TypeError(
        `${method} on generic objects needs { rawType }, the upstream table name, e.g. { rawType: 'sys_user' }`,
      );
    }
    return { raw_type: rawType };
  }
  if (rawType !== undefined) {
    throw new TypeError(`rawType only applies to generic objects (type 'object'), not to ${type}`);
  }
  return {};
}

/** The read schema of a type, typed by it (indexing READ_SCHEMAS with a generic loses that). */
function schemaOf<T extends ObjectType>(type: T): z.ZodType<ObjectOf<T>> {
  return READ_SCHEMAS[type] as unknown as z.ZodType<ObjectOf<T>>;
}

/** Characters a path may hold to be joined to the base as text (URL would keep them as they are). */
const PLAIN_PATH = /^[A-Za-z0-9\-._~%/]*$/;
/** A `.` or `..` segment, which URL resolves away. */
const DOT_SEGMENT = /(?:^|\/)\.{1,2}(?:\/|$)/;

/** The path and query of an href, for messages. */
function pathAndQuery(href: string): string {
  const url = new URL(href);
  return `${url.pathname}${url.search}`;
}

/** Errors of the connection itself: the request never left, so it cannot have been applied. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
]);

/** Whether a network failure happened before any byte of the request was sent (its causes' codes). */
function neverSent(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && NOT_SENT_CODES.has(code)) return true;
    current = current.cause;
  }
  return false;
}

function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return `${error.message}: ${typeof code === 'string' ? `${code} ` : ''}${cause.message}`;
  }
  return error.message;
}

export function createItsmClient(options: ItsmClientOptions): ItsmClient {
  let base: URL;
  try {
    base = new URL(`${options.baseUrl.replace(/\/+$/, '')}/`);
  } catch {
    throw new TypeError(
      `createItsmClient: baseUrl must be an absolute URL such as http://127.0.0.1:8788/v1, got ${JSON.stringify(options.baseUrl)}`,
    );
  }
  const authorization =
    'apiKey' in options.auth ? `APIKey ${options.auth.apiKey}` : `Bearer ${options.auth.bearer}`;
  const timeoutMs = checkOption('timeoutMs', options.timeoutMs ?? DEFAULT_TIMEOUT_MS, 'positive');
  const maxAttempts = checkOption(
    'retry.maxAttempts',
    options.retry?.maxAttempts ?? DEFAULT_RETRY.maxAttempts,
    'count',
  );
  const baseDelayMs = checkOption(
    'retry.baseDelayMs',
    options.retry?.baseDelayMs ?? DEFAULT_RETRY.baseDelayMs,
    'non-negative',
  );
  const maxDelayMs = checkOption(
    'retry.maxDelayMs',
    options.retry?.maxDelayMs ?? DEFAULT_RETRY.maxDelayMs,
    'non-negative',
  );
  const doFetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const random = options.random ?? Math.random;

  const defaultHeaders: Record<string, string> = {
    Authorization: authorization,
    Accept: 'application/json',
    'User-Agent': options.userAgent ?? 'itsm-rules-client',
  };
  if (options.asUser !== undefined) defaultHeaders['X-Kloudless-As-User'] = options.asUser;
  if (options.rawData) defaultHeaders['X-Kloudless-Raw-Data'] = 'true';

  /**
   * The request's URL (an href). A path of plain characters (what the client's own methods
   * build: names, digits and percent-escaped ids) is joined to the base as text, as URL would
   * resolve it; anything else goes through URL. A URL object, and setting each query parameter
   * on it (which writes its whole query again), was a tenth of a cheap in-process call's cost.
   */
  function urlOf(path: string, query: Record<string, QueryValue> = {}): string {
    const relative = path.replace(/^\/+/, '');
    let search = '';
    let params: URLSearchParams | null = null;
    for (const name in query) {
      const value = query[name];
      if (value === undefined || value === null) continue;
      params ??= new URLSearchParams();
      params.set(name, String(value));
    }
    if (params) search = params.toString();
    if (PLAIN_PATH.test(relative) && !DOT_SEGMENT.test(relative)) {
      return `${base.href}${relative}${search === '' ? '' : `?${search}`}`;
    }
    const url = new URL(relative, base);
    if (search !== '') url.search = search;
    return url.href;
  }

  /** Full jitter: a random wait up to the capped exponential backoff of this attempt. */
  function backoff(attempt: number): number {
    return Math.round(random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1)));
  }

  /** Whether repeating this failure is safe and may succeed. */
  function isRetryable(method: string, hasKey: boolean, status: number | null): boolean {
    if (status === 429) return true; // refused before it was processed
    if (status !== null && status < 500) return false;
    // 5xx, network error or timeout: the request may have been applied. Repeating a write
    // could apply it twice (an update twice is a second event and second webhook, and may undo
    // a change made in between), unless the API can recognise the repeat by its key.
    return !WRITE_METHODS.has(method) || hasKey;
  }

  type Attempt =
    | { kind: 'answered'; response: TransportAnswer }
    | { kind: 'timeout' | 'network'; cause: unknown; elapsedMs: number };

  /** One attempt: the response with its body read, or why there was none. */
  function attemptOnce(
    method: string,
    url: string,
    headers: Record<string, string>,
    body: string | undefined,
  ): Promise<Attempt> {
    return options.transport
      ? attemptByTransport(options.transport, { method, url, headers, body })
      : attemptByFetch(method, url, headers, body);
  }

  async function attemptByFetch(
    method: string,
    url: string,
    headers: Record<string, string>,
    body: string | undefined,
  ): Promise<Attempt> {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    const started = Date.now();
    try {
      const response = await doFetch(url, {
        method,
        headers,
        body,
        signal: controller.signal,
      });
      // Read inside the timeout too: a server that stalls mid-body is as stuck as a silent one.
      const text = await response.text();
      return {
        kind: 'answered',
        response: { status: response.status, headers: response.headers, text },
      };
    } catch (cause) {
      return { kind: timedOut ? 'timeout' : 'network', cause, elapsedMs: Date.now() - started };
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * No abort signal to make and wire (a good part of a cheap call's cost): a timer alone bounds
   * the wait, so a call that stalls (an injected latency, a hung handler) still times out, and
   * tells the transport it was abandoned.
   */
  async function attemptByTransport(
    transport: ItsmTransport,
    request: TransportRequest,
  ): Promise<Attempt> {
    const started = Date.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let cancel: (() => void) | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => {
        resolve('timeout');
        cancel?.();
      }, timeoutMs);
    });
    const attempt: TransportAttempt = {
      timeoutMs,
      onAbandon: (hook) => {
        cancel = hook;
      },
    };
    try {
      const outcome = await Promise.race([transport(request, attempt), timeout]);
      if (outcome === 'timeout') {
        return {
          kind: 'timeout',
          cause: new Error(`no answer within ${timeoutMs} ms`),
          elapsedMs: Date.now() - started,
        };
      }
      return { kind: 'answered', response: outcome };
    } catch (cause) {
      return { kind: 'network', cause, elapsedMs: Date.now() - started };
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  type Failure = {
    error: ItsmApiError | ItsmRequestError;
    reason: string;
    retryAfterMs: number | null;
  };

  function requestFailure(
    outcome: Extract<Attempt, { kind: 'timeout' | 'network' }>,
    method: string,
    url: string,
    path: string,
    hasKey: boolean,
    attempt: number,
    /** The connection was refused (or the name not found): any method may be repeated. */
    notSent: boolean,
  ): Failure {
    const retryable = notSent || isRetryable(method, hasKey, null);
    const advice = !retryable
      ? `not retried: a ${method} without an Idempotency-Key may have been applied; check before repeating it`
      : attempt < maxAttempts
        ? 'retrying'
        : `gave up after ${attempt} attempt${attempt > 1 ? 's' : ''}; check that the ITSM API at ${base.href} is up and reachable`;
    if (outcome.kind === 'timeout') {
      return {
        error: new ItsmRequestError(
          `ITSM API ${method} ${url} timed out after ${outcome.elapsedMs} ms (timeoutMs ${timeoutMs}); ${advice}`,
          {
            code: 'ITSM_TIMEOUT',
            method,
            path,
            retryable,
            attempts: attempt,
            cause: outcome.cause,
          },
        ),
        reason: `timeout after ${timeoutMs} ms`,
        retryAfterMs: null,
      };
    }
    const what = describeFailure(outcome.cause);
    return {
      error: new ItsmRequestError(`ITSM API ${method} ${url} failed: ${what}; ${advice}`, {
        code: 'ITSM_NETWORK_ERROR',
        method,
        path,
        retryable,
        attempts: attempt,
        cause: outcome.cause,
      }),
      reason: `network error: ${what}`,
      retryAfterMs: null,
    };
  }

  function apiFailure(
    response: TransportAnswer,
    body: unknown,
    method: string,
    path: string,
    hasKey: boolean,
    attempt: number,
  ): Failure {
    const errorBody = errorBodySchema.safeParse(body);
    const error = new ItsmApiError({
      status: response.status,
      body: errorBody.success ? errorBody.data : null,
      method,
      path,
      retryable: isRetryable(method, hasKey, response.status),
      attempts: attempt,
      requestId: response.headers.get('X-Request-Id'),
      headers: response.headers,
    });
    const retryAfterMs = parseRetryAfter(response.headers.get('Retry-After'));
    const reason = `${response.status}${error.errorCode ? ` ${error.errorCode}` : ''}${
      retryAfterMs !== null ? ` (Retry-After ${retryAfterMs / 1000} s)` : ''
    }`;
    return { error, reason, retryAfterMs };
  }

  async function send(
    request: ItsmRequest,
    extra: { acceptAfterUncertain?: number } = {},
  ): Promise<ItsmResponse> {
    const method = request.method.toUpperCase();
    const url = urlOf(request.path, request.query);
    const headers: Record<string, string> = { ...defaultHeaders };
    let body: string | undefined;
    if (request.body !== undefined) {
      body = JSON.stringify(request.body);
      headers['Content-Type'] = 'application/json';
    }
    if (request.idempotencyKey !== undefined) headers['Idempotency-Key'] = request.idempotencyKey;
    Object.assign(headers, request.headers);
    const hasKey = request.idempotencyKey !== undefined;
    // Set once an attempt may have been applied without the client learning of it.
    let uncertain = false;

    for (let attempt = 1; ; attempt++) {
      const outcome = await attemptOnce(method, url, headers, body);
      let failure: Failure;
      if (outcome.kind === 'answered') {
        const { response } = outcome;
        const { text } = response;
        let parsed: unknown = null;
        let jsonError: Error | null = null;
        if (text.trim() !== '') {
          try {
            parsed = JSON.parse(text);
          } catch (e) {
            jsonError = e as Error;
          }
        }
        const ok = response.status >= 200 && response.status < 300;
        if (ok || (uncertain && response.status === extra.acceptAfterUncertain)) {
          if (jsonError) {
            throw new ItsmResponseError(
              `ITSM API ${method} ${pathAndQuery(url)} answered ${response.status} with a body that is not JSON (${jsonError.message}): ${text.slice(0, 200)}; check that baseUrl points at the ITSM API`,
              {
                status: response.status,
                method,
                path: request.path,
                issues: ['the body is not JSON'],
                cause: jsonError,
              },
            );
          }
          return { status: response.status, body: parsed, headers: response.headers };
        }
        failure = apiFailure(response, parsed, method, request.path, hasKey, attempt);
        if (response.status >= 500) uncertain = true;
      } else {
        const notSent = outcome.kind === 'network' && neverSent(outcome.cause);
        failure = requestFailure(outcome, method, url, request.path, hasKey, attempt, notSent);
        if (!notSent) uncertain = true;
      }

      if (!failure.error.retryable || attempt >= maxAttempts) throw failure.error;
      const delayMs = Math.max(backoff(attempt), failure.retryAfterMs ?? 0);
      options.onRetry?.({
        attempt,
        maxAttempts,
        delayMs,
        reason: failure.reason,
        method,
        path: request.path,
        error: failure.error,
      });
      await sleep(delayMs);
    }
  }

  function parse<S extends z.ZodType>(
    schema: S,
    response: ItsmResponse,
    method: string,
    path: string,
    what: string,
  ): z.infer<S> {
    const result = schema.safeParse(response.body);
    if (result.success) return result.data;
    const issues = describeIssues(result.error);
    throw new ItsmResponseError(
      `ITSM API ${method} ${path} answered ${response.status} with a body that is not ${what}: ${issues
        .slice(0, 5)
        .join(
          '; ',
        )}${issues.length > 5 ? `; and ${issues.length - 5} more` : ''}; check that baseUrl points at an ITSM API that speaks this contract`,
      { status: response.status, method, path, issues },
    );
  }

  async function getParsed<S extends z.ZodType>(
    schema: S,
    what: string,
    path: string,
    query?: Record<string, QueryValue>,
    headers?: Record<string, string>,
  ): Promise<z.infer<S>> {
    const response = await send({ method: 'GET', path, query, ...(headers && { headers }) });
    return parse(schema, response, 'GET', path, what);
  }

  /**
   * Walks `next_page` from page 1: a page number, or a token the server handed out for a page it
   * shortened (its byte budget), passed back as it came. Refuses a next page that does not move
   * forward, so a confused server cannot make the walk loop.
   */
  async function* pages<T>(
    fetchPage: (page: number | string) => Promise<ObjectList<T>>,
    path: string,
  ): AsyncGenerator<T, void, undefined> {
    let page: number | string = 1;
    let lastNumber = 1;
    for (;;) {
      const list: ObjectList<T> = await fetchPage(page);
      yield* list.objects;
      if (list.next_page === null) return;
      const next: number | string = list.next_page;
      const forward =
        typeof next === 'number'
          ? Number.isSafeInteger(next) && next > lastNumber
          : next !== '' && next !== page && list.objects.length > 0;
      if (!forward) {
        throw new ItsmResponseError(
          `ITSM API GET ${path} page ${page} names next_page ${JSON.stringify(next)}, which does not move forward; stopping instead of looping`,
          {
            status: 200,
            method: 'GET',
            path,
            issues: [`next_page: expected a page after ${page}`],
          },
        );
      }
      if (typeof next === 'number') lastNumber = next;
      page = next;
    }
  }

  function listPage<T extends ObjectType>(
    account: AccountRef,
    type: T,
    opts: ListPageOptions = {},
  ): Promise<ObjectList<ObjectOf<T>>> {
    const path = collectionPath(account, type);
    return getParsed(
      objectListSchema(schemaOf(type)),
      `a list of ${type} objects`,
      path,
      {
        ...rawTypeQuery('list', type, opts.rawType),
        page: opts.page,
        page_size: opts.pageSize,
      },
      opts.rawData ? { 'X-Kloudless-Raw-Data': 'true' } : undefined,
    );
  }

  return {
    list(account, type, opts = {}) {
      const path = collectionPath(account, type);
      rawTypeQuery('list', type, opts.rawType);
      return pages((page) => listPage(account, type, { ...opts, page }), path);
    },

    listPage,

    async get(account, type, id, opts = {}) {
      return getParsed(
        schemaOf(type),
        `a ${type}`,
        itemPath(account, type, id),
        rawTypeQuery('get', type, opts.rawType),
      );
    },

    async create(account, type, body, opts = {}) {
      const path = collectionPath(account, type);
      const response = await send({
        method: 'POST',
        path,
        query: rawTypeQuery('create', type, opts.rawType),
        body,
        idempotencyKey: opts.idempotencyKey,
      });
      return parse(schemaOf(type), response, 'POST', path, `a ${type}`);
    },

    async update(account, type, id, body, opts = {}) {
      const path = itemPath(account, type, id);
      const response = await send({
        method: 'PATCH',
        path,
        query: rawTypeQuery('update', type, opts.rawType),
        body,
        idempotencyKey: opts.idempotencyKey,
      });
      return parse(schemaOf(type), response, 'PATCH', path, `a ${type}`);
    },

    async delete(account, type, id, opts = {}) {
      await send(
        {
          method: 'DELETE',
          path: itemPath(account, type, id),
          query: rawTypeQuery('delete', type, opts.rawType),
          idempotencyKey: opts.idempotencyKey,
        },
        { acceptAfterUncertain: 404 },
      );
    },

    async events(account, opts = {}) {
      return getParsed(
        eventListSchema,
        'an event list',
        `${accountPath(account)}/events`,
        { cursor: opts.cursor, page_size: opts.pageSize },
        opts.rawData ? { 'X-Kloudless-Raw-Data': 'true' } : undefined,
      );
    },

    async latestCursor(account) {
      const latest = await getParsed(
        latestCursorSchema,
        'the latest cursor',
        `${accountPath(account)}/events/latest`,
      );
      return latest.cursor;
    },

    teamUsers(account, opts = {}) {
      const path = `${accountPath(account)}/team/users`;
      return pages(
        (page) =>
          getParsed(objectListSchema(userSchema), 'a list of team users', path, {
            page,
            page_size: opts.pageSize,
          }),
        path,
      );
    },

    async teamUser(account, id) {
      if (typeof id !== 'string' || id === '') {
        throw new TypeError(`a team user id must be a non-empty string, got ${JSON.stringify(id)}`);
      }
      return getParsed(
        userSchema,
        'a team user',
        `${accountPath(account)}/team/users/${encodeURIComponent(id)}`,
      );
    },

    request: (request) => send(request),
  };
}
