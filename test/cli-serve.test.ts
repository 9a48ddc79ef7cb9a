// `itsm-rules serve` as a user runs it: `node bin/itsm-rules.js serve ...` in a child process on
// 127.0.0.1. The flags, their environment twins and the exit codes are the contract: 0 after a
// clean shutdown, 1 when the rules cannot be loaded, 2 for a usage error. Signatures are computed
// here with node:crypto, independently of src/itsm/signature.ts.
import { createHmac } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type CliProcess,
  copyExampleRules,
  eventually,
  spawnCli,
  spawnServe,
} from './helpers/serve.js';

const TIMEOUT = 30_000;
const BROKEN = 'test/fixtures/broken-rules';

/** Every flag of `serve`, its environment twin, and the default `--help` must show. */
const SERVE_FLAGS: { flag: string; env: string; shows: string | null }[] = [
  { flag: 'port', env: 'ITSM_RULES_PORT', shows: 'default 8787' },
  { flag: 'host', env: 'ITSM_RULES_HOST', shows: 'default 127.0.0.1' },
  { flag: 'rules', env: 'ITSM_RULES_DIR', shows: 'default ./rules' },
  { flag: 'db', env: 'ITSM_RULES_DB', shows: 'default ./data/engine.db' },
  // Absent: the embedded API, all-in-one.
  { flag: 'api-url', env: 'ITSM_API_URL', shows: 'all-in-one' },
  // The development key and app id apply on loopback only, so they are told, not defaulted.
  { flag: 'api-key', env: 'ITSM_API_KEY', shows: 'dev-api-key' },
  { flag: 'previous-key', env: 'ITSM_PREVIOUS_KEYS', shows: null },
  { flag: 'app-id', env: 'ITSM_APP_ID', shows: 'itsm-rules-dev' },
  { flag: 'as-user', env: 'ITSM_RULES_AS_USER', shows: 'default itsm-rules' },
  { flag: 'http-allow', env: 'ITSM_HTTP_ALLOW', shows: null },
  { flag: 'from', env: 'ITSM_RULES_FROM', shows: 'default oldest' },
  { flag: 'concurrency', env: 'ITSM_RULES_CONCURRENCY', shows: 'default 16' },
  { flag: 'object-concurrency', env: 'ITSM_RULES_OBJECT_CONCURRENCY', shows: 'default 32' },
  { flag: 'page-size', env: 'ITSM_RULES_PAGE_SIZE', shows: 'default 100' },
  { flag: 'reload-interval', env: 'ITSM_RULES_RELOAD_MS', shows: 'default 1000' },
  { flag: 'retention-days', env: 'ITSM_RULES_RETENTION_DAYS', shows: 'default 30' },
  { flag: 'console-session-hours', env: 'ITSM_CONSOLE_SESSION_HOURS', shows: 'default 8' },
  { flag: 'no-schedules', env: 'ITSM_RULES_NO_SCHEDULES', shows: null },
  { flag: 'faults', env: 'ITSM_FAULTS', shows: 'all-in-one only' },
  { flag: 'sn-user', env: 'ITSM_SN_USERS', shows: 'all-in-one only' },
  { flag: 'sn-oauth-client', env: 'ITSM_SN_OAUTH_CLIENTS', shows: 'all-in-one only' },
  // With --api-url: the receiver registers itself unless told not to.
  { flag: 'public-url', env: 'ITSM_RULES_PUBLIC_URL', shows: 'with --api-url' },
  { flag: 'no-register-webhook', env: 'ITSM_RULES_NO_REGISTER_WEBHOOK', shows: 'with --api-url' },
  // The same flags as `itsm-server --servicenow`: the engine all-in-one over an instance.
  { flag: 'servicenow', env: 'ITSM_SERVICENOW_URL', shows: 'all-in-one only' },
  { flag: 'sn-username', env: 'ITSM_SN_USERNAME', shows: null },
  { flag: 'sn-password', env: 'ITSM_SN_PASSWORD', shows: null },
  { flag: 'sn-client-id', env: 'ITSM_SN_CLIENT_ID', shows: null },
  { flag: 'sn-client-secret', env: 'ITSM_SN_CLIENT_SECRET', shows: null },
  { flag: 'sn-account', env: 'ITSM_SN_ACCOUNT', shows: 'default 1' },
  { flag: 'poll-interval', env: 'ITSM_SN_POLL_MS', shows: 'default 5000' },
  { flag: 'sn-push-secret', env: 'ITSM_SN_PUSH_SECRET', shows: null },
];

