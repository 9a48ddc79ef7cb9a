// Fault injection for the embedded API: a testing aid, off unless `createItsmServer` is given a
// `faults` option. It makes `/v1/...` requests fail the way a real service does under load so
// that clients can prove their retries and exactly-once writes: scripted faults (the next n
// matching requests), random faults at seeded rates (reproducible runs), added latency, and the
// hardest cases, a write that is applied and then answered with an error, or applied and then
// cut off mid-answer (the client sees a network error, not an HTTP answer). Counters let tests
// assert that retries happened. /healthz and anything outside /v1 are never faulted.
// `parseFaultSpec` reads the command line's `--faults 500=0.1,429=0.05,drop=0.05,seed=42`.
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from './context.js';
import { jsonResponse } from './errors.js';

export type FaultStatus = 429 | 500 | 503;

/** `GET` here (application API key) answers the injector's seed, rates and counters. */
export const FAULTS_PATH = '/_faults';

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
  /**
   * Process the request normally (the write is applied), then cut the connection in the middle
   * of the answer: the client gets no complete HTTP answer, only a network error. Matches only
   * writes unless `method` says otherwise. Takes no `status`.
   */
  drop?: boolean;
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
  /**
   * Share of writes that are applied and then have their connection cut mid-answer, 0..1
   * (afterWriteRate + dropRate at most 1).
   */
  dropRate?: number;
  /** PRNG seed; default a random one, logged and exposed as `seed` so a run can be repeated. */
  seed?: number;
}

export type FaultOptions = FaultRates;

export type FaultKind = 'status429' | 'status500' | 'status503' | 'afterWrite' | 'drop' | 'latency';

export interface FaultCounters {
  /** API requests the middleware saw, faulted or not. */
  requests: number;
  /** Requests that got at least one fault. */
  faults: number;
  /**
   * Per kind: `statusNNN` = answered with that error instead of being processed; `afterWrite` =
   * processed, then answered with an error; `drop` = processed, then the connection cut
   * mid-answer; `latency` = delayed.
   */
  byKind: Record<FaultKind, number>;
}

export interface FaultController {
  /** The seed of the random faults. */
  readonly seed: number;
  /** The random rates in force, defaults filled in. */
  rates(): Required<Omit<FaultRates, 'seed'>>;
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
  drop: boolean;
  latencyMs: number;
}

interface Decision {
  status: FaultStatus | null;
  retryAfter: number | null;
  afterWrite: boolean;
  drop: boolean;
  latencyMs: number;
}

