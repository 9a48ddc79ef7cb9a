// One connection of the connector assembled, runtime-neutral (fetch only; the local store is
// any adapter of the port): the Table API client, the ServiceNow adapter of the object port for
// its account, the start-up credential check, and the change feed. The store the routes use
// (objects upstream, the rest local) is connector-store.ts over one or more connections.
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
  const objects = createServiceNowObjects({ client, account: options.account, log });
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
