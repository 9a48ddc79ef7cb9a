// Who may use the Table API face, and as whom: HTTP Basic for the ServiceNow users given at
// start (`--sn-user NAME:PASSWORD[:ACCOUNT]`), Basic `<account>:<application key>` for the
// application itself, the `/v1` Bearer tokens, and OAuth 2 tokens from `POST /oauth_token.do`
// (password and refresh_token grants, for the clients given with `--sn-oauth-client`). Tokens
// expire (`expires_in`, 1800 s by default; refresh tokens after 100 days) and are kept in the
// server's store as SHA-256 hashes (never the tokens), so a restart, or another isolate over the
// same database, accepts them; expired ones are purged at most once a minute, as tokens are
// issued. Each user is a sys_user record of its account, created on first use, so its writes
// carry its user id and user name.
import type { Context, Hono } from 'hono';
import { parseAccountId } from '../itsm/account-id.js';
import { timingSafeEqual } from '../itsm/signature.js';
import { notAuthenticated } from '../servicenow/errors.js';
import { createMemoryOAuthTokenStore } from '../storage/memory-oauth-tokens.js';
import type { OAuthTokenRecord } from '../storage/port.js';
import type { AppEnv, ServerDeps } from './context.js';
import { createObject } from './objects.js';
import { sysIdToUserId, USER_RAW_TYPE } from './users.js';

export interface SnUser {
  name: string;
  password: string;
  account: number;
}

export interface SnOAuthClient {
  id: string;
  secret: string;
}

export interface TableApiOptions {
  /** Users that sign in with Basic auth or the OAuth password grant. */
  users?: readonly SnUser[];
  /** OAuth clients allowed at `POST /oauth_token.do`. */
  oauthClients?: readonly SnOAuthClient[];
  /** Lifetime of an OAuth access token, in seconds. Default 1800, as an instance's. */
  tokenTtlSeconds?: number;
  /** Lifetime of a refresh token, in seconds. Default 100 days, as an instance's. */
  refreshTtlSeconds?: number;
  /** Milliseconds since the epoch; tests pass a clock they move. */
  now?: () => number;
}

/** The caller of a Table API request. */
export interface TableCaller {
  account: number;
  /** The user id recorded on events, null for the application. */
  actor: string | null;
  /** The user name stamped on records (`sys_created_by`, `sys_updated_by`). */
  userName: string;
}

export const DEFAULT_TOKEN_TTL_SECONDS = 1800;
const DEFAULT_REFRESH_TTL_SECONDS = 100 * 24 * 60 * 60;
/** The longest between two purges of expired tokens from the store. */
const TOKEN_PURGE_INTERVAL_MS = 60_000;

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
}

