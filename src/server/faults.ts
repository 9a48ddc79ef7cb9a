// Fault injection for the embedded API: a testing aid, off unless `createItsmServer` is given a
// `faults` option. It makes `/v1/...` requests fail the way a real service does under load so
// that clients can prove their retries and exactly-once writes: scripted faults (the next n
// matching requests), random faults at seeded rates (reproducible runs), added latency, and the
// hardest case, a write that is applied and then answered with an error. Counters let tests
// assert that retries happened. /healthz and anything outside /v1 are never faulted.
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from './context.js';
import { jsonResponse } from './errors.js';

export type FaultStatus = 429 | 500 | 503;

/** One scripted fault: the next `times` requests that match get it. */
export interface ScriptedFault {
  /** The error answered instead of (or, with afterWrite, after) processing the request. */
  status?: FaultStatus;
  /** Seconds sent as `Retry-After` (default 1 for a 429; none for 500 and 503). */
  retryAfter?: number;
  /** How many matching requests get the fault. Default 1. */
  times?: number;
  /** Only this method (case-insensitive). */
  method?: string;
  /** Only this path: a string equal to the path (trailing slash ignored), or a RegExp tested on it. */
  path?: RegExp | string;
  /**
   * Process the request normally (the write is applied), then replace the answer with the error.
   * Matches only writes (POST, PATCH, PUT, DELETE) unless `method` says otherwise.
   */
  afterWrite?: boolean;
  /** Delay the request this long before anything else, e.g. to trip a client's timeout. */
  latencyMs?: number;
}

/** Random faults, drawn from a PRNG seeded by `seed` so that a run can be repeated. */
export interface FaultRates {
  /** Share of API requests answered 500 without being processed, 0..1. */
  rate500?: number;
  /** Share of API requests answered 429 without being processed, 0..1. */
  rate429?: number;
  /** `Retry-After` of random 429s, in seconds. Default 1. */
  retryAfterSeconds?: number;
  /** Delay added to a request (to every one unless latencyRate says otherwise). */
  latencyMs?: number;
  /** Share of requests that get latencyMs, 0..1. Default 1. */
  latencyRate?: number;
  /** Share of writes that are applied and then answered 500, 0..1. */
  afterWriteRate?: number;
  /** PRNG seed; default a random one, logged and exposed as `seed` so a run can be repeated. */
  seed?: number;
}

export type FaultOptions = FaultRates;

export type FaultKind = 'status429' | 'status500' | 'status503' | 'afterWrite' | 'latency';

export interface FaultCounters {
  /** API requests the middleware saw, faulted or not. */
  requests: number;
  /** Requests that got at least one fault. */
  faults: number;
  /**
   * Per kind: `statusNNN` = answered with that error instead of being processed; `afterWrite` =
   * processed, then answered with an error; `latency` = delayed.
   */
  byKind: Record<FaultKind, number>;
}

export interface FaultController {
  /** The seed of the random faults. */
  readonly seed: number;
  /** Queues a scripted fault; scripted faults take precedence over random ones. */
  inject(fault: ScriptedFault): void;
  /** Replaces the random rates (a new `seed` restarts the PRNG). */
  setRates(rates: FaultRates): void;
  /** Drops the scripted faults not yet used. */
  clear(): void;
  /** Scripted fault applications still pending (the sum of their remaining `times`). */
  pending(): number;
  /** A snapshot of the counters. */
  counters(): FaultCounters;
  resetCounters(): void;
  /** Runs fn with faults off and uncounted (for the server's own start-up requests). */
  bypass<T>(fn: () => Promise<T>): Promise<T>;
  readonly middleware: MiddlewareHandler<AppEnv>;
}

interface PendingFault {
  status: FaultStatus | null;
  retryAfter: number | null;
  remaining: number;
  method: string | null;
  path: RegExp | string | null;
  afterWrite: boolean;
  latencyMs: number;
}

