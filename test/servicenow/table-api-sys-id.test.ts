// A sys_id given on a Table API insert, raced: concurrent inserts naming the same sys_id over
// real HTTP against `itsm-rules itsm-server` all pass the read that checks it before any has
// committed, and the store's unique indexes (objects_by_upstream_id, and for unified objects
// migrations/0009_unified_upstream_id.sql) keep exactly one; the others get the instance's 403,
// as a second insert made afterwards does. And 0009 on a database that already holds such a pair.
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMigrations, openSqliteStore } from '../../src/runtime/node.js';
import { DuplicateUpstreamIdError } from '../../src/storage/port.js';
import { applyMigrations } from '../../src/storage/sqlite.js';
import { type CallInit, type CallResult, callHttp, TEST_API_KEY } from '../helpers/itsm.js';
import { type CliProcess, spawnItsmServer } from '../helpers/serve.js';
import { makeEvent, makeObject } from '../storage/contract.js';

let server: CliProcess & { url: string };
const BASIC = `Basic ${btoa('vinod:secret-1')}`;
const TABLE = '/api/now/table';
const INSERTS = 12;

beforeAll(async () => {
  server = await spawnItsmServer([
    '--port=0',
    '--db=:memory:',
    `--api-key=${TEST_API_KEY}`,
    '--sn-user=vinod:secret-1',
  ]);
  // The user's sys_user record (and its event) is made on first use: before any count is taken.
  expect((await sn('GET', `${TABLE}/incident?sysparm_limit=1`)).status).toBe(200);
});

afterAll(async () => {
  await server?.stop();
});

const sn = (method: string, path: string, init: CallInit = {}): Promise<CallResult> =>
  callHttp(server.url, method, path, { auth: BASIC, ...init });

async function eventCount(): Promise<number> {
  const events = await callHttp(server.url, 'GET', '/v1/accounts/1/events?page_size=1000');
  return events.json.count as number;
}

describe('concurrent inserts naming one sys_id', () => {
  it.each<[string, Record<string, string>, string]>([
    ['incident', { short_description: 'raced' }, 'e'],
    ['problem', { short_description: 'raced too' }, 'f'],
    ['cmdb_ci', { name: 'raced-ci' }, 'a'],
  ])(
    'on %s: exactly one 201, the others the 403 of a taken sys_id, one record',
    async (table, body, first) => {
      const sysId = first + '0123456789abcdef'.repeat(2).slice(1);
      const before = await eventCount();
      const answers = await Promise.all(
        Array.from({ length: INSERTS }, () =>
          sn('POST', `${TABLE}/${table}`, { body: { ...body, sys_id: sysId } }),
        ),
      );
      const statuses = answers.map((answer) => answer.status).sort();
      expect(statuses, answers.map((answer) => answer.text).join('\n')).toEqual([
        201,
        ...Array(INSERTS - 1).fill(403),
      ]);
      for (const answer of answers.filter((a) => a.status === 403)) {
        expect(answer.json).toEqual({
          error: {
            message: 'Operation Failed',
            detail: `Error during insert of ${table} (${sysId}): a record with this sys_id already exists`,
          },
          status: 'failure',
        });
      }
      const listed = await sn('GET', `${TABLE}/${table}?sysparm_query=sys_id=${sysId}`);
      expect(listed.json.result).toHaveLength(1);
      expect(await eventCount()).toBe(before + 1);
    },
  );

  it('still lets two tables share a sys_id, as an instance does', async () => {
    const sysId = 'b'.repeat(32);
    const [incident, problem] = await Promise.all([
      sn('POST', `${TABLE}/incident`, { body: { short_description: 'one', sys_id: sysId } }),
      sn('POST', `${TABLE}/problem`, { body: { short_description: 'two', sys_id: sysId } }),
    ]);
    expect([incident.status, problem.status]).toEqual([201, 201]);
  });
});

describe('the commit of a second object with a taken sys_id', () => {
  // Over HTTP the check and the commit of one insert run without yielding to another request
  // on Node (SQLite is synchronous), so the index is what holds should that ever change: here
  // the commit that the check would have let through, made directly on the store.
  it.each([
    ['incident', null],
    ['object', 'cmdb_ci'],
  ])(
    'fails as a whole with DuplicateUpstreamIdError for a %s, keeping nothing',
    async (type, rawType) => {
      const store = openSqliteStore(':memory:');
      try {
        const upstreamId = '9'.repeat(32);
        const make = () => makeObject({ type: type as 'incident', rawType, upstreamId });
        const first = make();
        await store.commit({
          write: { kind: 'create', object: first },
          event: makeEvent({ metadata: { id: first.id } }),
          retention: 100,
        });
        const second = make();
        const failed = store.commit({
          write: { kind: 'create', object: second },
          event: makeEvent({ metadata: { id: second.id } }),
          retention: 100,
        });
        await expect(failed).rejects.toBeInstanceOf(DuplicateUpstreamIdError);
        await expect(failed).rejects.toMatchObject({
          code: 'STORE_DUPLICATE_UPSTREAM_ID',
          upstreamId,
          table: rawType ?? type,
        });
        expect(await store.getObject(second.account, second.id)).toBeNull();
        expect((await store.listEvents(first.account, 0, 10)).events).toHaveLength(1);
      } finally {
        await store.close();
      }
    },
  );
});

describe('migrations/0009_unified_upstream_id.sql on existing data', () => {
  const insert = (db: Database.Database, seq: number, type: string, sysId: string) =>
    db
      .prepare(
        `INSERT INTO objects (seq, account, id, type, raw_type, upstream_id, number, fields, extra, created, modified)
         VALUES (?, 1, ?, ?, NULL, ?, NULL, '{}', '{}', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')`,
      )
      .run(seq, `obj-${seq}`, type, sysId);

  it('keeps the oldest of a duplicated pair, gives the later one a new sys_id, and loses nothing', () => {
    const migrations = loadMigrations();
    const db = new Database(':memory:');
    try {
      applyMigrations(
        db,
        migrations.filter((m) => m.name < '0009'),
      );
      const shared = 'c'.repeat(32);
      insert(db, 1, 'incident', shared);
      insert(db, 2, 'incident', shared);
      insert(db, 3, 'incident', shared);
      insert(db, 4, 'problem', shared);
      insert(db, 5, 'incident', 'd'.repeat(32));

      applyMigrations(db, migrations);

      const rows = db.prepare('SELECT seq, type, upstream_id FROM objects ORDER BY seq').all() as {
        seq: number;
        type: string;
        upstream_id: string;
      }[];
      expect(rows).toHaveLength(5);
      expect(rows[0]).toEqual({ seq: 1, type: 'incident', upstream_id: shared });
      expect(rows[3]).toEqual({ seq: 4, type: 'problem', upstream_id: shared });
      expect(rows[4]).toEqual({ seq: 5, type: 'incident', upstream_id: 'd'.repeat(32) });
      for (const moved of [rows[1], rows[2]]) {
        expect(moved?.upstream_id).toMatch(/^[0-9a-f]{32}$/);
        expect(moved?.upstream_id).not.toBe(shared);
      }
      expect(rows[1]?.upstream_id).not.toBe(rows[2]?.upstream_id);
      // From now on the index refuses a second incident with a taken sys_id.
      expect(() => insert(db, 6, 'incident', shared)).toThrow(/UNIQUE constraint failed/);
    } finally {
      db.close();
    }
  });
});