function decodeBasic(value: string): { name: string; password: string } | null {
  let text: string;
  try {
    text = new TextDecoder().decode(Uint8Array.from(atob(value), (ch) => ch.charCodeAt(0)));
  } catch {
    return null;
  }
  const colon = text.indexOf(':');
  return colon < 0 ? null : { name: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** An OAuth error in the RFC 6749 shape that OAuth clients read. */
function oauthError(status: 400 | 401, error: string, description: string): Response {
  return new Response(JSON.stringify({ error, error_description: description }), {
    status,
    headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' },
  });
}

export interface TableAuth {
  /** Resolves the request's credentials to a caller, or throws a 401 in ServiceNow's shape. */
  authenticate(c: Context): Promise<TableCaller>;
}

export function createTableAuth(
  app: Hono<AppEnv>,
  deps: ServerDeps,
  options: TableApiOptions,
): TableAuth {
  const users = options.users ?? [];
  const clients = options.oauthClients ?? [];
  const now = options.now ?? Date.now;
  const tokenTtl = (options.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS) * 1000;
  const refreshTtl = (options.refreshTtlSeconds ?? DEFAULT_REFRESH_TTL_SECONDS) * 1000;
  const tokens = deps.store.oauthTokens ?? createMemoryOAuthTokenStore();
  let lastPurge = Number.NEGATIVE_INFINITY;
  const userSysIds = new Map<string, string>();
  const provisioning = new Map<string, Promise<string>>();

  const findUser = (name: string, password: string): SnUser | undefined => {
    let found: SnUser | undefined;
    // Every user is compared, so the time taken does not tell which names exist.
    for (const user of users) {
      const nameMatches = timingSafeEqual(name, user.name);
      if (timingSafeEqual(password, user.password) && nameMatches) found = user;
    }
    return found;
  };

  /** The sys_user record of a configured user, created in its account on first use. */
  const sysIdOf = async (user: SnUser, baseUrl: string): Promise<string> => {
    const cacheKey = `${user.account}:${user.name}`;
    const cached = userSysIds.get(cacheKey);
    if (cached) {
      const [still] = await deps.store.findByUpstreamIds(user.account, USER_RAW_TYPE, [cached]);
      if (still) return cached;
      userSysIds.delete(cacheKey);
    }
    // Concurrent first requests of one user share one look-up, so the record is made once (with
    // a store whose calls really wait, as D1's do, they would otherwise each make one).
    let pending = provisioning.get(cacheKey);
    if (!pending) {
      pending = provision(user, baseUrl, cacheKey).finally(() => provisioning.delete(cacheKey));
      provisioning.set(cacheKey, pending);
    }
    return pending;
  };

  const provision = async (user: SnUser, baseUrl: string, cacheKey: string): Promise<string> => {
    const { objects } = await deps.store.listObjects({
      account: user.account,
      type: 'object',
      rawType: USER_RAW_TYPE,
      offset: 0,
      limit: Number.MAX_SAFE_INTEGER,
    });
    let record = objects.find((o) => o.fields.user_name === user.name);
    if (!record) {
      ({ object: record } = await createObject(
        deps,
        {
          account: user.account,
          actor: null,
          ip: null,
          userName: 'system',
          baseUrl,
        },
        'object',
        USER_RAW_TYPE,
        { user_name: user.name, name: user.name, active: 'true' },
      ));
    }
    userSysIds.set(cacheKey, record.upstreamId);
    return record.upstreamId;
  };

  const baseOf = (c: Context) => (deps.publicUrl ?? new URL(c.req.url).origin).replace(/\/+$/, '');
  const callerOf = async (user: SnUser, c: Context): Promise<TableCaller> => ({
    account: user.account,
    actor: sysIdToUserId(await sysIdOf(user, baseOf(c))),
    userName: user.name,
  });

  /** The configured user a stored token acts as; none once the user is no longer configured. */
  const userOf = (token: OAuthTokenRecord): SnUser | undefined =>
    users.find((u) => u.account === token.account && u.name === token.userName);

  // Access tokens this server has issued or read, by hash: a stored token never changes (none is
  // revoked; expiry is read from the record), so a Bearer request reads the store only for a
  // token issued before a restart or by another server. Expired ones leave with the purge.
  const accessGrants = new Map<string, OAuthTokenRecord>();

  const store = async (
    token: string,
    kind: OAuthTokenRecord['kind'],
    user: SnUser,
    clientId: string,
    expiresAt: number,
  ) => {
    const record: OAuthTokenRecord = {
      hash: await deps.sha256Hex(token),
      kind,
      account: user.account,
      userName: user.name,
      clientId,
      expiresAt,
    };
    await tokens.putOAuthToken(record);
    if (kind === 'access') accessGrants.set(record.hash, record);
  };

  const accessGrantOf = async (token: string): Promise<OAuthTokenRecord | null> => {
    const hash = await deps.sha256Hex(token);
    const known = accessGrants.get(hash);
    if (known) return known;
    const stored = await tokens.getOAuthToken('access', hash);
    if (stored) accessGrants.set(hash, stored);
    return stored;
  };

  const issue = async (user: SnUser, clientId: string, refreshToken?: string) => {
    const at = now();
    // Expired tokens leave the store as new ones are issued, at most once a minute, so that
    // neither every request nor every grant pays for a delete.
    if (at - lastPurge >= TOKEN_PURGE_INTERVAL_MS) {
      lastPurge = at;
      await tokens.purgeOAuthTokens(at);
      for (const [hash, grant] of accessGrants)
        if (grant.expiresAt <= at) accessGrants.delete(hash);
    }
    const accessToken = randomToken();
    await store(accessToken, 'access', user, clientId, at + tokenTtl);
    const refresh = refreshToken ?? randomToken();
    if (!refreshToken) await store(refresh, 'refresh', user, clientId, at + refreshTtl);
    return {
      access_token: accessToken,
      refresh_token: refresh,
      scope: 'useraccount',
      token_type: 'Bearer',
      expires_in: Math.round(tokenTtl / 1000),
    };
  };

  app.post('/oauth_token.do', async (c) => {
    const form = new URLSearchParams(await c.req.text());
    const clientId = form.get('client_id') ?? '';
    const clientSecret = form.get('client_secret') ?? '';
    const client = clients.find(
      (k) => timingSafeEqual(clientId, k.id) && timingSafeEqual(clientSecret, k.secret),
    );
    if (!client) {
      return oauthError(
        401,
        'invalid_client',
        'client_id and client_secret do not name a client of this instance',
      );
    }
    const grantType = form.get('grant_type');
    if (grantType === 'password') {
      const user = findUser(form.get('username') ?? '', form.get('password') ?? '');
      if (!user) return oauthError(401, 'invalid_grant', 'the user name or password is not valid');
      await sysIdOf(user, baseOf(c));
      return c.json(await issue(user, client.id), 200, { 'Cache-Control': 'no-store' });
    }
    if (grantType === 'refresh_token') {
      const token = form.get('refresh_token') ?? '';
      const grant = token
        ? await tokens.getOAuthToken('refresh', await deps.sha256Hex(token))
        : null;
      // A refresh token is good only for the client it was issued to (RFC 6749, section 6).
      const user =
        grant && grant.expiresAt > now() && grant.clientId === client.id
          ? userOf(grant)
          : undefined;
      if (!user) {
        return oauthError(
          401,
          'invalid_grant',
          'the refresh token is not valid or has expired; sign in again with grant_type=password',
        );
      }
      return c.json(await issue(user, client.id, token), 200, { 'Cache-Control': 'no-store' });
    }
    return oauthError(
      400,
      'unsupported_grant_type',
      `grant_type must be password or refresh_token, got ${JSON.stringify(grantType ?? '')}`,
    );
  });

  return {
    async authenticate(c) {
      const header = c.req.header('Authorization');
      if (!header) {
        throw notAuthenticated(
          'Required to provide Auth information: HTTP Basic or an OAuth Bearer token',
        );
      }
      const match = /^\s*(\S+)\s+(.+?)\s*$/.exec(header);
      const scheme = match?.[1]?.toLowerCase();
      const value = match?.[2] ?? '';
      if (scheme === 'basic') {
        const credentials = decodeBasic(value);
        if (!credentials)
          throw notAuthenticated('the Basic credentials are not Base64 of name:password');
        const user = findUser(credentials.name, credentials.password);
        if (user) return callerOf(user, c);
        // The application signs in as `<account>:<application key>`, any account id /v1 takes
        // (up to 2^53 - 1), so the connector can serve every account of the face.
        const account = parseAccountId(credentials.name);
        if (account !== null && timingSafeEqual(credentials.password, deps.apiKey)) {
          return { account, actor: null, userName: 'system' };
        }
        throw notAuthenticated('invalid user name or password');
      }
      if (scheme === 'bearer') {
        // The /v1 tokens first: they are in memory, and their callers need no store read.
        for (const [token, binding] of deps.tokens) {
          if (timingSafeEqual(value, token)) {
            return {
              account: binding.account,
              actor: binding.userId ?? null,
              userName: binding.userId ?? 'system',
            };
          }
        }
        // Looked up by hash: the store holds no token, so a copy of it gives none away.
        const grant = await accessGrantOf(value);
        const user = grant ? userOf(grant) : undefined;
        if (grant && user) {
          if (grant.expiresAt > now()) return callerOf(user, c);
          accessGrants.delete(grant.hash);
          throw notAuthenticated(
            'the access token has expired; get a new one from /oauth_token.do with grant_type=refresh_token',
          );
        }
        throw notAuthenticated('the bearer token is not valid');
      }
      throw notAuthenticated('use HTTP Basic or an OAuth Bearer token from /oauth_token.do');
    },
  };
}
