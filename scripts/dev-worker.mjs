#!/usr/bin/env node
// `npm run dev:worker`: the engine as a Cloudflare Worker on http://127.0.0.1:8787, run by
// wrangler locally and offline (no telemetry, no Cloudflare account, state under .wrangler/).
// It builds the rules bundle once (scripts/bundle-rules.ts: the rules folder, $ITSM_RULES_DIR or
// rules/, checked and bundled; a broken rule prints its problems, the lines of `itsm-rules check`,
// and exits 1 before wrangler starts), applies migrations/ to the local D1 database, then starts
// `wrangler dev`, which simulates the Queue and runs the build command again only when a file
// changes (its start-up build finds the bundle up to date and stays quiet).
// Local settings default to the embedded ITSM API started with
//   node bin/itsm-rules.js itsm-server --webhook http://127.0.0.1:8787/webhooks/kloudless
// (http://127.0.0.1:8788/v1, key dev-api-key, app itsm-rules-dev); ITSM_API_URL, ITSM_API_KEY
// and ITSM_APP_ID in the environment override them. Further arguments go to `wrangler dev`.
// Cron triggers do not fire by themselves locally: run one with
//   curl "http://127.0.0.1:8787/__scheduled?cron=*+*+*+*+*"
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const wrangler = join(root, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
const tsx = join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs');
const env = {
  ...process.env,
  // bundle-rules.ts, run by wrangler's build command: leave an up-to-date bundle alone, silently.
  ITSM_RULES_BUNDLE_QUIET: '1',
  WRANGLER_SEND_METRICS: 'false',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  WRANGLER_HIDE_BANNER: 'true',
  XDG_CONFIG_HOME: join(root, '.wrangler', 'config'),
};
const settings = {
  ITSM_API_URL: process.env.ITSM_API_URL ?? 'http://127.0.0.1:8788/v1',
  ITSM_API_KEY: process.env.ITSM_API_KEY ?? 'dev-api-key',
  ITSM_APP_ID: process.env.ITSM_APP_ID ?? 'itsm-rules-dev',
};

// Built here rather than first by wrangler, whose failed build would bury the problems under its
// own error and stack trace.
const build = spawnSync(
  process.execPath,
  [tsx, join(root, 'scripts', 'bundle-rules.ts'), '--out', 'build/worker.ts'],
  { cwd: root, env: process.env, stdio: 'inherit' },
);
if (build.status !== 0) process.exit(build.status ?? 1);

const migrate = spawnSync(
  process.execPath,
  [wrangler, 'd1', 'migrations', 'apply', 'itsm-rules', '--local'],
  { cwd: root, env: { ...env, CI: 'true' }, stdio: 'inherit' },
);
if (migrate.status !== 0) {
  console.error('dev-worker: applying migrations/ to the local D1 database failed (see above)');
  process.exit(migrate.status ?? 1);
}

const dev = spawn(
  process.execPath,
  [
    wrangler,
    'dev',
    '--ip',
    '127.0.0.1',
    '--port',
    '8787',
    '--test-scheduled',
    ...Object.entries(settings).flatMap(([name, value]) => ['--var', `${name}:${value}`]),
    ...process.argv.slice(2),
  ],
  { cwd: root, env, stdio: 'inherit' },
);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => dev.kill(signal));
}
dev.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
