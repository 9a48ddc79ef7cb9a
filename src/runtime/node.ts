// Node composition root of the embedded ITSM API: opens the SQLite store with the shared
// migrations (holding the file's lock: one database, one process), serves the Hono app on a port,
// registers start-up webhooks, provisions seed users, and shuts down cleanly. Tests start it on port 0 exactly as the command line does.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAdaptorServer, type ServerType } from '@hono/node-server';
import type { Context } from 'hono';
import { base64ToBytes } from '../itsm/signature.js';
import {
  createItsmServer,
  DEFAULT_EVENT_RETENTION,
  DEFAULT_IDEMPOTENCY_TTL_MS,
  type ItsmServer,
  type ItsmServerOptions,
} from '../server/app.js';
import type { BearerToken } from '../server/context.js';
import { renderObject } from '../server/render.js';
import type { ServiceNowAuth } from '../servicenow/client.js';
import { openConnection, type ServiceNowConnection } from '../servicenow/connector.js';
import { createConnectorStore } from '../servicenow/connector-store.js';
import { type ChangeFeed, DEFAULT_POLL_INTERVAL_MS } from '../servicenow/feed.js';
import type { ItsmStore, Migration, UpstreamStateStore } from '../storage/port.js';
import { createSqliteStore } from '../storage/sqlite.js';
import { lockDatabase } from './database-lock.js';
import { hmacKey, sha256HexNode, signBodyNode } from './node-crypto.js';
import { createNodeWebhookSender } from './node-webhook-sender.js';

export const MIGRATIONS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../migrations');

export function loadMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((name) => /^\d+.*\.sql$/.test(name))
    .sort()
    .map((name) => ({ name, sql: readFileSync(join(dir, name), 'utf8') }));
}

/** Opens (creating the folder of) a SQLite database with every migration applied. */
export function openSqliteStore(path: string): ItsmStore & UpstreamStateStore {
  if (path !== ':memory:') mkdirSync(dirname(resolve(path)), { recursive: true });
  return createSqliteStore({ path, migrations: loadMigrations() });
}

/**
 * The address of the socket a request came in on (the API records it with each write), or null
 * for a request that did not come over a socket: the all-in-one engine's in-process calls,
 * whose context has no Node request. Looked at without a throw: every write asks.
 */
export function socketAddress(c: Context): string | null {
  const env = c.env as
    | { incoming?: { socket?: { remoteAddress?: string } }; server?: typeof env }
    | undefined;
  const bindings = env?.server ?? env;
  return bindings?.incoming?.socket?.remoteAddress ?? null;
}

/** Listens on host:port (0 = any free port) and resolves with the bound address. */
export function listen(server: ServerType, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolveListen, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'EADDRINUSE'
          ? new Error(`port ${port} on ${host} is already in use; choose another with --port`)
          : error,
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolveListen(server.address() as AddressInfo);
    });
  });
}

/** How long requests in flight get to finish before their connections are closed anyway. */
const CLOSE_GRACE_MS = 1_000;

export function closeServer(server: ServerType): Promise<void> {
  return new Promise((resolveClose) => {
    // A connection that never sent a request (a fetch client opens spares) is not "idle" to
    // Node, so after a grace period every connection left is closed.
    const force = setTimeout(() => {
      if ('closeAllConnections' in server) server.closeAllConnections();
    }, CLOSE_GRACE_MS);
    force.unref();
    server.close(() => {
      clearTimeout(force);
      resolveClose();
    });
    // Keep-alive sockets would hold close() open; idle ones can go now.
    if ('closeIdleConnections' in server) server.closeIdleConnections();
  });
}

export interface SeedUser {
  account: number;
  first_name?: string;
  last_name?: string;
  email?: string;
  sys_id?: string;
  [field: string]: unknown;
}

export interface StartItsmServerOptions extends Omit<ItsmServerOptions, 'store' | 'tokens'> {
  port: number;
  host: string;
  /** SQLite file path or `:memory:`. Ignored when `store` is given. */
  db?: string;
  store?: ItsmStore;
  tokens?: Record<string, BearerToken>;
  /** URLs registered (with the handshake) once the server listens. */
  webhooks?: string[];
  /** Team users provisioned as sys_user records at start (skipped when their sys_id exists). */
  users?: SeedUser[];
  /**
   * Serve a ServiceNow instance instead of the embedded store (the connector): one connection,
   * or several, each its own account (an instance, or one instance's data seen by another user),
   * or a function naming the connection of any account, connected on its first request.
   */
  servicenow?:
    | ServiceNowServeOptions
    | readonly ServiceNowServeOptions[]
    | ((account: number) => ServiceNowServeOptions | undefined);
}

