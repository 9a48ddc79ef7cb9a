// What the end-to-end benchmarks share to run the system as separate processes and watch it:
// `itsm-rules` started as users start it (resolved with the URL it prints), a benchmark file
// forking itself as its server process, JSON calls with the API key, and the engine's metrics
// read and waited on. One copy, so that every benchmark starts and watches processes alike.
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface CliChild {
  url: string;
  process: ChildProcess;
  /** SIGTERM, and resolves once it has exited. */
  stop(): Promise<void>;
}

/**
 * `itsm-rules ARGS` in a child process (without the caller's ITSM_* variables, plus `env`);
 * resolves with the first `listening on` URL it prints, rejects if it exits first. `nodeArgs`
 * go to node itself (e.g. `--cpu-prof`).
 */
export function startCli(
  args: string[],
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
): Promise<CliChild> {
  const child = spawn(process.execPath, [...nodeArgs, 'bin/itsm-rules.js', ...args], {
    cwd: ROOT,
    env: {
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ITSM_'))),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    err = (err + chunk.toString()).slice(-4000);
  });
  const exited = once(child, 'exit');
  let listening = false;
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      // Once it listens, its log is read no more: the load shares the CPU with the child, and
      // scanning a log that grows for the whole run would take more of it with every line.
      if (listening) return;
      out = (out + chunk.toString()).slice(-4000);
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (match?.[1]) {
        listening = true;
        resolve({
          url: match[1],
          process: child,
          async stop() {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
            await exited;
          },
        });
      }
    });
    child.once('exit', (code) => reject(new Error(`itsm-rules ${args[0]} exited ${code}: ${err}`)));
  });
}

/**
 * The benchmark file `moduleUrl` started again as its own server process (`node --import tsx
 * FILE ARGS`, with `execArgv` added), resolved with the first message it sends once it serves.
 */
export async function forkSelf<T>(
  moduleUrl: string,
  args: string[],
  execArgv: string[] = [],
): Promise<{ child: ChildProcess; ready: T }> {
  const child = fork(fileURLToPath(moduleUrl), args, {
    execArgv: ['--import', 'tsx', ...execArgv],
    stdio: 'inherit',
  });
  const [ready] = (await once(child, 'message')) as [T];
  return { child, ready };
}

/** A JSON call with `headers`; the parsed answer, or an error naming the call and its answer. */
export async function callJson<T = { id?: string }>(
  method: string,
  url: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<T> {
  const response = await fetch(url, {
    method,
    headers: { 'Content-Type': 'application/json', ...headers },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${url}: ${response.status} ${text}`);
  return (text ? JSON.parse(text) : {}) as T;
}

/**
 * JSON calls like callJson, sent over node:http with kept-alive connections (at most
 * `maxSockets` per origin): a load generator that costs a fraction of fetch's CPU per call
 * (no web Request, AbortSignal or body streams), so that on a small machine the load's own
 * client takes less of the CPU the systems measured need. http: URLs only.
 */
export function createJsonClient(headers: Record<string, string>, maxSockets: number) {
  // Idle connections close after 4 s, under Node's server keep-alive of 5 s: a request sent on
  // a connection the server is closing at that moment fails with ECONNRESET (the agent's own
  // reading of the server's Keep-Alive hint leaves no margin).
  const agent = new Agent({
    keepAlive: true,
    maxSockets,
    maxFreeSockets: maxSockets,
    timeout: 4_000,
  });
  const call = <T = { id?: string }>(
    method: string,
    url: string,
    body?: unknown,
    extra: Record<string, string> = {},
  ): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const text = body === undefined ? undefined : JSON.stringify(body);
      const req = request(url, {
        method,
        agent,
        headers: {
          ...headers,
          ...extra,
          ...(text !== undefined && {
            'Content-Type': 'application/json',
            'Content-Length': String(Buffer.byteLength(text)),
          }),
        },
      });
      req.on('response', (res) => {
        let answer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          answer += chunk;
        });
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status < 200 || status > 299) {
            reject(new Error(`${method} ${url}: ${status} ${answer}`));
          } else {
            resolve((answer ? JSON.parse(answer) : {}) as T);
          }
        });
        res.on('error', reject);
      });
      req.on('error', (error) => reject(new Error(`${method} ${url}: ${error.message}`)));
      req.end(text);
    });
  return { call, close: () => agent.destroy() };
}

/** The value of one series of the engine's `/metrics` (`name{labels} value`); 0 when absent. */
export async function metricValue(
  engineUrl: string,
  apiKey: string,
  series: string,
): Promise<number> {
  const response = await fetch(`${engineUrl}/metrics`, {
    headers: { Authorization: `APIKey ${apiKey}` },
  });
  const text = await response.text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return Number(line?.slice(series.length + 1) ?? 0);
}

/** Resolves once `done()` is true, looking every `everyMs`; fails after `timeoutMs`. */
export async function waitUntil(
  done: () => Promise<boolean>,
  what: string,
  timeoutMs = 300_000,
  everyMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
