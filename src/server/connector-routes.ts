// What `/v1` adds when it serves a ServiceNow instance (the connector): every account path but
// the instance's own is a 404 (one instance is one account), and `POST /servicenow/push`, where
// a Business Rule on the instance names a record it just inserted, updated or deleted so that
// the connector reads it at once instead of at the next poll. The push is authenticated by its
// own secret, not the application API key: the secret has to be stored in the instance, and
// all it allows is a re-read of a record, never a read or a write of data.
import type { Hono } from 'hono';
import { timingSafeEqual } from '../itsm/signature.js';
import type { AppEnv } from './context.js';
import { ApiError, badRequest, jsonResponse, notFound } from './errors.js';

export const PUSH_PATH = '/servicenow/push';

export interface ConnectorRouteOptions {
  /** Whether the account id is served. */
  serves(account: number): boolean;
  /** The account a push names when it names none. */
  defaultAccount: number;
  /**
   * How to turn the push on, for the 404 while it is off; default the command line's
   * `--sn-push-secret` (the Worker names its secret instead).
   */
  pushOffHint?: string;
  push?: {
    secret: string;
    /** Reads the record now; resolves with the events it appended. */
    read(table: string, sysId: string, account: number): Promise<number>;
  };
}

const TABLE = /^[A-Za-z0-9_]{1,80}$/;
const SYS_ID = /^[0-9a-f]{32}$/;

export function registerConnectorRoutes(app: Hono<AppEnv>, options: ConnectorRouteOptions): void {
  app.use('/v1/accounts/:account/*', async (c, next) => {
    if (!options.serves(c.get('account'))) {
      throw notFound(
        `this server serves its ServiceNow instance as account ${options.defaultAccount}; account ${c.get('account')} does not exist here`,
      );
    }
    await next();
  });

  app.post(PUSH_PATH, async (c) => {
    const push = options.push;
    if (!push) {
      throw notFound(
        `${PUSH_PATH} is off: ${options.pushOffHint ?? 'start the server with --sn-push-secret'} to let a Business Rule push changes`,
      );
    }
    const given = /^Bearer\s+(.+)$/i.exec(c.req.header('Authorization') ?? '')?.[1]?.trim() ?? '';
    if (!timingSafeEqual(given, push.secret)) {
      throw new ApiError(
        'unauthorized',
        `${PUSH_PATH} takes "Authorization: Bearer <push secret>"`,
      );
    }
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw badRequest('the push body must be JSON: {"table": "incident", "sys_id": "<32 hex>"}');
    }
    const {
      table,
      sys_id: sysId,
      account = options.defaultAccount,
    } = (body ?? {}) as { table?: unknown; sys_id?: unknown; account?: unknown };
    if (typeof account !== 'number' || !options.serves(account)) {
      throw badRequest(
        `account must be an account this server serves (default ${options.defaultAccount}), got ${JSON.stringify(account)}`,
      );
    }
    if (typeof table !== 'string' || !TABLE.test(table)) {
      throw badRequest(`table must be a table name such as incident, got ${JSON.stringify(table)}`);
    }
    if (typeof sysId !== 'string' || !SYS_ID.test(sysId)) {
      throw badRequest(`sys_id must be 32 lower-case hex digits, got ${JSON.stringify(sysId)}`);
    }
    const events = await push.read(table, sysId, account);
    return jsonResponse(200, { table, sys_id: sysId, events });
  });
}
