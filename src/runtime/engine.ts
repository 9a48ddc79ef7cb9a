// Node composition root of the engine (`itsm-rules serve`): the rule files (hot-reloaded, the last
// good set kept), one SQLite database for the engine's state (and, all-in-one, the embedded ITSM
// API's data), the in-process drain queue, the cron timer of scheduled rules, the timer that
// retries parked objects when they are due, retention, and the HTTP server. Without an API URL the embedded ITSM API is served in the same process under /v1,
// the engine's client points at it over loopback HTTP, and the receiver is registered as its
// webhook, so that one command is a complete working system. With a ServiceNow instance
// (`servicenow`), that embedded API keeps its objects in the instance (the connector in process,
// its change feed polling here). With an API URL, the receiver can register itself with that API
// at start and remove itself at close (webhook/self-register.ts).

import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { getRequestListener } from '@hono/node-server';
import type Database from 'better-sqlite3';
import { Cron } from 'croner';
import { type LoadResult, loadRules, type RuleSet } from '../engine/load.js';
import { formatProblem } from '../engine/problem.js';
import { ruleSetVersion } from '../engine/rule-version.js';
import { missingSecrets, type SecretLookup, secretsFromEnv } from '../engine/secret.js';
import { createItsmClient, type ItsmClient } from '../itsm/client.js';
import { createInProcessTransport } from '../itsm/in-process.js';
import {
  createItsmServer,
  DEFAULT_EVENT_RETENTION,
  DEFAULT_IDEMPOTENCY_TTL_MS,
  type ItsmServer,
  type ItsmServerOptions,
} from '../server/app.js';
import { PUSH_PATH } from '../server/connector-routes.js';
import { FAULTS_PATH, type FaultOptions } from '../server/faults.js';
import { itsmOpenApi } from '../server/openapi.js';
import { renderObject } from '../server/render.js';
import { openConnection } from '../servicenow/connector.js';
import { createConnectorStore } from '../servicenow/connector-store.js';
import { type ChangeFeed, DEFAULT_POLL_INTERVAL_MS } from '../servicenow/feed.js';
import type { ServiceNowObjects } from '../servicenow/objects.js';
import { drainLagMs } from '../storage/drain-lag.js';
import type { EngineStore } from '../storage/engine-port.js';
import type { PipelineStore } from '../storage/pipeline-port.js';
import type { ItsmStore } from '../storage/port.js';
import { createSqliteStore, openSqliteDatabase, probeSqliteWrite } from '../storage/sqlite.js';
import { createSqliteEngineStore } from '../storage/sqlite-engine.js';
import { createSqlitePipelineStore } from '../storage/sqlite-pipeline.js';
import { createEngineApp } from '../webhook/app.js';
import {
  DEFAULT_ENGINE_USER,
  DEFAULT_OBJECT_CONCURRENCY,
  drainAccount,
  type PipelineDeps,
  purgeExpired,
} from '../webhook/drain.js';
import { createEngineMetrics, type EngineMetrics } from '../webhook/metrics.js';
import { createNoteBatch } from '../webhook/note-batch.js';
import { ownDeliverySender } from '../webhook/own-delivery.js';
import { pacedPasses } from '../webhook/paced-passes.js';
import { createDrainQueue, type DrainQueue } from '../webhook/queue.js';
import {
  createReceiver,
  type Notification,
  RECEIVER_PATH,
  type Receiver,
} from '../webhook/receiver.js';
import {
  dueRules,
  runScheduleRequest,
  runSchedules,
  SCHEDULE_ATTEMPTS,
  SCHEDULE_RETRY_MS,
  type ScheduleSummary,
} from '../webhook/schedule.js';
import { type SelfRegistration, startSelfRegistration } from '../webhook/self-register.js';
import { type DatabaseLock, lockDatabase } from './database-lock.js';
import { createEngineHealth } from './engine-health.js';
import {
  closeServer,
  listen,
  loadMigrations,
  type ServiceNowServeOptions,
  socketAddress,
  verifySignatureNode,
} from './node.js';
import { sha256HexNode, signBodyNode } from './node-crypto.js';
import { createNodeFetch } from './node-fetch.js';
import { withNodeReceiver } from './node-receiver.js';
import { createNodeTransport } from './node-transport.js';
import { createNodeWebhookSender } from './node-webhook-sender.js';
import { RuleDirectoryError, readRuleSources } from './rule-files.js';
import { inMemoryPreview } from './rule-preview.js';
import { createScheduleQueue } from './schedule-queue.js';

/** On close, the wait for `http` actions in flight before they are given up. */
export const HTTP_STOP_GRACE_MS = 5_000;

