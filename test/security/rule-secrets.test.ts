// Security: named secrets in rules (`{secret: NAME}` in an http action, read from
// ITSM_SECRET_<NAME>). The value reaches the outside host, and nowhere else: not the run records
// (`GET /runs`), not the SQLite tables (plans, effects, runs), not the process's stdout and
// stderr, not `itsm-rules test` output, not an error message quoting the URL. `itsm-rules serve`
// runs in a child process with the secrets in its environment, all-in-one, and calls a hook on
// 127.0.0.1 (a stand-in for the outside system, recording what it receives).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { secretsFromEnv } from '../../src/engine/secret.js';
import { callHttp, TEST_API_KEY } from '../helpers/itsm.js';
import {
  type CliProcess,
  eventually,
  spawnCli,
  spawnServe,
  startTestEngine,
  writeRules,
} from '../helpers/serve.js';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
type Json = any;

const PAGER_TOKEN = 'pager-token-value-8841';
const HOOK_PATH = 'hook-path-value-7719';
const SHADY_HOST = 'shadyhost4417';
const VALUES = [PAGER_TOKEN, HOOK_PATH, SHADY_HOST];
const SECRET_ENV = {
  ITSM_SECRET_PAGER_TOKEN: PAGER_TOKEN,
  ITSM_SECRET_HOOK_PATH: HOOK_PATH,
  ITSM_SECRET_SHADY_HOST: SHADY_HOST,
};
const TIMEOUT = 30_000;

interface HookRequest {
  url: string;
  authorization: string | undefined;
  body: string;
}

function secretRules(port: number) {
  return writeRules({
    'incident/page.yaml': `on: {type: incident, events: [add]}
when: {"==": [{var: object.description}, page]}
then:
  - http:
      url: {cat: ["http://127.0.0.1:${port}/hook/", {secret: HOOK_PATH}]}
      headers: {Authorization: {cat: ["Bearer ", {secret: PAGER_TOKEN}]}}
      body: {token: {secret: PAGER_TOKEN}, id: {var: object.id}}
`,
    // Its host is not on the allow-list: the refusal names the host, which is the secret.
    'incident/shady.yaml': `on: {type: incident, events: [add]}
when: {"==": [{var: object.description}, shady]}
then:
  - http:
      url: {cat: ["http://", {secret: SHADY_HOST}, ".example.com/hook"]}
`,
  });
}

function expectNoSecret(text: string, where: string): void {
  for (const value of VALUES) expect(text.includes(value), `${value} in ${where}`).toBe(false);
}

