// The ServiceNow connector inside the engine Worker (ITSM_SERVICENOW_URL), the Workers form of
// `serve --servicenow`: the `/v1` app (src/server/app.ts) over the connector store, with objects
// in the instance and its local state (events, idempotency records, webhooks, version marks,
// watermarks) in D1; the engine's client calls that app in process; `POST /servicenow/push`
// reads one record; the cron trigger polls the change feed. Nothing here keeps a timer or a
// socket: every step is one invocation's work (fetch only).

import type { ItsmTransport } from '../itsm/client.js';
import { createInProcessTransport } from '../itsm/in-process.js';
import { createItsmServer, DEFAULT_IDEMPOTENCY_TTL_MS, type ItsmServer } from '../server/app.js';
import { renderObject } from '../server/render.js';
import { createServiceNowConnector, WATCHED_TABLES } from '../servicenow/connector.js';
import { createConnectorStore } from '../servicenow/connector-store.js';
import { type ChangeFeed, createChangeFeed } from '../servicenow/feed.js';
import { type D1Database, openD1ItsmStore } from '../storage/d1.js';
import type { ItsmStore, UpstreamStateStore } from '../storage/port.js';
import type { ServiceNowSettings } from './servicenow-flags.js';

/**
 * Pages of 200 records one cron tick reads per watched table at most: a Worker invocation has a
 * budget of subrequests and time. A backlog larger than that is read over the next ticks.
 */
export const POLL_PAGES_PER_TABLE = 2;

/** The base of `href`s when ITSM_PUBLIC_URL is not set: hrefs must be absolute URLs. */
export const INTERNAL_BASE_URL = 'https://itsm-rules.invalid';

export interface WorkerConnectorOptions {
  settings: ServiceNowSettings;
  db: D1Database;
  /** The application API key (the /v1 app's, as on Node all-in-one) and its id. */
  apiKey: string;
  appId: string;
  /** `https://itsm-rules.example.workers.dev`: the base of hrefs (ITSM_PUBLIC_URL). */
  publicUrl: string | null;
  eventRetention: number;
  /**
   * The account has new events: note it and queue its drain, as a receiver notification does.
   * Called after a write through `/v1` and after a push that read something new.
   */
  drain(account: number): Promise<void>;
  /**
   * Reads a pushed record (with ITSM_SN_PUSH_SECRET): the Worker's, which reads it under the
   * account's lease; resolves with the events appended (0 when it was queued for later).
   */
  readPushed(table: string, sysId: string): Promise<number>;
  /** Timeout and retries of Table API calls (tests shorten them). */
  timeoutMs?: number;
  retry?: { maxAttempts?: number; baseDelayMs?: number; maxDelayMs?: number };
  log: (line: string) => void;
}

export interface WorkerConnector {
  /** The account the instance is served as. */
  account: number;
  itsm: ItsmServer;
  /** The engine client's way to the /v1 app: in process, no HTTP hop. */
  transport: ItsmTransport;
  /** The base URL the engine's client builds its calls on (`.../v1`). */
  apiBaseUrl: string;
  feed: ChangeFeed;
  /** The connector's local store (D1). */
  local: ItsmStore & UpstreamStateStore;
}

export function createWorkerConnector(options: WorkerConnectorOptions): WorkerConnector {
  const { settings, log } = options;
  const account = settings.account;
  const local = openD1ItsmStore(options.db);
  const connector = createServiceNowConnector({
    instanceUrl: settings.instanceUrl,
    auth: settings.auth,
    account,
    local,
    ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
    ...(options.retry && { retry: options.retry }),
    // A keyed create adopts the record holding its key's sys_id only while the server still
    // keeps the key (as on Node: openConnection is given the same TTL).
    keyRetentionMs: DEFAULT_IDEMPOTENCY_TTL_MS,
    log,
  });
  const drainAfterWrite = async (served: number) => {
    // The event is committed: a failed note is caught up by the cron tick, which queues a drain
    // whenever the log holds events past the account's cursor.
    await options.drain(served).catch((error: unknown) => {
      log(
        `servicenow: could not queue a drain of account ${served} after a write (${error instanceof Error ? error.message : String(error)}); the next cron tick queues it`,
      );
    });
  };
  // Writes through /v1 (the engine's own included) queue a drain; the feed's commits do not,
  // one drain per poll or push is enough.
  const routesLocal: ItsmStore & UpstreamStateStore = {
    ...local,
    async commit(input) {
      const committed = await local.commit(input);
      if (committed.eventSeq > 0) await drainAfterWrite(input.event.account);
      return committed;
    },
  };
  const store = createConnectorStore(routesLocal, async (served) => {
    if (served !== account) throw new Error(`account ${served} is not served here`);
    return connector.objects;
  });
  const baseUrl = options.publicUrl ?? INTERNAL_BASE_URL;
  const feed = createChangeFeed({
    client: connector.client,
    objects: connector.objects,
    store: local,
    account,
    tables: WATCHED_TABLES,
    render: (object) => renderObject(store, object, { baseUrl, includeRaw: true }),
    // The caller queues the drain once the poll or push is done.
    notify: () => {},
    retention: options.eventRetention,
    maxPagesPerTable: POLL_PAGES_PER_TABLE,
    log,
  });
  const itsm = createItsmServer({
    store,
    apiKey: options.apiKey,
    appId: options.appId,
    publicUrl: baseUrl,
    eventRetention: options.eventRetention,
    log,
    // Webhook notifications of the /v1 app (to receivers registered through it) are sent from
    // the invocation that wrote: the Worker keeps it open for them (ctx.waitUntil).
    delivery: { attempts: 3, maxDelayMs: 5_000 },
    connector: {
      serves: (served) => served === account,
      defaultAccount: account,
      pushOffHint:
        'set the secret ITSM_SN_PUSH_SECRET on the Worker (`npx wrangler secret put ITSM_SN_PUSH_SECRET`, 16 characters at least)',
      ...(settings.pushSecret && {
        push: {
          secret: settings.pushSecret,
          read: (table: string, sysId: string) => options.readPushed(table, sysId),
        },
      }),
    },
  });
  return {
    account,
    itsm,
    transport: createInProcessTransport(itsm.app),
    apiBaseUrl: `${baseUrl}/v1`,
    feed,
    local,
  };
}
