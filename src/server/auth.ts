// Authentication of the embedded API: `APIKey <key>` (the application key, every account) or
// `Bearer <token>` (bound to one account). Schemes match case-insensitively. Sets the account
// (resolving `accounts/me`) and the acting user recorded on events.
import type { MiddlewareHandler } from 'hono';
import { describeBadAccountId, parseAccountId } from '../itsm/account-id.js';
import { timingSafeEqual } from '../itsm/signature.js';
import type { AppEnv, BearerToken, ServerDeps } from './context.js';
import { ApiError, badRequest } from './errors.js';

export type Credential = { kind: 'app-key' } | { kind: 'bearer'; token: BearerToken };

const AUTH_HINT =
  'send "Authorization: APIKey <application key>" or "Authorization: Bearer <token>"';

/** Resolves the Authorization header to a credential, or throws a 401. */
export function authenticate(deps: ServerDeps, header: string | undefined): Credential {
  if (!header) throw new ApiError('unauthorized', `missing Authorization header: ${AUTH_HINT}`);
  const match = /^\s*(\S+)\s+(.+?)\s*$/.exec(header);
  const scheme = match?.[1]?.toLowerCase();
  const value = match?.[2] ?? '';
  if (scheme === 'apikey') {
    if (timingSafeEqual(value, deps.apiKey)) return { kind: 'app-key' };
    throw new ApiError('unauthorized', 'the API key is not valid for this application');
  }
  if (scheme === 'bearer') {
    for (const [token, binding] of deps.tokens) {
      if (timingSafeEqual(value, token)) return { kind: 'bearer', token: binding };
    }
    throw new ApiError('unauthorized', 'the bearer token is not valid');
  }
  throw new ApiError('unauthorized', `unsupported Authorization scheme: ${AUTH_HINT}`);
}

/** For `/v1/accounts/:account/*`: authenticates and binds the request to one account. */
export function accountAuth(deps: ServerDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const credential = authenticate(deps, c.req.header('Authorization'));
    const param = c.req.param('account') ?? '';
    let account: number;
    if (param === 'me') {
      if (credential.kind !== 'bearer') {
        throw badRequest(
          'accounts/me names the account of a Bearer token; with an API key, give the account id',
        );
      }
      account = credential.token.account;
    } else {
      const id = parseAccountId(param);
      if (id === null)
        throw badRequest(`${describeBadAccountId('the account id', param)}, or "me"`);
      account = id;
    }
    if (credential.kind === 'bearer' && credential.token.account !== account) {
      throw new ApiError(
        'forbidden',
        `this bearer token is bound to account ${credential.token.account}, not ${account}`,
      );
    }
    c.set('account', account);
    c.set('isAppKey', credential.kind === 'app-key');
    // Only the application may act as another user; a token always acts as its own user.
    c.set(
      'actor',
      credential.kind === 'bearer'
        ? (credential.token.userId ?? null)
        : c.req.header('X-Kloudless-As-User')?.trim() || null,
    );
    await next();
  };
}
