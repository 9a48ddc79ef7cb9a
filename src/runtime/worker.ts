// Workers composition root of the engine, the Cloudflare form of src/runtime/engine.ts: the same
// Hono app answers `fetch` (receiver, run records, health, metrics, admin), a Cloudflare Queue
// carries notifications to `queue` (one drain per account and batch, one consumer at a time per
// account under a lease, retried through the Queue with backoff), and cron triggers call
// `scheduled` (the scheduled rules of the tick, and a sweep that queues a drain for every account
// with a notification not yet drained, in case a message was lost or ran out of retries). State
// lives in D1; the rules are bundled at build time (scripts/bundle-rules.ts) and loaded once per
// isolate. Configuration comes from vars and secrets; a missing one is answered with a 500 naming
// it, never a crash loop. With ITSM_SERVICENOW_URL instead of ITSM_API_URL the Worker is
// all-in-one over a ServiceNow instance (worker-connector.ts): it serves `/v1` and the push of a
// Business Rule itself, the engine calls that API in process, and each cron tick polls the
// instance's change feed (under the account's drain lease) before queueing a drain; scheduled
// rules write under that lease too.
// Nothing here or below may import a Node built-in: wrangler bundles it for workerd.

import * as yaml from 'yaml';
import { httpAllowListProblem } from '../engine/http-allow-entry.js';
import { loadRules, type RuleSet, type RuleSource } from '../engine/load.js';
import { formatProblem } from '../engine/problem.js';
import { ruleSetVersion } from '../engine/rule-version.js';
import { requiredSecrets, secretsFromEnv } from '../engine/secret.js';
import { provideYamlLibrary } from '../engine/yaml-library.js';
import { createItsmClient, type RetryOptions } from '../itsm/client.js';
import { PUSH_PATH } from '../server/connector-routes.js';
import { DEFAULT_EVENT_RETENTION } from '../server/limits.js';
import { itsmOpenApi } from '../server/openapi.js';
import type { ChangeFeed } from '../servicenow/feed.js';
import { openD1EngineStore, openD1PipelineStore } from '../storage/d1.js';
import { drainLagMs, isPending } from '../storage/drain-lag.js';
import type { EngineStore } from '../storage/engine-port.js';
import type { PipelineStore } from '../storage/pipeline-port.js';
import { createEngineApp } from '../webhook/app.js';
import {
  DEFAULT_ENGINE_USER,
  DEFAULT_PAGE_SIZE,
  drainAccount,
  isTransient,
  type PipelineDeps,
  purgeExpired,
} from '../webhook/drain.js';
import { EngineHttpError, errorResponse } from '../webhook/errors.js';
import { createEngineMetrics, type EngineMetrics } from '../webhook/metrics.js';
import { createReceiver } from '../webhook/receiver.js';
import {
  describeSummary,
  dueRules,
  runScheduleRequest,
  runSchedules,
  SCHEDULE_ATTEMPTS,
  SCHEDULE_RETRY_MS,
  type ScheduleSummary,
  tickOf,
} from '../webhook/schedule.js';
import { inMemoryPreview } from './rule-preview.js';
import {
  envOfFlag,
  ServiceNowSettingError,
  type ServiceNowSettings,
  serviceNowFlags,
  serviceNowFromFlags,
} from './servicenow-flags.js';
import { createWorkerConnector, type WorkerConnector } from './worker-connector.js';

// The loader reads plain YAML itself and asks for the library for anything else (yaml-library.ts);
// the Worker's bundle holds it either way.
provideYamlLibrary(() => yaml);

/** Event pages one queue message drains before it hands the rest to a new message. */
export const DEFAULT_PAGES_PER_MESSAGE = 10;
/** SCHEDULE_RETRY_MS as a Queue delay. */
const SCHEDULE_RETRY_SECONDS = SCHEDULE_RETRY_MS / 1000;
/**
 * One drain per account at a time, across consumers: a lease taken as a once-only claim of the
 * engine store (rule id and key no rule can have), lapsing after DRAIN_LEASE_MS should its holder
 * die. Concurrent drains of one account would re-run events another drain has in hand, and the
 * drain then gives back once_per claims that drain still relies on (storedEvaluation), which can
 * let a rule act twice; the lease keeps Workers to Node's one drain per account.
 */
export const DRAIN_LEASE = { ruleId: '(drain)', key: 'lease' } as const;
export const DRAIN_LEASE_MS = 120_000;
/** A drain starts no new page after this long, well inside the lease. */
export const DRAIN_TIME_BUDGET_MS = 30_000;
/**
 * A drain renews its lease before an event once this long has passed since it last did, so a
 * page slowed down by the API (timeouts, retries) never outlives the lease: only a single event
 * taking longer than DRAIN_LEASE_MS - DRAIN_LEASE_RENEW_MS could.
 */
export const DRAIN_LEASE_RENEW_MS = 20_000;

/**
 * One run of a scheduled tick at a time, across invocations (a doubled cron delivery, or a
 * re-run message while the first run is still going): a once-only claim on the tick, under no
 * account (0). A cron invocation lives at most 15 minutes, so the lease never needs renewing.
 */
export const SCHEDULE_LEASE = { account: 0, ruleId: '(schedule)' } as const;
export const SCHEDULE_LEASE_MS = 15 * 60_000;

/** The drain lost its lease (it lapsed and another consumer took it): it stops where it is. */
class DrainLeaseLostError extends Error {
  override name = 'DrainLeaseLostError';
}

/** One holder of (account, rule id, key) at a time, kept through the store's once-only claims. */
interface Lease {
  /** True when this holder has it now. */
  take(): Promise<boolean>;
  /**
   * Moves its time on once `everyMs` has passed since it was taken or last renewed; false when
   * this holder no longer has it (it lapsed and another took it).
   */
  renew(everyMs: number): Promise<boolean>;
  /** Gives it back; should that fail, it lapses by itself after its window. */
  release(): Promise<void>;
}

/**
 * Objects of one account processed at the same time on a Worker, by default: an invocation has
 * at most 6 connections open at once, so more would only queue behind them (Node's default is
 * DEFAULT_OBJECT_CONCURRENCY).
 */
