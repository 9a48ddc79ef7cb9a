// The console's sign-in, sessions and CSRF protection over real HTTP, against `itsm-rules serve`
// as startEngine runs it (all-in-one, 127.0.0.1) with the console's fixture rules and a clock the
// test moves: a session is a signed cookie that expires, every state-changing form needs the
// session's token and a same-origin request, and the admin API's own key check is unchanged.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SESSION_COOKIE } from '../../src/console/session.js';
import {
  eventually,
  startTestEngine,
  TEST_API_KEY,
  type TestEngine,
  writeRules,
} from '../helpers/serve.js';
import { consoleSession, FORM, signIn as signInAs } from './console-session.js';

const FIXTURE = 'test/fixtures/console-rules';
const TTL_MS = 60_000;

let engine: TestEngine;
let clock = Date.now();
let rules: { dir: string; remove(): void };

/** The fixture rules, copied so that a test can break one. */
function fixtureCopy() {
  const files: Record<string, string> = {};
  for (const name of ['escalate-major-incidents.yaml', 'note-critical.yaml']) {
    files[`incident/${name}`] = readFileSync(join(FIXTURE, 'incident', name), 'utf8');
  }
  return writeRules(files);
}

beforeAll(async () => {
  rules = fixtureCopy();
  engine = await startTestEngine({
    rulesDir: rules.dir,
    console: { sessionTtlMs: TTL_MS, now: () => clock },
  });
});
afterAll(async () => {
  await engine.close();
  rules.remove();
});

const origin = () => new URL(engine.url).origin;

const signIn = (key = TEST_API_KEY) => signInAs(engine, key);
const session = () => consoleSession(engine);

function get(path: string, cookie?: string) {
  return engine.call('GET', path, {
    auth: null,
    redirect: 'manual',
    ...(cookie && { headers: { Cookie: cookie } }),
  });
}

