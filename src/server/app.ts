// The embedded ITSM API as one Hono app (docs/api.md). Runtime-neutral: the Node
// runtime serves it on a port, tests call it over real HTTP, and the engine's all-in-one mode
// mounts it under the same process. `createItsmServer` wires the store, the webhook notifier and
// the routes, and maps every error to the Kloudless error body in one place.
import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { nanoid } from 'nanoid';
import { describeBadAccountId, parseAccountId } from '../itsm/account-id.js';
import { type BodySigner, sha256Hex, signBody, type TextHasher } from '../itsm/signature.js';
import type { ItsmStore } from '../storage/port.js';
import { registerAccountRoutes } from './accounts.js';
import { accountAuth, authenticate } from './auth.js';
import { type ConnectorRouteOptions, registerConnectorRoutes } from './connector-routes.js';
import type { AppEnv, BearerToken, ServerDeps } from './context.js';
import { ApiError, errorResponse, jsonResponse } from './errors.js';
import { registerEventRoutes } from './events.js';
import {
  createFaultInjector,
  FAULTS_PATH,
  type FaultController,
  type FaultOptions,
} from './faults.js';
import { createKeyRetention } from './key-retention.js';
import { DEFAULT_EVENT_RETENTION, DEFAULT_MAX_BODY_BYTES } from './limits.js';
import { registerObjectRoutes } from './objects.js';
import { itsmOpenApi } from './openapi.js';
import { DEFAULT_MAX_PAGE_BYTES } from './page-budget.js';
import {
  isTableApiPath,
  registerTableApiRoutes,
  type TableApiOptions,
  tableApiErrorResponse,
} from './table-api.js';
import { registerTeamRoutes } from './team.js';
import { upstreamApiError } from './upstream-errors.js';
import { type DeliveryOptions, WebhookNotifier, type WebhookSender } from './webhook-delivery.js';
import { registerWebhook, registerWebhookRoutes } from './webhooks.js';

export { DEFAULT_EVENT_RETENTION, DEFAULT_MAX_BODY_BYTES };
export const DEFAULT_IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

export interface ItsmServerOptions {
  store: ItsmStore;
  /** The application API key: `Authorization: APIKey <key>`, and the webhook signing key. */
  apiKey: string;
  appId: string;
  /** Bearer tokens, each bound to one account. */
  tokens?: ReadonlyMap<string, BearerToken> | Record<string, BearerToken>;
  /** Base of every `href` (`https://itsm.example.com`); default: the request's origin. */
  publicUrl?: string;
  /** Largest accepted request body; larger ones get a 413. Default 1 MiB. */
  maxBodyBytes?: number;
  /**
   * Byte budget of one page of events or objects (their JSON, UTF-8): a page stops adding items
   * past it, keeping at least one. Default 8 MiB (DEFAULT_MAX_PAGE_BYTES).
   */
  maxPageBytes?: number;
  /** Events kept per account. Default 10,000. */
  eventRetention?: number;
  /** How long an Idempotency-Key is remembered. Default 24 h. */
  idempotencyTtlMs?: number;
  /**
   * At most this long between two purges of forgotten keys from the store (a key is forgotten
   * at its TTL whether purged or not). Default the shorter of a minute and the TTL.
   */
  idempotencyPurgeIntervalMs?: number;
  /** Retry and timeout settings of webhook notifications. */
  delivery?: DeliveryOptions;
  /** The client address recorded as `ip` on events (runtime-specific). */
  clientIp?: (c: Context) => string | null;
  log?: (line: string) => void;
  /**
   * Fault injection, a testing aid (see faults.ts): random faults at these rates plus scripted
   * ones through `server.faults`. Off when absent; `{}` turns on scripted faults only.
   */
  faults?: FaultOptions;
  /**
   * Signs webhook notifications (signBody's contract). Default: WebCrypto, which runs everywhere;
   * Node passes node:crypto, which answers at once instead of through the thread pool.
   */
  sign?: BodySigner;
  /** Hashes requests for their Idempotency-Key (sha256Hex's contract). Default: WebCrypto. */
  hash?: TextHasher;
  /**
   * Sends each webhook notification (the handshake stays on fetch). Default: fetch, which runs
   * everywhere; Node passes a node:http sender with kept-alive connections.
   */
  webhookSender?: WebhookSender;
  /** The ServiceNow Table API face (`/api/now/table/*`): its users, OAuth clients, tokens. */
  tableApi?: TableApiOptions;
  /** Serving a ServiceNow instance (the connector): its account and the push endpoint. */
  connector?: ConnectorRouteOptions;
}

