// Account detail and token verification over real HTTP, as the official Kloudless SDKs call them:
// kloudless-js `Account.getDetail` (GET accounts/me/, reads `id`), `verifyToken` and
// kloudless-python `verify_token` / `get_verified_account` (GET oauth/token with the Bearer
// token, compare `client_id` with the application id, then use accounts/me).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestItsm, TEST_APP_ID, type TestItsm } from '../helpers/itsm.js';

const TOKEN = 'token-of-account-7';
let server: TestItsm;

beforeAll(async () => {
  server = await startTestItsm({ tokens: { [TOKEN]: { account: 7, userId: 'u7' } } });
});

afterAll(async () => {
  await server?.close();
});

const bearer = (token = TOKEN) => `Bearer ${token}`;

describe('GET /v1/accounts/{id|me}', () => {
  it('answers the account object of an id to the application key', async () => {
    const answer = await server.call('GET', '/v1/accounts/42');

    expect(answer.status, answer.text).toBe(200);
    expect(answer.headers.get('content-type')).toBe('application/json');
    expect(answer.json).toEqual({
      id: 42,
      account: 'account-42',
      service: 'servicenow',
      service_name: 'ServiceNow',
      active: true,
      admin: false,
      apis: ['itsm'],
      effective_scope: 'servicenow:normal.itsm',
      created: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      modified: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      type: 'account',
      api: 'meta',
    });
  });

  it.each(['/v1/accounts/me', '/v1/accounts/me/', '/v1/accounts/7'])(
    'answers %s with the account a Bearer token is bound to (getDetail reads id)',
    async (path) => {
      const answer = await server.call('GET', path, { auth: bearer() });
      expect(answer.status, answer.text).toBe(200);
      expect(answer.json).toMatchObject({ id: 7, type: 'account', service: 'servicenow' });
    },
  );

  it.each<[string, string, string | null | undefined, number]>([
    ['another account with a token', '/v1/accounts/8', bearer(), 403],
    ['me with the API key', '/v1/accounts/me', undefined, 400],
    ['account 0', '/v1/accounts/0', undefined, 400],
    ['an unknown token', '/v1/accounts/me', bearer('nope'), 401],
    ['no credentials', '/v1/accounts/1', null, 401],
  ])('refuses %s', async (_name, path, auth, status) => {
    const answer = await server.call('GET', path, { auth });
    expect(answer.status, answer.text).toBe(status);
    expect(answer.json).toMatchObject({ status_code: status });
  });

  it('allows GET only', async () => {
    const answer = await server.call('DELETE', '/v1/accounts/1');
    expect(answer.status).toBe(405);
    expect(answer.headers.get('allow')).toBe('GET');
  });
});

describe('GET /v1/oauth/token', () => {
  it('describes a Bearer token: client_id is the application, account_id its account', async () => {
    const answer = await server.call('GET', '/v1/oauth/token', { auth: bearer() });

    expect(answer.status, answer.text).toBe(200);
    expect(answer.json).toEqual({
      client_id: TEST_APP_ID,
      account_id: 7,
      scope: 'servicenow:normal.itsm',
      token_type: 'Bearer',
    });
  });

  it("passes the SDK helpers' check: client_id equals the app id, then accounts/me is the same account", async () => {
    // What verify_token / verifyToken({appId, token, initAccount: true}) do, step by step.
    const token = await server.call('GET', '/v1/oauth/token', { auth: bearer() });
    expect(token.json.client_id === TEST_APP_ID).toBe(true);
    const detail = await server.call('GET', '/v1/accounts/me/', { auth: bearer() });
    expect(detail.json.id).toBe(token.json.account_id);
  });

  it('answers 401 to an unknown token and to no credentials', async () => {
    for (const auth of [bearer('not-a-token'), null]) {
      const answer = await server.call('GET', '/v1/oauth/token', { auth });
      expect(answer.status).toBe(401);
      expect(answer.json.error_code).toBe('unauthorized');
    }
  });

  it('answers 400 to the application key, which is no token', async () => {
    const answer = await server.call('GET', '/v1/oauth/token');
    expect(answer.status).toBe(400);
    expect(answer.json.message).toContain('Authorization: Bearer');
  });
});
