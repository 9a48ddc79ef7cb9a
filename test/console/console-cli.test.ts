// `itsm-rules serve --console-session-hours N` (and its twin ITSM_CONSOLE_SESSION_HOURS), as a
// user runs it: the console's session cookie lasts that long.
import { afterEach, describe, expect, it } from 'vitest';
import { callHttp } from '../helpers/itsm.js';
import { type CliProcess, spawnServe } from '../helpers/serve.js';

const KEY = 'console-cli-key';
const TIMEOUT = 30_000;
const running: CliProcess[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((cli) => cli.stop()));
});

async function sessionMaxAge(args: string[], env: Record<string, string>): Promise<string | null> {
  const serve = await spawnServe(
    ['--port', '0', '--db', ':memory:', '--rules', 'test/fixtures/console-rules', ...args],
    { ITSM_API_KEY: KEY, ...env },
  );
  running.push(serve);
  const answer = await callHttp(serve.url, 'POST', '/console/sign-in', {
    auth: null,
    redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: serve.url },
    body: new URLSearchParams({ key: KEY }).toString(),
  });
  expect(answer.status).toBe(303);
  return /Max-Age=(\d+)/.exec(answer.headers.get('Set-Cookie') ?? '')?.[1] ?? null;
}

describe('itsm-rules serve --console-session-hours', () => {
  it(
    'gives console sessions 8 hours by default, and the hours the flag or its twin says',
    async () => {
      expect(await sessionMaxAge([], {})).toBe(String(8 * 3600));
      expect(await sessionMaxAge(['--console-session-hours', '2'], {})).toBe(String(2 * 3600));
      expect(await sessionMaxAge([], { ITSM_CONSOLE_SESSION_HOURS: '1' })).toBe('3600');
    },
    TIMEOUT * 3,
  );
});
