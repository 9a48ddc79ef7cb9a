// `npm run dev:worker` (scripts/dev-worker.mjs) with rules that do not load: it builds the rules
// bundle once at start, prints each problem once (the very lines of `itsm-rules check`) and
// exits 1 before wrangler starts, with no stack trace; over a ServiceNow instance, settings the
// Worker would refuse stop it before anything starts, and good ones run the Worker over the
// instance (the embedded Table API face, in this process) on a free port, its credentials kept
// off wrangler's command line. Child processes from the repository root; port 8787 stays free.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startItsmServer } from '../src/runtime/node.js';
import { eventually } from './helpers/eventually.js';
import { callHttp } from './helpers/itsm.js';
import { EXAMPLE_RULES_DIR } from './helpers/rules.js';
import { ROOT, runScript } from './helpers/run-script.js';
import { spawnCli } from './helpers/serve.js';

const TIMEOUT = 30_000;
const BROKEN = 'test/fixtures/broken-rules';

/** `node <script> ...args` from the repository root, with no ITSM_* variable but `env`. */
const run = (script: string, args: string[], env: Record<string, string>) =>
  runScript(script, args, { env });

const temps: string[] = [];
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

describe('npm run dev:worker', () => {
  it(
    'prints the problems once, as check does, and exits 1 without a stack trace',
    async () => {
      const [dev, check] = await Promise.all([
        run('scripts/dev-worker.mjs', [], { ITSM_RULES_DIR: BROKEN }),
        run('bin/itsm-rules.js', ['check'], { ITSM_RULES_DIR: BROKEN }),
      ]);
      expect(check.code).toBe(1);
      expect(dev.code).toBe(1);
      expect(dev.stdout).toBe('');
      expect(dev.stderr).toBe(
        `${check.stderr}bundle-rules: the Worker was not built; fix the rules (itsm-rules check --rules ${BROKEN})\n`,
      );
      expect(dev.stderr).not.toMatch(/^\s+at /m);
    },
    TIMEOUT,
  );

  it(
    'names a rules folder that does not exist in one line, and exits 1',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'itsm-rules-dev-worker-'));
      temps.push(dir);
      const missing = join(dir, 'no-rules');
      const dev = await run('scripts/dev-worker.mjs', [], { ITSM_RULES_DIR: missing });
      expect(dev.code).toBe(1);
      expect(dev.stderr).toBe(
        `the rules folder ${missing} does not exist or cannot be read; point --rules at the folder of rule files\n`,
      );
    },
    TIMEOUT,
  );

  it(
    "leaves wrangler's start-up build of an up-to-date bundle quiet, and rebuilds a changed one",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'itsm-rules-dev-worker-'));
      temps.push(dir);
      const out = join(dir, 'worker.ts');
      const tsx = 'node_modules/tsx/dist/cli.mjs';
      const bundle = (rules: string, env: Record<string, string>) =>
        run(tsx, ['scripts/bundle-rules.ts', '--rules', rules, '--out', out], env);

      const first = await bundle(EXAMPLE_RULES_DIR, {});
      expect(first.code).toBe(0);
      expect(first.stdout).toMatch(
        /^bundle-rules: \d+ rules from test\/fixtures\/example-rules \(1 scheduled\) bundled into /,
      );
      const again = await bundle(EXAMPLE_RULES_DIR, { ITSM_RULES_BUNDLE_QUIET: '1' });
      expect(again).toEqual({ code: 0, stdout: '', stderr: '' });
      const changed = await bundle('soak/rules', { ITSM_RULES_BUNDLE_QUIET: '1' });
      expect(changed.code).toBe(0);
      expect(changed.stdout).toContain('bundled into');
    },
    TIMEOUT,
  );
});

