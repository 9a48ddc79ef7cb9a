// The published package as a user gets it: `npm pack` (whose prepack step compiles dist/) of a
// copy of the repository, installed into an empty folder with the runtime dependencies only,
// then `npx itsm-rules check`, `itsm-rules itsm-server` and `itsm-rules serve` run from that
// folder over real HTTP on 127.0.0.1. Proves that the tarball holds everything read at run time
// (dist/, migrations/, bin/) and that no dev dependency (tsx, typescript) is needed.
//
// Cost: the install fetches package metadata from the npm registry (or its cache) and skips
// install scripts; better-sqlite3's native addon, which would otherwise be compiled from source
// (about two minutes here), is copied from the repository's own node_modules when the versions
// match, and only compiled when they do not.
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callHttp, TEST_API_KEY } from './helpers/itsm.js';
import { ROOT } from './helpers/run-script.js';
import { type CliLocation, type CliProcess, spawnItsmServer, spawnServe } from './helpers/serve.js';

const TIMEOUT = 60_000;
/** Packing compiles the whole project and installing reaches the registry: minutes, not seconds. */
const SETUP_TIMEOUT = 600_000;

/** Top-level entries of the repository that are never part of the package's build. */
const NOT_COPIED = new Set([
  '.git',
  'node_modules',
  'dist',
  'build',
  'data',
  'coverage',
  '.wrangler',
  '.config',
  'test',
  'bench',
  'soak',
]);

const work = mkdtempSync(join(tmpdir(), 'itsm-package-'));
const app = join(work, 'app');
const installed = join(app, 'node_modules', 'itsm-rules');
const at: CliLocation = { cwd: app, bin: join('node_modules', '.bin', 'itsm-rules') };
const running: CliProcess[] = [];

/** npm's own settings stay (registry, cache); the test runner's `npm test` context does not. */
const npmEnv = Object.fromEntries(
  Object.entries(process.env).filter(
    ([key]) =>
      !key.startsWith('ITSM_') && !(key.startsWith('npm_') && !key.startsWith('npm_config_')),
  ),
);

function npm(args: string[], cwd: string): SpawnSyncReturns<string> {
  const result = spawnSync('npm', args, { cwd, env: npmEnv, encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(
      `npm ${args.join(' ')} (in ${cwd}) exited ${result.status}\n${result.stdout}\n${result.stderr}`,
    );
  }
  return result;
}

const versionOf = (dir: string) =>
  (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;

beforeAll(() => {
  // Pack a copy, so that the build prepack runs never touches the repository's own dist/.
  const source = join(work, 'source');
  cpSync(ROOT, source, {
    recursive: true,
    filter: (path) => {
      const relative = path.slice(ROOT.length).replace(/^[\\/]/, '');
      return !NOT_COPIED.has(relative.split(/[\\/]/)[0] ?? '');
    },
  });
  symlinkSync(join(ROOT, 'node_modules'), join(source, 'node_modules'), 'dir');
  const packed = npm(['pack', '--json', '--pack-destination', work], source);
  const [{ filename }] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as [
    { filename: string },
  ];

  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), '{ "private": true }\n');
  npm(
    [
      'install',
      '--prefer-offline',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      join(work, filename),
    ],
    app,
  );
  const sqlite = join(app, 'node_modules', 'better-sqlite3');
  const ours = join(ROOT, 'node_modules', 'better-sqlite3');
  const addon = join('build', 'Release', 'better_sqlite3.node');
  if (versionOf(sqlite) === versionOf(ours) && existsSync(join(ours, addon))) {
    mkdirSync(join(sqlite, 'build', 'Release'), { recursive: true });
    cpSync(join(ours, addon), join(sqlite, addon));
  } else {
    npm(['rebuild', 'better-sqlite3'], app);
  }
  cpSync(join(ROOT, 'test', 'fixtures', 'example-rules'), join(app, 'rules'), { recursive: true });
  cpSync(join(ROOT, 'test', 'fixtures', 'broken-rules'), join(app, 'broken-rules'), {
    recursive: true,
  });
}, SETUP_TIMEOUT);

afterAll(async () => {
  for (const cli of running.splice(0)) await cli.stop('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

describe('the installed package', () => {
  it('holds the compiled code and no sources, with no dev dependency installed', () => {
    expect(existsSync(join(installed, 'dist', 'runtime', 'cli.js'))).toBe(true);
    expect(existsSync(join(installed, 'dist', 'runtime', 'cli.d.ts'))).toBe(true);
    expect(existsSync(join(installed, 'migrations', '0001_init.sql'))).toBe(true);
    expect(existsSync(join(installed, 'src'))).toBe(false);
    for (const dev of ['tsx', 'typescript', 'vitest', 'wrangler']) {
      expect(existsSync(join(app, 'node_modules', dev)), dev).toBe(false);
    }
  });

  it(
    'checks a rules folder with npx itsm-rules check, and names a broken rule',
    () => {
      const good = spawnSync('npx', ['--no-install', 'itsm-rules', 'check'], {
        cwd: app,
        env: npmEnv,
        encoding: 'utf8',
      });
      expect(good.stderr).toBe('');
      expect(good.stdout).toMatch(/^5 rules in \.\/rules: all valid \(1 scheduled, 0 disabled\)$/m);
      expect(good.status).toBe(0);

      const broken = spawnSync(
        'npx',
        ['--no-install', 'itsm-rules', 'check', '--rules', 'broken-rules'],
        { cwd: app, env: npmEnv, encoding: 'utf8' },
      );
      expect(broken.status).toBe(1);
      expect(broken.stderr).toMatch(/broken-rules/);
    },
    TIMEOUT,
  );

  it(
    'serves the embedded ITSM API with itsm-rules itsm-server',
    async () => {
      const server = await spawnItsmServer(
        ['--port', '0', '--db', ':memory:', '--api-key', TEST_API_KEY],
        {},
        at,
      );
      running.push(server);
      const created = await callHttp(server.url, 'POST', '/v1/accounts/1/itsm/incidents', {
        body: { description: 'Mail is down' },
      });
      expect(created.status, created.text).toBe(201);
      const read = await callHttp(
        server.url,
        'GET',
        `/v1/accounts/1/itsm/incidents/${(created.json as { id: string }).id}`,
      );
      expect(read.status, read.text).toBe(200);
      expect(read.json).toMatchObject({ type: 'incident', description: 'Mail is down' });
      expect((await server.stop()).code).toBe(0);
    },
    TIMEOUT,
  );

  it(
    'runs the engine with itsm-rules serve (SQLite migrated from the package)',
    async () => {
      const serve = await spawnServe(
        ['--port', '0', '--db', ':memory:', '--api-key', TEST_API_KEY],
        {},
        at,
      );
      running.push(serve);
      expect(serve.stdout()).toMatch(/\(5 rules from \.\/rules, db :memory:\)/);
      const health = await callHttp(serve.url, 'GET', '/healthz', { auth: null });
      expect(health.status, health.text).toBe(200);
      const incidents = await callHttp(serve.url, 'GET', '/v1/accounts/1/itsm/incidents');
      expect(incidents.status, incidents.text).toBe(200);
      expect((await serve.stop()).code).toBe(0);
    },
    TIMEOUT,
  );
});