export interface ItsmServer {
  app: Hono<AppEnv>;
  notifier: WebhookNotifier;
  /** Registers a webhook URL after the handshake, as `POST .../webhooks` does. */
  registerWebhook(url: string): ReturnType<typeof registerWebhook>;
  /** Stops webhook delivery (waiting for requests in flight); the store stays open. */
  close(): Promise<void>;
  /** The fault injector, present when the server was created with `faults`. */
  faults?: FaultController;
}

const ROUTE_METHODS: [string, string[]][] = [
  ['/v1/accounts/:account', ['GET']],
  ['/v1/oauth/token', ['GET']],
  ['/v1/accounts/:account/itsm/:collection', ['GET', 'POST']],
  ['/v1/accounts/:account/itsm/:collection/:id', ['GET', 'PATCH', 'DELETE']],
  ['/v1/accounts/:account/events', ['GET']],
  ['/v1/accounts/:account/events/latest', ['GET']],
  ['/v1/accounts/:account/team/users', ['GET']],
  ['/v1/accounts/:account/team/users/:user', ['GET']],
  ['/v1/applications/:app_id/webhooks', ['GET', 'POST']],
  ['/v1/applications/:app_id/webhooks/:id', ['GET', 'DELETE']],
];

/** A 413 for a body over the limit. */
function bodyTooLarge(maxBodyBytes: number): ApiError {
  // The unread body would stay on the socket: close it instead of keeping it alive.
  return new ApiError(
    'payload_too_large',
    `the request body is larger than the limit of ${maxBodyBytes} bytes`,
    { Connection: 'close' },
  );
}

