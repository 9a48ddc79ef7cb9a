// The Table API client the connector talks to an instance with (fetch only, so it runs on Node
// and Workers): get, list, create, patch and delete of records with `sysparm_display_value=false`
// and `sysparm_exclude_reference_link=true` (values, never display labels or links), Basic auth or
// OAuth (password grant, refreshed on a 401 and the call retried once), retries with full-jitter
// backoff on 429 (honouring Retry-After), 5xx and network errors, a timeout per attempt, and the
// instance's error bodies turned into `ServiceNowError`s. Credentials never appear in a message.
import { parseRetryAfter } from '../itsm/client.js';

export type ServiceNowAuth =
  | { kind: 'basic'; username: string; password: string }
  | {
      kind: 'oauth';
      clientId: string;
      clientSecret: string;
      username: string;
      password: string;
    };

export type SnRecord = Record<string, string>;

export interface ServiceNowClientOptions {
  /** The instance, e.g. `https://dev12345.service-now.com` (no path). */
  instanceUrl: string;
  auth: ServiceNowAuth;
  /** Timeout of each attempt, body included. Default 30,000 ms (instances are slow). */
  timeoutMs?: number;
  /** Attempts in all, the first included. Default 5. */
  maxAttempts?: number;
  /** Cap of the first backoff; doubles per attempt. Default 250 ms. */
  baseDelayMs?: number;
  /** Largest backoff (a longer Retry-After is still honoured). Default 10,000 ms. */
  maxDelayMs?: number;
  fetch?: typeof globalThis.fetch;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  log?: (line: string) => void;
}

export interface ListQuery {
  query?: string;
  fields?: readonly string[];
  limit?: number;
  offset?: number;
}

export type ServiceNowErrorCode =
  | 'SN_UNAUTHENTICATED'
  | 'SN_FORBIDDEN'
  | 'SN_NOT_FOUND'
  | 'SN_REFUSED'
  | 'SN_RATE_LIMITED'
  | 'SN_UNAVAILABLE'
  | 'SN_TIMEOUT'
  | 'SN_UNREACHABLE'
  | 'SN_BAD_RESPONSE';

/** A call the instance refused or could not answer; the message says what and what to do. */
export class ServiceNowError extends Error {
  constructor(
    readonly code: ServiceNowErrorCode,
    message: string,
    /** The HTTP status, or null when no answer came. */
    readonly status: number | null,
    /** The instance's own `error.message` and `error.detail`, when it sent them. */
    readonly instanceMessage: string | null = null,
    readonly instanceDetail: string | null = null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ServiceNowError';
  }
}

const DEFAULTS = { timeoutMs: 30_000, maxAttempts: 5, baseDelayMs: 250, maxDelayMs: 10_000 };
/** Renew an OAuth token this long before it expires, so a call never carries a dying one. */
const TOKEN_MARGIN_MS = 30_000;

/** The instance's base URL, checked: https, or http on a loopback address (tests, tunnels). */
export function parseInstanceUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(
      `the ServiceNow instance URL must be absolute, e.g. https://dev12345.service-now.com, got ${JSON.stringify(text)}`,
    );
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new TypeError(
      `the ServiceNow instance URL must use https (http only on 127.0.0.1 or localhost), got ${url.protocol}//${url.host}`,
    );
  }
  if (url.username || url.password) {
    throw new TypeError(
      'the ServiceNow instance URL must not carry credentials; give them with the credential flags',
    );
  }
  if (url.search || url.hash || !/^\/?$/.test(url.pathname)) {
    throw new TypeError(
      `the ServiceNow instance URL is the instance itself, with no path or query, e.g. ${url.protocol}//${url.host}`,
    );
  }
  return new URL(`${url.protocol}//${url.host}`);
}

