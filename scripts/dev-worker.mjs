#!/usr/bin/env node
// `npm run dev:worker`: the engine as a Cloudflare Worker on http://127.0.0.1:8787, run by
// wrangler locally and offline (no telemetry, no Cloudflare account, state under .wrangler/).
// It builds the rules bundle once (scripts/bundle-rules.ts: the rules folder, $ITSM_RULES_DIR or
// rules/, checked and bundled; a broken rule prints its problems, the lines of `itsm-rules check`,
// and exits 1 before wrangler starts), applies migrations/ to the local D1 database, then starts
// `wrangler dev`, which simulates the Queue and runs the build command again only when a file
// changes (its start-up build finds the bundle up to date and stays quiet).
// The Worker has two forms, and so does this script (USAGE below):
// - over an ITSM API (the default): the embedded one started with
//     node bin/itsm-rules.js itsm-server --webhook http://127.0.0.1:8787/webhooks/kloudless
//   (http://127.0.0.1:8788/v1, key dev-api-key, app itsm-rules-dev); ITSM_API_URL, ITSM_API_KEY
//   and ITSM_APP_ID in the environment override them;
// - all-in-one over a ServiceNow instance, with `--servicenow URL` (or ITSM_SERVICENOW_URL):
//   the integration user's credentials and the push secret come from the ITSM_SN_* environment,
//   checked by the rules the Worker applies (servicenow-flags.ts) before anything starts, and
//   reach wrangler in an env file readable by this user only, never on its command line (which
//   any process list shows).
// Further arguments go to `wrangler dev`. Cron triggers do not fire by themselves locally: run
// one with
//   curl "http://127.0.0.1:8787/__scheduled?cron=*+*+*+*+*"
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const USAGE = `Usage: npm run dev:worker -- [--servicenow URL] [--port N] [wrangler dev options]

Runs the engine Worker locally (wrangler dev, offline) on http://127.0.0.1:8787.

  --servicenow URL  all-in-one over this ServiceNow instance (env ITSM_SERVICENOW_URL): the
                    Worker serves /v1 and POST /servicenow/push itself, each cron run polls
                    the instance. Credentials come from the environment only:
                    ITSM_SN_USERNAME and ITSM_SN_PASSWORD (Basic, or the OAuth user),
                    ITSM_SN_CLIENT_ID and ITSM_SN_CLIENT_SECRET (OAuth), ITSM_SN_PUSH_SECRET
                    (turns on the push), ITSM_SN_ACCOUNT (default 1). Offline, the embedded
                    server answers as an instance:
                      node bin/itsm-rules.js itsm-server --port 8788 --sn-user NAME:PASSWORD
  --port N          the port to listen on (default 8787)
  -h, --help        this text

Without --servicenow the Worker acts through the ITSM API at ITSM_API_URL (default the embedded
one, http://127.0.0.1:8788/v1, started with
  node bin/itsm-rules.js itsm-server --webhook http://127.0.0.1:8787/webhooks/kloudless).
ITSM_API_KEY (default dev-api-key) and ITSM_APP_ID (default itsm-rules-dev) apply to both.
Run a cron trigger with: curl "http://127.0.0.1:8787/__scheduled?cron=*+*+*+*+*"
`;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const wrangler = join(root, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
const tsx = join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs');

/**
 * A value as wrangler's .env reader (dotenv) reads it back verbatim: in single quotes or
 * backticks, whose content it takes literally (double quotes would turn `\n` into a line break).
 */
function dotenvQuoted(name, value) {
  const quote = ["'", '`', '"'].find((q) => !value.includes(q));
  if (quote === undefined || /[\r\n]/.test(value) || (quote === '"' && value.includes('\\'))) {
    fail(`${name} cannot be handed to wrangler (it holds a line break, or every kind of quote)`);
  }
  return `${quote}${value}${quote}`;
}

/** Stops before anything starts: one line saying what is wrong and what to do. */
function fail(message) {
  console.error(`dev-worker: ${message}`);
  process.exit(1);
}

// This script's own options come first; whatever follows is wrangler's.
let servicenowUrl = process.env.ITSM_SERVICENOW_URL || undefined;
let port = '8787';
const rest = process.argv.slice(2);
const wranglerArgs = [];
while (rest.length > 0) {
  const arg = rest.shift();
  const [name, inline] = arg.startsWith('--') ? arg.split(/=(.*)/s, 2) : [arg, undefined];
  const value = () => {
    const given = inline ?? rest.shift();
    if (given === undefined || given === '') fail(`${name} needs a value; see --help`);
    return given;
  };
  if (name === '-h' || name === '--help') {
    process.stdout.write(USAGE);
    process.exit(0);
  } else if (name === '--servicenow') {
    servicenowUrl = value();
  } else if (name === '--port') {
    port = value();
    if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
      fail(`--port must be a port number from 1 to 65535, got ${JSON.stringify(port)}`);
    }
  } else {
    wranglerArgs.push(arg);
  }
}

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
  ITSM_API_KEY: process.env.ITSM_API_KEY || 'dev-api-key',
  ITSM_APP_ID: process.env.ITSM_APP_ID || 'itsm-rules-dev',
};
/** Secrets of the Worker, quoted: given to wrangler in an env file, never as `--var`. */
const secrets = {};
if (servicenowUrl === undefined) {
  settings.ITSM_API_URL = process.env.ITSM_API_URL || 'http://127.0.0.1:8788/v1';
} else {
  if (process.env.ITSM_API_URL) {
    fail(
      'ITSM_API_URL and --servicenow (ITSM_SERVICENOW_URL) are both set; unset ITSM_API_URL to run the Worker over the instance, or leave out --servicenow to act through that ITSM API',
    );
  }
  // The very rules (and messages) the Worker applies to its vars and secrets.
  const { tsImport } = await import(
    pathToFileURL(join(root, 'node_modules/tsx/dist/esm/api/index.mjs')).href
  );
  const flags = await tsImport('../src/runtime/servicenow-flags.ts', import.meta.url);
  const values = { servicenow: servicenowUrl };
  for (const spec of flags.serviceNowFlags) {
    const given = spec.env && process.env[spec.env];
    if (spec.name !== 'servicenow' && given) values[spec.name] = given;
  }
  let checked;
  try {
    checked = flags.serviceNowFromFlags(values, 'env');
  } catch (error) {
    if (!(error instanceof flags.ServiceNowSettingError)) throw error;
    fail(`${error.message} (npm run dev:worker reads them from its environment; see --help)`);
  }
  settings.ITSM_SERVICENOW_URL = checked.instanceUrl;
  settings.ITSM_SN_ACCOUNT = String(checked.account);
  for (const name of [
    'ITSM_SN_USERNAME',
    'ITSM_SN_PASSWORD',
    'ITSM_SN_CLIENT_ID',
    'ITSM_SN_CLIENT_SECRET',
    'ITSM_SN_PUSH_SECRET',
  ]) {
    if (process.env[name]) secrets[name] = dotenvQuoted(name, process.env[name]);
  }
}

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

