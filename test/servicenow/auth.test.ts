// Who may use the Table API face: HTTP Basic for --sn-user users (each in its account), the
// application as Basic <account>:<key>, /v1 Bearer tokens, and OAuth tokens from
// /oauth_token.do (password and refresh_token grants) that expire. The embedded server runs on
// 127.0.0.1 in this process so that the test can move the token clock instead of waiting.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callHttp, startTestItsm, TEST_API_KEY, type TestItsm } from '../helpers/itsm.js';
import { spawnCli, spawnItsmServer, spawnServe, writeRules } from '../helpers/serve.js';

let itsm: TestItsm;
let clock = Date.UTC(2026, 0, 1);
const basic = (name: string, password: string) => `Basic ${btoa(`${name}:${password}`)}`;
const TABLE = '/api/now/table';

beforeAll(async () => {
  itsm = await startTestItsm({
    tokens: { 'v1-token': { account: 3, userId: 'uSOMEONE' } },
    tableApi: {
      users: [
        { name: 'ann', password: 'pw-ann', account: 1 },
        { name: 'bo', password: 'pw-bo', account: 2 },
      ],
      oauthClients: [{ id: 'client-1', secret: 'client-secret' }],
      now: () => clock,
    },
  });
});

afterAll(async () => {
  await itsm?.close();
});