export interface ServiceNowClient {
  readonly instanceUrl: string;
  /** One record, or null when the instance has none with that sys_id (404). */
  get(table: string, sysId: string, fields?: readonly string[]): Promise<SnRecord | null>;
  /** One page of records and the instance's `X-Total-Count` (null when it sent none). */
  list(table: string, query?: ListQuery): Promise<{ records: SnRecord[]; total: number | null }>;
  create(table: string, values: Record<string, string>): Promise<SnRecord>;
  /**
   * Updates a record. With `landed`, a PATCH whose answer was lost (5xx, timeout, cut off) is
   * repeated only after a read of the record shows it did not land: the instance has no
   * conditional write, and a PATCH applied twice is two updates in its history and feed.
   */
  patch(
    table: string,
    sysId: string,
    values: Record<string, string>,
    options?: { landed?: (record: SnRecord) => boolean },
  ): Promise<SnRecord>;
  /** True when deleted, false when the record was already gone. */
  delete(table: string, sysId: string): Promise<boolean>;
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

function errorFields(text: string): { message: string | null; detail: string | null } {
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown; detail?: unknown } };
    const message = typeof body.error?.message === 'string' ? body.error.message : null;
    const detail = typeof body.error?.detail === 'string' ? body.error.detail : null;
    return { message, detail };
  } catch {
    return { message: null, detail: null };
  }
}