export const DEFAULT_WORKER_OBJECT_CONCURRENCY = 8;

function createLease(
  store: EngineStore,
  scope: { account: number; ruleId: string; key: string },
  kind: 'drain' | 'schedule' | 'feed',
  /** What it is a lease on, for the log: `account 7`, a tick. */
  what: string,
  windowMs: number,
  log: (line: string) => void,
): Lease {
  const claimant = `${kind}:${crypto.randomUUID()}`;
  let heldAt = 0;
  return {
    take() {
      heldAt = Date.now();
      return store.claimOnce({ ...scope, claimant, at: heldAt, windowMs });
    },
    async renew(everyMs) {
      const at = Date.now();
      if (at - heldAt < everyMs) return true;
      if (!(await store.renewClaim({ ...scope, claimant, at }))) return false;
      heldAt = at;
      return true;
    },
    async release() {
      await store
        .releaseClaims(scope.account, claimant)
        .catch((error) =>
          log(`${kind}: could not give back the lease of ${what}: ${errorText(error)}`),
        );
    },
  };
}

/** What becomes of a drain's messages. */
type DrainVerdict =
  | { kind: 'ack' }
  /** A failure that may pass: retried with backoff, the cursor where it was. */
  | { kind: 'retry'; why: string }
  /** Another consumer has the account (`why` follows the account in the log): retried shortly. */
  | { kind: 'wait'; why: string }
  /** A failure that would repeat: acked and logged; the cron sweep serves the account. */
  | { kind: 'drop'; why: string };
/**
 * Over a ServiceNow instance, the feed reads the instance under the account's drain lease, so
 * that it never reads a version the engine wrote before the engine's own event of it is
 * committed (echo suppression needs the writer, and the writer may be another isolate). A cron
 * tick waits for a drain in progress this many times, this long each, then polls next tick.
 */
export const FEED_LEASE_ATTEMPTS = 10;
export const FEED_LEASE_WAIT_MS = 1_000;
/** A message for an account another consumer is draining waits this long. */
export const LEASE_BUSY_RETRY_SECONDS = 2;
/** Queues' sendBatch takes at most 100 messages. */
const SEND_BATCH_LIMIT = 100;

/** The bindings, vars and secrets of wrangler.toml. Vars may be given as TOML numbers. */
export interface WorkerEnv {
  DB: D1Database;
  QUEUE: Queue<WorkerMessage>;
  ITSM_API_URL?: string;
  /** Over a ServiceNow instance instead of ITSM_API_URL: the instance and its integration user. */
  ITSM_SERVICENOW_URL?: string;
  /** Secrets: Basic credentials (and the OAuth password grant's user). */
  ITSM_SN_USERNAME?: string;
  ITSM_SN_PASSWORD?: string;
  /** Secrets: OAuth instead of Basic. */
  ITSM_SN_CLIENT_ID?: string;
  ITSM_SN_CLIENT_SECRET?: string;
  ITSM_SN_ACCOUNT?: string | number;
  /** Secret: turns on POST /servicenow/push. */
  ITSM_SN_PUSH_SECRET?: string;
  /** Over an instance: the Worker's own URL, the base of `href`s in /v1 answers and events. */
  ITSM_PUBLIC_URL?: string;
  /** Over an instance: events kept per account in D1 (default 10,000). */
  ITSM_EVENT_RETENTION?: string | number;
  /** Secret. */
  ITSM_API_KEY?: string;
  /** Secret: older keys still accepted on signatures and admin calls (comma-separated). */
  ITSM_PREVIOUS_KEYS?: string;
  ITSM_APP_ID?: string;
  ITSM_RULES_AS_USER?: string;
  ITSM_HTTP_ALLOW?: string;
  ITSM_RULES_FROM?: string;
  ITSM_RULES_PAGE_SIZE?: string | number;
  ITSM_RULES_PAGES_PER_MESSAGE?: string | number;
  ITSM_RULES_OBJECT_CONCURRENCY?: string | number;
  ITSM_RULES_RETENTION_DAYS?: string | number;
  /** How long a sign-in to the operator console lasts; default 8 hours. */
  ITSM_CONSOLE_SESSION_HOURS?: string | number;
  /** Secrets the rules name (`{secret: PAGER_TOKEN}` reads ITSM_SECRET_PAGER_TOKEN). */
  [secret: `ITSM_SECRET_${string}`]: string | undefined;
}

/** Drain the account's new events. */
export interface DrainMessage {
  account: number;
}

/** Run a scheduled tick again (the API failed part of it): acts only where it has not yet. */
export interface ScheduleMessage {
  tick: string;
  rules: string[];
}

/** Over a ServiceNow instance: read a pushed record (its account was being drained). */
export interface PushMessage {
  push: { account: number; table: string; sysId: string };
}

export type WorkerMessage = DrainMessage | ScheduleMessage | PushMessage;

export interface WorkerConfig {
  /** The ITSM API the engine acts through; null over a ServiceNow instance (`servicenow`). */
  apiUrl: string | null;
  /** ITSM_SERVICENOW_URL and its settings: the Worker serves /v1 over that instance itself. */
  servicenow: ServiceNowSettings | null;
  /** Over an instance: the base of hrefs (ITSM_PUBLIC_URL), or null. */
  publicUrl: string | null;
  /** Over an instance: events kept per account. */
  eventRetention: number;
  keys: string[];
  appId: string;
  engineUser: string;
  httpAllow: string[];
  from: 'oldest' | 'latest';
  pageSize: number;
  pagesPerMessage: number;
  /** Objects of one account processed at the same time, each object's events in order. */
  objectConcurrency: number;
  retentionMs: number;
  consoleSessionMs: number;
}

/** A var, secret or binding is missing or invalid; the message names it and says how to set it. */
export class WorkerConfigError extends Error {
  readonly code = 'WORKER_CONFIG_INVALID';
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
    this.name = 'WorkerConfigError';
  }
}

