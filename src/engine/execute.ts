// Execution of a plan: each call made once, in order, with its idempotency key, and its effect
// recorded in the engine store. The plan itself is stored before the first call, so a re-run of
// the same event (after a crash, a replayed webhook or a retried page) finishes the stored plan:
// calls with a recorded effect are skipped, a create repeated after a crash is answered from the
// API's idempotency record, and a link waiting on that create gets the same object id.
import {
  ItsmApiError,
  type ItsmClient,
  ItsmResponseError,
  parseRetryAfter,
} from '../itsm/client.js';
import type { EffectRecord, EngineStore } from '../storage/engine-port.js';
import { holdsWrite, isResultRef, type Plan, type PlannedCall } from './plan.js';
import { redactSecrets, revealSecrets, type SecretLookup, secretVariable } from './secret.js';

const MAX_HTTP_WAIT_MS = 30_000;

export interface HttpOptions {
  /** Hosts the `http` action may call: `hooks.example.com`, `*.example.com`, `127.0.0.1:9000`. */
  allowHosts: readonly string[];
  /**
   * How this runtime's users set `allowHosts`, named in the refusal of a host not on it: the
   * runtime's own setting (default `--http-allow`, the Node flag).
   */
  allowSetting?: string;
  fetch?: typeof fetch;
  /** Per attempt; default 10 s. */
  timeoutMs?: number;
  /** Attempts on 429, 5xx and network errors; default 3. */
  maxAttempts?: number;
  /** Between attempts (doubled each time); default 200 ms. */
  retryDelayMs?: number;
  /** The values of the rules' named secrets (ITSM_SECRET_<NAME>); none without it. */
  secrets?: SecretLookup;
}

export interface ExecuteOptions {
  client: Pick<ItsmClient, 'request'>;
  store: EngineStore;
  http?: HttpOptions;
  now?: () => number;
  /**
   * Called after each call: `sent` once the call was made and before its effect is recorded,
   * `recorded` after. Tests throw from it to simulate a crash at either point.
   */
  afterCall?: (call: PlannedCall, phase: 'sent' | 'recorded') => void | Promise<void>;
}

export interface CallResult {
  index: number;
  ruleId: string;
  action: number;
  kind: PlannedCall['kind'];
  summary: string;
  outcome: 'done' | 'failed';
  /** True when an earlier run already made (or gave up on) the call. */
  earlier: boolean;
  status: number | null;
  objectId: string | null;
  detail: string | null;
  /** How long the call took, in milliseconds; absent for a call an earlier run made. */
  ms?: number;
}

export interface ExecutionResult {
  planKey: string;
  /** The plan that ran: the one stored first under the key, which a re-run does not replace. */
  plan: Plan;
  results: CallResult[];
}

/** A call failed in a way that may pass later (429, 5xx, network); re-run the plan to finish. */
export class PlanInterruptedError extends Error {
  readonly code = 'ENGINE_PLAN_INTERRUPTED';
  readonly retryable = true;
  constructor(
    readonly planKey: string,
    readonly call: PlannedCall,
    cause: unknown,
  ) {
    super(
      `plan ${planKey} stopped at call ${call.index} (${call.summary}): ${cause instanceof Error ? cause.message : String(cause)}; the calls before it are recorded, and running the plan again finishes it`,
      { cause },
    );
    this.name = 'PlanInterruptedError';
  }
}

class PermanentFailure extends Error {
  constructor(
    message: string,
    readonly status: number | null = null,
  ) {
    super(message);
  }
}

export async function executePlan(plan: Plan, options: ExecuteOptions): Promise<ExecutionResult> {
  const now = options.now ?? Date.now;
  const createdAt = now();
  const body = JSON.stringify(plan);
  const stored = await options.store.savePlan({
    key: plan.key,
    account: plan.account,
    body,
    createdAt,
  });
  const running = JSON.parse(stored.body) as Plan;
  // A plan stored by an earlier run is being resumed: its unrecorded writes may have been applied.
  const resumed = stored.createdAt !== createdAt || stored.body !== body;
  const effects = new Map(
    (await options.store.listEffects(running.key)).map((effect) => [effect.callIndex, effect]),
  );
  const results: CallResult[] = [];

  for (const call of running.calls) {
    const earlier = effects.get(call.index);
    if (earlier) {
      results.push(toResult(call, earlier, true));
      continue;
    }
    let effect: EffectRecord;
    const started = now();
    try {
      const done = await perform(call, results, options, resumed);
      effect = effectOf(running, call, 'done', done.status, done.objectId, done.detail, now());
    } catch (error) {
      if (!(error instanceof PermanentFailure))
        throw new PlanInterruptedError(running.key, call, error);
      effect = effectOf(running, call, 'failed', error.status, null, error.message, now());
    }
    await options.afterCall?.(call, 'sent');
    await options.store.recordEffect(effect);
    await options.afterCall?.(call, 'recorded');
    results.push({ ...toResult(call, effect, false), ms: effect.at - started });
  }
  return { planKey: running.key, plan: running, results };
}