export function createServiceNowClient(options: ServiceNowClientOptions): ServiceNowClient {
  const instance = parseInstanceUrl(options.instanceUrl);
  const origin = instance.origin;
  const settings = {
    timeoutMs: options.timeoutMs ?? DEFAULTS.timeoutMs,
    maxAttempts: options.maxAttempts ?? DEFAULTS.maxAttempts,
    baseDelayMs: options.baseDelayMs ?? DEFAULTS.baseDelayMs,
    maxDelayMs: options.maxDelayMs ?? DEFAULTS.maxDelayMs,
  };
  const doFetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const random = options.random ?? Math.random;
  const log = options.log ?? (() => {});
  const auth = options.auth;

  let token: { access: string; refresh: string | null; expiresAt: number } | null = null;
  let pendingToken: Promise<string> | null = null;

  /** One attempt with the timeout around the whole exchange, body included. */
  async function attempt(url: string, init: RequestInit): Promise<Answer> {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, settings.timeoutMs);
    try {
      const response = await doFetch(url, { ...init, signal: controller.signal });
      return { status: response.status, headers: response.headers, text: await response.text() };
    } catch (cause) {
      if (timedOut) {
        throw new ServiceNowError(
          'SN_TIMEOUT',
          `ServiceNow ${init.method} ${new URL(url).pathname} timed out after ${settings.timeoutMs} ms`,
          null,
          null,
          null,
          { cause },
        );
      }
      const reason = (cause as { cause?: { code?: string } }).cause?.code ?? String(cause);
      throw new ServiceNowError(
        'SN_UNREACHABLE',
        `ServiceNow at ${origin} is unreachable (${reason}); check the instance URL and that the instance is up`,
        null,
        null,
        null,
        { cause },
      );
    } finally {
      clearTimeout(timer);
    }
  }

  async function requestToken(form: Record<string, string>): Promise<string> {
    const answer = await attempt(`${origin}/oauth_token.do`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded',
        Accept: 'application/json',
      },
      body: new URLSearchParams(form).toString(),
    });
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(answer.text) as Record<string, unknown>;
    } catch {
      // Reported below with the status.
    }
    if (answer.status !== 200 || typeof body.access_token !== 'string') {
      const why = [body.error, body.error_description].filter((x) => typeof x === 'string');
      throw new ServiceNowError(
        'SN_UNAUTHENTICATED',
        `ServiceNow at ${origin} refused the OAuth ${form.grant_type} grant (${answer.status}${why.length ? `: ${why.join(': ')}` : ''}); check the client id, client secret, user name and password`,
        answer.status,
      );
    }
    const expiresIn = typeof body.expires_in === 'number' ? body.expires_in : 1800;
    token = {
      access: body.access_token,
      refresh: typeof body.refresh_token === 'string' ? body.refresh_token : null,
      expiresAt: Date.now() + expiresIn * 1000,
    };
    return body.access_token;
  }

  /** A fresh access token: by the refresh token when there is one, else a new password grant. */
  async function renewToken(): Promise<string> {
    if (auth.kind !== 'oauth') throw new Error('renewToken without OAuth');
    const client = { client_id: auth.clientId, client_secret: auth.clientSecret };
    if (token?.refresh) {
      try {
        return await requestToken({
          grant_type: 'refresh_token',
          refresh_token: token.refresh,
          ...client,
        });
      } catch (error) {
        if (!(error instanceof ServiceNowError) || error.code !== 'SN_UNAUTHENTICATED') throw error;
        log('servicenow: the refresh token was refused; signing in again with the password grant');
      }
    }
    return requestToken({
      grant_type: 'password',
      username: auth.username,
      password: auth.password,
      ...client,
    });
  }

  async function authorization(forceNew: boolean): Promise<string> {
    if (auth.kind === 'basic') {
      const bytes = new TextEncoder().encode(`${auth.username}:${auth.password}`);
      return `Basic ${btoa(String.fromCharCode(...bytes))}`;
    }
    if (!forceNew && token && token.expiresAt - TOKEN_MARGIN_MS > Date.now()) {
      return `Bearer ${token.access}`;
    }
    // One renewal at a time: concurrent calls share it instead of racing for tokens.
    pendingToken ??= renewToken().finally(() => {
      pendingToken = null;
    });
    return `Bearer ${await pendingToken}`;
  }

  function backoff(attemptNo: number): number {
    return Math.round(
      random() * Math.min(settings.maxDelayMs, settings.baseDelayMs * 2 ** (attemptNo - 1)),
    );
  }

  function failure(method: string, path: string, answer: Answer): ServiceNowError {
    const { message, detail } = errorFields(answer.text);
    const said = message ? `: ${message}${detail ? ` (${detail})` : ''}` : '';
    const where = `ServiceNow ${method} ${path} answered ${answer.status}${said}`;
    switch (true) {
      case answer.status === 401:
        return new ServiceNowError(
          'SN_UNAUTHENTICATED',
          `${where}; check the ServiceNow user name and password (or OAuth client)`,
          401,
          message,
          detail,
        );
      case answer.status === 403:
        return new ServiceNowError(
          'SN_FORBIDDEN',
          `${where}; give the integration user the roles this table needs (itil, rest_api_explorer) or an ACL that allows it`,
          403,
          message,
          detail,
        );
      case answer.status === 404:
        return new ServiceNowError('SN_NOT_FOUND', where, 404, message, detail);
      case answer.status === 429:
        return new ServiceNowError(
          'SN_RATE_LIMITED',
          `${where}; the instance's rate limit was hit`,
          429,
          message,
          detail,
        );
      case answer.status >= 500:
        return new ServiceNowError('SN_UNAVAILABLE', where, answer.status, message, detail);
      default:
        return new ServiceNowError('SN_REFUSED', where, answer.status, message, detail);
    }
  }

  /**
   * Sends a call with retries: 429 always (refused before it ran); 5xx, timeouts and network
   * errors only when repeating it is safe (not a POST, which could create a record twice).
   */
  async function send(
    method: string,
    path: string,
    query: Record<string, string>,
    body?: Record<string, string>,
    /** Before repeating a call that may have been applied: its answer, if it did apply. */
    applied?: () => Promise<Answer | null>,
  ): Promise<Answer> {
    const url = new URL(path, origin);
    for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
    const repeatable = method !== 'POST';
    let refreshed = false;
    for (let attemptNo = 1; ; attemptNo++) {
      let error: ServiceNowError;
      let retryAfterMs: number | null = null;
      try {
        const answer = await attempt(url.href, {
          method,
          headers: {
            Authorization: await authorization(false),
            Accept: 'application/json',
            ...(body && { 'Content-Type': 'application/json' }),
          },
          ...(body && { body: JSON.stringify(body) }),
        });
        if (answer.status < 400) return answer;
        if (answer.status === 401 && auth.kind === 'oauth' && !refreshed) {
          // An expired or revoked token: renew it and repeat the call once.
          refreshed = true;
          log(`servicenow: ${method} ${path} answered 401; renewing the OAuth token and retrying`);
          await authorization(true);
          attemptNo--;
          continue;
        }
        error = failure(method, path, answer);
        retryAfterMs = parseRetryAfter(answer.headers.get('Retry-After'));
      } catch (thrown) {
        if (!(thrown instanceof ServiceNowError)) throw thrown;
        error = thrown;
      }
      const retryable =
        error.code === 'SN_RATE_LIMITED' ||
        (repeatable && ['SN_UNAVAILABLE', 'SN_TIMEOUT', 'SN_UNREACHABLE'].includes(error.code));
      if (!retryable || attemptNo >= settings.maxAttempts) {
        if (retryable) error.message += `; gave up after ${attemptNo} attempts`;
        else if (!repeatable && error.code !== 'SN_RATE_LIMITED' && error.status === null) {
          error.message +=
            '; not retried: the record may have been created, check before repeating';
        }
        throw error;
      }
      const delayMs = Math.max(backoff(attemptNo), retryAfterMs ?? 0);
      log(
        `servicenow: ${method} ${path} failed (${error.status ?? error.code}${retryAfterMs !== null ? `, Retry-After ${retryAfterMs / 1000} s` : ''}); retry ${attemptNo + 1} of ${settings.maxAttempts} in ${delayMs} ms`,
      );
      await sleep(delayMs);
      // A 429 was refused before it ran; anything else may have been applied.
      if (applied && error.code !== 'SN_RATE_LIMITED') {
        const answer = await applied().catch(() => null);
        if (answer) {
          log(`servicenow: ${method} ${path} had landed before its answer was lost; not repeated`);
          return answer;
        }
      }
    }
  }

  function parseResult(method: string, path: string, answer: Answer): unknown {
    try {
      return (JSON.parse(answer.text) as { result?: unknown }).result;
    } catch (cause) {
      throw new ServiceNowError(
        'SN_BAD_RESPONSE',
        `ServiceNow ${method} ${path} answered ${answer.status} with a body that is not JSON: ${answer.text.slice(0, 120)}; check that the URL is the instance's`,
        answer.status,
        null,
        null,
        { cause },
      );
    }
  }

  function asRecord(method: string, path: string, value: unknown): SnRecord {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new ServiceNowError(
        'SN_BAD_RESPONSE',
        `ServiceNow ${method} ${path} answered without a record in "result"`,
        null,
      );
    }
    return value as SnRecord;
  }

  const VALUES = { sysparm_display_value: 'false', sysparm_exclude_reference_link: 'true' };
  const tablePath = (table: string, sysId?: string) =>
    `/api/now/table/${encodeURIComponent(table)}${sysId === undefined ? '' : `/${encodeURIComponent(sysId)}`}`;

  return {
    instanceUrl: origin,
    async get(table, sysId, fields) {
      const path = tablePath(table, sysId);
      try {
        const answer = await send('GET', path, {
          ...VALUES,
          ...(fields && { sysparm_fields: fields.join(',') }),
        });
        return asRecord('GET', path, parseResult('GET', path, answer));
      } catch (error) {
        if (error instanceof ServiceNowError && error.code === 'SN_NOT_FOUND') return null;
        throw error;
      }
    },
    async list(table, query = {}) {
      const path = tablePath(table);
      const answer = await send('GET', path, {
        ...VALUES,
        ...(query.query && { sysparm_query: query.query }),
        ...(query.fields && { sysparm_fields: query.fields.join(',') }),
        ...(query.limit !== undefined && { sysparm_limit: String(query.limit) }),
        ...(query.offset !== undefined && { sysparm_offset: String(query.offset) }),
      });
      const result = parseResult('GET', path, answer);
      if (!Array.isArray(result)) {
        throw new ServiceNowError(
          'SN_BAD_RESPONSE',
          `ServiceNow GET ${path} answered without a list in "result"`,
          answer.status,
        );
      }
      const count = answer.headers.get('X-Total-Count');
      return {
        records: result.map((r) => asRecord('GET', path, r)),
        total: count !== null && /^\d+$/.test(count) ? Number(count) : null,
      };
    },
    async create(table, values) {
      const path = tablePath(table);
      const answer = await send('POST', path, VALUES, values);
      return asRecord('POST', path, parseResult('POST', path, answer));
    },
    async patch(table, sysId, values, options = {}) {
      const path = tablePath(table, sysId);
      const { landed } = options;
      const applied =
        landed &&
        (async (): Promise<Answer | null> => {
          // A read, retried as reads are; when it still fails, the PATCH is repeated as before.
          const answer = await send('GET', path, VALUES);
          const record = asRecord('GET', path, parseResult('GET', path, answer));
          return landed(record) ? answer : null;
        });
      const answer = await send('PATCH', path, VALUES, values, applied || undefined);
      return asRecord('PATCH', path, parseResult('PATCH', path, answer));
    },
    async delete(table, sysId) {
      const path = tablePath(table, sysId);
      try {
        await send('DELETE', path, {});
        return true;
      } catch (error) {
        // After a retried DELETE, a 404 means an earlier attempt did it.
        if (error instanceof ServiceNowError && error.code === 'SN_NOT_FOUND') return false;
        throw error;
      }
    },
  };
}