/** The bundled rule set does not load: the Worker refuses to start with it. */
export class WorkerRulesError extends Error {
  readonly code = 'ENGINE_RULES_INVALID';
  constructor(readonly problems: string[]) {
    super(
      `the bundled rules have ${problems.length} problem${problems.length === 1 ? '' : 's'}; fix them (itsm-rules check) and deploy again:\n${problems.map((p) => `  ${p}`).join('\n')}`,
    );
    this.name = 'WorkerRulesError';
  }
}

function text(env: WorkerEnv, name: keyof WorkerEnv): string | undefined {
  const value = env[name];
  if (value === undefined || value === null) return undefined;
  const trimmed = String(value).trim();
  return trimmed === '' ? undefined : trimmed;
}

function required(env: WorkerEnv, name: keyof WorkerEnv, how: string): string {
  const value = text(env, name);
  if (value === undefined) {
    throw new WorkerConfigError(name, `the Worker is not configured: ${name} is not set; ${how}`);
  }
  return value;
}

function commaList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/** ITSM_HTTP_ALLOW's entries; one the engine could never match stops the Worker, named. */
function httpAllowList(env: WorkerEnv): string[] {
  const entries = commaList(text(env, 'ITSM_HTTP_ALLOW'));
  const problem = httpAllowListProblem(entries);
  if (problem !== undefined) {
    throw new WorkerConfigError(
      'ITSM_HTTP_ALLOW',
      `the Worker is not configured: ITSM_HTTP_ALLOW: ${problem} (comma-separated)`,
    );
  }
  return entries;
}

function wholeNumber(
  env: WorkerEnv,
  name: keyof WorkerEnv,
  fallback: number,
  min: number,
  max: number,
): number {
  const value = text(env, name);
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || parsed < min || parsed > max) {
    throw new WorkerConfigError(
      name,
      `the Worker is not configured: ${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`,
    );
  }
  return parsed;
}