function effectOf(
  plan: Plan,
  call: PlannedCall,
  outcome: EffectRecord['outcome'],
  status: number | null,
  objectId: string | null,
  detail: string | null,
  at: number,
): EffectRecord {
  return {
    planKey: plan.key,
    callIndex: call.index,
    idempotencyKey: call.idempotencyKey,
    ruleId: call.ruleId,
    outcome,
    status,
    objectType: call.kind === 'api' ? call.objectType : null,
    objectId,
    detail,
    at,
  };
}

function toResult(call: PlannedCall, effect: EffectRecord, earlier: boolean): CallResult {
  return {
    index: call.index,
    ruleId: call.ruleId,
    action: call.action,
    kind: call.kind,
    summary: call.summary,
    outcome: effect.outcome,
    earlier,
    status: effect.status,
    objectId: effect.objectId,
    detail: effect.detail,
  };
}

interface Done {
  status: number | null;
  objectId: string | null;
  detail: string | null;
}

/** Replaces each `{$result: n}` with the id call n created; fails when call n created nothing. */
function resolveRefs(value: unknown, results: readonly CallResult[]): unknown {
  if (isResultRef(value)) {
    const source = results[value.$result];
    if (source?.outcome !== 'done' || source.objectId === null) {
      throw new PermanentFailure(
        `call ${value.$result}, which this call depends on, did not create its object`,
      );
    }
    return source.objectId;
  }
  if (Array.isArray(value)) return value.map((item) => resolveRefs(item, results));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, resolveRefs(item, results)]),
    );
  }
  return value;
}

async function perform(
  call: PlannedCall,
  results: readonly CallResult[],
  options: ExecuteOptions,
  resumed: boolean,
): Promise<Done> {
  if (call.kind === 'log') return { status: null, objectId: null, detail: call.message };
  if (call.kind === 'http') return performHttp(call, options.http);

  const body = resolveRefs(call.body, results) as Record<string, unknown>;
  const objectId = isResultRef(call.objectId)
    ? (resolveRefs(call.objectId, results) as string)
    : call.objectId;
  try {
    // Every call carries its key, and the API replays a repeated create, update or delete. A
    // resumed update may still meet an API that no longer holds its key (past the key's
    // retention, or an API that keeps keys for creates only): when the object already holds
    // every value, sending it again would only add an event (and could undo a change made
    // since), so it counts as done.
    if (resumed && call.method === 'PATCH' && (await alreadyApplied(call, body, options))) {
      return { status: null, objectId, detail: 'already applied before the run was interrupted' };
    }

    const response = await options.client.request({
      method: call.method,
      path: call.path,
      query: call.query,
      body,
      idempotencyKey: call.idempotencyKey,
    });
    const answered = response.body as { id?: unknown } | null;
    const id = typeof answered?.id === 'string' ? answered.id : objectId;
    return { status: response.status, objectId: id, detail: null };
  } catch (error) {
    if (error instanceof ItsmApiError && !error.retryable && isPermanentStatus(error.status)) {
      throw new PermanentFailure(
        `${call.method} ${call.path} answered ${error.status}: ${error.body?.message ?? error.message}`,
        error.status,
      );
    }
    // A 2xx answer the client could not read: the write happened, but repeating it gives the
    // same answer, so it is recorded as failed rather than retried forever.
    if (error instanceof ItsmResponseError) throw new PermanentFailure(error.message, error.status);
    throw error;
  }
}

async function alreadyApplied(
  call: Extract<PlannedCall, { kind: 'api' }>,
  body: Record<string, unknown>,
  options: ExecuteOptions,
): Promise<boolean> {
  let current: Record<string, unknown>;
  try {
    const response = await options.client.request({
      method: 'GET',
      path: call.path,
      query: call.query,
      // Upstream columns (update.raw, notes) are compared with the object's upstream record.
      ...('raw' in body && { headers: { 'X-Kloudless-Raw-Data': 'true' } }),
    });
    current = (response.body ?? {}) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof ItsmApiError && error.status === 404) return false;
    throw error;
  }
  return holdsWrite(body, current, call.objectType);
}

function isPermanentStatus(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}

/**
 * Whether `url`'s host is on the allow-list. A pattern is a host (any port), `host:port`, or
 * `*.example.com` (sub-domains only, optionally with `:port`); a URL without a port is on its
 * scheme's default port, so `hooks.example.com:443` allows `https://hooks.example.com/`.
 * A wildcard matches host names only: an IP address (`*.1` would otherwise match 127.0.0.1) or
 * a name under `localhost` is allowed only by a pattern naming exactly that host. The URL parser
 * has already written every IPv4 form (`127.1`, `2130706433`, `0x7f.0.0.1`) as a dotted quad, so
 * an address is compared in one spelling.
 */
export function isAllowedHost(url: URL, allowHosts: readonly string[]): boolean {
  const host = url.hostname.toLowerCase();
  const port =
    url.port || (url.protocol === 'https:' ? '443' : url.protocol === 'http:' ? '80' : '');
  const wildcardable = !isIpLiteral(host) && !isLocalhostName(host);
  return allowHosts.some((pattern) => {
    const withPort = /^(.+):(\d+)$/.exec(pattern.toLowerCase());
    const p = withPort?.[1] ?? pattern.toLowerCase();
    if (withPort && withPort[2] !== port) return false;
    if (p.startsWith('*.')) {
      return wildcardable && host.endsWith(p.slice(1)) && host.length > p.length - 1;
    }
    return p === host;
  });
}