describe('console sign-in', () => {
  it('sends a visitor without a session to sign in, with the security headers', async () => {
    const answer = await get('/');
    expect(answer.status).toBe(303);
    expect(answer.headers.get('Location')).toBe('/console/sign-in');
    const page = await get('/console/sign-in');
    expect(page.status).toBe(200);
    expect(page.text).toContain('<form method="post" action="/console/sign-in">');
    const csp = page.headers.get('Content-Security-Policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.headers.get('X-Frame-Options')).toBe('DENY');
    expect(page.headers.get('Referrer-Policy')).toBe('no-referrer');
    // No inline script anywhere: the only script is the engine's own asset.
    expect(page.text).not.toMatch(/<script(?![^>]*\bsrc=)/);
  });

  it('serves every asset a page links to itself, without a session, cached for good, and links nothing from elsewhere', async () => {
    const page = await get('/console/sign-in');
    const links = [...page.text.matchAll(/(?:href|src)="([^"]+)"/g)].map((m) => m[1] as string);
    const assets = links.filter((link) => link.startsWith('/console/assets/'));
    expect(assets).toHaveLength(3);
    expect(links.filter((link) => !link.startsWith('/'))).toEqual([]);
    const types = await Promise.all(
      assets.map(async (path) => {
        const answer = await get(path);
        expect(answer.status, path).toBe(200);
        expect(answer.headers.get('Cache-Control')).toContain('immutable');
        return answer.headers.get('Content-Type')?.split(';')[0];
      }),
    );
    expect(types.sort()).toEqual(['image/svg+xml', 'text/css', 'text/javascript']);
  });

  it('sets an HttpOnly, SameSite=Strict session cookie that expires, for the right key', async () => {
    const answer = await signIn();
    expect(answer.status).toBe(303);
    expect(answer.headers.get('Location')).toBe('/');
    const cookie = answer.headers.get('Set-Cookie') ?? '';
    expect(cookie).toMatch(new RegExp(`^${SESSION_COOKIE}=v1\\.`));
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    expect(cookie).toContain(`Max-Age=${TTL_MS / 1000}`);
    // Plain HTTP here: Secure would make the browser drop the cookie.
    expect(cookie).not.toContain('Secure');
    expect(cookie).not.toContain(TEST_API_KEY);
    const overview = await get('/', cookie.split(';')[0]);
    expect(overview.status).toBe(200);
    expect(overview.text).toContain('<h1>Overview</h1>');
    expect(overview.text).not.toContain(TEST_API_KEY);
  });

  it('marks the cookie Secure over HTTPS', async () => {
    const answer = await engine.app.request('https://engine.example.com/console/sign-in', {
      method: 'POST',
      headers: { ...FORM, Origin: 'https://engine.example.com' },
      body: new URLSearchParams({ key: TEST_API_KEY }).toString(),
    });
    expect(answer.status).toBe(303);
    expect(answer.headers.get('Set-Cookie')).toContain('Secure');
  });

  it('behind a proxy that ends TLS, takes its origin from X-Forwarded-* and marks the cookie Secure', async () => {
    const viaProxy = (headers: Record<string, string>) =>
      engine.call('POST', '/console/sign-in', {
        auth: null,
        redirect: 'manual',
        headers: { ...FORM, Origin: 'https://itsm.example.com', ...headers },
        body: new URLSearchParams({ key: TEST_API_KEY }).toString(),
      });
    // The proxy's own origin, as the browser saw it: signed in, and Secure.
    const proxied = await viaProxy({
      'X-Forwarded-Proto': 'https',
      'X-Forwarded-Host': 'itsm.example.com, 10.0.0.2',
    });
    expect(proxied.status).toBe(303);
    expect(proxied.headers.get('Set-Cookie')).toContain('Secure');
    // Without the proxy's headers that origin is another site's.
    const direct = await viaProxy({});
    expect(direct.status).toBe(403);
    expect(direct.headers.get('Set-Cookie')).toBeNull();
    // A proxy that says plain HTTP: no Secure (the browser would drop the cookie), and an https
    // origin is then not this one.
    const plain = await viaProxy({
      'X-Forwarded-Proto': 'http',
      'X-Forwarded-Host': 'itsm.example.com',
    });
    expect(plain.status).toBe(403);
  });

  it('refuses a wrong key with 401, sets no cookie and never writes the key back', async () => {
    const answer = await signIn('not-the-key-but-close');
    expect(answer.status).toBe(401);
    expect(answer.headers.get('Set-Cookie')).toBeNull();
    expect(answer.text).toContain('That is not the engine');
    expect(answer.text).not.toContain('not-the-key-but-close');
  });

  it('does not sign in with the key in a URL', async () => {
    const answer = await get(`/console/sign-in?key=${TEST_API_KEY}`);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('Set-Cookie')).toBeNull();
    expect(answer.text).not.toContain(TEST_API_KEY);
  });

  it('refuses a sign-in posted from another site', async () => {
    const answer = await engine.call('POST', '/console/sign-in', {
      auth: null,
      redirect: 'manual',
      headers: { ...FORM, Origin: 'https://evil.example' },
      body: new URLSearchParams({ key: TEST_API_KEY }).toString(),
    });
    expect(answer.status).toBe(403);
    expect(answer.headers.get('Set-Cookie')).toBeNull();
  });

  it('sends an expired session back to sign in, and clears its cookie', async () => {
    const { cookie } = await session();
    expect((await get('/console/runs', cookie)).status).toBe(200);
    clock += TTL_MS + 1;
    try {
      const answer = await get('/console/runs', cookie);
      expect(answer.status).toBe(303);
      expect(answer.headers.get('Location')).toBe('/console/sign-in?expired=1');
      expect(answer.headers.get('Set-Cookie')).toContain('Max-Age=0');
      const page = await get('/console/sign-in?expired=1');
      expect(page.text).toContain('Your session has ended');
    } finally {
      clock -= TTL_MS + 1;
    }
  });

  it.each([
    ['a tampered expiry', (value: string) => value.replace(/^v1\.\d+/, 'v1.99999999999999')],
    ['a tampered signature', (value: string) => `${value.slice(0, -2)}AA`],
    ['garbage', () => 'hello'],
  ])('sends a session cookie with %s back to sign in', async (_name, tamper) => {
    const { cookie } = await session();
    const value = cookie.slice(SESSION_COOKIE.length + 1);
    const answer = await get('/', `${SESSION_COOKIE}=${tamper(value)}`);
    expect(answer.status).toBe(303);
    expect(answer.headers.get('Location')).toBe('/console/sign-in?expired=1');
  });

  it('does not let a console session stand in for the API key on the admin API', async () => {
    const { cookie } = await session();
    const runs = await engine.call('GET', '/runs', { auth: null, headers: { Cookie: cookie } });
    expect(runs.status).toBe(401);
    expect((await engine.call('GET', '/runs')).status).toBe(200);
    expect((await engine.call('GET', '/metrics')).status).toBe(200);
  });

  it('signs out by removing the cookie and going back to sign in', async () => {
    const { cookie, csrf } = await session();
    const answer = await engine.call('POST', '/console/sign-out', {
      auth: null,
      redirect: 'manual',
      headers: { ...FORM, Origin: origin(), Cookie: cookie },
      body: new URLSearchParams({ _csrf: csrf }).toString(),
    });
    expect(answer.status).toBe(303);
    expect(answer.headers.get('Location')).toBe('/console/sign-in');
    expect(answer.headers.get('Set-Cookie')).toMatch(/^itsm_console=;.*Max-Age=0/);
  });
});

