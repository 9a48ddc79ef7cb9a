// The SQLite adapter of the engine store: the shared engine storage contract on `:memory:`, plus
// what only a file database or a shared connection shows (state surviving close and reopen, a
// borrowed connection left open).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  describeEngineStoreContract,
  makeClaim,
  makeCorrelation,
  makeEffect,
  makeStoredPlan,
} from '../../test/storage/engine-contract.js';
import { loadMigrations } from '../runtime/node.js';
import type { EngineStore } from './engine-port.js';
import { engineSql } from './sql-engine.js';
import { applyMigrations } from './sqlite.js';
import { createSqliteEngineStore } from './sqlite-engine.js';

describeEngineStoreContract('sqlite :memory:', async () =>
  createSqliteEngineStore({ path: ':memory:', migrations: loadMigrations() }),
);

describe('sqlite engine store on a file', () => {
  let dir: string;
  let path: string;
  const opened: EngineStore[] = [];

  const open = () => {
    const store = createSqliteEngineStore({ path, migrations: loadMigrations() });
    opened.push(store);
    return store;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'itsm-engine-'));
    path = join(dir, 'engine.db');
  });

  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps correlations, claims, plans and effects across close and reopen', async () => {
    const first = open();
    const at = makeCorrelation().at;
    await first.correlate(makeCorrelation({ objectId: 'inc-1', at }));
    await first.correlate(makeCorrelation({ objectId: 'inc-2', at: at + 1_000 }));
    await first.claimOnce(makeClaim({ claimant: 'first', windowMs: null }));
    const plan = makeStoredPlan();
    await first.savePlan(plan);
    const effect = makeEffect();
    await first.recordEffect(effect);
    await first.close();

    const second = open();
    expect(await second.correlate(makeCorrelation({ objectId: 'inc-3', at: at + 2_000 }))).toEqual([
      { id: 'inc-1', type: 'incident' },
      { id: 'inc-2', type: 'incident' },
      { id: 'inc-3', type: 'incident' },
    ]);
    expect(await second.claimOnce(makeClaim({ claimant: 'second', windowMs: null }))).toBe(false);
    expect(await second.claimOnce(makeClaim({ claimant: 'first', windowMs: null }))).toBe(true);
    expect(await second.getPlan(plan.key)).toEqual(plan);
    expect(await second.listEffects(effect.planKey)).toEqual([effect]);
  });

  it('works on a connection it was given and leaves that connection open when closed', async () => {
    const db = new Database(':memory:');
    try {
      applyMigrations(db, loadMigrations());
      const store = createSqliteEngineStore({ database: db });
      const plan = makeStoredPlan();
      await store.savePlan(plan);
      await store.close();
      expect(db.open).toBe(true);
      expect(db.prepare('SELECT key, body FROM engine_plans').all()).toEqual([
        { key: plan.key, body: plan.body },
      ]);
    } finally {
      db.close();
    }
  });
});

describe('sqlite engine store: giving back the claims of an evaluation', () => {
  it('seeks the claims by account and claimant rather than reading every claim of the account', () => {
    const db = new Database(':memory:');
    try {
      applyMigrations(db, loadMigrations());
      const statement = engineSql.releaseClaims;
      const plan = db
        .prepare(`EXPLAIN QUERY PLAN ${statement.text}`)
        .all(...statement.values(1, 'e:1:42:')) as { detail: string }[];
      // Once per object, ever, keeps a claim for good: a scan would grow with every object.
      expect(plan.map((row) => row.detail)).toEqual([
        expect.stringMatching(
          /USING (COVERING )?INDEX engine_once_claimant \(account=\? AND claimant>\? AND claimant<\?\)/,
        ),
      ]);
    } finally {
      db.close();
    }
  });
});