/** An IPv4 address as the URL parser writes it (a dotted quad), or a bracketed IPv6 one. */
function isIpLiteral(hostname: string): boolean {
  return hostname.startsWith('[') || /^\d{1,3}(\.\d{1,3}){3}$/.test(hostname);
}

/** `localhost` and the names under it, which resolve to the loopback address (RFC 6761). */
function isLocalhostName(hostname: string): boolean {
  const name = hostname.replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost');
}

/**
 * An http call, with its secrets' values put in for the request only. Whatever comes back as text
 * (an error that quotes the URL, a host's answer) is redacted by value before it leaves here:
 * into the effect record, the run record, a PlanInterruptedError and the log.
 */
async function performHttp(
  planned: Extract<PlannedCall, { kind: 'http' }>,
  http: HttpOptions | undefined,
): Promise<Done> {
  const lookup: SecretLookup = http?.secrets ?? (() => undefined);
  const revealed = revealSecrets(
    { url: planned.url, headers: planned.headers, body: planned.body },
    planned.secrets,
    lookup,
  );
  if (revealed.missing !== null) {
    throw new PermanentFailure(
      `http: the secret ${revealed.missing} is not set, so the call is not made; set ${secretVariable(revealed.missing)}`,
    );
  }
  try {
    return await sendHttp({ ...planned, ...revealed.value }, http);
  } catch (error) {
    const redact = (text: string) => redactSecrets(text, planned.secrets, lookup);
    if (error instanceof PermanentFailure) {
      throw new PermanentFailure(redact(error.message), error.status);
    }
    // The cause is left behind: it may quote the request (the URL, a header) in its own words.
    throw new Error(redact(error instanceof Error ? error.message : String(error)));
  }
}

async function sendHttp(
  call: Extract<PlannedCall, { kind: 'http' }>,
  http: HttpOptions | undefined,
): Promise<Done> {
  let url: URL;
  try {
    url = new URL(call.url);
  } catch {
    throw new PermanentFailure(`http: ${JSON.stringify(call.url)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new PermanentFailure(`http: only http and https URLs can be called, not ${url.protocol}`);
  }
  // fetch refuses such a URL, and its error repeats the URL, password included, into the logs;
  // retrying would never help, so it fails once, naming only the host.
  if (url.username !== '' || url.password !== '') {
    throw new PermanentFailure(
      `http: the URL for ${url.host} carries a user name or password, which is never sent; put the credential in a header (Authorization) instead`,
    );
  }
  if (!http || !isAllowedHost(url, http.allowHosts)) {
    throw new PermanentFailure(
      `http: ${url.host} is not on the allow-list of hosts the engine may call (${http?.allowSetting ?? '--http-allow'})`,
    );
  }
  const doFetch = http.fetch ?? globalThis.fetch;
  // At least one attempt: with none, the loop would end with nothing to report.
  const attempts = Math.max(1, Math.floor(http.maxAttempts ?? 3));
  // Header names are case-insensitive: the rule's headers, then the engine's key over any the
  // rule set, so replays of the call always carry the same key.
  const headers = new Headers(call.headers);
  headers.set('Idempotency-Key', call.idempotencyKey);
  const hasBody = call.body !== null && call.method !== 'GET';
  if (hasBody && !headers.has('content-type')) headers.set('Content-Type', 'application/json');
  let waitMs = http.retryDelayMs ?? 200;
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      const response = await doFetch(url, {
        method: call.method,
        headers,
        body: hasBody ? JSON.stringify(call.body) : undefined,
        redirect: 'manual',
        signal: AbortSignal.timeout(http.timeoutMs ?? 10_000),
      });
      await response.body?.cancel();
      if (response.status >= 200 && response.status < 300) {
        return { status: response.status, objectId: null, detail: null };
      }
      if (response.status >= 300 && response.status < 400) {
        throw new PermanentFailure(
          `http: ${url.host} answered ${response.status} (a redirect); redirects are not followed`,
          response.status,
        );
      }
      if (isPermanentStatus(response.status)) {
        throw new PermanentFailure(
          `http: ${url.host} answered ${response.status}`,
          response.status,
        );
      }
      lastError = new Error(`http: ${url.host} answered ${response.status}`);
      // Honour the host's Retry-After, within reason: a long wait belongs to the next run.
      const retryAfter = parseRetryAfter(response.headers.get('retry-after'));
      if (retryAfter !== null) waitMs = Math.min(Math.max(waitMs, retryAfter), MAX_HTTP_WAIT_MS);
    } catch (error) {
      if (error instanceof PermanentFailure) throw error;
      lastError = error;
    }
    if (attempt < attempts) {
      const delay = waitMs;
      await new Promise((resolve) => setTimeout(resolve, delay));
      waitMs = Math.min(waitMs * 2, MAX_HTTP_WAIT_MS);
    }
  }
  throw lastError;
}