describe('console actions', () => {
  /** Breaks a rule file, so that a reload is refused and says so on the overview. */
  const breakRules = () =>
    writeFileSync(join(rules.dir, 'incident', 'broken.yaml'), 'on: {type: incident}\nthen: 7\n');

  const reload = (cookie: string, fields: Record<string, string>, from = origin()) =>
    engine.call('POST', '/console/actions/reload-rules', {
      auth: null,
      redirect: 'manual',
      headers: { ...FORM, Origin: from, Cookie: cookie },
      body: new URLSearchParams(fields).toString(),
    });

  it('refuses an action without the CSRF token, or from another origin, and does nothing', async () => {
    breakRules();
    const { cookie, csrf } = await session();
    const without = await reload(cookie, {});
    expect(without.status).toBe(403);
    expect(without.text).toContain('nothing was done');
    const wrong = await reload(cookie, { _csrf: `${csrf.slice(0, -2)}xx` });
    expect(wrong.status).toBe(403);
    const foreign = await reload(cookie, { _csrf: csrf }, 'https://evil.example');
    expect(foreign.status).toBe(403);
    expect(foreign.text).toContain('another site');
    // None of them reloaded: the broken file was never read, so no reload has been refused.
    const overview = await get('/', cookie);
    expect(overview.text).toContain('No reload has been refused since.');
  });

  it.each([
    '/console/actions/run-schedules',
    '/console/actions/reload-rules',
    '/console/actions/retry-parked',
    '/console/sign-out',
  ])('refuses POST %s without a session, or without its CSRF token', async (path) => {
    const { cookie, csrf } = await session();
    const post = (headers: Record<string, string>, fields: Record<string, string>) =>
      engine.call('POST', path, {
        auth: null,
        redirect: 'manual',
        headers: { ...FORM, Origin: origin(), ...headers },
        body: new URLSearchParams(fields).toString(),
      });
    // The API key itself is not a session: the console's forms take the signed cookie only.
    const keyOnly = await post({ Authorization: `APIKey ${TEST_API_KEY}` }, { _csrf: csrf });
    expect(keyOnly.status).toBe(303);
    expect(keyOnly.headers.get('Location')).toBe('/console/sign-in');
    const noToken = await post({ Cookie: cookie }, {});
    expect(noToken.status).toBe(403);
    expect(noToken.text).toContain('nothing was done');
    expect(noToken.headers.get('Set-Cookie')).toBeNull();
    // Another session's token does not do either.
    const other = await session();
    const foreign = await post({ Cookie: cookie }, { _csrf: other.csrf });
    expect(foreign.status).toBe(403);
  });

  it('reloads rules with the token: a refused reload shows its problems, the last good set runs', async () => {
    breakRules();
    const { cookie, csrf } = await session();
    const answer = await reload(cookie, { _csrf: csrf });
    expect(answer.status).toBe(200);
    expect(answer.text).toContain('Rules NOT reloaded');
    expect(answer.text).toContain('broken.yaml');
    const overview = await get('/', cookie);
    expect(overview.text).toContain('was refused; the set above still runs');
    expect(overview.text).toContain('broken.yaml');
  });

  it('reloads a set fixed since: the overview says when it was loaded and that no reload is refused', async () => {
    breakRules();
    const { cookie, csrf } = await session();
    const loadedAt = (html: string) =>
      /loaded <time datetime="([^"]+)"/.exec(html.slice(html.indexOf('id="rule-set"')))?.[1];
    expect((await reload(cookie, { _csrf: csrf })).text).toContain('Rules NOT reloaded');
    const before = loadedAt((await get('/', cookie)).text);
    expect(before).toBeDefined();
    rmSync(join(rules.dir, 'incident', 'broken.yaml'));
    const fixed = await reload(cookie, { _csrf: csrf });
    expect(fixed.status).toBe(200);
    expect(fixed.text).toContain('Rules reloaded: 2 rules.');
    const overview = (await get('/', cookie)).text;
    expect(overview).toContain('No reload has been refused since.');
    expect(overview).not.toContain('broken.yaml');
    const after = loadedAt(overview);
    expect(Date.parse(after as string)).toBeGreaterThan(Date.parse(before as string));
  });

  it('runs scheduled rules now with the token', async () => {
    const { cookie, csrf } = await session();
    const answer = await engine.call('POST', '/console/actions/run-schedules', {
      auth: null,
      headers: { ...FORM, Origin: origin(), Cookie: cookie },
      body: new URLSearchParams({ _csrf: csrf }).toString(),
    });
    expect(answer.status).toBe(200);
    expect(answer.text).toMatch(/Scheduled rules run at \d{4}-/);
  });
});

