// The SQL of the engine store (migrations/0002_engine.sql), shared by its SQLite adapter
// (sqlite-engine.ts, in a transaction) and its D1 adapter (d1.ts, in a batch): each
// statement with the values it binds, the rows it answers, and those rows as the port's records.
// A decision that must not race is one statement, or a group run as one transaction: the claim
// is a conditional upsert and `changes` says whether it was granted, a plan is stored first-wins
// (D1 reads it back in the same batch; SQLite reads back only a plan its insert lost to).
import type {
  CorrelationInput,
  CorrelationMember,
  EffectRecord,
  OnceClaim,
  StoredPlan,
} from './engine-port.js';
import { sql } from './sql-statement.js';

interface MemberRow {
  object_id: string;
  object_type: string;
}

interface PlanRow {
  key: string;
  account: number;
  body: string;
  created_at: number;
}

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

interface EffectPlanRow extends EffectRow {
  plan_account: number | null;
  plan_body: string | null;
  plan_created_at: number | null;
}

/** An effect and the plan it belongs to (null when that plan is gone). */
export function toEffectWithPlan(row: EffectPlanRow): {
  effect: EffectRecord;
  plan: StoredPlan | null;
} {
  const { plan_account, plan_body, plan_created_at, ...effect } = row;
  return {
    effect: toEffect(effect),
    plan:
      plan_account === null || plan_body === null || plan_created_at === null
        ? null
        : { key: row.plan_key, account: plan_account, body: plan_body, createdAt: plan_created_at },
  };
}

export function toMember(row: MemberRow): CorrelationMember {
  return { id: row.object_id, type: row.object_type };
}

export function toPlan(row: PlanRow): StoredPlan {
  return { key: row.key, account: row.account, body: row.body, createdAt: row.created_at };
}

export function toEffect(row: EffectRow): EffectRecord {
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

/** The window of a count: members counted at or before its start are out. */
const windowKey = (input: CorrelationInput) => [
  input.account,
  input.ruleId,
  input.key,
  input.at - input.windowMs,
];

export const engineSql = {
  /** correlate, 1 of 3: drops the members that fell out of the window. */
  dropExpired: sql<[CorrelationInput]>(
    'DELETE FROM engine_correlations WHERE account = ? AND rule_id = ? AND key = ? AND at <= ?',
    windowKey,
  ),
  /** correlate, 2 of 3: counts the object, moving its time forward only. */
  countMember: sql<[CorrelationInput]>(
    `INSERT INTO engine_correlations (account, rule_id, key, object_id, object_type, first_at, at)
     VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (account, rule_id, key, object_id) DO UPDATE SET at = MAX(at, excluded.at)`,
    (input) => [
      input.account,
      input.ruleId,
      input.key,
      input.objectId,
      input.objectType,
      input.at,
      input.at,
    ],
  ),
  /** correlate, 3 of 3: the members in the window, first counted first. */
  members: sql<[CorrelationInput], MemberRow>(
    `SELECT object_id, object_type FROM engine_correlations
     WHERE account = ? AND rule_id = ? AND key = ? AND at > ? ORDER BY first_at, object_id`,
    windowKey,
  ),
  /**
   * Takes (rule, key) in one statement, so two claims cannot both read "free": it changes one row
   * when the claim is granted (a free key, the holder again, or a lapsed claim) and none when it
   * is refused. The holder claiming again keeps its time, so its window does not stretch.
   */
  claimOnce: sql<[OnceClaim]>(
    `INSERT INTO engine_once (account, rule_id, key, claimant, at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (account, rule_id, key) DO UPDATE
     SET at = CASE WHEN claimant = excluded.claimant THEN at ELSE excluded.at END,
       claimant = excluded.claimant
     WHERE claimant = excluded.claimant OR (? IS NOT NULL AND excluded.at - at >= ?)`,
    (claim) => [
      claim.account,
      claim.ruleId,
      claim.key,
      claim.claimant,
      claim.at,
      claim.windowMs,
      claim.windowMs,
    ],
  ),
  renewClaim: sql<[Omit<OnceClaim, 'windowMs'>]>(
    // Never back in time: a late renewal must not shorten what a later one gave.
    `UPDATE engine_once SET at = max(at, ?)
     WHERE account = ? AND rule_id = ? AND key = ? AND claimant = ?`,
    (claim) => [claim.at, claim.account, claim.ruleId, claim.key, claim.claimant],
  ),
  releaseClaims: sql<[account: number, prefix: string]>(
    // A prefix compare, not LIKE: ids may hold LIKE's wildcards (_ in nanoid ids). Text compares
    // by its UTF-8 bytes and no UTF-8 text holds the byte FF, so the texts that start with the
    // prefix are exactly those from it to it followed by FF: a range the (account, claimant)
    // index seeks.
    "DELETE FROM engine_once WHERE account = ? AND claimant >= ? AND claimant < ? || x'ff'",
    (account, prefix) => [account, prefix, prefix],
  ),
  /** savePlan, 1 of 2: the first plan stored under a key wins. */
  insertPlan: sql<[StoredPlan]>(
    `INSERT INTO engine_plans (key, account, body, created_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (key) DO NOTHING`,
    (plan) => [plan.key, plan.account, plan.body, plan.createdAt],
  ),
  /** savePlan, 2 of 2 (and getPlan). */
  getPlan: sql<[key: string], PlanRow>(
    'SELECT key, account, body, created_at FROM engine_plans WHERE key = ?',
    (key) => [key],
  ),
  insertEffect: sql<[EffectRecord]>(
    `INSERT INTO engine_effects
       (plan_key, call_index, idempotency_key, rule_id, outcome, status, object_type, object_id, detail, at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (plan_key, call_index) DO NOTHING`,
    (effect) => [
      effect.planKey,
      effect.callIndex,
      effect.idempotencyKey,
      effect.ruleId,
      effect.outcome,
      effect.status,
      effect.objectType,
      effect.objectId,
      effect.detail,
      effect.at,
    ],
  ),
  listEffects: sql<[planKey: string], EffectRow>(
    'SELECT * FROM engine_effects WHERE plan_key = ? ORDER BY call_index',
    (planKey) => [planKey],
  ),
  /**
   * The object's latest successful effect and its plan. The rowid breaks ties (a new row gets a
   * rowid above every row present, so on equal times the last one recorded wins). The effect is
   * chosen first, then its one plan is found by key: a join before the LIMIT would read the plan
   * of every effect on the object to sort them.
   */
  latestEffectWithPlan: sql<[objectId: string], EffectPlanRow>(
    `SELECT e.*, p.account AS plan_account, p.body AS plan_body, p.created_at AS plan_created_at
     FROM (SELECT * FROM engine_effects WHERE object_id = ? AND outcome = 'done'
       ORDER BY at DESC, rowid DESC LIMIT 1) e
     LEFT JOIN engine_plans p ON p.key = e.plan_key`,
    (objectId) => [objectId],
  ),
  /** purge, 1 of 3: the effects go with their plan, so none is left without one. */
  purgeEffects: sql<[before: number]>(
    'DELETE FROM engine_effects WHERE plan_key IN (SELECT key FROM engine_plans WHERE created_at < ?)',
    (before) => [before],
  ),
  /** purge, 2 of 3: its `changes` is the number of plans deleted. */
  purgePlans: sql<[before: number]>('DELETE FROM engine_plans WHERE created_at < ?', (before) => [
    before,
  ]),
  /** purge, 3 of 3. */
  purgeCorrelations: sql<[before: number]>(
    'DELETE FROM engine_correlations WHERE at < ?',
    (before) => [before],
  ),
};
