// Authentication and account isolation over real HTTP (spec sections 1 and 4): the application
// key for every account, Bearer tokens bound to one account, accounts/me, 401/403/400 error
// bodies with the exact JSON Content-Type, and objects invisible across accounts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestItsm, TEST_API_KEY, type TestItsm } from '../helpers/itsm.js';

const TOKEN = 'token-of-account-7';

let itsm: TestItsm;

beforeAll(async () => {
  itsm = await startTestItsm({ tokens: { [TOKEN]: { account: 7, userId: 'uc2Vy' } } });
});

afterAll(async () => {
  await itsm.close();
});

function makeIncident(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { description: 'VPN drops every hour', impact: 'medium', ...overrides };
}

async function createIncident(
  account: number | 'me',
  auth?: string,
): Promise<Record<string, unknown>> {
  const created = await itsm.call('POST', `/v1/accounts/${account}/itsm/incidents`, {
    body: makeIncident(),
    ...(auth !== undefined && { auth }),
  });
  expect(created.status, created.text).toBe(201);
  return created.json;
}

function expectError(
  result: { status: number; headers: Headers; json: unknown },
  status: number,
  code: string,
): void {
  expect(result.status).toBe(status);
  expect(result.headers.get('content-type')).toBe('application/json');
  expect(result.json).toMatchObject({ error_code: code, status_code: status });
  const body = result.json as { message: unknown; id: unknown };
  expect(typeof body.message).toBe('string');
  expect(body.message).not.toBe('');
  expect(typeof body.id).toBe('string');
}

describe('authentication', () => {
  it('answers a request without Authorization with a 401 unauthorized error body', async () => {
    const result = await itsm.call('GET', '/v1/accounts/1/itsm/incidents', { auth: null });
    expectError(result, 401, 'unauthorized');
  });

  it('gives the error the request id that X-Request-Id carries', async () => {
    const result = await itsm.call('GET', '/v1/accounts/1/itsm/incidents', { auth: null });
    expect(result.headers.get('x-request-id')).toBe(result.json.id);
  });

  it.each([
    ['a wrong API key', 'APIKey not-the-key'],
    ['an API key with a suffix', `APIKey ${TEST_API_KEY}x`],
    ['an empty API key', 'APIKey'],
    ['an unknown Bearer token', 'Bearer no-such-token'],
    ['an unsupported scheme', `Basic ${TEST_API_KEY}`],
    ['a key without a scheme', TEST_API_KEY],
  ])('refuses %s with a 401', async (_what, auth) => {
    const result = await itsm.call('GET', '/v1/accounts/1/itsm/incidents', { auth });
    expectError(result, 401, 'unauthorized');
  });

  it.each(['APIKey', 'ApiKey', 'apikey', 'APIKEY'])(
    'accepts the API key under the scheme %s',
    async (scheme) => {
      const result = await itsm.call('GET', '/v1/accounts/1/itsm/incidents', {
        auth: `${scheme} ${TEST_API_KEY}`,
      });
      expect(result.status).toBe(200);
      expect(result.headers.get('content-type')).toBe('application/json');
    },
  );

  it.each(['Bearer', 'bearer', 'BEARER'])(
    'accepts a Bearer token under the scheme %s on its own account',
    async (scheme) => {
      const result = await itsm.call('GET', '/v1/accounts/7/itsm/incidents', {
        auth: `${scheme} ${TOKEN}`,
      });
      expect(result.status).toBe(200);
    },
  );

  it('lets the API key work on every account', async () => {
    for (const account of [1, 7, 999]) {
      expect((await itsm.call('GET', `/v1/accounts/${account}/itsm/incidents`)).status).toBe(200);
    }
  });

  it('forbids a Bearer token on another account with a 403', async () => {
    const path = '/v1/accounts/8/itsm/incidents';
    expectError(await itsm.call('GET', path, { auth: `Bearer ${TOKEN}` }), 403, 'forbidden');
    expectError(
      await itsm.call('POST', path, { auth: `Bearer ${TOKEN}`, body: makeIncident() }),
      403,
      'forbidden',
    );
    expectError(
      await itsm.call('GET', '/v1/accounts/8/events', { auth: `Bearer ${TOKEN}` }),
      403,
      'forbidden',
    );
    const listed = await itsm.call('GET', path);
    expect(listed.json.total).toBe(0);
  });
});