function httpUrl(name: keyof WorkerEnv, value: string, example: string): string {
  try {
    const parsed = new URL(value);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error();
  } catch {
    throw new WorkerConfigError(
      name,
      `the Worker is not configured: ${name} must be an http(s) URL such as ${example}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** The vars of the connector settings; the rest are secrets (never in wrangler.toml). */
const SERVICENOW_VARS = new Set(['ITSM_SERVICENOW_URL', 'ITSM_SN_ACCOUNT']);

/**
 * The connector settings, read from the environment twins of the `--servicenow` flags by the
 * same rules as the command line (servicenow-flags.ts); null without ITSM_SERVICENOW_URL.
 * ITSM_SN_POLL_MS is not read: the cron trigger polls.
 */
function readServiceNowSettings(env: WorkerEnv): ServiceNowSettings | null {
  const values: Record<string, string> = {};
  for (const spec of serviceNowFlags) {
    const value = spec.env ? text(env, spec.env as keyof WorkerEnv) : undefined;
    if (value !== undefined) values[spec.name] = value;
  }
  try {
    return serviceNowFromFlags(values, 'env') ?? null;
  } catch (error) {
    if (!(error instanceof ServiceNowSettingError)) throw error;
    const variable = envOfFlag(error.flag);
    const how = SERVICENOW_VARS.has(variable)
      ? `set ${variable} under [vars] in wrangler.toml`
      : `set the secret with \`npx wrangler secret put ${variable}\``;
    throw new WorkerConfigError(variable, `the Worker is not configured: ${error.message}; ${how}`);
  }
}

/** Reads the configuration from the Worker's env; throws WorkerConfigError naming what is wrong. */
export function readWorkerConfig(env: WorkerEnv): WorkerConfig {
  if (!env.DB) {
    throw new WorkerConfigError(
      'DB',
      'the Worker is not configured: the D1 binding DB is missing; add [[d1_databases]] binding = "DB" to wrangler.toml',
    );
  }
  if (!env.QUEUE) {
    throw new WorkerConfigError(
      'QUEUE',
      'the Worker is not configured: the Queue binding QUEUE is missing; add [[queues.producers]] binding = "QUEUE" to wrangler.toml',
    );
  }
  const servicenow = readServiceNowSettings(env);
  if (servicenow && text(env, 'ITSM_API_URL') !== undefined) {
    throw new WorkerConfigError(
      'ITSM_API_URL',
      'the Worker is not configured: ITSM_API_URL and ITSM_SERVICENOW_URL are both set; keep ITSM_API_URL to act through an ITSM API, or ITSM_SERVICENOW_URL to serve /v1 over a ServiceNow instance in this Worker, not both',
    );
  }
  const apiUrl = servicenow
    ? null
    : httpUrl(
        'ITSM_API_URL',
        required(
          env,
          'ITSM_API_URL',
          'set it under [vars] in wrangler.toml to the ITSM API, e.g. https://itsm.example.com/v1 (or set ITSM_SERVICENOW_URL to serve /v1 over a ServiceNow instance in this Worker)',
        ),
        'https://itsm.example.com/v1',
      );
  const publicUrlText = text(env, 'ITSM_PUBLIC_URL');
  const publicUrl =
    publicUrlText === undefined
      ? null
      : httpUrl('ITSM_PUBLIC_URL', publicUrlText, 'https://itsm-rules.example.workers.dev').replace(
          /\/+$/,
          '',
        );
  const apiKey = required(
    env,
    'ITSM_API_KEY',
    'set the secret with `npx wrangler secret put ITSM_API_KEY`',
  );
  const appId = required(
    env,
    'ITSM_APP_ID',
    'set it under [vars] in wrangler.toml to the application id answered in webhook handshakes',
  );
  const from = text(env, 'ITSM_RULES_FROM') ?? 'oldest';
  if (from !== 'oldest' && from !== 'latest') {
    throw new WorkerConfigError(
      'ITSM_RULES_FROM',
      `the Worker is not configured: ITSM_RULES_FROM must be oldest or latest, got ${JSON.stringify(from)}`,
    );
  }
  return {
    apiUrl,
    servicenow,
    publicUrl,
    eventRetention: wholeNumber(env, 'ITSM_EVENT_RETENTION', DEFAULT_EVENT_RETENTION, 1, 1_000_000),
    keys: [apiKey, ...commaList(text(env, 'ITSM_PREVIOUS_KEYS'))],
    appId,
    engineUser: text(env, 'ITSM_RULES_AS_USER') ?? DEFAULT_ENGINE_USER,
    httpAllow: httpAllowList(env),
    from,
    pageSize: wholeNumber(env, 'ITSM_RULES_PAGE_SIZE', DEFAULT_PAGE_SIZE, 1, 1000),
    pagesPerMessage: wholeNumber(
      env,
      'ITSM_RULES_PAGES_PER_MESSAGE',
      DEFAULT_PAGES_PER_MESSAGE,
      1,
      1000,
    ),
    objectConcurrency: wholeNumber(
      env,
      'ITSM_RULES_OBJECT_CONCURRENCY',
      DEFAULT_WORKER_OBJECT_CONCURRENCY,
      1,
      64,
    ),
    retentionMs: wholeNumber(env, 'ITSM_RULES_RETENTION_DAYS', 30, 1, 3650) * 86_400_000,
    consoleSessionMs: wholeNumber(env, 'ITSM_CONSOLE_SESSION_HOURS', 8, 1, 720) * 3_600_000,
  };
}

/** A queue message body as sent by this Worker; null for anything else. */
export function parseWorkerMessage(body: unknown): WorkerMessage | null {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return null;
  const record = body as Record<string, unknown>;
  if (record.push !== null && typeof record.push === 'object') {
    const push = record.push as Record<string, unknown>;
    return typeof push.account === 'number' &&
      Number.isSafeInteger(push.account) &&
      push.account > 0 &&
      typeof push.table === 'string' &&
      typeof push.sysId === 'string'
      ? { push: { account: push.account, table: push.table, sysId: push.sysId } }
      : null;
  }
  if (typeof record.account === 'number') {
    return Number.isSafeInteger(record.account) && record.account > 0
      ? { account: record.account }
      : null;
  }
  if (
    typeof record.tick === 'string' &&
    !Number.isNaN(new Date(record.tick).getTime()) &&
    Array.isArray(record.rules) &&
    record.rules.every((rule) => typeof rule === 'string')
  ) {
    return { tick: record.tick, rules: record.rules as string[] };
  }
  return null;
}

/**
 * Seconds before a failed drain is tried again: doubling from `baseSeconds` up to `maxSeconds`
 * with jitter over the upper half (as the Node queue does), in whole seconds as Queues take them.
 */
export function retryDelaySeconds(
  attempts: number,
  options: { baseSeconds?: number; maxSeconds?: number; random?: () => number } = {},
): number {
  const base = options.baseSeconds ?? 1;
  const max = options.maxSeconds ?? 60;
  const ceiling = Math.min(max, base * 2 ** Math.max(0, attempts - 1));
  const random = options.random ?? Math.random;
  return Math.max(1, Math.ceil(ceiling / 2 + (random() * ceiling) / 2));
}

export interface CreateWorkerOptions {
  /** Over a ServiceNow instance: timeout and retries of Table API calls (tests shorten them). */
  servicenow?: {
    timeoutMs?: number;
    retry?: { maxAttempts?: number; baseDelayMs?: number; maxDelayMs?: number };
  };
  /** How long a cron tick waits between two tries of the feed's lease; default 1 s. */
  feedLeaseWaitMs?: number;
  /** The operator console's sessions: their length (default 8 hours) and clock (tests). */
  console?: { sessionTtlMs?: number; now?: () => number };
  /** The rule files as {path, text} (the bundle of scripts/bundle-rules.ts, or a test's own). */
  rules: readonly RuleSource[];
  log?: (line: string) => void;
  /** Retries of one API call inside the client (defaults of the client otherwise). */
  clientRetry?: RetryOptions;
  /** Backoff of a failed drain through the Queue; default 1 s doubling to 60 s. */
  retry?: { baseSeconds?: number; maxSeconds?: number };
  random?: () => number;
  /** How often a drain renews its account lease; default DRAIN_LEASE_RENEW_MS (tests: 0). */
  leaseRenewMs?: number;
}

export interface EngineWorker {
  fetch(request: Request, env: WorkerEnv, ctx: ExecutionContext): Promise<Response>;
  queue(batch: MessageBatch<unknown>, env: WorkerEnv, ctx: ExecutionContext): Promise<void>;
  scheduled(controller: ScheduledController, env: WorkerEnv, ctx: ExecutionContext): Promise<void>;
  /** The rule set the Worker runs. */
  rules(): RuleSet;
}

/** What one env (one deployment's bindings and vars) needs, made on its first use. */
interface WorkerRuntime {
  config: WorkerConfig;
  deps: PipelineDeps;
  engineStore: EngineStore;
  pipelineStore: PipelineStore;
  app: ReturnType<typeof createEngineApp>;
  /** Over a ServiceNow instance (ITSM_SERVICENOW_URL): the /v1 app and the change feed. */
  connector: WorkerConnector | null;
}

/** Over an instance, the requests the /v1 app answers (the rest are the engine's). */
function isConnectorPath(path: string): boolean {
  return path === '/v1' || path.startsWith('/v1/') || path === PUSH_PATH;
}

/**
 * Over an instance, a write through /v1 may notify webhooks registered with it: the invocation
 * stays open until those deliveries (with their few retries) are done.
 */
function keepDeliveries(runtime: WorkerRuntime, ctx: ExecutionContext): void {
  if (runtime.connector) ctx.waitUntil(runtime.connector.itsm.notifier.idle());
}

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

export function createWorker(options: CreateWorkerOptions): EngineWorker {
  const loaded = loadRules(options.rules);
  if (!loaded.ruleSet) throw new WorkerRulesError(loaded.problems.map(formatProblem));
  const ruleSet: RuleSet = loaded.ruleSet;
  const rulesLoadedAt = Date.now();
  const log = options.log ?? ((line: string) => console.log(line));
  // Per isolate: /metrics shows what this isolate did (Workers run many; see the README).
  const metrics: EngineMetrics = createEngineMetrics();
  // The bundled set is this isolate's one load of the rules, and it succeeded (a refused set
  // throws above): the reload gauges say so, as they do on Node after the first load.
  metrics.reloadTimestamp.set({}, Math.floor(rulesLoadedAt / 1000));
  metrics.reloadSuccess.set({}, 1);
  const runtimes = new WeakMap<object, WorkerRuntime | WorkerConfigError>();
  const retryDelay = (attempts: number) =>
    retryDelaySeconds(attempts, {
      ...options.retry,
      ...(options.random && { random: options.random }),
    });

  /** The runtime of `env`, made once; or what is wrong with its configuration, logged. */
  const configured = (env: WorkerEnv, where: string): WorkerRuntime | WorkerConfigError => {
    let runtime = runtimes.get(env);
    if (!runtime) {
      try {
        runtime = createRuntime(env);
      } catch (error) {
        if (!(error instanceof WorkerConfigError)) throw error;
        runtime = error;
      }
      runtimes.set(env, runtime);
    }
    if (runtime instanceof WorkerConfigError) log(`${where}: ${runtime.message}`);
    return runtime;
  };

  const createRuntime = (env: WorkerEnv): WorkerRuntime => {
    const config = readWorkerConfig(env);
    // Only ITSM_SECRET_* bindings: a rule can never read the Worker's own key or other bindings.
    const secrets = secretsFromEnv(env as unknown as Record<string, unknown>);
    const [unset] = requiredSecrets(ruleSet.rules).filter(
      (secret) => secrets(secret.name) === undefined,
    );
    if (unset) {
      throw new WorkerConfigError(
        unset.variable,
        `the Worker is not configured: ${unset.rules.join(', ')} use${unset.rules.length === 1 ? 's' : ''} the secret ${unset.name}, which is not set; set it with \`npx wrangler secret put ${unset.variable}\``,
      );
    }
    const engineStore = openD1EngineStore(env.DB);
    const pipelineStore = openD1PipelineStore(env.DB);
    /** The account has new events: noted (for the sweep) and a drain queued, as a receiver does. */
    const queueDrain = async (account: number) => {
      await Promise.all([
        pipelineStore.noteNotification(account, Date.now()),
        env.QUEUE.send({ account }, { contentType: 'json' }),
      ]);
    };
    const sn = config.servicenow;
    const connector: WorkerConnector | null = sn
      ? createWorkerConnector({
          settings: sn,
          db: env.DB,
          apiKey: config.keys[0] as string,
          appId: config.appId,
          publicUrl: config.publicUrl,
          eventRetention: config.eventRetention,
          drain: queueDrain,
          readPushed: (table, sysId) => readPushed(sn.account, table, sysId),
          ...(options.servicenow?.timeoutMs !== undefined && {
            timeoutMs: options.servicenow.timeoutMs,
          }),
          ...(options.servicenow?.retry && { retry: options.servicenow.retry }),
          log,
        })
      : null;
    /**
     * A push reads its record at once under the account's lease; while a drain holds it (the
     * engine may be writing that very record), the read is queued behind it.
     */
    const readPushed = async (account: number, table: string, sysId: string): Promise<number> => {
      const feed: ChangeFeed | undefined = connector?.feed;
      if (!feed) return 0;
      const lease = feedLease(engineStore, account);
      if (!(await lease.take())) {
        await env.QUEUE.send(
          { push: { account, table, sysId } },
          { contentType: 'json', delaySeconds: LEASE_BUSY_RETRY_SECONDS },
        );
        log(
          `servicenow push: account ${account} is being drained; reading ${table} ${sysId} once it is done`,
        );
        return 0;
      }
      try {
        const appended: number = await feed.readRecord(table, sysId);
        if (appended > 0) await queueDrain(account);
        return appended;
      } finally {
        await lease.release();
      }
    };
    const client = createItsmClient({
      baseUrl: connector ? connector.apiBaseUrl : (config.apiUrl as string),
      auth: { apiKey: config.keys[0] as string },
      asUser: config.engineUser,
      userAgent: 'itsm-rules-engine/0.1 (workers)',
      // All-in-one over an instance: the /v1 app of this very Worker, in process.
      ...(connector && { transport: connector.transport }),
      ...(options.clientRetry && { retry: options.clientRetry }),
    });
    const deps: PipelineDeps = {
      client,
      engineStore,
      pipelineStore,
      rules: () => ruleSet,
      engineUser: config.engineUser,
      // Messages name the Worker's own settings, not the Node flags.
      http: { allowHosts: config.httpAllow, allowSetting: 'the ITSM_HTTP_ALLOW var', secrets },
      log,
      metrics,
      pageSize: config.pageSize,
      objectConcurrency: config.objectConcurrency,
      from: config.from,
      fromLatestSetting: 'ITSM_RULES_FROM = "latest"',
    };
    const receiver = createReceiver({
      keys: () => config.keys,
      appId: config.appId,
      metrics,
      log,
      async enqueue({ account }) {
        // Both before the 200: the message starts the drain; the note lets the cron sweep find
        // the account should the message be lost or run out of retries. Either failing is a 503,
        // and the sender retries (a second message for the account is harmless).
        await Promise.all([
          pipelineStore.noteNotification(account, Date.now()),
          env.QUEUE.send({ account }, { contentType: 'json' }),
        ]);
      },
    });
    const app = createEngineApp({
      keys: () => config.keys,
      appId: config.appId,
      pipelineStore,
      metrics,
      receiver,
      runSchedules: (request) => runScheduleRequest(deps, request),
      // POST /admin/parked/retry: a drain message per account, as a notification would send.
      async drainNow(accounts) {
        for (let start = 0; start < accounts.length; start += SEND_BATCH_LIMIT) {
          await env.QUEUE.sendBatch(
            accounts.slice(start, start + SEND_BATCH_LIMIT).map((account) => ({
              body: { account },
              contentType: 'json' as const,
            })),
          );
        }
      },
      // No reloadRules: the rules are bundled, /admin/rules/reload answers 404 saying so.
      rules: () => ruleSet,
      // The impact preview, as on Node: the candidate against the bundled rules over the API's
      // retained events (read only). D1 holds the live counts and claims, so each side counts in
      // a throw-away store in memory, gone with the request.
      previewRules: inMemoryPreview({
        client: () => client,
        rules: () => ruleSet,
        engineUser: config.engineUser,
        pipelineStore,
      }),
      // Over an instance this Worker answers /v1 and the push too: its document lists them.
      ...(connector && { embeddedApi: itsmOpenApi({ servicenow: true }) }),
      health: async () => ({
        rules: ruleSet.rules.length,
        // The version run records carry (/runs?rule_version=): which rules run here now.
        rule_version: (await ruleSetVersion(ruleSet)).version,
        scheduled: ruleSet.index.scheduled.length,
        api: config.apiUrl ?? 'embedded',
        ...(sn && { servicenow: { instance: sn.instanceUrl, account: sn.account } }),
        runtime: 'workers',
      }),
      console: {
        rules: () => ({
          ruleSet,
          warnings: loaded.warnings,
          loadedAt: rulesLoadedAt,
          refused: null,
          source: 'bundled with this deployment',
        }),
        apiUrl:
          config.apiUrl ??
          `embedded (this Worker, /v1) over ServiceNow ${sn?.instanceUrl} as account ${sn?.account}`,
        sessionTtlMs: config.consoleSessionMs,
        ...options.console,
      },
      async refreshMetrics() {
        metrics.parkedObjects.set(
          {},
          (await pipelineStore.listParked({ limit: Number.MAX_SAFE_INTEGER })).length,
        );
        const now = Date.now();
        for (const state of await pipelineStore.listAccounts()) {
          metrics.drainLag.set({ account: String(state.account) }, drainLagMs(state, now) / 1000);
        }
      },
      log,
    });
    return { config, deps, engineStore, pipelineStore, app, connector };
  };

  /** The account's drain lease, taken by the change feed (see FEED_LEASE_ATTEMPTS). */
  const feedLease = (store: EngineStore, account: number): Lease =>
    createLease(
      store,
      { account, ...DRAIN_LEASE },
      'feed',
      `account ${account}`,
      DRAIN_LEASE_MS,
      log,
    );

  /**
   * Runs `work` holding the account's drain lease, as the feed and scheduled writes over an
   * instance must (see FEED_LEASE_ATTEMPTS): a drain in progress is waited for that many times;
   * `busy` when it outlasts the wait. A slow instance (timeouts, retries) can make `work` outlive
   * the lease's window: it is renewed meanwhile, as a drain renews it between events.
   */
  const underAccountLease = async <T>(
    store: EngineStore,
    account: number,
    /** Who holds it, for the log: `servicenow feed`, `schedule`. */
    holder: string,
    work: () => Promise<T>,
  ): Promise<{ busy: true } | { busy: false; value: T }> => {
    const lease = feedLease(store, account);
    let held = await lease.take();
    for (let attempt = 1; !held && attempt < FEED_LEASE_ATTEMPTS; attempt++) {
      await new Promise((resolve) =>
        setTimeout(resolve, options.feedLeaseWaitMs ?? FEED_LEASE_WAIT_MS),
      );
      held = await lease.take();
    }
    if (!held) return { busy: true };
    const renewal = setInterval(() => {
      lease
        .renew(0)
        .then((kept) => {
          if (!kept) log(`${holder}: the lease of account ${account} lapsed while it ran`);
        })
        .catch((error: unknown) =>
          log(`${holder}: could not renew the lease of account ${account}: ${errorText(error)}`),
        );
    }, DRAIN_LEASE_RENEW_MS);
    try {
      return { busy: false, value: await work() };
    } finally {
      clearInterval(renewal);
      await lease.release();
    }
  };

  /**
   * One cron tick of the change feed over the instance: every watched table polled once (a
   * bounded number of pages each), under the account's lease, then a drain queued when the
   * account's event log holds events past its cursor (new ones, or ones whose drain could not
   * be queued after a write). An instance that fails is a log line; the next tick tries again.
   */
  const pollFeed = async (runtime: WorkerRuntime, connector: WorkerConnector, env: WorkerEnv) => {
    const { account, feed } = connector;
    const polled = await underAccountLease(
      runtime.engineStore,
      account,
      'servicenow feed',
      async () => {
        try {
          await feed.prime();
          const appended = await feed.pollOnce();
          if (appended > 0) log(`servicenow feed: ${appended} new events in account ${account}`);
          return appended;
        } catch (error) {
          log(
            `servicenow feed: ERROR the poll of account ${account} failed; the watermark stays and the next tick polls again: ${errorText(error)}`,
          );
          return 0;
        }
      },
    );
    if (polled.busy) {
      log(
        `servicenow feed: account ${account} is still being drained; the feed polls at the next tick`,
      );
      return;
    }
    const appended = polled.value;
    const [bounds, state] = await Promise.all([
      connector.local.eventBounds(account),
      runtime.pipelineStore.getAccount(account),
    ]);
    const cursor = state?.cursor ? Number(state.cursor) : 0;
    if (appended > 0 || bounds.latest > cursor) {
      await Promise.all([
        runtime.pipelineStore.noteNotification(account, Date.now()),
        env.QUEUE.send({ account }, { contentType: 'json' }),
      ]);
    }
  };

  /** A pushed record read once its account's drain is over; retried while it is not. */
  const readPushMessage = async (
    runtime: WorkerRuntime,
    env: WorkerEnv,
    message: Message<unknown>,
    { push }: PushMessage,
  ): Promise<void> => {
    const feed = runtime.connector?.feed;
    if (!feed || push.account !== runtime.connector?.account) {
      log(
        `queue: ERROR dropped the push of ${push.table} ${push.sysId}: account ${push.account} is not served over a ServiceNow instance here`,
      );
      message.ack();
      return;
    }
    const lease = feedLease(runtime.engineStore, push.account);
    try {
      if (!(await lease.take())) {
        message.retry({ delaySeconds: LEASE_BUSY_RETRY_SECONDS });
        return;
      }
      let appended: number;
      try {
        appended = await feed.readRecord(push.table, push.sysId);
      } finally {
        await lease.release();
      }
      if (appended > 0) {
        await Promise.all([
          runtime.pipelineStore.noteNotification(push.account, Date.now()),
          env.QUEUE.send({ account: push.account }, { contentType: 'json' }),
        ]);
      }
      message.ack();
    } catch (error) {
      const delaySeconds = retryDelay(message.attempts);
      log(
        `servicenow push: reading ${push.table} ${push.sysId} failed, retrying through the queue in ${delaySeconds} s: ${errorText(error)}`,
      );
      message.retry({ delaySeconds });
    }
  };

  /** Drains the account under its lease (held by the caller) and says what to do with the messages. */
  const drainLeased = async (
    runtime: WorkerRuntime,
    env: WorkerEnv,
    account: number,
    lease: Lease,
  ): Promise<DrainVerdict> => {
    const started = Date.now();
    let pages = 0;
    let caughtUp: boolean;
    try {
      const result = await drainAccount(runtime.deps, account, {
        shouldStop: () =>
          ++pages >= runtime.config.pagesPerMessage || Date.now() - started >= DRAIN_TIME_BUDGET_MS,
        beforeEvent: async () => {
          let held: boolean;
          try {
            held = await lease.renew(options.leaseRenewMs ?? DRAIN_LEASE_RENEW_MS);
          } catch (error) {
            throw new DrainLeaseLostError(
              `the drain lease could not be renewed (${errorText(error)})`,
            );
          }
          if (!held) {
            throw new DrainLeaseLostError('the drain lease lapsed and another consumer took it');
          }
        },
      });
      caughtUp = result.caughtUp;
    } catch (error) {
      // Two drains of one account must never overlap: one that lost its lease stops before its
      // next event (the cursor stays; the events done keep their run records) and comes back.
      if (error instanceof DrainLeaseLostError) {
        return { kind: 'wait', why: `stopped: ${error.message}` };
      }
      if (isTransient(error)) return { kind: 'retry', why: errorText(error) };
      return { kind: 'drop', why: errorText(error) };
    }
    if (!caughtUp) {
      // A long backlog is served by a chain of messages, each within a consumer's limits.
      try {
        await env.QUEUE.send({ account }, { contentType: 'json' });
      } catch (error) {
        return {
          kind: 'retry',
          why: `the rest of the backlog could not be queued (${errorText(error)})`,
        };
      }
    }
    return { kind: 'ack' };
  };

  /** Drains one account for the messages of a batch that name it; acks or retries them. */
  const drainMessages = async (
    runtime: WorkerRuntime,
    env: WorkerEnv,
    account: number,
    messages: Message<unknown>[],
  ): Promise<void> => {
    const lease = createLease(
      runtime.engineStore,
      { account, ...DRAIN_LEASE },
      'drain',
      `account ${account}`,
      DRAIN_LEASE_MS,
      log,
    );
    let verdict: DrainVerdict;
    try {
      verdict = (await lease.take())
        ? await drainLeased(runtime, env, account, lease).finally(() => lease.release())
        : // This notification may have come after the other drain's last page, so it is
          // served by a drain of its own, a little later.
          { kind: 'wait', why: 'is being drained by another consumer' };
    } catch (error) {
      verdict = { kind: 'retry', why: `the drain lease could not be taken (${errorText(error)})` };
    }

    switch (verdict.kind) {
      case 'ack':
        for (const message of messages) message.ack();
        return;
      case 'wait':
        log(
          `drain: account ${account} ${verdict.why}; this message waits ${LEASE_BUSY_RETRY_SECONDS} s`,
        );
        for (const message of messages) message.retry({ delaySeconds: LEASE_BUSY_RETRY_SECONDS });
        return;
      case 'retry': {
        const attempts = Math.max(...messages.map((message) => message.attempts));
        const delaySeconds = retryDelay(attempts);
        metrics.drainRetries.inc();
        log(
          `drain: account ${account} stopped: ${verdict.why}; the cursor stays, retrying through the queue in ${delaySeconds} s (attempt ${attempts})`,
        );
        for (const message of messages) message.retry({ delaySeconds });
        return;
      }
      case 'drop':
        log(
          `drain: ERROR account ${account}: ${verdict.why}; the cursor stays; the message is dropped and the cron sweep drains the account again every minute until this is fixed`,
        );
        for (const message of messages) message.ack();
    }
  };

  /**
   * Runs `rules` for `tick` under the tick's lease; `tick-busy` when another invocation holds it
   * (that run does the work: every (account, rule, tick, object) is acted on once whoever runs
   * it). Over an instance the run also holds the account's drain lease, as the feed does: a feed
   * poll or push reading the instance between a scheduled write and the commit of its event
   * would report the engine's own write as a person's, and a rule would act on it again.
   * `account-busy` when a drain outlasts the wait: the tick is run again later.
   */
  const runTickLeased = async (
    runtime: WorkerRuntime,
    tick: Date,
    rules: RuleSet['rules'],
  ): Promise<ScheduleSummary | 'tick-busy' | 'account-busy'> => {
    const lease = createLease(
      runtime.engineStore,
      { ...SCHEDULE_LEASE, key: tick.toISOString() },
      'schedule',
      tick.toISOString(),
      SCHEDULE_LEASE_MS,
      log,
    );
    if (!(await lease.take())) return 'tick-busy';
    try {
      const connector = runtime.connector;
      if (!connector) return await runSchedules(runtime.deps, { tick, rules });
      const run = await underAccountLease(runtime.engineStore, connector.account, 'schedule', () =>
        runSchedules(runtime.deps, { tick, rules }),
      );
      return run.busy ? 'account-busy' : run.value;
    } finally {
      await lease.release();
    }
  };

  /** Runs a scheduled tick again; retried through the queue while the API fails part of it. */
  const runScheduleMessage = async (
    runtime: WorkerRuntime,
    message: Message<unknown>,
    body: ScheduleMessage,
  ): Promise<void> => {
    const rules = ruleSet.index.scheduled.filter((rule) => body.rules.includes(rule.id));
    const attempt = message.attempts + 1;
    let unfinished: boolean;
    try {
      const summary = await runTickLeased(runtime, new Date(body.tick), rules);
      if (typeof summary === 'string') {
        log(
          `schedule: ${body.tick} ${summary === 'tick-busy' ? 'is being run by another invocation' : `waits for the drain of account ${runtime.connector?.account}`}; this run waits ${SCHEDULE_RETRY_SECONDS} s`,
        );
        message.retry({ delaySeconds: SCHEDULE_RETRY_SECONDS });
        return;
      }
      const errors = summary.errors.length;
      log(
        `schedule: ${describeSummary(summary, ` (attempt ${attempt} of ${SCHEDULE_ATTEMPTS})`)}${errors ? `; ${errors} unfinished` : ''}`,
      );
      unfinished = errors > 0;
    } catch (error) {
      log(`schedule: ERROR running ${body.tick} again: ${errorText(error)}`);
      unfinished = true;
    }
    if (unfinished && attempt < SCHEDULE_ATTEMPTS) {
      message.retry({ delaySeconds: SCHEDULE_RETRY_SECONDS });
    } else {
      message.ack();
    }
  };

  /**
   * Queues a drain for every account with a notification not yet drained, or with a parked
   * object due for a retry (the drain retries it).
   */
  const sweep = async (runtime: WorkerRuntime, env: WorkerEnv): Promise<number> => {
    const accounts = new Set(
      (await runtime.pipelineStore.listAccounts()).filter(isPending).map((state) => state.account),
    );
    for (const parked of await runtime.pipelineStore.listParked({
      dueAt: Date.now(),
      limit: 10_000,
    })) {
      accounts.add(parked.account);
    }
    const pending = [...accounts].map((account) => ({ account }));
    for (let start = 0; start < pending.length; start += SEND_BATCH_LIMIT) {
      await env.QUEUE.sendBatch(
        pending.slice(start, start + SEND_BATCH_LIMIT).map((state) => ({
          body: { account: state.account },
          contentType: 'json' as const,
        })),
      );
    }
    return pending.length;
  };

  return {
    rules: () => ruleSet,

    async fetch(request, env, ctx) {
      const runtime = configured(env, 'worker');
      if (runtime instanceof WorkerConfigError) {
        return errorResponse(new EngineHttpError(500, 'internal_error', runtime.message));
      }
      const connector = runtime.connector;
      if (connector && isConnectorPath(new URL(request.url).pathname)) {
        const response = await connector.itsm.app.fetch(request, env, ctx);
        keepDeliveries(runtime, ctx);
        return response;
      }
      const response = await runtime.app.fetch(request, env, ctx);
      keepDeliveries(runtime, ctx);
      return response;
    },

    async queue(batch, env, ctx) {
      const runtime = configured(env, 'queue');
      if (runtime instanceof WorkerConfigError) {
        // Kept in the queue (and, after its retries, in the dead-letter queue) until the
        // configuration is fixed; the cron sweep serves the accounts afterwards anyway.
        batch.retryAll({ delaySeconds: retryDelay(Number.POSITIVE_INFINITY) });
        return;
      }
      const drains = new Map<number, Message<unknown>[]>();
      const work: Promise<void>[] = [];
      for (const message of batch.messages) {
        const body = parseWorkerMessage(message.body);
        if (body === null) {
          log(
            `queue: ERROR dropped a message that is neither {account} nor {tick, rules}: ${JSON.stringify(message.body)?.slice(0, 200)}`,
          );
          message.ack();
        } else if ('push' in body) {
          work.push(readPushMessage(runtime, env, message, body));
        } else if ('account' in body) {
          // One drain per account and batch, however many notifications it carries.
          const list = drains.get(body.account) ?? [];
          list.push(message);
          drains.set(body.account, list);
        } else {
          work.push(runScheduleMessage(runtime, message, body));
        }
      }
      for (const [account, messages] of drains) {
        work.push(drainMessages(runtime, env, account, messages));
      }
      await Promise.all(work);
      keepDeliveries(runtime, ctx);
    },

    async scheduled(controller, env, ctx) {
      const runtime = configured(env, 'scheduled');
      if (runtime instanceof WorkerConfigError) throw runtime;
      const tick = tickOf(new Date(controller.scheduledTime));
      // First the safety net, so that a slow tick does not hold up drains that were missed.
      const swept = await sweep(runtime, env);
      if (swept > 0)
        log(
          `sweep: queued a drain for ${swept} accounts with undrained notifications or parked objects due for a retry`,
        );
      if (runtime.connector) await pollFeed(runtime, runtime.connector, env);

      const due = dueRules(ruleSet, tick);
      const run = due.length > 0 ? await runTickLeased(runtime, tick, due) : null;
      if (run === 'tick-busy') {
        log(`schedule: ${tick.toISOString()} is being run by another invocation; skipped here`);
      } else if (run === 'account-busy') {
        // Nothing of the tick ran: its message runs it all, with the tick's own `now`.
        log(
          `schedule: ${tick.toISOString()}: account ${runtime.connector?.account} is still being drained; running the tick again in ${SCHEDULE_RETRY_SECONDS} s`,
        );
        await env.QUEUE.send(
          { tick: tick.toISOString(), rules: due.map((rule) => rule.id) },
          { contentType: 'json', delaySeconds: SCHEDULE_RETRY_SECONDS },
        );
      }
      const summary = typeof run === 'string' ? null : run;
      if (summary) {
        const unfinished = summary.errors.length;
        log(
          `schedule: ${describeSummary(summary)}${unfinished ? `; ${unfinished} unfinished, running it again in ${SCHEDULE_RETRY_SECONDS} s` : ''}`,
        );
        if (unfinished > 0) {
          await env.QUEUE.send(
            { tick: summary.tick, rules: summary.rules },
            { contentType: 'json', delaySeconds: SCHEDULE_RETRY_SECONDS },
          );
        }
      }
      if (tick.getUTCMinutes() === 0) {
        await purgeExpired(runtime, ruleSet, runtime.config.retentionMs, tick.getTime(), log);
      }
      keepDeliveries(runtime, ctx);
    },
  };
}
