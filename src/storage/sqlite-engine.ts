// The SQLite adapter of the engine storage port (better-sqlite3, Node only), over the statements
// of sql-engine.ts that the D1 adapter runs too. It can share the database file (or, for
// `:memory:`, the connection) of the ITSM API's store: all-in-one mode keeps both in one `--db`.
// better-sqlite3 is synchronous, so each group of statements is one transaction.
import type { CorrelationInput, EngineStore, StoredPlan } from './engine-port.js';
import { engineSql as q, toEffect, toEffectWithPlan, toMember, toPlan } from './sql-engine.js';
import { createSyncRunner } from './sql-statement.js';
import { connectSqlite, type SqliteConnectionOptions } from './sqlite.js';

export type SqliteEngineStoreOptions = SqliteConnectionOptions;

export function createSqliteEngineStore(options: SqliteEngineStoreOptions): EngineStore {
  const { db, close } = connectSqlite(options);
  const sql = createSyncRunner(db);

  const correlate = db.transaction((input: CorrelationInput) => {
    sql.run(q.dropExpired, input);
    sql.run(q.countMember, input);
    return sql.all(q.members, input).map(toMember);
  });

  // No transaction: the insert decides, and a stored plan never changes (only retention deletes
  // it, long after), so the plan it lost to is read back as it was.
  const savePlan = (plan: StoredPlan): StoredPlan => {
    // The plan just stored is the one given: it is not read back.
    if (sql.run(q.insertPlan, plan) === 1) {
      return { key: plan.key, account: plan.account, body: plan.body, createdAt: plan.createdAt };
    }
    const row = sql.get(q.getPlan, plan.key);
    if (!row) throw new Error(`plan ${plan.key} vanished after it was stored`);
    return toPlan(row);
  };

  const purge = db.transaction((before: number): number => {
    sql.run(q.purgeEffects, before);
    const plans = sql.run(q.purgePlans, before);
    sql.run(q.purgeCorrelations, before);
    return plans;
  });

  return {
    async correlate(input) {
      return correlate(input);
    },
    async claimOnce(claim) {
      return sql.run(q.claimOnce, claim) === 1;
    },
    async renewClaim(claim) {
      return sql.run(q.renewClaim, claim) === 1;
    },
    async releaseClaims(account, prefix) {
      return sql.run(q.releaseClaims, account, prefix);
    },
    async savePlan(plan) {
      return savePlan(plan);
    },
    async getPlan(key) {
      const row = sql.get(q.getPlan, key);
      return row ? toPlan(row) : null;
    },
    async recordEffect(effect) {
      sql.run(q.insertEffect, effect);
    },
    async listEffects(planKey) {
      return sql.all(q.listEffects, planKey).map(toEffect);
    },
    async latestEffectWithPlan(objectId) {
      const row = sql.get(q.latestEffectWithPlan, objectId);
      return row ? toEffectWithPlan(row) : null;
    },
    async purge(before) {
      return purge(before);
    },
    async close() {
      close();
    },
  };
}
