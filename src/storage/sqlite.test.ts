// The SQLite adapter: the shared storage contract on `:memory:`, plus what only a file database
// shows (data surviving a reopen, migrations recorded in d1_migrations and applied once).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  describeStorageContract,
  makeEvent,
  makeIdempotencyRecord,
  makeObject,
} from '../../test/storage/contract.js';
import { loadMigrations, openSqliteStore } from '../runtime/node.js';
import type { ItsmStore } from './port.js';
import { createSqliteStore } from './sqlite.js';

describeStorageContract('sqlite :memory:', async () => openSqliteStore(':memory:'));

describe('sqlite file database', () => {
  let dir: string;
  let path: string;
  const opened: ItsmStore[] = [];

  const open = (migrations = loadMigrations()) => {
    const store = createSqliteStore({ path, migrations });
    opened.push(store);
    return store;
  };

  const appliedMigrations = () => {
    const db = new Database(path, { readonly: true });
    try {
      return db.prepare('SELECT id, name, applied_at FROM d1_migrations ORDER BY id').all() as {
        id: number;
        name: string;
        applied_at: string;
      }[];
    } finally {
      db.close();
    }
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'itsm-sqlite-'));
    path = join(dir, 'itsm.db');
  });

  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps objects, events, counters, idempotency records and webhooks across close and reopen', async () => {
    const first = open();
    const object = makeObject();
    const record = makeIdempotencyRecord();
    const { eventSeq } = await first.commit({
      write: { kind: 'create', object },
      event: makeEvent({ metadata: { id: object.id } }),
      idempotency: record,
      retention: 100,
    });
    expect(await first.nextCounter(object.account, 'INC')).toBe(1);
    const { webhook } = await first.addWebhook('app', 'https://example.test/hook', object.created);
    await first.close();

    const second = open();
    expect(await second.getObject(object.account, object.id)).toEqual(object);
    expect((await second.listEvents(object.account, 0, 10)).events.map((e) => e.seq)).toEqual([
      eventSeq,
    ]);
    expect(await second.getIdempotencyRecord(record.account, record.key)).toEqual(record);
    expect(await second.nextCounter(object.account, 'INC')).toBe(2);
    expect(await second.listWebhooks('app')).toEqual([webhook]);
    expect(await second.eventBounds(object.account)).toEqual({
      trimmedThrough: 0,
      latest: eventSeq,
      globalLatest: eventSeq,
    });
  });

  it('keeps issuing higher event seqs and the trimmed bound after a reopen once retention dropped events', async () => {
    const first = open();
    const seqs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const object = makeObject();
      seqs.push(
        (
          await first.commit({
            write: { kind: 'create', object },
            event: makeEvent(),
            retention: 1,
          })
        ).eventSeq,
      );
    }
    await first.close();

    const second = open();
    const object = makeObject();
    const { eventSeq } = await second.commit({
      write: { kind: 'create', object },
      event: makeEvent(),
      retention: 1,
    });
    expect(eventSeq).toBeGreaterThan(seqs[2] ?? Number.POSITIVE_INFINITY);
    expect((await second.eventBounds(object.account)).trimmedThrough).toBe(seqs[2]);
  });

  it('records every migration in d1_migrations', async () => {
    await open().close();
    const migrations = loadMigrations();
    expect(migrations.map((m) => m.name)).toContain('0001_init.sql');
    expect(appliedMigrations().map((m) => m.name)).toEqual(migrations.map((m) => m.name));
  });

  it('does not re-apply recorded migrations when the database is reopened', async () => {
    const first = open();
    await first.addWebhook('app', 'https://example.test/hook', '2024-01-01T00:00:00Z');
    await first.close();
    const before = appliedMigrations();

    // Re-running 0001_init.sql would fail on CREATE TABLE, so a clean open proves it was skipped.
    const second = open();
    expect(await second.listWebhooks('app')).toHaveLength(1);
    await second.close();
    expect(appliedMigrations()).toEqual(before);
  });

  it('applies only the migrations that are new since the last open, in name order', async () => {
    await open().close();
    const extra = [
      {
        name: '0003_later.sql',
        sql: 'CREATE TABLE later_probe (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);',
      },
      { name: '0002_probe.sql', sql: 'CREATE TABLE probe (id INTEGER PRIMARY KEY);' },
    ];
    await open([...loadMigrations(), ...extra]).close();
    await open([...loadMigrations(), ...extra]).close();

    const names = appliedMigrations().map((m) => m.name);
    expect(names).toEqual([
      ...loadMigrations().map((m) => m.name),
      '0002_probe.sql',
      '0003_later.sql',
    ]);
  });

  it('opens a file in a folder that does not exist yet through openSqliteStore', async () => {
    const nested = join(dir, 'a', 'b', 'itsm.db');
    const store = openSqliteStore(nested);
    opened.push(store);
    await store.addWebhook('app', 'https://example.test/hook', '2024-01-01T00:00:00Z');
    await store.close();
    const again = openSqliteStore(nested);
    opened.push(again);
    expect(await again.listWebhooks('app')).toHaveLength(1);
  });
});