/** Accounts drained at once, by default: drains wait on the API far more than on this process. */
export const DEFAULT_ACCOUNT_CONCURRENCY = 16;
/** Least time between the starts of two drains of one account (see drainIntervalMs). */
export const DEFAULT_DRAIN_INTERVAL_MS = 20;
/** Drains started in one turn of the event loop at most (see drainStartsPerTurn). */
export const DEFAULT_DRAIN_STARTS_PER_TURN = 4;
/** Least time between two passes that start drains (see drainPassIntervalMs). */
export const DEFAULT_DRAIN_PASS_INTERVAL_MS = 2;

export interface StartEngineOptions {
  port: number;
  host: string;
  rulesDir: string;
  /** SQLite file (its folder is created) or `:memory:`. */
  db: string;
  /** The ITSM API (`https://itsm.example.com/v1`); absent: serve the embedded one under /v1. */
  apiUrl?: string;
  apiKey: string;
  /** Older signing keys still accepted during a key rotation. */
  previousKeys?: string[];
  appId: string;
  /** The user the engine acts as (X-Kloudless-As-User); its events are the engine's own writes. */
  engineUser?: string;
  httpAllow?: string[];
  /** The values of the rules' secrets; default ITSM_SECRET_<NAME> from the environment. */
  secrets?: SecretLookup;
  from?: 'oldest' | 'latest';
  /** Accounts drained at once; default 16. */
  concurrency?: number;
  /** Objects of one account processed at once (each object's events in order); default 8. */
  objectConcurrency?: number;
  /** Backoff of a parked object's retries; default 5 s doubling up to 5 min. */
  parkRetry?: { baseMs?: number; maxMs?: number };
  /** How often the store is looked at for parked objects due for a retry; default 1 s. */
  parkCheckMs?: number;
  pageSize?: number;
  /** How often the rules folder is checked for changes; 0 turns hot reload off. Default 1 s. */
  reloadIntervalMs?: number;
  /** Run scheduled rules on the clock; default true. */
  schedules?: boolean;
  /** Run records, plans and effects are kept this long; default 30 days. */
  retentionMs?: number;
  /**
   * Least time between the starts of two drains of one account; default 20 ms. An event after a
   * quiet spell is drained at once; a stream of notifications for one account is served by one
   * drain per interval that takes every event written meanwhile, instead of one drain per
   * notification, which starved the receiver in the same process (bench/receiver.ts, one
   * account: 12% of a bare route with no spacing, 76% with 20 ms). Per account, so it adds no
   * delay across accounts.
   */
  drainIntervalMs?: number;
  /**
   * Drains started in one turn of the event loop at most; default 4. All-in-one, a drain runs on
   * this thread from its start to its first wait on the outside (an \`http\` action): sixteen
   * started together held the loop from the receiver's requests, and spread over 1000 accounts
   * every notification then had a drain of its own (bench/receiver.ts).
   */
  drainStartsPerTurn?: number;
  /**
   * Least time between two passes that start drains; default 2 ms (0: a pass every turn), so at
   * most 2000 drains start a second with 4 a pass. Under a flood of notifications over many
   * accounts the loop turns far more often than that, and a pass each turn set off a drain for
   * every other notification (bench/receiver.ts over 1000 accounts: 0.5 drains a notification;
   * 0.12 at 1 ms, 0.085 at 2 ms, 0.045 at 4 ms), each drain also costing the account's next note;
   * a pass after a quiet spell is not delayed (webhook/paced-passes.ts).
   */
  drainPassIntervalMs?: number;
  /** Runs of a scheduled tick the API failed part of, the first included; default 4. */
  scheduleAttempts?: number;
  /** Wait between those runs; default 30 s. */
  scheduleRetryMs?: number;
  /**
   * Tests only: the timer of scheduled rules fires on this croner pattern (default every
   * minute) and names each tick from this clock (default the wall clock), so that a test can
   * fire distinct minutes a second apart.
   */
  scheduleTimer?: { pattern?: string; now?: () => Date };
  /** Drain retry backoff after a failure. */
  drainRetry?: { baseMs?: number; maxMs?: number };
  /** Retries of one API call inside the client. */
  clientRetry?: { maxAttempts?: number; baseDelayMs?: number; maxDelayMs?: number };
  /** All-in-one only: faults injected into the embedded API (a testing aid). */
  faults?: FaultOptions;
  /** The operator console's sessions: their length (default 8 hours) and clock (tests). */
  console?: { sessionTtlMs?: number; now?: () => number };
  /**
   * On close, how long `http` actions in flight are waited for before they are given up (their
   * objects parked); default 5 s.
   */
  httpStopGraceMs?: number;
  /**
   * The clock of notification notes, drain pages, run records and the drain lag; default
   * Date.now. Tests give a coarse one, under which a note and a page often share a millisecond.
   */
  now?: () => number;
  /**
   * All-in-one only: the embedded API serves this ServiceNow instance (the connector in process)
   * instead of keeping objects itself; its change feed polls in this process.
   */
  servicenow?: ServiceNowServeOptions;
  /**
   * With `apiUrl`: register the receiver as the application's webhook at start and remove it at
   * close (`serve` does unless --no-register-webhook; default false here, where a caller may
   * register it itself); `receiverUrl` is the URL registered (default this server's own).
   */
  registerWebhook?: boolean;
  receiverUrl?: string;
  /** All-in-one only: further options of the embedded API. */
  itsm?: Partial<Omit<ItsmServerOptions, 'store' | 'apiKey' | 'appId' | 'faults'>>;
  log?: (line: string) => void;
}

