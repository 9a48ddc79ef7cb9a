// The SQLite adapter of the pipeline store: the shared pipeline storage contract on `:memory:`,
// plus what only a file database or a shared connection shows (state surviving close and reopen,
// a borrowed connection left open, every store of all-in-one mode in one database file).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeEffect, makeStoredPlan } from '../../test/storage/engine-contract.js';
import {
  describePipelineStoreContract,
  makeRun,
  makeSnapshot,
} from '../../test/storage/pipeline-contract.js';
import { loadMigrations } from '../runtime/node.js';
import type { PipelineStore } from './pipeline-port.js';
import { applyMigrations, createSqliteStore, openSqliteDatabase } from './sqlite.js';
import { createSqliteEngineStore } from './sqlite-engine.js';
import { createSqlitePipelineStore } from './sqlite-pipeline.js';

describePipelineStoreContract('sqlite :memory:', async () =>
  createSqlitePipelineStore({ path: ':memory:', migrations: loadMigrations() }),
);

describe('sqlite pipeline store on a file', () => {
  let dir: string;
  let path: string;
  const opened: { close(): Promise<void> }[] = [];

  const open = (): PipelineStore => {
    const store = createSqlitePipelineStore({ path, migrations: loadMigrations() });
    opened.push(store);
    return store;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'itsm-pipeline-'));
    path = join(dir, 'pipeline.db');
  });

  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the runs saved before the verdicts migration findable by rule, with their verdicts', async () => {
    // A database as the release before migration 0004 left it: matched and failed rules only.
    const before = new Database(path);
    applyMigrations(
      before,
      loadMigrations().filter((migration) => migration.name < '0004'),
    );
    const detail = {
      rules: [
        { ruleId: 'escalate', verdict: 'matched' },
        { ruleId: 'notify', verdict: 'failed' },
        { ruleId: 'page', verdict: 'skipped' },
      ],
    };
    before
      .prepare(
        `INSERT INTO pipeline_runs (key, account, event_id, event_type, object_type, object_id,
           self_hops, outcome, rules, summary, detail, at)
         VALUES ('e:1:7', 1, '7', 'update', 'incident', 'inc-1', 0, 'failed',
           '["escalate","notify"]', 'old', ?, 1000)`,
      )
      .run(JSON.stringify(detail));
    before.exec(
      "INSERT INTO pipeline_run_rules (run_id, rule_id) VALUES (1, 'escalate'), (1, 'notify')",
    );
    before.close();

    const store = open();
    const run = await store.getRun('e:1:7');
    expect(run?.verdicts).toEqual({ escalate: 'matched', notify: 'failed' });
    const keys = async (query: Parameters<PipelineStore['listRuns']>[0]) =>
      (await store.listRuns(query)).map((found) => found.key);
    expect(await keys({ ruleId: 'notify', limit: 10 })).toEqual(['e:1:7']);
    expect(await keys({ ruleId: 'notify', matched: false, limit: 10 })).toEqual(['e:1:7']);
    expect(await keys({ ruleId: 'escalate', matched: true, limit: 10 })).toEqual(['e:1:7']);
  });

  it('keeps account state, snapshots and runs across close and reopen', async () => {
    const first = open();
    await first.noteNotification(1, 1_000);
    await first.saveCursor(1, 'cursor-7', 900, true);
    const snapshot = makeSnapshot();
    await first.putSnapshot(snapshot);
    const run = await first.saveRun(makeRun({ key: 'e:1:1', rules: ['escalate', 'notify'] }));
    await first.close();

    const second = open();
    expect(await second.listAccounts()).toEqual([
      { account: 1, cursor: 'cursor-7', notifiedAt: 1_000, drainedAt: 900, pendingSince: 1_000 },
    ]);
    expect(await second.getSnapshot(snapshot.account, snapshot.objectId)).toEqual(snapshot);
    expect(await second.getRunById(run.id)).toEqual(run);
    expect(await second.listRuns({ ruleId: 'notify', limit: 10 })).toEqual([run]);
    const next = await second.saveRun(makeRun({ key: 'e:1:2' }));
    expect(next.id).toBeGreaterThan(run.id);
  });

  it('works on a connection it was given and leaves that connection open when closed', async () => {
    const db = new Database(':memory:');
    try {
      applyMigrations(db, loadMigrations());
      const store = createSqlitePipelineStore({ database: db });
      await store.saveRun(makeRun({ key: 'old', at: 1, rules: ['escalate', 'notify'] }));
      const kept = await store.saveRun(makeRun({ key: 'new', at: 3, rules: ['notify'] }));
      expect(await store.purgeRuns(2)).toBe(1);
      await store.close();
      expect(db.open).toBe(true);
      expect(db.prepare('SELECT key FROM pipeline_runs').all()).toEqual([{ key: 'new' }]);
      // The rule rows of a purged run go with it: none is left to point at a missing run.
      expect(db.prepare('SELECT run_id, rule_id FROM pipeline_run_rules').all()).toEqual([
        { run_id: kept.id, rule_id: 'notify' },
      ]);
    } finally {
      db.close();
    }
  });

  it('shares one connection with the ITSM and engine stores, all of them in one database file', async () => {
    const db = openSqliteDatabase(path, loadMigrations());
    try {
      const itsm = createSqliteStore({ database: db });
      const engine = createSqliteEngineStore({ database: db });
      const pipeline = createSqlitePipelineStore({ database: db });
      const { webhook } = await itsm.addWebhook('app', 'https://example.test/hook', '2026-03-02');
      const plan = makeStoredPlan();
      await engine.savePlan(plan);
      await engine.recordEffect(makeEffect());
      const run = await pipeline.saveRun(makeRun());
      await pipeline.close();
      await engine.close();
      await itsm.close();
      expect(db.open).toBe(true);
      expect(await createSqlitePipelineStore({ database: db }).getRun(run.key)).toEqual(run);
      db.close();

      const itsmAgain = createSqliteStore({ path, migrations: loadMigrations() });
      const engineAgain = createSqliteEngineStore({ path, migrations: loadMigrations() });
      opened.push(itsmAgain, engineAgain);
      expect(await itsmAgain.listWebhooks('app')).toEqual([webhook]);
      expect(await engineAgain.getPlan(plan.key)).toEqual(plan);
      expect((await engineAgain.latestEffectWithPlan('inc-1'))?.effect).toEqual(makeEffect());
      expect(await open().getRun(run.key)).toEqual(run);
    } finally {
      if (db.open) db.close();
    }
  });
});

