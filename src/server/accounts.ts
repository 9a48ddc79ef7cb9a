// The account detail and the token check that the official Kloudless SDKs call: `GET
// /v1/accounts/{id|me}` (the kloudless-js `Account.getDetail`, kloudless-python `Account`) and
// `GET /v1/oauth/token` (`verifyToken` / `verify_token` / `get_verified_account`, which compare
// its `client_id` with the application id). The embedded API keeps no account records: every
// account id of the rule exists, is active, and is a ServiceNow connection of this application.
import type { Hono } from 'hono';
import { formatIsoDate } from '../itsm/schemas.js';
import { authenticate } from './auth.js';
import type { AppEnv, ServerDeps } from './context.js';
import { badRequest, jsonResponse } from './errors.js';

export const ACCOUNT_SERVICE = 'servicenow';
/** What a token or the API key reaches here: the ITSM API of a ServiceNow connection. */
export const ACCOUNT_SCOPE = 'servicenow:normal.itsm';

/** The Kloudless account object (`type: account`, `api: meta`) of an account id. */
export function renderAccount(account: number, created: string) {
  return {
    id: account,
    account: `account-${account}`,
    service: ACCOUNT_SERVICE,
    service_name: 'ServiceNow',
    active: true,
    admin: false,
    apis: ['itsm'],
    effective_scope: ACCOUNT_SCOPE,
    created,
    modified: created,
    type: 'account',
    api: 'meta',
  };
}

export function registerAccountRoutes(app: Hono<AppEnv>, deps: ServerDeps): void {
  // Accounts are not stored: created and modified are when this server started serving them.
  const started = formatIsoDate(new Date());

  // accountAuth (app.ts) has bound the request to the account of the path or of the token.
  app.get('/v1/accounts/:account', (c) =>
    jsonResponse(200, renderAccount(c.get('account'), started)),
  );

  app.get('/v1/oauth/token', (c) => {
    const credential = authenticate(deps, c.req.header('Authorization'));
    if (credential.kind !== 'bearer') {
      throw badRequest(
        'oauth/token describes a Bearer token: send "Authorization: Bearer <token>" (the application API key has no token to verify)',
      );
    }
    return jsonResponse(200, {
      client_id: deps.appId,
      account_id: credential.token.account,
      scope: ACCOUNT_SCOPE,
      token_type: 'Bearer',
    });
  });
}