interface Decision {
  status: FaultStatus | null;
  retryAfter: number | null;
  afterWrite: boolean;
  latencyMs: number;
}

const WRITE_METHODS = new Set(['POST', 'PATCH', 'PUT', 'DELETE']);
const FAULT_STATUSES: readonly number[] = [429, 500, 503];

const ERROR_CODES: Record<FaultStatus, string> = {
  429: 'rate_limit_exceeded',
  500: 'internal_error',
  503: 'service_unavailable',
};

/** mulberry32: small, fast, and the same sequence on every runtime for a given seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function share(name: string, value: number | undefined): number {
  const v = value ?? 0;
  if (!Number.isFinite(v) || v < 0 || v > 1) {
    throw new RangeError(`faults: ${name} must be a share from 0 to 1, got ${value}`);
  }
  return v;
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v < 0) {
    throw new RangeError(`faults: ${name} must be a number >= 0, got ${value}`);
  }
  return v;
}

function validRates(rates: FaultRates) {
  const checked = {
    rate500: share('rate500', rates.rate500),
    rate429: share('rate429', rates.rate429),
    retryAfterSeconds: nonNegative('retryAfterSeconds', rates.retryAfterSeconds, 1),
    latencyMs: nonNegative('latencyMs', rates.latencyMs, 0),
    latencyRate: share('latencyRate', rates.latencyRate ?? 1),
    afterWriteRate: share('afterWriteRate', rates.afterWriteRate),
  };
  if (checked.rate500 + checked.rate429 > 1) {
    throw new RangeError(
      `faults: rate500 + rate429 must be at most 1, got ${checked.rate500} + ${checked.rate429}`,
    );
  }
  return checked;
}

function pathMatches(pattern: RegExp | string | null, path: string): boolean {
  if (pattern === null) return true;
  if (typeof pattern === 'string') {
    return pattern.replace(/\/+$/, '') === path.replace(/\/+$/, '');
  }
  pattern.lastIndex = 0;
  return pattern.test(path);
}

function describeRates(rates: ReturnType<typeof validRates>, seed: number): string {
  return Object.entries({ ...rates, seed })
    .map(([name, value]) => `${name}=${value}`)
    .join(' ');
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function createFaultInjector(
  options: FaultOptions,
  log: (line: string) => void = () => {},
): FaultController {
  let rates = validRates(options);
  let seed = options.seed ?? Math.floor(Math.random() * 2 ** 32);
  let random = seededRandom(seed);
  let scripted: PendingFault[] = [];
  let bypassing = 0;
  const zero = (): FaultCounters => ({
    requests: 0,
    faults: 0,
    byKind: { status429: 0, status500: 0, status503: 0, afterWrite: 0, latency: 0 },
  });
  let counters = zero();
  log(`itsm-api: fault injection is on (a testing aid): ${describeRates(rates, seed)}`);

  function takeScripted(method: string, path: string): Decision | null {
    const index = scripted.findIndex(
      (f) =>
        (f.method === null ? !f.afterWrite || WRITE_METHODS.has(method) : f.method === method) &&
        pathMatches(f.path, path),
    );
    const fault = scripted[index];
    if (!fault) return null;
    fault.remaining -= 1;
    if (fault.remaining <= 0) scripted.splice(index, 1);
    return {
      status: fault.status,
      retryAfter: fault.retryAfter,
      afterWrite: fault.afterWrite,
      latencyMs: fault.latencyMs,
    };
  }

  // Always the same number of draws per request, so one request's outcome does not shift the
  // sequence seen by the next: a seed and a request sequence give one fault sequence.
  function drawRandom(method: string): Decision {
    const [u, w, l] = [random(), random(), random()];
    const latencyMs = rates.latencyMs > 0 && l < rates.latencyRate ? rates.latencyMs : 0;
    if (u < rates.rate429) {
      return { status: 429, retryAfter: rates.retryAfterSeconds, afterWrite: false, latencyMs };
    }
    if (u < rates.rate429 + rates.rate500) {
      return { status: 500, retryAfter: null, afterWrite: false, latencyMs };
    }
    if (WRITE_METHODS.has(method) && w < rates.afterWriteRate) {
      return { status: 500, retryAfter: null, afterWrite: true, latencyMs };
    }
    return { status: null, retryAfter: null, afterWrite: false, latencyMs };
  }

  function faultResponse(decision: Decision, status: FaultStatus, requestId: string): Response {
    const what = decision.afterWrite
      ? 'the request was processed and applied, then its answer was replaced by this error'
      : 'the request was not processed';
    const retry = decision.retryAfter !== null ? `; retry after ${decision.retryAfter} s` : '';
    return jsonResponse(
      status,
      {
        error_code: ERROR_CODES[status],
        message: `injected fault (testing aid): ${what}${retry}`,
        id: requestId,
        status_code: status,
      },
      decision.retryAfter !== null ? { 'Retry-After': String(decision.retryAfter) } : {},
    );
  }

  const middleware: MiddlewareHandler<AppEnv> = async (c, next) => {
    if (bypassing > 0) return next();
    const method = c.req.method.toUpperCase();
    const path = c.req.path;
    counters.requests += 1;
    const decision = takeScripted(method, path) ?? drawRandom(method);
    if (decision.status === null && decision.latencyMs === 0) return next();

    counters.faults += 1;
    if (decision.latencyMs > 0) {
      counters.byKind.latency += 1;
      await delay(decision.latencyMs);
    }
    const status = decision.status;
    if (status === null) return next();
    const requestId = c.get('requestId');
    if (!decision.afterWrite) {
      counters.byKind[`status${status}`] += 1;
      return faultResponse(decision, status, requestId);
    }
    await next();
    counters.byKind.afterWrite += 1;
    await c.res.body?.cancel();
    // Unset first: assigning over a response merges the old one's headers into the new one.
    c.res = undefined;
    c.res = faultResponse(decision, status, requestId);
  };

  return {
    get seed() {
      return seed;
    },
    inject(fault) {
      const times = fault.times ?? 1;
      if (!Number.isInteger(times) || times < 1) {
        throw new RangeError(`faults.inject: times must be a whole number >= 1, got ${times}`);
      }
      if (fault.status !== undefined && !FAULT_STATUSES.includes(fault.status)) {
        throw new RangeError(
          `faults.inject: status must be one of ${FAULT_STATUSES.join(', ')}, got ${fault.status}`,
        );
      }
      const latencyMs = nonNegative('latencyMs', fault.latencyMs, 0);
      if (fault.status === undefined && latencyMs === 0) {
        throw new RangeError('faults.inject: give a status (429, 500, 503), a latencyMs, or both');
      }
      if (fault.afterWrite && fault.status === undefined) {
        throw new RangeError('faults.inject: afterWrite needs the status to answer with');
      }
      scripted.push({
        status: fault.status ?? null,
        retryAfter:
          fault.retryAfter !== undefined
            ? nonNegative('retryAfter', fault.retryAfter, 0)
            : fault.status === 429
              ? 1
              : null,
        remaining: times,
        method: fault.method?.toUpperCase() ?? null,
        path: fault.path ?? null,
        afterWrite: fault.afterWrite ?? false,
        latencyMs,
      });
    },
    setRates(next) {
      rates = validRates(next);
      if (next.seed !== undefined) {
        seed = next.seed;
        random = seededRandom(seed);
      }
      log(`itsm-api: fault rates changed: ${describeRates(rates, seed)}`);
    },
    clear() {
      scripted = [];
    },
    pending: () => scripted.reduce((sum, f) => sum + f.remaining, 0),
    counters: () => ({ ...counters, byKind: { ...counters.byKind } }),
    resetCounters() {
      counters = zero();
    },
    async bypass(fn) {
      bypassing += 1;
      try {
        return await fn();
      } finally {
        bypassing -= 1;
      }
    },
    middleware,
  };
}