export interface RunningEngine {
  url: string;
  port: number;
  /** The API the engine acts through. */
  apiUrl: string;
  /** The SQLite connection of the engine's state (and, all-in-one, of the embedded API's data). */
  database: Database.Database;
  /** The embedded ITSM API, all-in-one. */
  itsm: ItsmServer | null;
  /** The engine's own HTTP app (everything but the embedded API's paths). */
  app: ReturnType<typeof createEngineApp>;
  client: ItsmClient;
  queue: DrainQueue;
  metrics: EngineMetrics;
  pipelineStore: PipelineStore;
  engineStore: EngineStore;
  /** With `apiUrl` and self-registration: settles once the receiver is registered. */
  webhookRegistered: Promise<void> | null;
  rules(): RuleSet;
  reloadRules(): Promise<{ ok: boolean; rules: number; problems: string[] }>;
  runDueSchedules(at: Date): Promise<ScheduleSummary | null>;
  /**
   * Resolves when every notified account is drained and no retry of a parked object is running;
   * one waiting for a retry keeps it waiting (a parked object waiting for its time does not).
   */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/** The rule files could not be loaded: the engine does not start with a broken rule set. */
export class RuleSetError extends Error {
  readonly code = 'ENGINE_RULES_INVALID';
  constructor(
    readonly dir: string,
    readonly problems: string[],
  ) {
    super(
      `the rules in ${dir} have ${problems.length} problem${problems.length === 1 ? '' : 's'}; fix them (itsm-rules check --rules ${dir}) and start again:\n${problems.map((p) => `  ${p}`).join('\n')}`,
    );
    this.name = 'RuleSetError';
  }
}

/** The rules use secrets that are not set: the engine does not start without them. */
export class MissingSecretsError extends Error {
  readonly code = 'ENGINE_SECRETS_MISSING';
  constructor(readonly problems: string[]) {
    super(
      `the rules use ${problems.length === 1 ? 'a secret that is' : 'secrets that are'} not set; set ${problems.length === 1 ? 'it' : 'them'} in the environment and start again:\n${problems.map((p) => `  ${p}`).join('\n')}`,
    );
    this.name = 'MissingSecretsError';
  }
}

/**
 * Whether a request is the embedded API's (`/v1`, `/v1/...`, or the fault counters). Read from
 * the URL string without building a URL object: every request that is not a webhook notification
 * (those take Node's fast path first) asks, the engine's own API calls included.
 */
export function isEmbeddedApiPath(url: string): boolean {
  const start = url.indexOf('/', url.indexOf('://') + 3);
  if (start < 0) return false;
  let end = url.length;
  for (const mark of ['?', '#']) {
    const at = url.indexOf(mark, start);
    if (at >= 0 && at < end) end = at;
  }
  const path = url.slice(start, end);
  return (
    path === '/v1' ||
    path.startsWith('/v1/') ||
    path === FAULTS_PATH ||
    // The embedded API's ServiceNow Table API face.
    path.startsWith('/api/now/') ||
    path === '/oauth_token.do' ||
    // Over a ServiceNow instance: the push of a Business Rule.
    path === PUSH_PATH
  );
}

function loadRuleDir(dir: string): LoadResult {
  return loadRules(readRuleSources(dir));
}

/** A cheap fingerprint of the rule folder: names, sizes and modification times. */
function folderStamp(dir: string): string {
  const parts: string[] = [];
  const walk = (folder: string) => {
    let names: string[];
    try {
      names = readdirSync(folder).sort();
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(folder, name);
      try {
        const stat = statSync(path);
        if (stat.isDirectory()) walk(path);
        else parts.push(`${path}:${stat.size}:${stat.mtimeMs}`);
      } catch {
        // Removed while walking: the next look sees the settled folder.
      }
    }
  };
  walk(dir);
  return parts.join('\n');
}

export async function startEngine(options: StartEngineOptions): Promise<RunningEngine> {
  const log = options.log ?? ((line: string) => console.error(line));
  const rulesDir = resolve(options.rulesDir);
  const initial = loadRuleDir(rulesDir);
  if (!initial.ruleSet)
    throw new RuleSetError(options.rulesDir, initial.problems.map(formatProblem));
  // Read when a call is made, so a value is never copied anywhere it could be logged from.
  const secrets = options.secrets ?? secretsFromEnv(process.env);
  const unset = missingSecrets(initial.ruleSet.rules, secrets);
  if (unset.length > 0) throw new MissingSecretsError(unset);
  let ruleSet: RuleSet = initial.ruleSet;
  let stamp = folderStamp(rulesDir);
  // What the console shows of the rule set: the warnings of the running set, when it was loaded,
  // and the latest reload refused since.
  let ruleWarnings = initial.warnings;
  let rulesLoadedAt = Date.now();
  let rulesRefused: { at: number; problems: string[] } | null = null;

  if (options.db !== ':memory:') mkdirSync(dirname(resolve(options.db)), { recursive: true });
  // One database, one process (database-lock.ts): taken before the file is opened, kept until
  // close; a second process on the same file is refused here.
  const lock: DatabaseLock | null = lockDatabase(options.db);
  let database: Database.Database;
  try {
    database = openSqliteDatabase(options.db, loadMigrations());
  } catch (error) {
    lock?.release();
    throw error;
  }
  const engineStore = createSqliteEngineStore({ database });
  const pipelineStore = createSqlitePipelineStore({ database });
  const metrics = createEngineMetrics();
  const health = createEngineHealth({
    rulesDir: options.rulesDir,
    db: options.db,
    metrics,
    probeWrite: () => probeSqliteWrite(database),
  });
  health.noteReload({ ok: true, rules: ruleSet.rules.length, problems: [] });
  const keys = [options.apiKey, ...(options.previousKeys ?? [])];
  const engineUser = options.engineUser ?? DEFAULT_ENGINE_USER;
  const retentionMs = options.retentionMs ?? 30 * 24 * 60 * 60 * 1000;

  let itsm: ItsmServer | null = null;
  let itsmStore: ItsmStore | null = null;
  // All-in-one, the embedded API notifies this engine's own receiver in process (signed and
  // verified as over HTTP, without the socket: webhook/own-delivery.ts), and any other webhook a
  // user registered over node:http with kept-alive connections.
  const webhookSender = createNodeWebhookSender();
  let ownReceiver: { url: string; receiver: Receiver } | null = null;
  const notificationSender = ownDeliverySender({
    own: () => ownReceiver,
    fallback: webhookSender.send,
    log,
  });
  // The rules' `http` actions likewise, rather than a fetch (web Request, streams) per call.
  const httpActions = createNodeFetch();
  /** Over a ServiceNow instance: the connector's change feed, polling once the server listens. */
  let feed: ChangeFeed | null = null;
  /** The base of `href`s in the feed's events: this server's URL, known once it listens. */
  let baseUrl = '';
  const sn = options.servicenow;
  if (!options.apiUrl) {
    const local = createSqliteStore({ database });
    itsmStore = local;
    let connectorRoutes: ItsmServerOptions['connector'];
    if (sn) {
      const account = sn.account ?? 1;
      let objects: ServiceNowObjects | null = null;
      // The connector in process is the embedded API's object store: objects in the instance,
      // events, idempotency records, webhooks and the feed's watermarks in the engine's database.
      const store = createConnectorStore(local, async (served) => {
        if (served !== account) throw new Error(`account ${served} is not served here`);
        if (!objects) throw new Error('the connector is not connected yet');
        return objects;
      });
      itsmStore = store;
      let changeFeed: ChangeFeed;
      try {
        // Before serving: an instance that is down or refuses the user stops the start here,
        // and every change from now on is reported (earlier history is not replayed).
        const connection = await openConnection({
          settings: sn,
          account,
          local,
          render: (object) => renderObject(store, object, { baseUrl, includeRaw: true }),
          notify: () => itsm?.notifier.notify(account),
          retention: options.itsm?.eventRetention ?? DEFAULT_EVENT_RETENTION,
          keyRetentionMs: options.itsm?.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS,
          log,
        });
        objects = connection.connector.objects;
        changeFeed = connection.feed;
      } catch (error) {
        database.close();
        lock?.release();
        throw error;
      }
      feed = changeFeed;
      connectorRoutes = {
        serves: (served) => served === account,
        defaultAccount: account,
        ...(sn.pushSecret && {
          push: {
            secret: sn.pushSecret,
            read: (table: string, sysId: string) => changeFeed.readRecord(table, sysId),
          },
        }),
      };
    }
    itsm = createItsmServer({
      sign: signBodyNode,
      hash: sha256HexNode,
      webhookSender: notificationSender,
      ...options.itsm,
      store: itsmStore,
      apiKey: options.apiKey,
      appId: options.appId,
      log,
      ...(options.faults && { faults: options.faults }),
      ...(connectorRoutes && { connector: connectorRoutes }),
      clientIp: socketAddress,
    });
  }

  const now = options.now ?? Date.now;
  /** Retries of parked objects that outlive the drain that started them (drain.ts). */
  const parkedRetries = new Map<string, Promise<void>>();
  // The client is made once the address is known (all-in-one, the API is this very server).
  let deps: PipelineDeps | null = null;
  const pipeline = (): PipelineDeps => {
    if (!deps) throw new Error('the engine is not listening yet');
    return deps;
  };

  /**
   * Per account, the time of a note in the store that covers any notification from now on:
   * noted no earlier than the request of the account's latest drain page, it stays in the store
   * (as the oldest one waiting, for the lag) until a page requested after it reaches the end,
   * and such a page holds the events of every notification that came before its request.
   */
  const notedSince = new Map<number, number>();
  /** Per account, the latest request time of a page of its drain. */
  const pageRequested = new Map<number, number>();
  const queue = createDrainQueue({
    async drain(account, shouldStop) {
      for (;;) {
        const result = await drainAccount(pipeline(), account, {
          shouldStop,
          pageRequested(at) {
            pageRequested.set(account, Math.max(at, pageRequested.get(account) ?? at));
            // A page requested after the note may end the drain without the events of the
            // notifications that come next: the next one is noted again.
            if ((notedSince.get(account) ?? at) < at) notedSince.delete(account);
          },
        });
        health.noteWritesOk();
        // A note timed in the very millisecond of the last page is not covered by it (the page
        // may have been read just before the event it notes was written: clearNotified). With no
        // later notification, no later page would ever cover it, and the account would read as
        // lagging for good. So the drain reads once more, after that millisecond.
        const noted = notedSince.get(account);
        if (!result.caughtUp || noted === undefined || noted !== pageRequested.get(account)) break;
        if (shouldStop()) break;
        while (now() <= noted) await new Promise((resolve) => setTimeout(resolve, 1));
      }
    },
    concurrency: options.concurrency ?? DEFAULT_ACCOUNT_CONCURRENCY,
    minIntervalMs: options.drainIntervalMs ?? DEFAULT_DRAIN_INTERVAL_MS,
    // Drains are started once per turn of the loop, after it has read the waiting requests, and
    // in passes at least 2 ms apart.
    defer: pacedPasses({
      defer: setImmediate,
      intervalMs: options.drainPassIntervalMs ?? DEFAULT_DRAIN_PASS_INTERVAL_MS,
    }),
    startsPerPass: options.drainStartsPerTurn ?? DEFAULT_DRAIN_STARTS_PER_TURN,
    ...(options.drainRetry?.baseMs !== undefined && { retryBaseMs: options.drainRetry.baseMs }),
    ...(options.drainRetry?.maxMs !== undefined && { retryMaxMs: options.drainRetry.maxMs }),
    onFailure(account, error, delayMs) {
      metrics.drainRetries.inc();
      health.noteError(error);
      log(
        `drain: account ${account} stopped: ${error instanceof Error ? error.message : String(error)}; the cursor stays, retrying in ${(delayMs / 1000).toFixed(1)} s`,
      );
    },
  });

  const reloadRules = async () => {
    const result = (() => {
      try {
        return loadRuleDir(rulesDir);
      } catch (error) {
        if (error instanceof RuleDirectoryError) return null;
        throw error;
      }
    })();
    const unset = result?.ruleSet ? missingSecrets(result.ruleSet.rules, secrets) : [];
    // A folder that held rules and now holds none was most likely emptied by mistake (moved,
    // a checkout half done): taking it would switch every automation off without a word.
    const emptied = result?.ruleSet?.rules.length === 0 && ruleSet.rules.length > 0;
    if (!result?.ruleSet || unset.length > 0 || emptied) {
      const problems = !result
        ? [`${options.rulesDir} cannot be read`]
        : emptied
          ? [
              `no rule files (.yaml, .yml, .json) in ${options.rulesDir}: a folder emptied by mistake would switch every rule off; to run with no rules on purpose, restart the engine on the empty folder (or give each rule disabled: true)`,
            ]
          : result.ruleSet
            ? unset
            : result.problems.map(formatProblem);
      log(
        `rules: NOT reloaded, keeping the last good set (${ruleSet.rules.length} rules); ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${problems.map((p) => `  ${p}`).join('\n')}`,
      );
      const refused = { ok: false, rules: ruleSet.rules.length, problems };
      health.noteReload(refused);
      rulesRefused = { at: Date.now(), problems };
      return refused;
    }
    ruleSet = result.ruleSet;
    ruleWarnings = result.warnings;
    rulesLoadedAt = Date.now();
    rulesRefused = null;
    log(`rules: reloaded ${ruleSet.rules.length} rules from ${options.rulesDir}`);
    const reloaded = { ok: true, rules: ruleSet.rules.length, problems: [] };
    health.noteReload(reloaded);
    return reloaded;
  };

  /**
   * The ticks of scheduled rules, the timer's and runDueSchedules' callers', run one after
   * another. A tick the API failed part of is run again (it acts only where it has not yet: one
   * run per rule, tick and object) a few times, then left to the next tick; the ticks of later
   * minutes run while it waits.
   */
  /** The clock that names the timer's ticks (tests: scheduleTimer.now). */
  const scheduleNow = options.scheduleTimer?.now ?? (() => new Date());
  const schedules = createScheduleQueue({
    dueRules: (tick) => dueRules(ruleSet, tick),
    runTick: (tick, rules) => runSchedules(pipeline(), { tick, rules }),
    attempts: options.scheduleAttempts ?? SCHEDULE_ATTEMPTS,
    retryMs: options.scheduleRetryMs ?? SCHEDULE_RETRY_MS,
    now: scheduleNow,
    log,
    onError(error) {
      health.noteError(error);
      log(`schedule: ${error instanceof Error ? error.message : String(error)}`);
    },
  });
  const runDueSchedules = (at: Date): Promise<ScheduleSummary | null> => schedules.run(at);

  // The notes of one turn's notifications for accounts not pending, in one transaction; their
  // drains are then asked for together.
  const notes = createNoteBatch({
    now,
    write: (accounts, at) => pipelineStore.noteNotifications(accounts, at),
    defer: setImmediate,
    onWritten(accounts, at) {
      health.noteWritesOk();
      for (const account of accounts) {
        // A page requested since the note was timed does not leave it covering what comes next.
        if (at >= (pageRequested.get(account) ?? at)) notedSince.set(account, at);
        queue.notify(account);
      }
    },
    onFailed: (error) => health.noteError(error),
  });
  const enqueue = ({ account }: Notification): Promise<void> | undefined => {
    // Durable before the 200: a crash after the answer still drains the account at start-up.
    // While a note covers the account (notedSince), later notifications add nothing to the
    // store (which keeps the oldest note not drained, for the lag), and are taken at once, with
    // no promise to wait for.
    if (!notedSince.has(account)) return notes.add(account);
    queue.notify(account);
    return undefined;
  };
  // One receiver, served two ways: by Node's fast path for POST /webhooks/kloudless, and by the
  // app's route for anything that path does not take (src/runtime/node-receiver.ts).
  const receiver = createReceiver({
    keys: () => keys,
    appId: options.appId,
    enqueue,
    metrics,
    // Node's HTTP parser never delivers more body than the declared Content-Length.
    trustContentLength: true,
    verify: verifySignatureNode,
    log,
  });
  const app = createEngineApp({
    keys: () => keys,
    appId: options.appId,
    pipelineStore,
    metrics,
    receiver,
    runSchedules: (request) => runScheduleRequest(pipeline(), request),
    reloadRules,
    rules: () => ruleSet,
    // The impact preview: the candidate against the rules in force, over the retained events,
    // each side counting in a throw-away store in memory, gone with the request (as on Workers).
    previewRules: inMemoryPreview({
      client: () => client,
      rules: () => ruleSet,
      engineUser,
      pipelineStore,
    }),
    ...(itsm && {
      embeddedApi: itsmOpenApi({ faults: Boolean(options.faults), servicenow: Boolean(sn) }),
    }),
    health: async () => ({
      rules: ruleSet.rules.length,
      // The version run records carry (/runs?rule_version=): which rules run here now.
      rule_version: (await ruleSetVersion(ruleSet)).version,
      scheduled: ruleSet.index.scheduled.length,
      api: options.apiUrl ?? 'embedded',
      // Over an instance, which one: a probe or an operator sees where the objects live.
      ...(sn && { servicenow: { instance: sn.instanceUrl, account: sn.account ?? 1 } }),
      queue: queue.status(),
    }),
    problems: () => health.problems(),
    console: {
      rules: () => ({
        ruleSet,
        warnings: ruleWarnings,
        loadedAt: rulesLoadedAt,
        refused: rulesRefused,
        source: options.rulesDir,
      }),
      // Over an instance, which one: the objects the console's runs are about live there.
      apiUrl:
        options.apiUrl ??
        (sn
          ? `embedded (this process, /v1) over ServiceNow ${sn.instanceUrl} as account ${sn.account ?? 1}`
          : 'embedded (this process, /v1)'),
      ...options.console,
    },
    drainNow(accounts) {
      for (const account of accounts) queue.notify(account);
    },
    async refreshMetrics() {
      metrics.parkedObjects.set(
        {},
        (await pipelineStore.listParked({ limit: Number.MAX_SAFE_INTEGER })).length,
      );
      const at = now();
      for (const state of await pipelineStore.listAccounts()) {
        metrics.drainLag.set({ account: String(state.account) }, drainLagMs(state, at) / 1000);
      }
    },
    log,
  });

  const server = createServer(
    withNodeReceiver(
      receiver,
      getRequestListener((request, env) =>
        itsm && isEmbeddedApiPath(request.url)
          ? itsm.app.fetch(request, env)
          : app.fetch(request, env),
      ),
      log,
    ),
  );
  let address: Awaited<ReturnType<typeof listen>>;
  try {
    address = await listen(server, options.port, options.host);
  } catch (error) {
    await itsm?.close();
    database.close();
    lock?.release();
    throw error;
  }
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  const apiUrl = options.apiUrl ?? `${url}/v1`;
  const embedded = itsm;
  // A separate API is reached over node:http with kept-alive connections rather than fetch,
  // whose web Request, abort signal and body streams per call cost more than the call's own work.
  const remote = embedded ? null : createNodeTransport();
  const client = createItsmClient({
    baseUrl: apiUrl,
    auth: { apiKey: options.apiKey },
    asUser: engineUser,
    userAgent: 'itsm-rules-engine/0.1',
    // All-in-one, the API is this very process: its app answers the engine's calls directly (auth,
    // validation, idempotency and fault injection included) instead of through a loopback socket,
    // and without the web Request, abort signal and body streams of a fetch (in-process.ts).
    // Webhook notifications to this engine come in process too (own-delivery.ts). An injected dropped connection
    // reaches the client the same way as over a socket: the answer's body breaks off, its read
    // rejects, and the client counts that as a network error.
    ...(embedded && { transport: createInProcessTransport(embedded.app) }),
    ...(remote && { transport: remote.transport }),
    ...(options.clientRetry && { retry: options.clientRetry }),
  });
  deps = {
    client,
    engineStore,
    pipelineStore,
    rules: () => ruleSet,
    engineUser,
    http: { allowHosts: options.httpAllow ?? [], secrets, fetch: httpActions.fetch },
    log,
    metrics,
    ...(options.pageSize !== undefined && { pageSize: options.pageSize }),
    objectConcurrency: options.objectConcurrency ?? DEFAULT_OBJECT_CONCURRENCY,
    retries: parkedRetries,
    ...(options.parkRetry && { parkRetry: options.parkRetry }),
    from: options.from ?? 'oldest',
    now,
  };

  baseUrl = url;
  if (itsm) {
    // The URL registered is the one the API's notifications to this engine are handed over for.
    ownReceiver = { url: `${url}${RECEIVER_PATH}`, receiver };
    await registerOwnWebhook(itsm, itsmStore as ItsmStore, options.appId, ownReceiver.url, log);
  }
  if (feed && sn) {
    const interval = sn.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    if (interval > 0) feed.start(interval);
    log(
      `itsm-api: serving ServiceNow ${sn.instanceUrl} as account ${sn.account ?? 1}; change feed ${interval > 0 ? `polls every ${interval} ms` : 'polls on push only'}`,
    );
  }
  // With a separate API, the receiver registers itself (in the background: an API that is down
  // or refuses the key is retried with backoff while the engine serves).
  const selfRegistration: SelfRegistration | null =
    options.apiUrl && options.registerWebhook === true
      ? startSelfRegistration({
          client,
          appId: options.appId,
          receiverUrl: options.receiverUrl ?? `${url}${RECEIVER_PATH}`,
          log,
        })
      : null;

  // Notifications taken before a crash or a stop may not have been drained: look at every
  // account the engine knows once (a drain that finds nothing new costs one events call).
  for (const state of await pipelineStore.listAccounts()) queue.notify(state.account);
  if (itsmStore) {
    // All-in-one, the API's notifications are sent from this very process and die with it: a
    // write committed just before a crash may never have been notified, and an account the
    // engine never heard of would then wait for its next write. So every account with events in
    // the embedded API is looked at too.
    for (const account of await itsmStore.listEventAccounts()) {
      queue.notify(account);
    }
  }

  const timers: { stop(): void }[] = [];
  const reloadEvery = options.reloadIntervalMs ?? 1_000;
  if (reloadEvery > 0) {
    const timer = setInterval(() => {
      const next = folderStamp(rulesDir);
      if (next === stamp) return;
      stamp = next;
      void reloadRules();
    }, reloadEvery);
    timer.unref();
    timers.push({ stop: () => clearInterval(timer) });
  }
  if (options.schedules ?? true) {
    // No `protect`: the callback only queues the minute, and a tick still running (or waiting
    // for its retry) must not make the timer skip the next. utcOffset 0 rather than timezone
    // 'UTC': the same minutes without Intl's time-zone data (~8 MB resident).
    const cron = new Cron(options.scheduleTimer?.pattern ?? '* * * * *', { utcOffset: 0 }, () =>
      schedules.fire(scheduleNow()),
    );
    timers.push({ stop: () => cron.stop() });
  }
  // Parked objects come back on their schedule: the drain of their account retries those due.
  const parkCheckMs = Math.max(10, options.parkCheckMs ?? 1_000);
  const parkTimer = setInterval(() => {
    void pipelineStore
      .listParked({ dueAt: Date.now(), limit: 1_000 })
      .then((due) => {
        for (const account of new Set(due.map((parked) => parked.account))) queue.notify(account);
      })
      .catch((error) => {
        health.noteError(error);
        log(`drain: parked objects could not be read: ${String(error)}`);
      });
  }, parkCheckMs);
  parkTimer.unref();
  timers.push({ stop: () => clearInterval(parkTimer) });
  const purge = () =>
    purgeExpired({ engineStore, pipelineStore }, ruleSet, retentionMs, Date.now(), log);
  const purgeTimer = setInterval(
    () => void purge().catch((error) => log(`retention: ${String(error)}`)),
    60 * 60 * 1000,
  );
  purgeTimer.unref();
  timers.push({ stop: () => clearInterval(purgeTimer) });
  await purge();

  let closed: Promise<void> | null = null;
  return {
    url,
    app,
    port: address.port,
    apiUrl,
    database,
    itsm,
    client,
    queue,
    metrics,
    pipelineStore,
    engineStore,
    webhookRegistered: selfRegistration?.registered ?? null,
    rules: () => ruleSet,
    reloadRules,
    runDueSchedules,
    async idle() {
      // Retries of parked objects run beside the queue (they outlive their drain): wait for those
      // in flight too. Parked objects waiting for their time are not work in hand.
      for (;;) {
        await queue.idle();
        if (parkedRetries.size === 0) return;
        await Promise.all(parkedRetries.values());
      }
    },
    close() {
      closed ??= (async () => {
        schedules.stop();
        for (const timer of timers) timer.stop();
        // The API stops notifying a receiver that is going away; the feed stops reading the
        // instance (its poll in hand is finished and stored).
        await selfRegistration?.stop();
        await feed?.stop();
        // Drains finish the page in hand (the API, all-in-one, is still up for them). An `http`
        // call that hangs is given up after a grace, not waited for through its timeouts and
        // retries (30 s and more: past a supervisor's kill): its object is parked, and the call
        // is made again after the restart, with the same Idempotency-Key.
        const grace = setTimeout(
          () =>
            httpActions.stop(
              'the engine is stopping: the call was given up, and is made again after the restart',
            ),
          options.httpStopGraceMs ?? HTTP_STOP_GRACE_MS,
        );
        grace.unref();
        await queue.close();
        // A retry of a parked object still running is let finish, as a drain finishes its page.
        await Promise.all(parkedRetries.values());
        clearTimeout(grace);
        await closeServer(server);
        remote?.close();
        await itsm?.close();
        webhookSender.close();
        httpActions.close();
        await pipelineStore.close();
        await engineStore.close();
        await itsmStore?.close();
        if (database.open) database.close();
        lock?.release();
      })();
      return closed;
    },
  };
}

/**
 * Registers the receiver with the embedded API. A receiver URL of an earlier run on another
 * loopback port is removed: notifications sent to it would fail and be retried for nothing. It
 * cannot be a live process's: this process holds the database's lock (database-lock.ts), so no
 * other process serves this database now.
 */
async function registerOwnWebhook(
  itsm: ItsmServer,
  store: ItsmStore,
  appId: string,
  receiverUrl: string,
  log: (line: string) => void,
): Promise<void> {
  const own = new URL(receiverUrl);
  for (const webhook of await store.listWebhooks(appId)) {
    let url: URL;
    try {
      url = new URL(webhook.url);
    } catch {
      continue;
    }
    if (url.pathname === RECEIVER_PATH && url.hostname === own.hostname && url.port !== own.port) {
      await store.deleteWebhook(appId, webhook.id);
      log(`itsm-api: removed the receiver webhook of an earlier run: ${webhook.url}`);
    }
  }
  const { webhook, created } = await itsm.registerWebhook(receiverUrl);
  log(
    `itsm-api: webhook ${webhook.id} ${created ? 'registered' : 'already registered'}: ${webhook.url}`,
  );
}