export function createItsmServer(options: ItsmServerOptions): ItsmServer {
  const log = options.log ?? (() => {});
  const tokens =
    options.tokens instanceof Map
      ? options.tokens
      : new Map(Object.entries((options.tokens ?? {}) as Record<string, BearerToken>));
  for (const binding of tokens.values()) {
    // The token itself is a secret: the message names only its account.
    if (parseAccountId(binding.account) === null) {
      throw new TypeError(
        `createItsmServer: ${describeBadAccountId("a bearer token's account", binding.account)}`,
      );
    }
  }
  const notifier = new WebhookNotifier({
    store: options.store,
    appId: options.appId,
    apiKey: options.apiKey,
    sign: options.sign ?? signBody,
    log,
    ...options.delivery,
    ...(options.webhookSender && { send: options.webhookSender }),
  });
  const idempotencyTtlMs = options.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS;
  const deps: ServerDeps = {
    store: options.store,
    apiKey: options.apiKey,
    appId: options.appId,
    tokens,
    publicUrl: options.publicUrl,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    maxPageBytes: options.maxPageBytes ?? DEFAULT_MAX_PAGE_BYTES,
    eventRetention: options.eventRetention ?? DEFAULT_EVENT_RETENTION,
    keys: createKeyRetention({
      store: options.store,
      ttlMs: idempotencyTtlMs,
      ...(options.idempotencyPurgeIntervalMs !== undefined && {
        purgeIntervalMs: options.idempotencyPurgeIntervalMs,
      }),
    }),
    sha256Hex: options.hash ?? sha256Hex,
    notifier,
    handshakeTimeoutMs: options.delivery?.timeoutMs,
    clientIp: options.clientIp ?? (() => null),
    log,
  };

  const app = new Hono<AppEnv>({ strict: false });
  const faults = options.faults ? createFaultInjector(options.faults, log) : undefined;

  app.use(async (c, next) => {
    const requestId = nanoid(16);
    c.set('requestId', requestId);
    await next();
    c.res.headers.set('X-Request-Id', requestId);
  });
  if (faults) {
    app.use('/v1/*', faults.middleware);
    // The Table API face stands in for a ServiceNow instance: the connector's tests fault it.
    app.use('/api/now/*', faults.middleware);
  }
  // Hono's bodyLimit starts by looking at `c.req.raw.body`, which on @hono/node-server turns
  // its lightweight request into a full web Request (an AbortController, the body as a web
  // stream) on every request, GETs included, and the body is then read through that stream.
  // A declared Content-Length is checked here without touching the body, exactly as bodyLimit
  // checks it (the HTTP parser holds the body to that length); only a body of undeclared
  // length (chunked) goes through bodyLimit's counting read. GET and HEAD carry no body.
  const limitUndeclaredBody = bodyLimit({
    maxSize: deps.maxBodyBytes,
    onError: () => {
      throw bodyTooLarge(deps.maxBodyBytes);
    },
  });
  app.use((c, next) => {
    const method = c.req.method;
    if (method === 'GET' || method === 'HEAD') return next();
    const length = c.req.header('Content-Length');
    if (length === undefined || c.req.header('Transfer-Encoding') !== undefined) {
      return limitUndeclaredBody(c, next);
    }
    if (Number.parseInt(length, 10) > deps.maxBodyBytes) throw bodyTooLarge(deps.maxBodyBytes);
    return next();
  });
  // Also matches /v1/accounts/:account itself (the account detail).
  app.use('/v1/accounts/:account/*', accountAuth(deps));
  if (options.connector) registerConnectorRoutes(app, options.connector);

  app.get('/healthz', (_c) =>
    jsonResponse(200, { ok: true, service: 'itsm-api', app_id: deps.appId }),
  );
  app.get('/openapi.json', () =>
    jsonResponse(
      200,
      itsmOpenApi({ faults: Boolean(faults), servicenow: Boolean(options.connector) }),
    ),
  );
  if (faults) {
    // The injector's settings and counters (a testing aid like the faults): soak runs read what
    // was injected from here. Outside /v1, so never faulted itself.
    app.get(FAULTS_PATH, (c) => {
      if (authenticate(deps, c.req.header('Authorization')).kind !== 'app-key') {
        throw new ApiError('forbidden', 'the fault counters are read with the application API key');
      }
      return jsonResponse(200, { seed: faults.seed, rates: faults.rates(), ...faults.counters() });
    });
  }
  registerAccountRoutes(app, deps);
  registerObjectRoutes(app, deps);
  registerEventRoutes(app, deps);
  registerTeamRoutes(app, deps);
  registerWebhookRoutes(app, deps);
  registerTableApiRoutes(app, deps, options.tableApi ?? {});

  for (const [path, methods] of ROUTE_METHODS) {
    app.all(path, (c) => {
      throw new ApiError(
        'method_not_allowed',
        `${c.req.method} is not allowed here; use ${methods.join(', ')}`,
        {
          Allow: methods.join(', '),
        },
      );
    });
  }

  app.notFound((c) =>
    isTableApiPath(c.req.path)
      ? tableApiErrorResponse(new ApiError('not_found', `no such endpoint: ${c.req.path}`), log)
      : errorResponse(
          new ApiError(
            'not_found',
            `no such endpoint: ${c.req.method} ${new URL(c.req.url).pathname}`,
          ),
          c.get('requestId') ?? nanoid(16),
        ),
  );
  app.onError((error, c) => {
    const requestId = c.get('requestId') ?? nanoid(16);
    if (isTableApiPath(c.req.path)) return tableApiErrorResponse(error, log);
    if (error instanceof ApiError) return errorResponse(error, requestId);
    const upstream = upstreamApiError(error);
    if (upstream) {
      log(
        `itsm-api: ${c.req.method} ${c.req.path} (request ${requestId}) answered ${upstream.status}: ${(error as Error).message}`,
      );
      return errorResponse(upstream, requestId);
    }
    log(
      `itsm-api: internal error on ${c.req.method} ${c.req.path} (request ${requestId}): ${error.stack ?? error}`,
    );
    return errorResponse(
      new ApiError('internal_error', `internal error; quote request id ${requestId}`),
      requestId,
    );
  });

  return {
    app,
    notifier,
    registerWebhook: (url) => registerWebhook(deps, url),
    close: () => notifier.stop(),
    ...(faults && { faults }),
  };
}
