// Security: every route of the engine but the receiver (which checks signatures) and /healthz
// refuses a request without the API key, whatever the method, before it does anything; and the
// embedded ITSM API refuses every account route without credentials (shared/spec/itsm-api.md).
// The answer is a JSON 401 that never repeats the credential that was sent.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEngine, TEST_API_KEY, type TestEngine } from '../helpers/serve.js';

let engine: TestEngine;
beforeAll(async () => {
  engine = await startTestEngine();
});
afterAll(async () => {
  await engine?.close();
});

const ENGINE_ROUTES: [string, string][] = [
  ['GET', '/metrics'],
  ['GET', '/runs'],
  ['GET', '/runs/1'],
  ['GET', '/runs/e:1:1'],
  ['POST', '/admin/schedules/run'],
  ['POST', '/admin/rules/reload'],
  ['GET', '/admin/schedules/run'],
  ['DELETE', '/admin/rules/reload'],
  ['GET', '/admin/anything'],
];

const WRONG = [
  ['no Authorization header', null],
  ['an empty key', 'APIKey '],
  ['a wrong key', 'APIKey not-the-key-8812'],
  ['a wrong Bearer key', 'Bearer not-the-key-8812'],
  ['the key with an unknown scheme', `Basic ${TEST_API_KEY}`],
  ['a prefix of the key', `APIKey ${TEST_API_KEY.slice(0, -1)}`],
  ['the key with a suffix', `APIKey ${TEST_API_KEY}x`],
] as const;

describe('engine admin routes', () => {
  it.each(ENGINE_ROUTES)(
    '%s %s refuses every wrong credential with a JSON 401',
    async (method, path) => {
      for (const [, auth] of WRONG) {
        const answer = await engine.call(method, path, {
          auth,
          ...(method === 'POST' && { body: '{}' }),
        });
        expect(
          [answer.status, answer.headers.get('content-type')],
          `${method} ${path} with ${auth}`,
        ).toEqual([401, 'application/json']);
        expect((answer.json as { error_code: string }).error_code).toBe('unauthorized');
        expect(answer.text).not.toContain('not-the-key-8812');
      }
    },
  );

  it('lets the right key through on the same routes', async () => {
    for (const [method, path] of ENGINE_ROUTES) {
      const answer = await engine.call(method, path, {
        auth: `APIKey ${TEST_API_KEY}`,
        ...(method === 'POST' && { body: '{}' }),
      });
      expect(answer.status, `${method} ${path}`).not.toBe(401);
    }
  });

  it.each([
    ['POST', '/healthz'],
    ['DELETE', '/openapi.json'],
    ['POST', '/metrics'],
    ['PUT', '/runs'],
    ['POST', '/runs'],
    ['DELETE', '/runs/1'],
    ['POST', '/admin/parked'],
  ])('answers %s %s with a 405 saying to use GET', async (method, path) => {
    const answer = await engine.call(method, path, { body: '{}' });
    expect(answer.status, answer.text).toBe(405);
    expect(answer.headers.get('allow')).toBe('GET');
    expect(answer.json).toEqual({
      error_code: 'method_not_allowed',
      message: 'use GET',
      status_code: 405,
    });
  });

  it('leaves /healthz open and the receiver to its signature check', async () => {
    expect((await engine.call('GET', '/healthz', { auth: null })).status).toBe(200);
    const unsigned = await engine.call('POST', '/webhooks/kloudless', {
      auth: null,
      body: '{"account": 1}',
    });
    expect(unsigned.status).toBe(401);
  });
});

describe('embedded ITSM API routes', () => {
  it.each([
    ['GET', '/v1/accounts/1/itsm/incidents'],
    ['POST', '/v1/accounts/1/itsm/incidents'],
    ['GET', '/v1/accounts/1/itsm/incidents/x'],
    ['PATCH', '/v1/accounts/1/itsm/incidents/x'],
    ['DELETE', '/v1/accounts/1/itsm/incidents/x'],
    ['GET', '/v1/accounts/1/events'],
    ['GET', '/v1/accounts/1/events/latest'],
    ['GET', '/v1/accounts/1/team/users'],
    ['GET', '/v1/applications/test-app/webhooks'],
    ['POST', '/v1/applications/test-app/webhooks'],
    ['DELETE', '/v1/applications/test-app/webhooks/1'],
  ])('%s %s refuses a request without credentials or with a wrong key', async (method, path) => {
    for (const auth of [null, 'APIKey not-the-key-8812', 'Bearer not-a-token']) {
      const answer = await engine.call(method, path, {
        auth,
        ...(method === 'POST' || method === 'PATCH' ? { body: '{}' } : {}),
      });
      expect(answer.status, `${method} ${path} with ${auth}`).toBe(401);
      expect(answer.text).not.toContain('not-the-key-8812');
    }
  });
});