describe('accounts/me', () => {
  it('resolves to the Bearer token account: a create lands there and href names the numeric account', async () => {
    const created = await createIncident('me', `Bearer ${TOKEN}`);
    expect(created.href).toMatch(new RegExp(`/v1/accounts/7/itsm/incidents/${created.id}$`));
    expect(String(created.href)).not.toContain('/me/');

    const viaKey = await itsm.call('GET', `/v1/accounts/7/itsm/incidents/${created.id}`);
    expect(viaKey.status).toBe(200);
    expect(viaKey.json.id).toBe(created.id);

    const viaMe = await itsm.call('GET', `/v1/accounts/me/itsm/incidents/${created.id}`, {
      auth: `Bearer ${TOKEN}`,
    });
    expect(viaMe.status).toBe(200);
    expect(viaMe.json.href).toBe(created.href);

    const events = await itsm.call('GET', '/v1/accounts/7/events');
    const mine = events.json.objects.filter(
      (e: { metadata: { id: string } }) => e.metadata.id === created.id,
    );
    expect(mine).toHaveLength(1);
    expect(mine[0].account).toBe(7);
  });

  it('refuses accounts/me with the API key with a 400', async () => {
    const result = await itsm.call('GET', '/v1/accounts/me/itsm/incidents');
    expectError(result, 400, 'invalid_parameters');
  });
});

describe('account isolation', () => {
  it('hides an object of account 1 from account 2: get, patch and delete are 404 and the list omits it', async () => {
    const created = await createIncident(1);
    const path = `/v1/accounts/2/itsm/incidents/${created.id}`;

    expectError(await itsm.call('GET', path), 404, 'not_found');
    expectError(await itsm.call('PATCH', path, { body: { impact: 'high' } }), 404, 'not_found');
    expectError(await itsm.call('DELETE', path), 404, 'not_found');

    const listed = await itsm.call('GET', '/v1/accounts/2/itsm/incidents?page_size=1000');
    expect(listed.json.objects.map((o: { id: string }) => o.id)).not.toContain(created.id);

    const stillThere = await itsm.call('GET', `/v1/accounts/1/itsm/incidents/${created.id}`);
    expect(stillThere.status).toBe(200);
    expect(stillThere.json.impact).toBe('medium');
  });

  it('refuses a reference to an object of another account', async () => {
    const created = await createIncident(1);
    const result = await itsm.call('POST', '/v1/accounts/2/itsm/problems', {
      body: { incident: created.id },
    });
    expectError(result, 400, 'invalid_parameters');
  });

  it.each(['abc', '12x', '1.5', '-1'])(
    'refuses the non-numeric account id %s with a 400',
    async (account) => {
      const result = await itsm.call('GET', `/v1/accounts/${account}/itsm/incidents`);
      expectError(result, 400, 'invalid_parameters');
    },
  );
});

describe('error Content-Type', () => {
  it.each([
    ['400', '/v1/accounts/me/itsm/incidents', undefined, 400],
    ['401', '/v1/accounts/1/itsm/incidents', null, 401],
    ['403', '/v1/accounts/8/itsm/incidents', `Bearer ${TOKEN}`, 403],
    ['404', '/v1/accounts/1/itsm/incidents/Fmissing', undefined, 404],
  ] as const)('is exactly application/json on a %s', async (_name, path, auth, status) => {
    const result = await itsm.call('GET', path, auth === undefined ? {} : { auth });
    expect(result.status).toBe(status);
    expect(result.headers.get('content-type')).toBe('application/json');
    expect(result.json.status_code).toBe(status);
  });
});