interface UsageCase {
  usage: string;
  args: string[];
  env: Record<string, string>;
  says: string;
}

/** Usage errors: exit 2, the reason, then the usage. */
const USAGE_ERRORS: UsageCase[] = [
  {
    usage: '--from sideways',
    args: ['--from', 'sideways'],
    env: {},
    says: '--from must be oldest or latest, got "sideways"',
  },
  {
    usage: '--api-url without --api-key',
    args: ['--api-url', 'http://127.0.0.1:9/v1'],
    env: {},
    says: '--api-key is required with --api-url',
  },
  {
    usage: '--port x',
    args: ['--port', 'x'],
    env: {},
    says: '--port must be a whole number from 0 to 65535, got "x"',
  },
  {
    usage: '--console-session-hours 0',
    args: ['--console-session-hours', '0'],
    env: {},
    says: '--console-session-hours must be a whole number from 1 to 720, got "0"',
  },
  { usage: 'an unknown flag', args: ['--bogus'], env: {}, says: "Unknown option '--bogus'" },
  {
    usage: 'ITSM_RULES_FROM=sideways',
    args: [],
    env: { ITSM_RULES_FROM: 'sideways' },
    says: '--from must be oldest or latest, got "sideways"',
  },
  {
    usage: 'ITSM_RULES_OBJECT_CONCURRENCY=0',
    args: [],
    env: { ITSM_RULES_OBJECT_CONCURRENCY: '0' },
    says: '--object-concurrency must be a whole number from 1 to 64, got "0"',
  },
  {
    usage: '--public-url without --api-url',
    args: ['--public-url', 'https://engine.example.com'],
    env: {},
    says: '--public-url applies with --api-url only',
  },
  {
    usage: 'ITSM_RULES_NO_REGISTER_WEBHOOK=1 without --api-url',
    args: [],
    env: { ITSM_RULES_NO_REGISTER_WEBHOOK: '1' },
    says: '--no-register-webhook applies with --api-url only',
  },
  {
    usage: '--public-url with a query',
    args: [
      '--api-url',
      'http://127.0.0.1:9/v1',
      '--api-key',
      'K',
      '--public-url',
      'https://e.example.com/?a=1',
    ],
    env: {},
    says: "--public-url must be the engine's base URL as the API reaches it",
  },
  {
    usage: 'ITSM_SERVICENOW_URL with --api-url',
    args: ['--api-url', 'http://127.0.0.1:9/v1', '--api-key', 'K'],
    env: {
      ITSM_SERVICENOW_URL: 'https://dev1.service-now.com',
      ITSM_SN_USERNAME: 'u',
      ITSM_SN_PASSWORD: 'p',
    },
    says: '--servicenow runs the API over the instance inside the engine (all-in-one)',
  },
  {
    usage: '--servicenow over plain http beyond loopback',
    args: [
      '--servicenow',
      'http://dev1.service-now.com',
      '--sn-username',
      'u',
      '--sn-password',
      'p',
    ],
    env: {},
    says: '--servicenow: ',
  },
  {
    usage: '--http-allow with a URL',
    args: ['--http-allow', 'http://x.com'],
    env: {},
    says: '--http-allow: "http://x.com" is not a host: give host or host:port, such as pager.example.com or 127.0.0.1:9000',
  },
  {
    usage: '--http-allow *',
    args: ['--http-allow', 'pager.example.com', '--http-allow', '*'],
    env: {},
    says: '--http-allow: "*" is not a host: a wildcard is only *.domain',
  },
  {
    usage: 'an empty --http-allow',
    args: ['--http-allow', ''],
    env: {},
    says: '--http-allow: an empty entry is not a host',
  },
  {
    usage: 'ITSM_HTTP_ALLOW with a port past 65535',
    args: [],
    env: { ITSM_HTTP_ALLOW: 'pager.example.com, x.com:99999' },
    says: '--http-allow: "x.com:99999" has port 99999: a port is from 1 to 65535',
  },
  {
    usage: '--host 0.0.0.0 without --api-key',
    args: ['--host', '0.0.0.0', '--port', '0'],
    env: {},
    says: '--api-key is required when listening on 0.0.0.0',
  },
];