async function token(form: Record<string, string>) {
  const response = await fetch(`${itsm.url}/oauth_token.do`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
  return { status: response.status, json: (await response.json()) as any };
}

const passwordGrant = (overrides: Record<string, string> = {}) =>
  token({
    grant_type: 'password',
    client_id: 'client-1',
    client_secret: 'client-secret',
    username: 'ann',
    password: 'pw-ann',
    ...overrides,
  });

describe('HTTP Basic and the application key', () => {
  it.each<[string, string | null, string]>([
    ['no Authorization header', null, 'Required to provide Auth information'],
    ['a wrong password', basic('ann', 'nope'), 'invalid user name or password'],
    ['an unknown user', basic('zed', 'pw-ann'), 'invalid user name or password'],
    [
      'the application key under a non-numeric name',
      basic('admin', TEST_API_KEY),
      'invalid user name or password',
    ],
    [
      'a scheme the face does not take',
      `APIKey ${TEST_API_KEY}`,
      'use HTTP Basic or an OAuth Bearer token',
    ],
    ['an unknown bearer token', 'Bearer nope', 'the bearer token is not valid'],
    // The application's account follows the /v1 rule for account ids.
    ['the application key under account 0', basic('0', TEST_API_KEY), 'invalid user name'],
    ['the application key under a leading zero', basic('01', TEST_API_KEY), 'invalid user name'],
    [
      'the application key under an account past 2^53 - 1',
      basic(String(2 ** 53), TEST_API_KEY),
      'invalid user name',
    ],
    ['Basic that is not Base64', 'Basic %%%', 'not Base64'],
  ])('answers 401 User Not Authenticated to %s', async (_name, auth, detail) => {
    const answer = await callHttp(itsm.url, 'GET', `${TABLE}/incident`, { auth });
    expect(answer.status).toBe(401);
    expect(answer.headers.get('WWW-Authenticate')).toMatch(/^BASIC realm=/);
    expect(answer.json).toEqual({
      error: { message: 'User Not Authenticated', detail: expect.stringContaining(detail) },
      status: 'failure',
    });
  });

  it('keeps each user to its own account, and the application to the account it names', async () => {
    const made = await callHttp(itsm.url, 'POST', `${TABLE}/incident`, {
      auth: basic('bo', 'pw-bo'),
      body: { short_description: 'in account 2' },
    });
    expect(made.status).toBe(201);
    const sysId = made.json.result.sys_id;
    expect(
      (
        await callHttp(itsm.url, 'GET', `${TABLE}/incident/${sysId}`, {
          auth: basic('ann', 'pw-ann'),
        })
      ).status,
    ).toBe(404);
    expect(
      (
        await callHttp(itsm.url, 'GET', `${TABLE}/incident/${sysId}`, {
          auth: basic('2', TEST_API_KEY),
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await callHttp(itsm.url, 'GET', `${TABLE}/incident/${sysId}`, {
          auth: basic('1', TEST_API_KEY),
        })
      ).status,
    ).toBe(404);
    const events = await callHttp(itsm.url, 'GET', '/v1/accounts/2/events');
    const users = events.json.objects.filter(
      (e: { metadata: { raw?: { type?: string } } }) => e.metadata.raw?.type === 'sys_user',
    );
    expect(users[0].metadata.raw.object).toMatchObject({ user_name: 'bo' });
  });

  it('lets the application into the largest account id /v1 takes', async () => {
    const account = String(Number.MAX_SAFE_INTEGER);
    const made = await callHttp(itsm.url, 'POST', `${TABLE}/incident`, {
      auth: basic(account, TEST_API_KEY),
      body: { description: 'in the largest account' },
    });
    expect(made.status, made.text).toBe(201);
    const listed = await callHttp(itsm.url, 'GET', `/v1/accounts/${account}/itsm/incidents`);
    expect(listed.json.objects.map((o: { description?: string }) => o.description)).toEqual([
      'in the largest account',
    ]);
  });

  it('takes the /v1 Bearer tokens, in their account and as their user', async () => {
    const made = await callHttp(itsm.url, 'POST', `${TABLE}/problem`, {
      auth: 'Bearer v1-token',
      body: { short_description: 'by token' },
    });
    expect(made.status).toBe(201);
    const events = await callHttp(itsm.url, 'GET', '/v1/accounts/3/events');
    expect(events.json.objects.at(-1)).toMatchObject({ type: 'add', user_id: 'uSOMEONE' });
  });
});

describe('OAuth at /oauth_token.do', () => {
  it('gives an expiring access token and a refresh token for the password grant', async () => {
    const granted = await passwordGrant();
    expect(granted.status).toBe(200);
    expect(granted.json).toEqual({
      access_token: expect.any(String),
      refresh_token: expect.any(String),
      scope: 'useraccount',
      token_type: 'Bearer',
      expires_in: 1800,
    });
    const bearer = `Bearer ${granted.json.access_token}`;
    const made = await callHttp(itsm.url, 'POST', `${TABLE}/incident`, {
      auth: bearer,
      body: { short_description: 'oauth' },
    });
    expect(made.status).toBe(201);
    expect(made.json.result.sys_created_by).toBe('ann');

    clock += 1801 * 1000;
    const expired = await callHttp(itsm.url, 'GET', `${TABLE}/incident`, { auth: bearer });
    expect(expired.status).toBe(401);
    expect(expired.json.error.detail).toMatch(/expired.*grant_type=refresh_token/);

    const refreshed = await token({
      grant_type: 'refresh_token',
      client_id: 'client-1',
      client_secret: 'client-secret',
      refresh_token: granted.json.refresh_token,
    });
    expect(refreshed.status).toBe(200);
    expect(refreshed.json.access_token).not.toBe(granted.json.access_token);
    const again = await callHttp(itsm.url, 'GET', `${TABLE}/incident/${made.json.result.sys_id}`, {
      auth: `Bearer ${refreshed.json.access_token}`,
    });
    expect(again.status).toBe(200);
  });

  it.each<[string, Record<string, string>, number, string]>([
    ['a wrong client secret', { client_secret: 'nope' }, 401, 'invalid_client'],
    ['an unknown client', { client_id: 'other' }, 401, 'invalid_client'],
    ['a wrong password', { password: 'nope' }, 401, 'invalid_grant'],
    ['an unknown grant type', { grant_type: 'client_credentials' }, 400, 'unsupported_grant_type'],
    [
      'an unknown refresh token',
      { grant_type: 'refresh_token', refresh_token: 'nope' },
      401,
      'invalid_grant',
    ],
  ])('refuses %s', async (_name, overrides, status, error) => {
    const answer = await passwordGrant(overrides);
    expect(answer.status).toBe(status);
    expect(answer.json).toEqual({ error, error_description: expect.any(String) });
  });
});

describe('the command line', () => {
  it('takes --sn-user from ITSM_SN_USERS (comma-separated) with an account each', async () => {
    const server = await spawnItsmServer(['--port=0', '--db=:memory:'], {
      ITSM_SN_USERS: 'cy:pw-cy:4,di:pw-di',
    });
    try {
      const made = await callHttp(server.url, 'POST', `${TABLE}/incident`, {
        auth: basic('cy', 'pw-cy'),
        body: { short_description: 'in 4' },
      });
      expect(made.status).toBe(201);
      const listed = await callHttp(server.url, 'GET', '/v1/accounts/4/itsm/incidents', {
        auth: 'APIKey dev-api-key',
      });
      expect(listed.json.total).toBe(1);
      expect(
        (await callHttp(server.url, 'GET', `${TABLE}/incident`, { auth: basic('di', 'pw-di') }))
          .json.result,
      ).toEqual([]);
    } finally {
      await server.stop();
    }
  });

  it.each([
    [['--sn-user=nopassword'], '--sn-user must be NAME:PASSWORD[:ACCOUNT]'],
    [['--sn-user=a:b', '--sn-user=a:c'], '--sn-user names a twice in account 1'],
    [['--sn-oauth-client=idonly'], '--sn-oauth-client must be ID:SECRET'],
  ])('exits 2 on %j, saying why', async (args, says) => {
    const cli = spawnCli(['itsm-server', '--port=0', '--db=:memory:', ...args]);
    const exit = await cli.exited;
    expect(exit.code).toBe(2);
    expect(cli.stderr()).toContain(says);
  });
});

describe('all-in-one serve', () => {
  it('serves the Table API face beside /v1, with --sn-user', async () => {
    // No rules: the engine has nothing to do; the test is about the embedded API's routes.
    const rules = writeRules({});
    const serve = await spawnServe([
      '--port=0',
      '--db=:memory:',
      `--rules=${rules.dir}`,
      '--sn-user=eve:pw-eve',
    ]);
    try {
      const made = await callHttp(serve.url, 'POST', `${TABLE}/incident`, {
        auth: basic('eve', 'pw-eve'),
        body: { short_description: 'all in one' },
      });
      expect(made.status, made.text).toBe(201);
      const listed = await callHttp(serve.url, 'GET', '/v1/accounts/1/itsm/incidents', {
        auth: 'APIKey dev-api-key',
      });
      expect(listed.json.objects).toHaveLength(1);
    } finally {
      await serve.stop();
      rules.remove();
    }
  });
});
