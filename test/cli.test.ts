// The `itsm-rules` command as a user runs it: `node bin/itsm-rules.js ...` in a child process,
// real HTTP on 127.0.0.1, real SQLite files. Each spawn pays the tsx start-up (about a second),
// so every test starts as few processes as it can and has a generous timeout.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type CliProcess, spawnCli, spawnItsmServer } from './helpers/serve.js';

const TIMEOUT = 30_000;
/** A clean shutdown must finish well within this. */
const PROMPT_EXIT_MS = 5_000;

const FLAGS: Record<string, string> = {
  port: 'ITSM_SERVER_PORT',
  host: 'ITSM_SERVER_HOST',
  db: 'ITSM_SERVER_DB',
  'api-key': 'ITSM_API_KEY',
  'app-id': 'ITSM_APP_ID',
  webhook: 'ITSM_WEBHOOKS',
  token: 'ITSM_TOKENS',
  users: 'ITSM_USERS_FILE',
  'public-url': 'ITSM_PUBLIC_URL',
  'max-body': 'ITSM_MAX_BODY',
  'max-page-bytes': 'ITSM_MAX_PAGE_BYTES',
  'event-retention': 'ITSM_EVENT_RETENTION',
  faults: 'ITSM_FAULTS',
  'sn-user': 'ITSM_SN_USERS',
  'sn-oauth-client': 'ITSM_SN_OAUTH_CLIENTS',
};

const children: ChildProcess[] = [];
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await gone;
    }
  }
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function runCli(args: string[], env: Record<string, string> = {}): CliProcess {
  const cli = spawnCli(args, env);
  children.push(cli.child);
  return cli;
}

/** Starts `itsm-server` and waits for its listening line; returns the base URL (no /v1). */
async function startServer(args: string[], env: Record<string, string> = {}) {
  const cli = await spawnItsmServer(args, env);
  children.push(cli.child);
  return { ...cli, base: cli.url };
}

/** Sends the signal and resolves with the exit and how long it took. */
async function stop(cli: CliProcess, signal: NodeJS.Signals) {
  const sent = Date.now();
  cli.child.kill(signal);
  const exit = await cli.exited;
  return { exit, ms: Date.now() - sent };
}