const processes: CliProcess[] = [];
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const cli of processes.splice(0)) await cli.stop('SIGKILL');
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function tracked<T extends CliProcess>(cli: T): T {
  processes.push(cli);
  return cli;
}

function exampleRules(): string {
  const rules = copyExampleRules();
  cleanups.push(rules.remove);
  return rules.dir;
}

/** A port nobody listens on right now (9000, the README's, may be taken on this machine). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

const sign = (body: string, key: string) => createHmac('sha256', key).update(body).digest('base64');

/** The registration handshake: an empty body, signed with `key`. */
async function handshake(url: string, key: string) {
  const response = await fetch(`${url}/webhooks/kloudless`, {
    method: 'POST',
    headers: { 'X-Kloudless-Signature': sign('', key) },
    body: '',
  });
  return { status: response.status, text: await response.text() };
}

async function getJson(url: string, path: string, key?: string) {
  const response = await fetch(`${url}${path}`, {
    headers: key ? { Authorization: `APIKey ${key}` } : {},
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

describe('itsm-rules serve --help', () => {
  it(
    'lists every flag with its environment twin and its default, and exits 0',
    async () => {
      const cli = tracked(spawnCli(['serve', '--help']));
      expect((await cli.exited).code).toBe(0);
      const lines = cli.stdout().split('\n');
      for (const { flag, env, shows } of SERVE_FLAGS) {
        const line = lines.find((l) => l.trimStart().startsWith(`--${flag} `));
        expect(line, `--${flag} in --help`).toBeDefined();
        expect(line, `--${flag} names ${env}`).toContain(`env ${env}`);
        if (shows !== null) expect(line, `--${flag} shows ${shows}`).toContain(shows);
      }
      // No flag is missing from the table above (and so from this test).
      const listed = lines
        .filter((l) => /^\s+--[a-z-]+/.test(l))
        .map((l) => l.trim().split(' ')[0]);
      expect(listed.sort()).toEqual([...SERVE_FLAGS.map((f) => `--${f.flag}`), '--help'].sort());
    },
    TIMEOUT,
  );
});

describe('itsm-rules serve', () => {
  it(
    'works exactly as `serve --port P --rules DIR --db :memory: --api-key K --app-id A`',
    async () => {
      const port = await freePort();
      const serve = tracked(
        await spawnServe([
          '--port',
          String(port),
          '--rules',
          exampleRules(),
          '--db',
          ':memory:',
          '--api-key',
          'K',
          '--app-id',
          'A',
        ]),
      );
      expect(serve.url).toBe(`http://127.0.0.1:${port}`);
      expect(serve.stdout()).toMatch(/\(5 rules from .*, db :memory:\)/);

      const health = await getJson(serve.url, '/healthz');
      expect(health.status).toBe(200);
      expect(health.json).toMatchObject({ ok: true, service: 'itsm-rules', app_id: 'A' });
      expect(await handshake(serve.url, 'K')).toEqual({ status: 200, text: 'A' });
      expect((await handshake(serve.url, 'not-K')).status).toBe(401);
      expect((await getJson(serve.url, '/runs')).status).toBe(401);
      expect((await getJson(serve.url, '/runs', 'K')).status).toBe(200);

      // All-in-one: an incident created through the embedded API is escalated by the rules.
      const created = await fetch(`${serve.url}/v1/accounts/1/itsm/incidents`, {
        method: 'POST',
        headers: { Authorization: 'APIKey K', 'Content-Type': 'application/json' },
        body: JSON.stringify({ impact: 'high', urgency: 'high', priority: 'low' }),
      });
      expect(created.status).toBe(201);
      const { id } = (await created.json()) as { id: string };
      const escalated = await eventually(async () => {
        const { json } = await getJson(serve.url, `/v1/accounts/1/itsm/incidents/${id}`, 'K');
        return json.priority === 'high' ? json : undefined;
      }, 'the incident to be escalated');
      expect(escalated.escalation).toBe(1);

      expect(await serve.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    },
    TIMEOUT,
  );

  it(
    'takes its flags from the environment twins',
    async () => {
      const port = await freePort();
      const dir = exampleRules();
      const serve = tracked(
        await spawnServe([], {
          ITSM_RULES_PORT: String(port),
          ITSM_RULES_DIR: dir,
          ITSM_RULES_DB: ':memory:',
          ITSM_API_KEY: 'env-key',
          ITSM_APP_ID: 'env-app',
          ITSM_RULES_NO_SCHEDULES: '1',
        }),
      );
      expect(serve.port).toBe(port);
      expect(serve.stdout()).toContain(`(5 rules from ${dir}, db :memory:)`);
      expect((await getJson(serve.url, '/healthz')).json.app_id).toBe('env-app');
      expect(await handshake(serve.url, 'env-key')).toEqual({ status: 200, text: 'env-app' });
      expect((await handshake(serve.url, 'dev-api-key')).status).toBe(401);
      expect((await getJson(serve.url, '/runs', 'env-key')).status).toBe(200);
    },
    TIMEOUT,
  );

  it(
    'prefers a flag to its environment twin',
    async () => {
      const serve = tracked(
        await spawnServe(['--port', '0', '--db', ':memory:', '--rules', exampleRules()], {
          ITSM_API_KEY: 'env-key',
          ITSM_APP_ID: 'env-app',
          ITSM_RULES_PORT: 'not-a-port',
        }),
      );
      expect(await handshake(serve.url, 'env-key')).toEqual({ status: 200, text: 'env-app' });
      const flagged = tracked(
        await spawnServe(
          ['--port', '0', '--db', ':memory:', '--rules', exampleRules(), '--app-id', 'flag-app'],
          { ITSM_API_KEY: 'env-key', ITSM_APP_ID: 'env-app' },
        ),
      );
      expect(await handshake(flagged.url, 'env-key')).toEqual({ status: 200, text: 'flag-app' });
    },
    TIMEOUT,
  );

  it(
    'starts on an empty rules folder, saying that nothing acts until rules are added',
    async () => {
      const empty = mkdtempSync(join(tmpdir(), 'itsm-rules-empty-'));
      try {
        const serve = tracked(
          await spawnServe(['--port', '0', '--db', ':memory:', '--rules', empty]),
        );
        await eventually(() => serve.stderr().includes('no rule files'), 'the warning');
        expect(serve.stderr()).toContain(
          `itsm-rules: no rule files (.yaml, .yml, .json) in ${empty}: nothing acts until rules are added there`,
        );
      } finally {
        rmSync(empty, { recursive: true, force: true });
      }
    },
    TIMEOUT,
  );

  it(
    'exits 1 on a broken rules folder, naming every broken file',
    async () => {
      const cli = tracked(
        spawnCli(['serve', '--port', '0', '--db', ':memory:', '--rules', BROKEN]),
      );
      const exit = await cli.exited;
      expect(exit.code).toBe(1);
      expect(cli.stdout()).not.toMatch(/listening/);
      const files = readdirSync(BROKEN).filter((name) => /\.(ya?ml|json)$/.test(name));
      // Duplicate ids and a loop between two files are one problem each.
      expect(cli.stderr()).toContain(
        `itsm-rules serve: the rules in ${BROKEN} have ${files.length - 2} problems`,
      );
      for (const name of files) expect(cli.stderr()).toContain(`${BROKEN}/${name}`);
      expect(cli.stderr()).toContain(
        `${BROKEN}/unknown-operator.yaml:7 /when/and/1/contains: unknown operator "contains"`,
      );
    },
    TIMEOUT,
  );

  it.each(USAGE_ERRORS)(
    'exits 2 on $usage, saying why',
    async ({ args, env, says }) => {
      const cli = tracked(
        spawnCli(['serve', '--db', ':memory:', '--rules', exampleRules(), ...args], env),
      );
      const exit = await cli.exited;
      expect(exit.code).toBe(2);
      expect(cli.stderr()).toContain(says);
      // One line pointing to --help follows the message, not the whole help burying it.
      expect(cli.stderr()).toContain("\nRun 'itsm-rules serve --help' for usage.\n");
      expect(cli.stderr()).not.toContain('usage: itsm-rules serve [flags]');
      expect(cli.stdout()).not.toMatch(/listening/);
    },
    TIMEOUT,
  );
});