describe('console runs', () => {
  it('lists runs by INC number and by object id, and names a bad filter', async () => {
    const created = await engine.call('POST', '/v1/accounts/1/itsm/incidents', {
      body: { description: 'Mail is down', impact: 'low', urgency: 'low', priority: 'low' },
    });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    await eventually(async () => {
      const answer = await engine.call('GET', `/runs?object_id=${encodeURIComponent(id)}`);
      return answer.json?.count > 0;
    }, 'the run of the new incident');
    const { cookie } = await session();
    const byNumber = await get('/console/runs', cookie);
    expect(byNumber.text).toContain('INC0010001');
    for (const object of ['INC0010001', 'inc0010001', id]) {
      const page = await get(`/console/runs?object=${encodeURIComponent(object)}`, cookie);
      expect(page.status).toBe(200);
      expect(page.text).toContain(`href="/console/objects/${encodeURIComponent(id)}?account=1"`);
    }
    // The JSON API names the number too, and filters by it.
    const json = await engine.call('GET', '/runs?object_number=INC0010001');
    expect(json.status).toBe(200);
    expect(json.json.count).toBeGreaterThan(0);
    for (const run of json.json.objects) {
      expect(run.object).toEqual({ type: 'incident', id, number: 'INC0010001' });
    }
    const none = await get('/console/runs?object=INC0099999', cookie);
    expect(none.text).toContain('No run matches these filters');
    for (const [query, message] of [
      ['outcome=bogus', 'outcome: choose one of done, failed, no_match, skipped'],
      ['since=yesterday', 'since: type a time such as 2026-12-04T16:20 (UTC)'],
      ['account=abc', 'account'],
    ] as const) {
      const page = await get(`/console/runs?${query}`, cookie);
      expect(page.status).toBe(400);
      expect(page.text).toContain(message);
    }
  });

  it('refuses live rows asked for after something that is not a run number', async () => {
    const { cookie } = await session();
    const answer = await get('/console/runs/rows?after=yesterday', cookie);
    expect(answer.status).toBe(400);
    expect(answer.text).toContain('after must be a run number');
    const bad = await get('/console/runs/rows?after=0&outcome=bogus', cookie);
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('outcome: choose one of');
    const fine = await get('/console/runs/rows?after=0', cookie);
    expect(fine.status).toBe(200);
    expect(Number(fine.headers.get('X-Newest-Run'))).toBeGreaterThan(0);
  });

  it('answers an object without runs with an empty timeline', async () => {
    const { cookie } = await session();
    const answer = await get('/console/objects/no-such-object?account=1', cookie);
    expect(answer.status).toBe(200);
    expect(answer.text).toContain('The engine has no run for this object');
  });

  it('answers an unknown run with a 404 page', async () => {
    const { cookie } = await session();
    const answer = await get('/console/runs/999999', cookie);
    expect(answer.status).toBe(404);
    expect(answer.text).toContain('There is no run #999999');
  });
});
