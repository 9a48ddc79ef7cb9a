// One connection of the connector assembled, runtime-neutral (fetch only; the local store is
// any adapter of the port): the Table API client, the ServiceNow adapter of the object port for
// its account, the start-up credential check, and the change feed. The store the routes use
// (objects upstream, the rest local) is connector-store.ts over one or more connections.
// `openConnection` is the one way a runtime connects an account (the connector server, the engine
// all-in-one): it checks the credentials and primes the feed before anything is served.
// The Node runtime (runtime/node.ts) wires it to a port and a timer; a Worker can wire it to a
// cron trigger and D1 the same way.
import type { ItsmStore, StoredObject, UpstreamStateStore } from '../storage/port.js';
import {
  createServiceNowClient,
  type ServiceNowAuth,
  type ServiceNowClient,
  ServiceNowError,
} from './client.js';
import { type ChangeFeed, createChangeFeed } from './feed.js';
import { UPSTREAM_TABLES } from './mapping.js';
import { createServiceNowObjects, type ServiceNowObjects } from './objects.js';

/** The tables the feed watches: the unified types' and the team users'. */
export const WATCHED_TABLES: readonly string[] = [
  ...Object.values(UPSTREAM_TABLES).map((t) => t.table),
  'sys_user',
];

export interface ServiceNowConnectorOptions {
  instanceUrl: string;
  auth: ServiceNowAuth;
  /** The account id `/v1` serves the instance as. */
  account: number;
  /** Events, idempotency records, webhooks, version marks and watermarks. */
  local: ItsmStore & UpstreamStateStore;
  /** Per-call timeout of Table API calls. */
  timeoutMs?: number;
  /** Retry settings of Table API calls (tests shorten them). */
  retry?: { maxAttempts?: number; baseDelayMs?: number; maxDelayMs?: number };
  /** The server's idempotency TTL (see ServiceNowObjectsOptions.keyRetentionMs). */
  keyRetentionMs?: number;
  log?: (line: string) => void;
  fetch?: typeof globalThis.fetch;
}

export interface ServiceNowConnector {
  client: ServiceNowClient;
  objects: ServiceNowObjects;
  /** One cheap call that proves the URL and credentials; throws a clear ServiceNowError. */
  checkCredentials(): Promise<void>;
  createFeed(options: {
    render(object: StoredObject): Promise<Record<string, unknown>>;
    notify(): void;
    retention: number;
    overlapSeconds?: number;
  }): ChangeFeed;
}

export function createServiceNowConnector(
  options: ServiceNowConnectorOptions,
): ServiceNowConnector {
  const log = options.log ?? (() => {});
  const client = createServiceNowClient({
    instanceUrl: options.instanceUrl,
    auth: options.auth,
    ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
    ...options.retry,
    ...(options.fetch && { fetch: options.fetch }),
    log,
  });
  const objects = createServiceNowObjects({
    client,
    account: options.account,
    ...(options.keyRetentionMs !== undefined && { keyRetentionMs: options.keyRetentionMs }),
    log,
  });
  return {
    client,
    objects,
    async checkCredentials() {
      try {
        await client.list('sys_user', { fields: ['sys_id'], limit: 1 });
      } catch (error) {
        if (!(error instanceof ServiceNowError)) throw error;
        const who = options.auth.kind === 'oauth' ? 'OAuth client and user' : 'user';
        const hint: Partial<Record<ServiceNowError['code'], string>> = {
          SN_UNAUTHENTICATED: `the instance refused the ${who}: check the user name and password (and the OAuth client id and secret)`,
          SN_FORBIDDEN: `the ${who} may not read sys_user: give the integration user the itil and rest_api_explorer roles`,
        };
        throw new ServiceNowError(
          error.code,
          `cannot use the ServiceNow instance at ${client.instanceUrl}: ${hint[error.code] ?? error.message}`,
          error.status,
          error.instanceMessage,
          error.instanceDetail,
          { cause: error },
        );
      }
    },
    createFeed: (feed) =>
      createChangeFeed({
        client,
        objects,
        store: options.local,
        account: options.account,
        tables: WATCHED_TABLES,
        render: feed.render,
        notify: feed.notify,
        retention: feed.retention,
        ...(feed.overlapSeconds !== undefined && { overlapSeconds: feed.overlapSeconds }),
        log,
      }),
  };
}

/** Where an instance is and how to use it: what a runtime's settings give `openConnection`. */
export interface ConnectionSettings {
  instanceUrl: string;
  auth: ServiceNowAuth;
  timeoutMs?: number;
  retry?: ServiceNowConnectorOptions['retry'];
  overlapSeconds?: number;
}

export interface OpenConnectionOptions {
  settings: ConnectionSettings;
  account: number;
  local: ItsmStore & UpstreamStateStore;
  /** The object as `/v1` shows it (raw included): the metadata of the feed's events. */
  render(object: StoredObject): Promise<Record<string, unknown>>;
  /** Called after the feed appended events (webhook notification of the account). */
  notify(): void;
  retention: number;
  /** The server's idempotency TTL: how long a create's key makes its record its own. */
  keyRetentionMs?: number;
  log?: (line: string) => void;
  fetch?: typeof globalThis.fetch;
}

export interface ServiceNowConnection {
  connector: ServiceNowConnector;
  /** Primed, not polling: the runtime starts it once it serves. */
  feed: ChangeFeed;
}

/**
 * Connects an account: the connector made, its credentials checked (a clear ServiceNowError when
 * the instance is down or refuses the user), and its feed created and primed, so that every
 * change from now on is reported and earlier history is not replayed.
 */
export async function openConnection(
  options: OpenConnectionOptions,
): Promise<ServiceNowConnection> {
  const { settings } = options;
  const connector = createServiceNowConnector({
    instanceUrl: settings.instanceUrl,
    auth: settings.auth,
    account: options.account,
    local: options.local,
    ...(settings.timeoutMs !== undefined && { timeoutMs: settings.timeoutMs }),
    ...(settings.retry && { retry: settings.retry }),
    ...(options.keyRetentionMs !== undefined && { keyRetentionMs: options.keyRetentionMs }),
    ...(options.log && { log: options.log }),
    ...(options.fetch && { fetch: options.fetch }),
  });
  await connector.checkCredentials();
  const feed = connector.createFeed({
    render: options.render,
    notify: options.notify,
    retention: options.retention,
    ...(settings.overlapSeconds !== undefined && { overlapSeconds: settings.overlapSeconds }),
  });
  await feed.prime();
  return { connector, feed };
}