describe('sqlite pipeline store: the notes of one turn', () => {
  it('notes every account of a batch, keeping the latest time of each and the oldest waiting', async () => {
    const store = createSqlitePipelineStore({ path: ':memory:', migrations: loadMigrations() });
    await store.noteNotification(2, 500);
    await store.noteNotifications([1, 2, 3], 1_000);
    expect(
      (await store.listAccounts()).map((a) => [a.account, a.notifiedAt, a.pendingSince]),
    ).toEqual([
      [1, 1_000, 1_000],
      [2, 1_000, 500],
      [3, 1_000, 1_000],
    ]);
    await store.close();
  });

  it('notes all of a batch or none: one bad value leaves no note of the others', async () => {
    const store = createSqlitePipelineStore({ path: ':memory:', migrations: loadMigrations() });
    // Not a whole number: the account column (INTEGER PRIMARY KEY) refuses it.
    await expect(store.noteNotifications([1, 'x' as unknown as number, 3], 1_000)).rejects.toThrow(
      /datatype mismatch/,
    );
    expect(await store.listAccounts()).toEqual([]);
    await store.close();
  });
});

describe('migrations/0011_pending_notifications.sql on existing data', () => {
  it('keeps pending the accounts that were, from their last notification, and no other', async () => {
    const migrations = loadMigrations();
    const db = new Database(':memory:');
    try {
      applyMigrations(
        db,
        migrations.filter((m) => m.name < '0011'),
      );
      const insert = db.prepare(
        'INSERT INTO pipeline_accounts (account, cursor, notified_at, drained_at) VALUES (?, ?, ?, ?)',
      );
      insert.run(1, 'c1', 1_000, 900); // notified after its last drain's page
      insert.run(2, 'c2', 800, 900); // drained since
      insert.run(3, null, 500, null); // never drained
      insert.run(4, 'c4', 900, 900); // same millisecond: the page may not hold it
      insert.run(5, 'c5', null, 900); // never notified
      applyMigrations(db, migrations);
      const store = createSqlitePipelineStore({ database: db });
      expect((await store.listAccounts()).map((a) => [a.account, a.pendingSince])).toEqual([
        [1, 1_000],
        [2, null],
        [3, 500],
        [4, 900],
        [5, null],
      ]);
      await store.close();
    } finally {
      db.close();
    }
  });
});