// With --env-file, wrangler no longer reads .dev.vars by itself: it is named first, so the
// developer's own secrets (ITSM_SECRET_*, ...) still apply.
const envFiles = [];
if (Object.keys(secrets).length > 0) {
  const devVars = join(root, '.dev.vars');
  if (existsSync(devVars)) envFiles.push(devVars);
  const secretsFile = join(root, '.wrangler', 'dev-worker.secrets.env');
  mkdirSync(dirname(secretsFile), { recursive: true });
  writeFileSync(
    secretsFile,
    Object.entries(secrets)
      .map(([name, quoted]) => `${name}=${quoted}\n`)
      .join(''),
    { mode: 0o600 },
  );
  envFiles.push(secretsFile);
  process.on('exit', () => rmSync(secretsFile, { force: true }));
}

const dev = spawn(
  process.execPath,
  [
    wrangler,
    'dev',
    '--ip',
    '127.0.0.1',
    '--port',
    port,
    '--test-scheduled',
    ...Object.entries(settings).flatMap(([name, value]) => ['--var', `${name}:${value}`]),
    ...envFiles.flatMap((file) => ['--env-file', file]),
    ...wranglerArgs,
  ],
  { cwd: root, env, stdio: 'inherit' },
);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => dev.kill(signal));
}
dev.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
