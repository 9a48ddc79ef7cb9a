// The SQLite adapter of the engine storage port (better-sqlite3, Node only). It can share the
// database file (or, for `:memory:`, the connection) of the ITSM API's store: all-in-one mode keeps
// both in one `--db`.
import type {
  CorrelationInput,
  CorrelationMember,
  EffectRecord,
  EngineStore,
  OnceClaim,
  StoredPlan,
} from './engine-port.js';
import { connectSqlite, type SqliteConnectionOptions } from './sqlite.js';

export type SqliteEngineStoreOptions = SqliteConnectionOptions;

interface EffectRow {
  plan_key: string;
  call_index: number;
  idempotency_key: string;
  rule_id: string;
  outcome: string;
  status: number | null;
  object_type: string | null;
  object_id: string | null;
  detail: string | null;
  at: number;
}

function toEffect(row: EffectRow): EffectRecord {
  return {
    planKey: row.plan_key,
    callIndex: row.call_index,
    idempotencyKey: row.idempotency_key,
    ruleId: row.rule_id,
    outcome: row.outcome as EffectRecord['outcome'],
    status: row.status,
    objectType: row.object_type,
    objectId: row.object_id,
    detail: row.detail,
    at: row.at,
  };
}

export function createSqliteEngineStore(options: SqliteEngineStoreOptions): EngineStore {
  const { db, close } = connectSqlite(options);

  const sql = {
    upsertMember: db.prepare(
      `INSERT INTO engine_correlations (account, rule_id, key, object_id, object_type, first_at, at)
       VALUES (@account, @ruleId, @key, @objectId, @objectType, @at, @at)
       ON CONFLICT (account, rule_id, key, object_id) DO UPDATE SET at = MAX(at, excluded.at)`,
    ),
    dropExpired: db.prepare(
      'DELETE FROM engine_correlations WHERE account = ? AND rule_id = ? AND key = ? AND at <= ?',
    ),
    members: db.prepare<
      [number, string, string, number],
      { object_id: string; object_type: string }
    >(
      `SELECT object_id, object_type FROM engine_correlations
       WHERE account = ? AND rule_id = ? AND key = ? AND at > ? ORDER BY first_at, object_id`,
    ),
    getClaim: db.prepare<[number, string, string], { claimant: string; at: number }>(
      'SELECT claimant, at FROM engine_once WHERE account = ? AND rule_id = ? AND key = ?',
    ),
    releaseClaims: db.prepare(
      // A prefix compare, not LIKE: ids may hold LIKE's wildcards (_ in nanoid ids).
      'DELETE FROM engine_once WHERE account = ? AND substr(claimant, 1, length(?)) = ?',
    ),
    putClaim: db.prepare(
      `INSERT INTO engine_once (account, rule_id, key, claimant, at)
       VALUES (@account, @ruleId, @key, @claimant, @at)
       ON CONFLICT (account, rule_id, key) DO UPDATE SET claimant = excluded.claimant, at = excluded.at`,
    ),
    insertPlan: db.prepare(
      `INSERT INTO engine_plans (key, account, body, created_at) VALUES (@key, @account, @body, @createdAt)
       ON CONFLICT (key) DO NOTHING`,
    ),
    getPlan: db.prepare<
      [string],
      { key: string; account: number; body: string; created_at: number }
    >('SELECT key, account, body, created_at FROM engine_plans WHERE key = ?'),
    insertEffect: db.prepare(
      `INSERT INTO engine_effects
         (plan_key, call_index, idempotency_key, rule_id, outcome, status, object_type, object_id, detail, at)
       VALUES (@planKey, @callIndex, @idempotencyKey, @ruleId, @outcome, @status, @objectType, @objectId, @detail, @at)
       ON CONFLICT (plan_key, call_index) DO NOTHING`,
    ),
    listEffects: db.prepare<[string], EffectRow>(
      'SELECT * FROM engine_effects WHERE plan_key = ? ORDER BY call_index',
    ),
    // The rowid breaks ties: a new row gets a rowid above every row present, so on equal times
    // the last one recorded wins.
    latestEffectOn: db.prepare<[string], EffectRow>(
      `SELECT * FROM engine_effects WHERE object_id = ? AND outcome = 'done'
       ORDER BY at DESC, rowid DESC LIMIT 1`,
    ),
    purgeEffects: db.prepare<[number]>(
      'DELETE FROM engine_effects WHERE plan_key IN (SELECT key FROM engine_plans WHERE created_at < ?)',
    ),
    purgePlans: db.prepare<[number]>('DELETE FROM engine_plans WHERE created_at < ?'),
    purgeCorrelations: db.prepare<[number]>('DELETE FROM engine_correlations WHERE at < ?'),
  };

  const correlate = db.transaction((input: CorrelationInput) => {
    const since = input.at - input.windowMs;
    sql.dropExpired.run(input.account, input.ruleId, input.key, since);
    sql.upsertMember.run(input);
    return sql.members
      .all(input.account, input.ruleId, input.key, since)
      .map((row) => ({ id: row.object_id, type: row.object_type }));
  });

  const claimOnce = db.transaction((claim: OnceClaim) => {
    const held = sql.getClaim.get(claim.account, claim.ruleId, claim.key);
    if (held && held.claimant === claim.claimant) return true;
    const lapsed = held && claim.windowMs !== null && claim.at - held.at >= claim.windowMs;
    if (held && !lapsed) return false;
    sql.putClaim.run(claim);
    return true;
  });

  const savePlan = db.transaction((plan: StoredPlan) => {
    sql.insertPlan.run(plan);
    const row = sql.getPlan.get(plan.key);
    if (!row) throw new Error(`plan ${plan.key} vanished after it was stored`);
    return { key: row.key, account: row.account, body: row.body, createdAt: row.created_at };
  });

  const purge = db.transaction((before: number): number => {
    sql.purgeEffects.run(before);
    const plans = sql.purgePlans.run(before).changes;
    sql.purgeCorrelations.run(before);
    return plans;
  });

  return {
    async correlate(input): Promise<CorrelationMember[]> {
      return correlate(input);
    },
    async releaseClaims(account, prefix) {
      return sql.releaseClaims.run(account, prefix, prefix).changes;
    },
    async claimOnce(claim) {
      return claimOnce(claim);
    },
    async savePlan(plan) {
      return savePlan(plan);
    },
    async getPlan(key) {
      const row = sql.getPlan.get(key);
      return row
        ? { key: row.key, account: row.account, body: row.body, createdAt: row.created_at }
        : null;
    },
    async recordEffect(effect: EffectRecord) {
      sql.insertEffect.run(effect);
    },
    async listEffects(planKey) {
      return sql.listEffects.all(planKey).map(toEffect);
    },
    async latestEffectOn(objectId) {
      const row = sql.latestEffectOn.get(objectId);
      return row ? toEffect(row) : null;
    },
    async purge(before) {
      return purge(before);
    },
    async close() {
      close();
    },
  };
}