export interface ServiceNowServeOptions {
  /** `https://dev12345.service-now.com` (http only on loopback). */
  instanceUrl: string;
  auth: ServiceNowAuth;
  /** The account id the instance is served as. Default 1. */
  account?: number;
  /** Between two polls of the change feed. Default 5000 ms; 0 polls only on push. */
  pollIntervalMs?: number;
  /** Turns on `POST /servicenow/push` with this secret (the first connection's counts). */
  pushSecret?: string;
  /** Per-call timeout of Table API calls. */
  timeoutMs?: number;
  retry?: { maxAttempts?: number; baseDelayMs?: number; maxDelayMs?: number };
  overlapSeconds?: number;
}

export interface RunningItsmServer {
  url: string;
  port: number;
  itsm: ItsmServer;
  store: ItsmStore;
  /** Settles once every start-up webhook is registered or given up on. */
  webhooksReady: Promise<void>;
  /** The connector's change feed of its first (usually only) account (with `servicenow`). */
  feed?: ChangeFeed;
  /** The change feed of each account served (empty without `servicenow`). */
  feeds: ReadonlyMap<number, ChangeFeed>;
  close(): Promise<void>;
}

async function provisionUsers(itsm: ItsmServer, apiKey: string, users: SeedUser[]): Promise<void> {
  for (const { account, ...record } of users) {
    const response = await itsm.app.request(
      `/v1/accounts/${account}/itsm/objects?raw_type=sys_user`,
      {
        method: 'POST',
        headers: { Authorization: `APIKey ${apiKey}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(record),
      },
    );
    // 409: the user's sys_id is already there from an earlier start.
    if (response.status !== 201 && response.status !== 409) {
      throw new Error(
        `provisioning user ${JSON.stringify(record)} failed: ${await response.text()}`,
      );
    }
  }
}

export async function startItsmServer(options: StartItsmServerOptions): Promise<RunningItsmServer> {
  const log = options.log ?? ((line: string) => console.error(line));
  // One database, one process (database-lock.ts), held until close.
  const lock = options.store ? null : lockDatabase(options.db ?? ':memory:');
  let store: ItsmStore;
  const sn = options.servicenow;
  const fixed = sn === undefined || typeof sn === 'function' ? [] : [sn].flat();
  const settingsOf = (account: number): ServiceNowServeOptions | undefined =>
    typeof sn === 'function' ? sn(account) : fixed.find((c) => (c.account ?? 1) === account);
  const connections = new Map<number, Promise<ServiceNowConnection>>();
  const feeds = new Map<number, ChangeFeed>();
  let baseUrl = options.publicUrl?.replace(/\/+$/, '') ?? '';
  let listening = false;
  let itsm: ItsmServer | undefined;

  /** Connects an account: credentials checked, feed primed (and polling once serving). */
  async function connect(
    settings: ServiceNowServeOptions,
    account: number,
  ): Promise<ServiceNowConnection> {
    const connection = await openConnection({
      settings,
      account,
      local: local as ItsmStore & UpstreamStateStore,
      render: (object) => renderObject(store, object, { baseUrl, includeRaw: true }),
      notify: () => itsm?.notifier.notify(account),
      retention: options.eventRetention ?? DEFAULT_EVENT_RETENTION,
      keyRetentionMs: options.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS,
      log,
    });
    feeds.set(account, connection.feed);
    if (listening) startFeed(account, settings);
    return connection;
  }
  function startFeed(account: number, settings: ServiceNowServeOptions): void {
    const interval = settings.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    if (interval > 0) feeds.get(account)?.start(interval);
    log(
      `itsm-api: serving ServiceNow ${settings.instanceUrl} as account ${account}; change feed ${interval > 0 ? `polls every ${interval} ms` : 'polls on push only'}`,
    );
  }
  function connectionOf(account: number): Promise<ServiceNowConnection> {
    let connection = connections.get(account);
    if (!connection) {
      const settings = settingsOf(account);
      if (!settings) throw new Error(`account ${account} is not served by this connector`);
      connection = connect(settings, account);
      // A failed connection is tried again on the next request.
      connection.catch(() => connections.delete(account));
      connections.set(account, connection);
    }
    return connection;
  }

  let local: ItsmStore;
  try {
    local = options.store ?? openSqliteStore(options.db ?? ':memory:');
  } catch (error) {
    lock?.release();
    throw error;
  }
  store =
    sn === undefined
      ? local
      : createConnectorStore(
          local as ItsmStore & UpstreamStateStore,
          async (account) => (await connectionOf(account)).connector.objects,
        );
  try {
    for (const settings of fixed) await connectionOf(settings.account ?? 1);
  } catch (error) {
    for (const feed of feeds.values()) await feed.stop();
    if (!options.store) await local.close();
    lock?.release();
    throw error;
  }
  const pushSecret =
    fixed[0]?.pushSecret ?? (typeof sn === 'function' ? sn(1)?.pushSecret : undefined);
  // Notifications over node:http with kept-alive connections rather than a fetch each.
  const webhookSender = createNodeWebhookSender();
  itsm = createItsmServer({
    // node:crypto answers at once; WebCrypto would send every signature and hash to the thread pool.
    sign: signBodyNode,
    hash: sha256HexNode,
    webhookSender: webhookSender.send,
    ...options,
    store,
    log,
    ...(sn !== undefined && {
      connector: {
        serves: (account: number) => settingsOf(account) !== undefined,
        defaultAccount: fixed[0]?.account ?? 1,
        ...(pushSecret && {
          push: {
            secret: pushSecret,
            read: async (table: string, sysId: string, account: number) =>
              (await connectionOf(account)).feed.readRecord(table, sysId),
          },
        }),
      },
    }),
    clientIp: socketAddress,
  });
  const users = options.users ?? [];
  // Provisioning is the server's own set-up, not traffic to fault.
  const server0 = itsm;
  await (server0.faults
    ? server0.faults.bypass(() => provisionUsers(server0, options.apiKey, users))
    : provisionUsers(server0, options.apiKey, users));
  const server = createAdaptorServer({ fetch: itsm.app.fetch });
  let address: AddressInfo;
  try {
    address = await listen(server, options.port, options.host);
  } catch (error) {
    await store.close();
    lock?.release();
    throw error;
  }
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;

  let closing = false;
  const webhooksReady = registerStartupWebhooks(itsm, options.webhooks ?? [], log, () => closing);
  if (sn !== undefined) {
    baseUrl ||= url;
    listening = true;
    for (const [account] of connections) {
      const settings = settingsOf(account);
      if (settings && feeds.has(account)) startFeed(account, settings);
    }
  }

  return {
    url,
    port: address.port,
    itsm,
    store,
    webhooksReady,
    feeds,
    ...(feeds.size > 0 && { feed: [...feeds.values()][0] }),
    async close() {
      closing = true;
      for (const feed of feeds.values()) await feed.stop();
      await closeServer(server);
      await itsm.close();
      webhookSender.close();
      await webhooksReady;
      if (!options.store) await store.close();
      lock?.release();
    },
  };
}

/**
 * Registers each URL; a receiver that is not up yet is retried for about two minutes so that
 * the API and its receiver can be started in either order.
 */
async function registerStartupWebhooks(
  itsm: ItsmServer,
  urls: string[],
  log: (line: string) => void,
  stopped: () => boolean,
): Promise<void> {
  await Promise.all(
    urls.map(async (url) => {
      for (let attempt = 1; attempt <= 12 && !stopped(); attempt++) {
        try {
          const { webhook, created } = await itsm.registerWebhook(url);
          log(
            `itsm-api: webhook ${webhook.id} ${created ? 'registered' : 'already registered'}: ${webhook.url}`,
          );
          return;
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          log(`itsm-api: ${message}${attempt < 12 ? '; retrying in 10 s' : '; giving up'}`);
          for (let waited = 0; waited < 10_000 && !stopped(); waited += 250) {
            await new Promise((r) => setTimeout(r, 250));
          }
        }
      }
    }),
  );
}

/**
 * verifySignature (src/itsm/signature.ts) on node:crypto, answering at once: the same contract (standard Base64 of
 * HMAC-SHA256 over the raw bytes, any of the keys, compared in constant time), about ten times
 * faster than WebCrypto on Node, which hands every HMAC to the thread pool.
 */
export function verifySignatureNode(
  body: string | Uint8Array,
  signature: string | null | undefined,
  keys: readonly string[],
): boolean {
  if (!signature) return false;
  const given = base64ToBytes(signature.trim());
  if (given?.length !== 32) return false;
  let valid = false;
  // Every key is tried, so the time does not tell which one matched.
  for (const key of keys) {
    const expected = createHmac('sha256', hmacKey(key)).update(body).digest();
    if (timingSafeEqual(expected, given)) valid = true;
  }
  return valid;
}