/** A port nothing listens on now, for wrangler dev (which needs a number, not 0). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('npm run dev:worker --servicenow', () => {
  const INSTANCE = 'http://127.0.0.1:9';

  it('prints its options with --help and starts nothing', async () => {
    const help = await run('scripts/dev-worker.mjs', ['--help'], {});
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--servicenow URL');
    expect(help.stdout).toContain('ITSM_SN_USERNAME and ITSM_SN_PASSWORD');
    expect(help.stderr).toBe('');
  });

  it.each([
    [
      'no integration user',
      ['--servicenow', INSTANCE],
      {},
      'dev-worker: ITSM_SERVICENOW_URL needs the integration user: ITSM_SN_USERNAME and ITSM_SN_PASSWORD (npm run dev:worker reads them from its environment; see --help)\n',
    ],
    [
      'an instance URL that is not https',
      ['--servicenow=http://dev1.service-now.com'],
      { ITSM_SN_USERNAME: 'u', ITSM_SN_PASSWORD: 'p' },
      /^dev-worker: ITSM_SERVICENOW_URL: the ServiceNow instance URL must use https .*got http:\/\/dev1\.service-now\.com/,
    ],
    [
      'ITSM_API_URL beside it',
      [],
      {
        ITSM_SERVICENOW_URL: INSTANCE,
        ITSM_API_URL: 'http://127.0.0.1:8788/v1',
        ITSM_SN_USERNAME: 'u',
        ITSM_SN_PASSWORD: 'p',
      },
      /^dev-worker: ITSM_API_URL and --servicenow \(ITSM_SERVICENOW_URL\) are both set; unset ITSM_API_URL/,
    ],
    [
      'a short push secret',
      ['--servicenow', INSTANCE],
      { ITSM_SN_USERNAME: 'u', ITSM_SN_PASSWORD: 'p', ITSM_SN_PUSH_SECRET: 'short' },
      /^dev-worker: ITSM_SN_PUSH_SECRET must be at least 16 characters/,
    ],
    [
      'a --servicenow with no value',
      ['--servicenow'],
      {},
      'dev-worker: --servicenow needs a value; see --help\n',
    ],
  ])(
    'refuses %s in one line before building anything, and exits 1',
    async (_case, args, env, message) => {
      const dev = await run('scripts/dev-worker.mjs', args, env);
      expect(dev.code).toBe(1);
      expect(dev.stdout).toBe('');
      if (typeof message === 'string') expect(dev.stderr).toBe(message);
      else expect(dev.stderr).toMatch(message);
      expect(dev.stderr.split('\n')).toHaveLength(2);
    },
    TIMEOUT,
  );

  it('runs the Worker over the instance with the credentials of the environment, never on a command line', async () => {
    const password = `pw-${crypto.randomUUID()}`;
    const instance = await startItsmServer({
      port: 0,
      host: '127.0.0.1',
      db: ':memory:',
      apiKey: 'instance-key',
      appId: 'instance-app',
      tableApi: { users: [{ name: 'integration', password, account: 1 }] },
      log: () => {},
    });
    const port = await freePort();
    const secretsFile = join(ROOT, '.wrangler', 'dev-worker.secrets.env');
    const dev = spawnCli(
      ['--servicenow', instance.url, '--port', String(port)],
      {
        ITSM_SN_USERNAME: 'integration',
        ITSM_SN_PASSWORD: password,
        ITSM_API_KEY: 'dev-key',
        ITSM_RULES_DIR: 'test/fixtures/servicenow-engine-rules',
      },
      { cwd: ROOT, bin: 'scripts/dev-worker.mjs' },
    );
    try {
      await dev.waitForStdout(/Ready on http:\/\/127\.0\.0\.1:\d+/, 90_000);
      const base = `http://127.0.0.1:${port}`;
      const health = await eventually(async () => {
        const answer = await callHttp(base, 'GET', '/healthz', { auth: null });
        expect(answer.status, answer.text).toBe(200);
        return answer.json as Record<string, unknown>;
      }, 'the Worker to answer /healthz');
      expect(health.servicenow, JSON.stringify(health)).toEqual({
        instance: instance.url,
        account: 1,
      });
      // /v1 of the Worker reads the instance as the integration user: a wrong or missing
      // password would be the instance's 401, answered as a 5xx.
      const created = await callHttp(base, 'POST', '/v1/accounts/1/itsm/incidents', {
        auth: 'APIKey dev-key',
        body: { description: 'from-dev-worker' },
      });
      expect(created.status, created.text).toBe(201);
      const record = await callHttp(
        instance.url,
        'GET',
        `/api/now/table/incident?sysparm_query=description=from-dev-worker`,
        { auth: `Basic ${btoa(`integration:${password}`)}` },
      );
      expect(record.json.result, record.text).toHaveLength(1);
      const processes = execFileSync('ps', ['-eww', '-o', 'args'], { encoding: 'utf8' });
      expect(processes).toContain('dev-worker.mjs');
      expect(processes).not.toContain(password);
      // wrangler reads them from a file only this user can read, removed when it stops.
      expect(statSync(secretsFile).mode & 0o777).toBe(0o600);
    } finally {
      await dev.stop('SIGTERM');
      await instance.close();
    }
    expect(dev.stdout() + dev.stderr()).not.toContain(password);
    expect(existsSync(secretsFile)).toBe(false);
  }, 120_000);
});
