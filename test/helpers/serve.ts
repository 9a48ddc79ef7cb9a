// Test factories for the engine as `itsm-rules serve` runs it: startEngine on 127.0.0.1, port 0,
// with the embedded ITSM API in the same process (all-in-one) unless an API URL is given, plus a
// rules folder made from the example rules, signed notifications and polling helpers; and the
// command line itself (`itsm-rules serve`) in a child process.
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { signBody } from '../../src/itsm/signature.js';
import {
  type RunningEngine,
  type StartEngineOptions,
  startEngine,
} from '../../src/runtime/engine.js';
import type { CallInit, CallResult } from './itsm.js';
import { callHttp, TEST_API_KEY, TEST_APP_ID } from './itsm.js';
import { EXAMPLE_RULES_DIR } from './rules.js';

export { TEST_API_KEY, TEST_APP_ID };

export interface TestEngine extends RunningEngine {
  logs: string[];
  /** A call to the engine's server: `/v1/...` reaches the embedded API, the rest the engine. */
  call(method: string, path: string, init?: CallInit): Promise<CallResult>;
  /** Posts a notification signed with `key` (default the API key) to the receiver. */
  notify(body: string, init?: { key?: string | null; contentType?: string }): Promise<CallResult>;
}

export async function startTestEngine(
  overrides: Partial<StartEngineOptions> = {},
): Promise<TestEngine> {
  const logs: string[] = [];
  const engine = await startEngine({
    port: 0,
    host: '127.0.0.1',
    rulesDir: EXAMPLE_RULES_DIR,
    db: ':memory:',
    apiKey: TEST_API_KEY,
    appId: TEST_APP_ID,
    reloadIntervalMs: 0,
    schedules: false,
    drainRetry: { baseMs: 50, maxMs: 400 },
    clientRetry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50 },
    log: (line) => logs.push(line),
    ...overrides,
  });
  const call = (method: string, path: string, init: CallInit = {}) =>
    callHttp(engine.url, method, path, init);
  const notify = async (body: string, init: { key?: string | null; contentType?: string } = {}) => {
    const key = init.key === undefined ? TEST_API_KEY : init.key;
    const headers: Record<string, string> = {
      'Content-Type': init.contentType ?? 'application/json',
    };
    if (key !== null) headers['X-Kloudless-Signature'] = await signBody(body, key);
    return call('POST', '/webhooks/kloudless', { body, headers, auth: null });
  };
  return Object.assign(engine, { logs, call, notify });
}

export { eventually } from './eventually.js';

/**
 * A copy of the example rules in a temporary folder, with the pager URL of
 * page-on-call-for-critical pointed at `pagerUrl` (a test receiver on 127.0.0.1).
 */
export function copyExampleRules(pagerUrl?: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'itsm-rules-'));
  cpSync(EXAMPLE_RULES_DIR, dir, { recursive: true });
  if (pagerUrl) {
    const file = join(dir, 'incident', 'page-on-call-for-critical.yaml');
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replace('https://pager.example.com/v1/alerts', pagerUrl),
    );
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A temporary rules folder holding exactly these files (relative path -> YAML text). */
export function writeRules(files: Record<string, string>): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'itsm-rules-'));
  for (const [path, text] of Object.entries(files)) {
    const full = join(dir, path);
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, text);
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface CliExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** `node bin/itsm-rules.js ...` in a child process, as a user runs it. */
export interface CliProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited and its output is read to the end. */
  exited: Promise<CliExit>;
  /** Resolves with the first match of `pattern` on stdout; rejects on exit or after `timeoutMs`. */
  waitForStdout(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Sends `signal` unless the process has already exited; resolves with its exit. */
  stop(signal?: NodeJS.Signals): Promise<CliExit>;
}

/** Where the command runs from: the repository (default), or an installed copy of the package. */
export interface CliLocation {
  /** Working directory of the process. */
  cwd: string;
  /** The `itsm-rules` script run by node, relative to `cwd` or absolute. */
  bin: string;
}

const REPOSITORY_CLI: CliLocation = { cwd: REPO_ROOT, bin: 'bin/itsm-rules.js' };

/**
 * Spawns the command line (from the repository root unless `at` says otherwise) with the test
 * runner's environment minus every ITSM_* variable (a developer's own settings must not leak
 * in), plus `env`.
 */
export function spawnCli(
  args: string[],
  env: Record<string, string> = {},
  at: CliLocation = REPOSITORY_CLI,
): CliProcess {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('ITSM_')),
  );
  const child = spawn(process.execPath, [at.bin, ...args], {
    cwd: at.cwd,
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<CliExit>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const waitForStdout = (pattern: RegExp, timeoutMs = 20_000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const match = out.match(pattern);
        if (match) {
          done();
          resolve(match);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `no ${pattern} on stdout after ${timeoutMs} ms\nstdout: ${out}\nstderr: ${err}`,
          ),
        );
      }, timeoutMs);
      const onClose = (code: number | null) => {
        done();
        reject(
          new Error(`exited (${code}) before printing ${pattern}\nstdout: ${out}\nstderr: ${err}`),
        );
      };
      const done = () => {
        clearTimeout(timer);
        child.stdout?.off('data', check);
        child.off('close', onClose);
      };
      child.stdout?.on('data', check);
      child.once('close', onClose);
      check();
    });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForStdout,
    stop(signal = 'SIGTERM') {
      if (!gone && child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export const SERVE_LISTENING = /itsm-rules listening on (http:\/\/127\.0\.0\.1:(\d+))/;
export const ITSM_SERVER_LISTENING = /itsm-api listening on (http:\/\/127\.0\.0\.1:(\d+))\/v1/;

/**
 * Spawns `itsm-rules <subcommand> ...args` and waits for `pattern` on stdout, whose first group
 * is the URL and second the port; kills the process if it never comes.
 */
async function spawnListening(
  subcommand: string,
  pattern: RegExp,
  args: string[],
  env: Record<string, string>,
  at?: CliLocation,
): Promise<CliProcess & { url: string; port: number }> {
  const cli = spawnCli([subcommand, ...args], env, at);
  try {
    const match = await cli.waitForStdout(pattern);
    return Object.assign(cli, { url: match[1] as string, port: Number(match[2]) });
  } catch (error) {
    await cli.stop('SIGKILL');
    throw error;
  }
}

/** Spawns `itsm-rules serve ...args` and waits until it listens. */
export const spawnServe = (args: string[], env: Record<string, string> = {}, at?: CliLocation) =>
  spawnListening('serve', SERVE_LISTENING, args, env, at);

/** Spawns `itsm-rules itsm-server ...args` and waits until it listens; `url` has no /v1. */
export const spawnItsmServer = (
  args: string[],
  env: Record<string, string> = {},
  at?: CliLocation,
) => spawnListening('itsm-server', ITSM_SERVER_LISTENING, args, env, at);