const NO_FAULT: Omit<Decision, 'latencyMs'> = {
  status: null,
  retryAfter: null,
  afterWrite: false,
  drop: false,
};

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
    dropRate: share('dropRate', rates.dropRate),
  };
  if (checked.rate500 + checked.rate429 > 1) {
    throw new RangeError(
      `faults: rate500 + rate429 must be at most 1, got ${checked.rate500} + ${checked.rate429}`,
    );
  }
  if (checked.afterWriteRate + checked.dropRate > 1) {
    throw new RangeError(
      `faults: afterWriteRate + dropRate must be at most 1, got ${checked.afterWriteRate} + ${checked.dropRate}`,
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

/** What a client reading a dropped answer gets: its stream breaks with this error. */
class DroppedConnectionError extends Error {
  readonly code = 'FAULT_CONNECTION_DROPPED';
  constructor(requestId: string) {
    super(
      `injected fault (testing aid): the connection of request ${requestId} was cut after the write was applied`,
    );
    this.name = 'DroppedConnectionError';
    // Servers print this error when the stream breaks: one line says it all.
    this.stack = `${this.name}: ${this.message}`;
  }
}

/**
 * The applied request's answer, cut short: the status and headers, the first half of the body,
 * then the body stream errors. Over a socket, @hono/node-server then destroys the connection
 * (the client's fetch fails with a network error); in process (`app.fetch`), reading the body
 * rejects. Either way no complete HTTP answer reaches the client. Content-Length is removed so
 * that the headers go out before the break (chunked), as when a server dies mid-answer.
 */
function droppedResponse(applied: Response, requestId: string): Response {
  const headers = new Headers(applied.headers);
  headers.delete('Content-Length');
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!sent) {
        sent = true;
        const bytes = new Uint8Array(await applied.arrayBuffer());
        controller.enqueue(bytes.slice(0, Math.floor(bytes.length / 2)));
        return;
      }
      controller.error(new DroppedConnectionError(requestId));
    },
  });
  // A 204 may not carry a body, and the body is where the break happens: it goes out as 200.
  const status = applied.status === 204 || applied.status === 304 ? 200 : applied.status;
  return new Response(body, { status, headers });
}

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
    byKind: { status429: 0, status500: 0, status503: 0, afterWrite: 0, drop: 0, latency: 0 },
  });
  let counters = zero();
  log(`itsm-api: fault injection is on (a testing aid): ${describeRates(rates, seed)}`);

  function takeScripted(method: string, path: string): Decision | null {
    const index = scripted.findIndex(
      (f) =>
        (f.method === null
          ? !(f.afterWrite || f.drop) || WRITE_METHODS.has(method)
          : f.method === method) && pathMatches(f.path, path),
    );
    const fault = scripted[index];
    if (!fault) return null;
    fault.remaining -= 1;
    if (fault.remaining <= 0) scripted.splice(index, 1);
    return {
      status: fault.status,
      retryAfter: fault.retryAfter,
      afterWrite: fault.afterWrite,
      drop: fault.drop,
      latencyMs: fault.latencyMs,
    };
  }

  // Always the same number of draws per request, so one request's outcome does not shift the
  // sequence seen by the next: a seed and a request sequence give one fault sequence.
  function drawRandom(method: string): Decision {
    const [u, w, l] = [random(), random(), random()];
    const latencyMs = rates.latencyMs > 0 && l < rates.latencyRate ? rates.latencyMs : 0;
    if (u < rates.rate429) {
      return { ...NO_FAULT, status: 429, retryAfter: rates.retryAfterSeconds, latencyMs };
    }
    if (u < rates.rate429 + rates.rate500) return { ...NO_FAULT, status: 500, latencyMs };
    if (WRITE_METHODS.has(method) && w < rates.afterWriteRate) {
      return { ...NO_FAULT, status: 500, afterWrite: true, latencyMs };
    }
    if (WRITE_METHODS.has(method) && w < rates.afterWriteRate + rates.dropRate) {
      return { ...NO_FAULT, drop: true, latencyMs };
    }
    return { ...NO_FAULT, latencyMs };
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
    if (decision.status === null && !decision.drop && decision.latencyMs === 0) return next();

    counters.faults += 1;
    if (decision.latencyMs > 0) {
      counters.byKind.latency += 1;
      await delay(decision.latencyMs);
    }
    if (decision.drop) {
      await next();
      counters.byKind.drop += 1;
      const applied = c.res;
      c.res = undefined;
      c.res = droppedResponse(applied, c.get('requestId'));
      return;
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
    rates: () => ({ ...rates }),
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
      if (fault.status === undefined && latencyMs === 0 && !fault.drop) {
        throw new RangeError(
          'faults.inject: give a status (429, 500, 503), drop, a latencyMs, or a status and a latencyMs',
        );
      }
      if (fault.afterWrite && fault.status === undefined) {
        throw new RangeError('faults.inject: afterWrite needs the status to answer with');
      }
      if (fault.drop && (fault.status !== undefined || fault.afterWrite)) {
        throw new RangeError(
          'faults.inject: drop cuts the connection, so it takes no status and no afterWrite',
        );
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
        drop: fault.drop ?? false,
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

// ---------------------------------------------------------------------------------------------
// The textual form of the rates: `500=0.1,429=5%,retry-after=1,latency=20ms,drop=0.05,seed=42`

/** A `--faults` text that cannot be read; the message names the part that is wrong. */
export class FaultSpecError extends Error {
  readonly code = 'FAULT_SPEC_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'FaultSpecError';
  }
}

/** The parts of a fault spec: name, what its value is, and the rate it sets. */
const FAULT_SPEC_PARTS = {
  '500': { value: 'share', option: 'rate500', help: 'requests answered 500, not processed' },
  '429': { value: 'share', option: 'rate429', help: 'requests answered 429, not processed' },
  'retry-after': { value: 'seconds', option: 'retryAfterSeconds', help: 'Retry-After of the 429s' },
  latency: { value: 'duration', option: 'latencyMs', help: 'delay added to requests' },
  'latency-rate': { value: 'share', option: 'latencyRate', help: 'requests delayed (default 1)' },
  'after-write': {
    value: 'share',
    option: 'afterWriteRate',
    help: 'writes applied, then answered 500',
  },
  drop: {
    value: 'share',
    option: 'dropRate',
    help: 'writes applied, then the connection cut mid-answer',
  },
  seed: { value: 'seed', option: 'seed', help: 'seed of the random draws (default: random)' },
} as const satisfies Record<string, { value: string; option: keyof FaultRates; help: string }>;

type PartName = keyof typeof FAULT_SPEC_PARTS;

function readValue(kind: string, text: string): number | null {
  switch (kind) {
    case 'share': {
      const match = /^(\d+(?:\.\d+)?|\.\d+)(%?)$/.exec(text);
      if (!match) return null;
      const value = Number(match[1]) / (match[2] ? 100 : 1);
      return value <= 1 ? value : null;
    }
    case 'seconds':
      return /^\d+$/.test(text) ? Number(text) : null;
    case 'duration': {
      const match = /^(\d+)(ms|s)?$/.exec(text);
      if (!match) return null;
      return Number(match[1]) * (match[2] === 's' ? 1000 : 1);
    }
    default: {
      const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
      return value <= 0xffffffff ? value : null;
    }
  }
}

const EXAMPLES: Record<string, string> = {
  share: '0.05',
  seconds: '1',
  duration: '20ms',
  seed: '42',
};

const EXPECTED: Record<string, string> = {
  share: 'a share from 0 to 1 (0.05 or 5%)',
  seconds: 'a whole number of seconds',
  duration: 'a duration such as 20ms or 1s (a bare number is milliseconds)',
  seed: 'a whole number from 0 to 4294967295',
};

/**
 * Reads `name=value` parts separated by commas into fault rates, checked as createFaultInjector
 * checks them. Throws FaultSpecError naming the first bad part and what it should be.
 */
export function parseFaultSpec(spec: string): FaultRates {
  const names = Object.keys(FAULT_SPEC_PARTS).join(', ');
  if (spec.trim() === '') {
    throw new FaultSpecError(`give at least one name=value part; the names are ${names}`);
  }
  const rates: FaultRates = {};
  const seen = new Set<string>();
  for (const raw of spec.split(',')) {
    const part = raw.trim();
    const eq = part.indexOf('=');
    const name = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    const text = eq < 0 ? '' : part.slice(eq + 1).trim();
    if (!Object.hasOwn(FAULT_SPEC_PARTS, name)) {
      throw new FaultSpecError(
        `${JSON.stringify(part)}: unknown fault ${JSON.stringify(name)}; the names are ${names}`,
      );
    }
    const known = FAULT_SPEC_PARTS[name as PartName];
    if (seen.has(name)) throw new FaultSpecError(`${JSON.stringify(part)}: ${name} given twice`);
    seen.add(name);
    const value = eq < 0 ? null : readValue(known.value, text);
    if (value === null) {
      throw new FaultSpecError(
        `${JSON.stringify(part)}: ${name} must be ${EXPECTED[known.value]}; for example ${name}=${EXAMPLES[known.value]}`,
      );
    }
    rates[known.option] = value;
  }
  try {
    validRates(rates);
  } catch (error) {
    // Said in the spec's own names: "500 + 429 must be at most 1".
    let message = (error as Error).message.replace(/^faults: /, '');
    for (const [name, part] of Object.entries(FAULT_SPEC_PARTS)) {
      message = message.replaceAll(part.option, name);
    }
    throw new FaultSpecError(message);
  }
  return rates;
}

/** One line per part of the spec, for `--help`. */
export function describeFaultSpec(): string[] {
  return Object.entries(FAULT_SPEC_PARTS).map(
    ([name, part]) => `${`${name}=${part.value.toUpperCase()}`.padEnd(22)} ${part.help}`,
  );
}