describe('secrets in rules, end to end through itsm-rules serve', () => {
  let hook: Server;
  let hookPort: number;
  const received: HookRequest[] = [];
  let rules: { dir: string; remove(): void };
  let serve: CliProcess & { url: string };
  let dbFile: string;

  beforeAll(async () => {
    hook = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => {
        body += chunk;
      });
      req.on('end', () => {
        received.push({ url: req.url ?? '', authorization: req.headers.authorization, body });
        res.writeHead(200).end('{}');
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    hookPort = (hook.address() as AddressInfo).port;
    rules = secretRules(hookPort);
    dbFile = join(rules.dir, 'engine.db');
    serve = await spawnServe(
      [
        '--port',
        '0',
        '--rules',
        rules.dir,
        '--db',
        dbFile,
        '--http-allow',
        `127.0.0.1:${hookPort}`,
        '--no-schedules',
      ],
      { ITSM_API_KEY: TEST_API_KEY, ...SECRET_ENV },
    );
  }, TIMEOUT);

  afterAll(async () => {
    await serve?.stop('SIGKILL');
    hook?.closeAllConnections();
    await new Promise((resolve) => hook?.close(resolve));
    rules?.remove();
  });

  it(
    'sends the values to the host, and keeps them out of runs, tables, logs and errors',
    async () => {
      const create = (description: string) =>
        callHttp(serve.url, 'POST', '/v1/accounts/1/itsm/incidents', { body: { description } });
      const paged = await create('page');
      expect(paged.status, paged.text).toBe(201);
      expect((await create('shady')).status).toBe(201);

      const runs = await eventually(async () => {
        const list = await callHttp(serve.url, 'GET', '/runs?account=1&page_size=100');
        return list.json.count === 2 ? list : undefined;
      }, 'both runs');
      expect(received).toEqual([
        {
          url: `/hook/${HOOK_PATH}`,
          authorization: `Bearer ${PAGER_TOKEN}`,
          body: JSON.stringify({ token: PAGER_TOKEN, id: paged.json.id }),
        },
      ]);

      // The run records: the calls are named with [secret NAME], never with the value.
      expectNoSecret(runs.text, 'GET /runs');
      const runOf = (id: string) =>
        runs.json.objects.find((run: Json) => run.rules.includes(id)) as Json;
      expect(runOf('page').outcome).toBe('done');
      expect(runOf('page').detail.calls[0].summary).toBe(
        `POST http://127.0.0.1:${hookPort}/hook/[secret HOOK_PATH]`,
      );
      // The refusal quotes the host, which is the secret's value: redacted by value.
      expect(runOf('shady').outcome).toBe('failed');
      expect(runOf('shady').detail.calls[0]).toMatchObject({
        summary: 'POST http://[secret SHADY_HOST].example.com/hook',
        detail:
          'http: [secret SHADY_HOST].example.com is not on the allow-list of hosts the engine may call (--http-allow)',
      });
      for (const run of runs.json.objects) {
        expectNoSecret((await callHttp(serve.url, 'GET', `/runs/${run.id}`)).text, 'GET /runs/:id');
      }

      // The process's output, then every row of every table of its database.
      await serve.stop('SIGTERM');
      expectNoSecret(serve.stdout(), 'stdout');
      expectNoSecret(serve.stderr(), 'stderr');
      const db = new Database(dbFile, { readonly: true });
      try {
        const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as {
          name: string;
        }[];
        expect(tables.map((table) => table.name)).toEqual(
          expect.arrayContaining(['engine_plans', 'engine_effects', 'pipeline_runs']),
        );
        for (const { name } of tables) {
          const rows = JSON.stringify(db.prepare(`SELECT * FROM "${name}"`).all());
          expectNoSecret(rows, `table ${name}`);
        }
        // The stored plan keeps the reference (a marker and the name), so a re-run still works.
        const plans = JSON.stringify(db.prepare('SELECT body FROM engine_plans').all());
        expect(plans).toContain('PAGER_TOKEN');
      } finally {
        db.close();
      }
    },
    TIMEOUT,
  );
});

describe('secrets at start, in check and in test', () => {
  it(
    'refuses to start serve while a secret a rule uses is not set, naming rule, secret and variable',
    async () => {
      const rules = secretRules(9);
      try {
        const cli = spawnCli(['serve', '--port', '0', '--rules', rules.dir, '--db', ':memory:'], {
          ITSM_API_KEY: TEST_API_KEY,
          ITSM_SECRET_PAGER_TOKEN: PAGER_TOKEN,
          ITSM_SECRET_HOOK_PATH: HOOK_PATH,
          // Only ITSM_SECRET_<NAME> is read: a variable named like the secret is not.
          SHADY_HOST,
        });
        expect((await cli.exited).code).toBe(1);
        expect(cli.stderr()).toContain(
          `shady (${join(rules.dir, 'incident/shady.yaml')}) uses the secret SHADY_HOST, which is not set: set ITSM_SECRET_SHADY_HOST`,
        );
        expectNoSecret(cli.stdout() + cli.stderr(), 'the refusal');
      } finally {
        rules.remove();
      }
    },
    TIMEOUT,
  );

  it(
    'prints [secret NAME] in itsm-rules test, never the value, set or not',
    async () => {
      const rules = secretRules(9);
      const event = writeRules({
        'page.json': JSON.stringify({
          type: 'add',
          object: { id: 'inc-7', type: 'incident', description: 'page' },
        }),
      });
      try {
        for (const json of [false, true]) {
          const cli = spawnCli(
            [
              'test',
              '--rules',
              rules.dir,
              '--event',
              join(event.dir, 'page.json'),
              ...(json ? ['--json'] : []),
            ],
            SECRET_ENV,
          );
          expect((await cli.exited).code).toBe(0);
          expectNoSecret(cli.stdout() + cli.stderr(), `itsm-rules test${json ? ' --json' : ''}`);
          expect(cli.stdout()).toContain('Bearer [secret PAGER_TOKEN]');
          expect(cli.stdout()).toContain('/hook/[secret HOOK_PATH]');
        }
        const unset = spawnCli([
          'test',
          '--rules',
          rules.dir,
          '--event',
          join(event.dir, 'page.json'),
        ]);
        expect((await unset.exited).code).toBe(0);
        expect(unset.stdout()).toContain(
          'PAGER_TOKEN: ITSM_SECRET_PAGER_TOKEN is not set here (serve refuses to start without it)',
        );
      } finally {
        rules.remove();
        event.remove();
      }
    },
    TIMEOUT,
  );

  it(
    'lists the variables in check, and refuses a secret outside an http action',
    async () => {
      const rules = secretRules(9);
      const misplaced = writeRules({
        'incident/leak.yaml': `on: {type: incident}
when: {"==": [{secret: PAGER_TOKEN}, x]}
then:
  - log: {message: {secret: PAGER_TOKEN}}
  - http: {url: "http://127.0.0.1:9/", headers: {X-Token: {secret: pager_token}}}
`,
      });
      try {
        const check = spawnCli(['check', '--rules', rules.dir]);
        expect((await check.exited).code).toBe(0);
        expect(check.stdout()).toContain(
          'secrets the rules use (set before serve or deploy): ITSM_SECRET_HOOK_PATH (page), ITSM_SECRET_PAGER_TOKEN (page), ITSM_SECRET_SHADY_HOST (shady)',
        );
        const refused = spawnCli(['check', '--rules', misplaced.dir]);
        expect((await refused.exited).code).toBe(1);
        const file = join(misplaced.dir, 'incident/leak.yaml');
        const only = 'secrets may only be used in http actions (url, headers, body)';
        expect(refused.stderr()).toContain(`${file}:2 /when/==/0: ${only}`);
        expect(refused.stderr()).toContain(`${file}:4 /then/0/log/message: ${only}`);
        expect(refused.stderr()).toContain(
          `${file}:5 /then/1/http/headers/X-Token/secret: expected a secret name in capitals`,
        );
        expect(refused.stderr()).toContain('3 problems in 1 of 1 rule file');
      } finally {
        rules.remove();
        misplaced.remove();
      }
    },
    TIMEOUT,
  );

  it('refuses a hot reload that needs an unset secret, keeping the last good set', async () => {
    const rules = writeRules({
      'incident/noop.yaml': 'on: {type: incident}\nthen:\n  - log: {message: hi}\n',
    });
    // The engine's own key is in this environment; a rule still cannot read it.
    const engine = await startTestEngine({
      rulesDir: rules.dir,
      secrets: secretsFromEnv({ ITSM_API_KEY: TEST_API_KEY }),
    });
    try {
      const { writeFileSync } = await import('node:fs');
      writeFileSync(
        join(rules.dir, 'incident/noop.yaml'),
        'on: {type: incident}\nthen:\n  - http: {url: "http://127.0.0.1:9/", headers: {A: {secret: API_KEY}}}\n',
      );
      const reload = await engine.call('POST', '/admin/rules/reload');
      expect(reload.status).toBe(422);
      expect(reload.json).toMatchObject({ ok: false, rules: 1 });
      expect(reload.json.problems).toEqual([
        `noop (${join(rules.dir, 'incident/noop.yaml')}) uses the secret API_KEY, which is not set: set ITSM_SECRET_API_KEY`,
      ]);
      expect(engine.rules().rules[0]?.actions[0]).toEqual({ log: { message: 'hi' } });
    } finally {
      await engine.close();
      rules.remove();
    }
  });
});