async function call(base: string, method: string, path: string, apiKey: string, body?: unknown) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      Authorization: `APIKey ${apiKey}`,
      ...(body !== undefined && { 'Content-Type': 'application/json' }),
    },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, json, text };
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'itsm-cli-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('itsm-rules itsm-server', () => {
  it(
    'lists every flag with its environment-variable twin in --help and exits 0',
    async () => {
      const cli = runCli(['itsm-server', '--help']);
      const exit = await cli.exited;
      expect(exit.code).toBe(0);
      const lines = cli.stdout().split('\n');
      for (const [flag, env] of Object.entries(FLAGS)) {
        const line = lines.find((l) => l.trimStart().startsWith(`--${flag} `));
        expect(line, `--${flag} in --help`).toBeDefined();
        expect(line, `--${flag} names ${env}`).toContain(env);
      }
    },
    TIMEOUT,
  );

  it(
    'serves the API with the given key, rejects another key, and exits 0 on SIGINT',
    async () => {
      const server = await startServer([
        '--port',
        '0',
        '--db',
        ':memory:',
        '--api-key',
        'K',
        '--app-id',
        'A',
      ]);
      expect(server.port).toBeGreaterThan(0);

      const created = await call(server.base, 'POST', '/v1/accounts/1/itsm/incidents', 'K', {
        description: 'Mail is down',
      });
      expect(created.status).toBe(201);
      expect(created.json).toMatchObject({ type: 'incident', description: 'Mail is down' });

      const wrong = await call(server.base, 'POST', '/v1/accounts/1/itsm/incidents', 'not-K', {
        description: 'Mail is down',
      });
      expect(wrong.status).toBe(401);

      const { exit, ms } = await stop(server, 'SIGINT');
      expect(exit).toEqual({ code: 0, signal: null });
      expect(ms).toBeLessThan(PROMPT_EXIT_MS);
      expect(server.stdout()).toContain('shutting down');
    },
    TIMEOUT,
  );

  it(
    'bounds the JSON of a page by --max-page-bytes, and the next page goes on from there',
    async () => {
      const server = await startServer(
        ['--port', '0', '--db', ':memory:', '--api-key', 'K', '--app-id', 'A'],
        { ITSM_MAX_PAGE_BYTES: '4096' },
      );
      const long = 'x'.repeat(1500);
      for (const n of [1, 2, 3]) {
        const created = await call(server.base, 'POST', '/v1/accounts/1/itsm/incidents', 'K', {
          description: `${n} ${long}`,
        });
        expect(created.status).toBe(201);
      }
      // Each incident's JSON is over 1500 bytes: two fit in 4096, the third is on the next page.
      const first = await call(server.base, 'GET', '/v1/accounts/1/itsm/incidents', 'K');
      expect(first.status).toBe(200);
      expect(first.json.objects).toHaveLength(2);
      expect(first.json.next_page).toEqual(expect.any(String));
      const next = await call(
        server.base,
        'GET',
        `/v1/accounts/1/itsm/incidents?page=${encodeURIComponent(first.json.next_page)}`,
        'K',
      );
      expect(next.json.objects.map((i: { description: string }) => i.description[0])).toEqual([
        '3',
      ]);
      const events = await call(server.base, 'GET', '/v1/accounts/1/events?page_size=100', 'K');
      expect(events.json.objects).toHaveLength(2);
      expect(events.json.remaining).toBe(1);

      const refused = runCli(['itsm-server', '--max-page-bytes', '100']);
      expect((await refused.exited).code).toBe(2);
      expect(refused.stderr()).toContain(
        '--max-page-bytes must be a whole number >= 1024, got "100"',
      );
    },
    TIMEOUT,
  );

  it(
    'takes the API key, port and database from environment variables and exits 0 on SIGTERM',
    async () => {
      const server = await startServer([], {
        ITSM_API_KEY: 'K2',
        ITSM_SERVER_PORT: '0',
        ITSM_SERVER_DB: ':memory:',
        ITSM_APP_ID: 'A',
      });
      expect(server.port).toBeGreaterThan(0);
      expect(server.stdout()).toContain('db :memory:');

      const accepted = await call(server.base, 'GET', '/v1/accounts/1/itsm/incidents', 'K2');
      expect(accepted.status).toBe(200);
      const devKey = await call(server.base, 'GET', '/v1/accounts/1/itsm/incidents', 'dev-api-key');
      expect(devKey.status).toBe(401);

      const { exit, ms } = await stop(server, 'SIGTERM');
      expect(exit).toEqual({ code: 0, signal: null });
      expect(ms).toBeLessThan(PROMPT_EXIT_MS);
      expect(server.stdout()).toContain('shutting down');
    },
    TIMEOUT,
  );

  it(
    'provisions the team users of a --users file',
    async () => {
      const server = await startServer([
        '--port',
        '0',
        '--db',
        ':memory:',
        '--api-key',
        'K',
        '--users',
        'test/fixtures/seed-users.json',
      ]);
      const users = await call(server.base, 'GET', '/v1/accounts/123/team/users', 'K');
      expect(users.status).toBe(200);
      expect(users.json.total).toBe(3);
      expect(users.json.objects.map((u: { email: string }) => u.email).sort()).toEqual([
        'dthorman@kloudless.com',
        'timothy@kloudless.com',
        'vinod@kloudless.com',
      ]);
    },
    TIMEOUT,
  );

  it(
    'keeps an incident in a --db file across a restart of the process',
    async () => {
      const db = join(tempDir(), 'data', 'itsm.db');
      const args = ['--port', '0', '--db', db, '--api-key', 'K'];

      const first = await startServer(args);
      const created = await call(first.base, 'POST', '/v1/accounts/7/itsm/incidents', 'K', {
        description: 'Printer on fire',
      });
      expect(created.status).toBe(201);
      expect((await stop(first, 'SIGTERM')).exit.code).toBe(0);

      const second = await startServer(args);
      const read = await call(
        second.base,
        'GET',
        `/v1/accounts/7/itsm/incidents/${created.json.id}`,
        'K',
      );
      expect(read.status).toBe(200);
      expect(read.json).toMatchObject({ id: created.json.id, description: 'Printer on fire' });
      const list = await call(second.base, 'GET', '/v1/accounts/7/itsm/incidents', 'K');
      expect(list.json.total).toBe(1);
    },
    TIMEOUT,
  );

  it(
    'registers a --webhook after its receiver answers the handshake with the app id',
    async () => {
      const handshakes: string[] = [];
      // Stands for the user's webhook receiver, a system outside the project.
      const receiver: Server = createServer((req, res) => {
        let body = '';
        req.setEncoding('utf8').on('data', (chunk: string) => {
          body += chunk;
        });
        req.on('end', () => {
          if (req.method === 'POST' && body === '') handshakes.push(req.url ?? '');
          res.writeHead(200, { 'Content-Type': 'text/plain' });
          res.end(body === '' ? 'A' : 'ok');
        });
      });
      await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
      cleanups.push(
        () =>
          new Promise<void>((resolve) => {
            receiver.close(() => resolve());
            receiver.closeAllConnections();
          }),
      );
      const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

      const server = await startServer([
        '--port',
        '0',
        '--db',
        ':memory:',
        '--api-key',
        'K',
        '--app-id',
        'A',
        '--webhook',
        hookUrl,
      ]);

      let urls: string[] = [];
      for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
        const list = await call(server.base, 'GET', '/v1/applications/A/webhooks', 'K');
        expect(list.status).toBe(200);
        urls = list.json.objects.map((w: { url: string }) => w.url);
        if (urls.includes(hookUrl)) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(urls).toEqual([hookUrl]);
      expect(handshakes).toEqual(['/hook']);
    },
    TIMEOUT,
  );

  describe('refuses bad usage with exit code 2', () => {
    it(
      'names an unknown flag',
      async () => {
        const cli = runCli(['itsm-server', '--db', ':memory:', '--bogus-flag', 'x']);
        expect((await cli.exited).code).toBe(2);
        expect(cli.stderr()).toContain('--bogus-flag');
      },
      TIMEOUT,
    );

    it(
      'names --port when it is not a number',
      async () => {
        const cli = runCli(['itsm-server', '--db', ':memory:', '--port', 'abc']);
        expect((await cli.exited).code).toBe(2);
        expect(cli.stderr()).toMatch(/--port\b.*"abc"/);
      },
      TIMEOUT,
    );

    it(
      'names an unknown command',
      async () => {
        const cli = runCli(['frobnicate']);
        expect((await cli.exited).code).toBe(2);
        expect(cli.stderr()).toContain('frobnicate');
      },
      TIMEOUT,
    );

    it(
      'requires --api-key when listening beyond loopback',
      async () => {
        const cli = runCli(['itsm-server', '--db', ':memory:', '--port', '0', '--host', '0.0.0.0']);
        expect((await cli.exited).code).toBe(2);
        expect(cli.stderr()).toContain('--api-key');
        expect(cli.stdout()).not.toMatch(/listening/);
      },
      TIMEOUT,
    );
  });
});
