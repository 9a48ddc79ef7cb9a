// One database, one process, and a database that cannot be written, as a user meets them: real
// `itsm-rules serve` and `itsm-server` processes on one SQLite file on 127.0.0.1. A second
// process on the file is refused with exit 1 naming the path and the holder; a SIGKILLed holder
// leaves no lock behind; a read-only database is refused at start naming the path and the cause,
// and a file that is no SQLite database is called that, and left as it was.
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../src/runtime/node.js';
import { callHttp } from './helpers/itsm.js';
import {
  type CliProcess,
  copyExampleRules,
  eventually,
  spawnCli,
  spawnItsmServer,
  spawnServe,
} from './helpers/serve.js';

const TIMEOUT = 60_000;
const KEY = 'database-test-key';

const running: CliProcess[] = [];
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const cli of running.splice(0)) await cli.stop('SIGKILL');
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function tempDb(): string {
  const dir = mkdtempSync(join(tmpdir(), 'itsm-rules-db-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'engine.db');
}

function rulesDir(): string {
  const rules = copyExampleRules();
  cleanups.push(rules.remove);
  return rules.dir;
}

const serveArgs = (db: string, rules: string) => [
  ...['--port', '0', '--db', db, '--rules', rules, '--api-key', KEY],
  ...['--no-schedules', '--reload-interval', '0'],
];

describe('one database, one process', () => {
  it(
    'refuses a second serve on the same database, naming the path and the holder, and starts again once the holder is SIGKILLed',
    async () => {
      const db = tempDb();
      const rules = rulesDir();
      const first = await spawnServe(serveArgs(db, rules));
      running.push(first);

      const second = spawnCli(['serve', ...serveArgs(db, rules)]);
      running.push(second);
      const exit = await second.exited;
      expect(exit.code).toBe(1);
      const pid = first.child.pid as number;
      expect(second.stderr()).toContain(
        `itsm-rules serve: the database ${db} is in use by another itsm-rules process (pid ${pid}, running since `,
      );
      expect(second.stderr()).toMatch(/stop that process first, or give this one its own database/);
      // The first one was left alone: still listening and still the webhook receiver.
      const health = await callHttp(first.url, 'GET', '/healthz', { auth: null });
      expect(health.json).toMatchObject({ ok: true, status: 'ok' });
      const hooks = await callHttp(first.url, 'GET', '/v1/applications/itsm-rules-dev/webhooks', {
        auth: `APIKey ${KEY}`,
      });
      expect(hooks.status).toBe(200);
      expect(JSON.stringify(hooks.json)).toContain(`${first.url}/webhooks/kloudless`);

      expect((await first.stop('SIGKILL')).signal).toBe('SIGKILL');
      const third = await spawnServe(serveArgs(db, rules));
      running.push(third);
      // The new process acts on writes: its webhook is the one registered now.
      const created = await callHttp(third.url, 'POST', '/v1/accounts/3/itsm/incidents', {
        auth: `APIKey ${KEY}`,
        body: { category: 'network', priority: 'medium', description: 'switch down' },
      });
      expect(created.status).toBe(201);
      await eventually(async () => {
        const runs = await callHttp(third.url, 'GET', '/runs?account=3', {
          auth: `APIKey ${KEY}`,
        });
        return runs.json?.count > 0;
      }, 'a run record of the new process for the incident');
    },
    TIMEOUT,
  );

  it(
    'refuses itsm-server on a database that serve holds',
    async () => {
      const db = tempDb();
      const first = await spawnServe(serveArgs(db, rulesDir()));
      running.push(first);
      const second = spawnCli(['itsm-server', '--port', '0', '--db', db, '--api-key', KEY]);
      running.push(second);
      expect((await second.exited).code).toBe(1);
      expect(second.stderr()).toContain(
        `itsm-rules itsm-server: the database ${db} is in use by another itsm-rules process (pid ${first.child.pid}`,
      );
    },
    TIMEOUT,
  );

  it(
    'runs two itsm-server processes on :memory: side by side (no lock there)',
    async () => {
      for (let i = 0; i < 2; i++) {
        running.push(await spawnItsmServer(['--port', '0', '--db', ':memory:', '--api-key', KEY]));
      }
      expect(running).toHaveLength(2);
    },
    TIMEOUT,
  );
});

describe('a database that cannot be written', () => {
  it(
    'refuses to start serve, naming the path and the cause',
    async () => {
      const db = tempDb();
      await openSqliteStore(db).close();
      // Tests run as root, where file permissions stop nothing: SQLite's own read-only mark (a
      // file format write version above 2, header byte 18) makes every write fail with
      // SQLITE_READONLY while reads work, as on a read-only mount.
      const fd = openSync(db, 'r+');
      writeSync(fd, Buffer.from([3]), 0, 1, 18);
      closeSync(fd);

      const serve = spawnCli(['serve', ...serveArgs(db, rulesDir())]);
      running.push(serve);
      expect((await serve.exited).code).toBe(1);
      expect(serve.stderr()).toContain(
        `itsm-rules serve: the database ${db} cannot be written: attempt to write a readonly database (SQLITE_READONLY)`,
      );
      expect(serve.stdout()).not.toMatch(/listening/);
    },
    TIMEOUT,
  );
});

describe('a --db file that is not a SQLite database', () => {
  const NOTES = 'Meeting notes: move the pager to the new on-call rota.\n'.repeat(40);

  it.for(['serve', 'itsm-server'])(
    'refuses to start %s, saying the file is not a SQLite database and leaving it as it was',
    { timeout: TIMEOUT },
    async (command) => {
      const file = join(tempDb(), '..', 'notes.txt');
      writeFileSync(file, NOTES);
      const args =
        command === 'serve'
          ? serveArgs(file, rulesDir())
          : ['--port', '0', '--db', file, '--api-key', KEY];
      const cli = spawnCli([command, ...args]);
      running.push(cli);
      expect((await cli.exited).code).toBe(1);
      expect(cli.stderr()).toBe(
        `itsm-rules ${command}: the file ${file} is not a SQLite database (SQLITE_NOTADB), and it was left as it is; point --db at a database file, or at a new path for a new database\n`,
      );
      expect(cli.stdout()).not.toMatch(/listening/);
      expect(readFileSync(file, 'utf8')).toBe(NOTES);
    },
  );
});
