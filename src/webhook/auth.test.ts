// Admin authentication: which Authorization headers pass, which get a 401 (and what that 401
// says and does not say), and key rotation through the keys function.
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { requireApiKey } from './auth.js';

const KEY = 'admin-key-current';
const OLD_KEY = 'admin-key-previous';

function setup(keys: () => readonly string[] = () => [KEY, OLD_KEY]) {
  const reached: string[] = [];
  const app = new Hono();
  app.use('/admin/*', requireApiKey(keys));
  app.post('/admin/reload', (c) => {
    reached.push('reload');
    return c.text('reloaded');
  });
  const call = (authorization?: string) =>
    app.request('/admin/reload', {
      method: 'POST',
      headers: authorization === undefined ? {} : { Authorization: authorization },
    });
  return { call, reached };
}

const EXPECTED = 'send "Authorization: APIKey <engine API key>" (or "Bearer <engine API key>")';

describe('requireApiKey', () => {
  it.each([
    `APIKey ${KEY}`,
    `apikey ${KEY}`,
    `ApiKey ${KEY}`,
    `Bearer ${KEY}`,
    `bearer ${KEY}`,
    `BEARER ${OLD_KEY}`,
    `APIKey ${OLD_KEY}`,
    `  APIKey   ${KEY}  `,
  ])('lets %j through', async (authorization) => {
    const { call, reached } = setup();

    const response = await call(authorization);

    expect(response.status).toBe(200);
    expect(await response.text()).toBe('reloaded');
    expect(reached).toEqual(['reload']);
  });

  it.each<[string, string | undefined, string]>([
    ['no Authorization header', undefined, 'missing Authorization header'],
    ['a blank header', '   ', 'missing Authorization header'],
    ['a scheme without a key', 'APIKey', 'unsupported Authorization scheme'],
    ['a key without a scheme', KEY, 'unsupported Authorization scheme'],
    ['the Basic scheme', `Basic ${KEY}`, 'unsupported Authorization scheme'],
    ['a wrong key', 'APIKey wrong-key-value', 'the API key is not valid'],
    ['a key with an extra character', `Bearer ${KEY}x`, 'the API key is not valid'],
    ['a prefix of the key', `Bearer ${KEY.slice(0, -1)}`, 'the API key is not valid'],
    ['a key in another case', `APIKey ${KEY.toUpperCase()}`, 'the API key is not valid'],
    ['two keys in one header', `APIKey ${KEY} ${OLD_KEY}`, 'the API key is not valid'],
  ])('answers 401 to %s without running the route', async (_name, authorization, problem) => {
    const { call, reached } = setup();

    const response = await call(authorization);

    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('APIKey');
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toEqual({
      error_code: 'unauthorized',
      message: `${problem}: ${EXPECTED}`,
      status_code: 401,
    });
    expect(reached).toEqual([]);
  });

  it('never echoes the credential it was given', async () => {
    const { call } = setup();

    const response = await call('Bearer almost-the-admin-key-current');

    expect(await response.text()).not.toContain('almost-the-admin-key-current');
  });

  it.each<[string, readonly string[], string]>([
    ['no key is configured', [], 'APIKey anything'],
    ['the configured key is empty', [''], 'APIKey  '],
  ])('refuses everyone when %s', async (_name, keys, authorization) => {
    const { call, reached } = setup(() => keys);

    const response = await call(authorization);

    expect(response.status).toBe(401);
    expect(reached).toEqual([]);
  });

  it('reads the keys on every request, so a rotation takes effect without a restart', async () => {
    let keys: readonly string[] = [OLD_KEY];
    const { call } = setup(() => keys);

    const before = await call(`APIKey ${KEY}`);
    keys = [KEY, OLD_KEY];
    const during = [await call(`APIKey ${KEY}`), await call(`APIKey ${OLD_KEY}`)];
    keys = [KEY];
    const after = await call(`APIKey ${OLD_KEY}`);

    expect([before, ...during, after].map((r) => r.status)).toEqual([401, 200, 200, 401]);
  });
});
