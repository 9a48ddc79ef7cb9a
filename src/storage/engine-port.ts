// The storage port of the rules engine: correlation windows, once-only claims, stored plans and
// call effects. Small and async, so the SQLite adapter (Node) and a D1 adapter (Workers) can both
// implement it over the tables of migrations/0002_engine.sql. Times are milliseconds since the epoch.

export interface CorrelationInput {
  account: number;
  ruleId: string;
  key: string;
  objectId: string;
  objectType: string;
  at: number;
  windowMs: number;
}

export interface CorrelationMember {
  id: string;
  type: string;
}

export interface OnceClaim {
  account: number;
  ruleId: string;
  key: string;
  /** Who claims: the plan key of the event (a re-run of the same event claims again, and passes). */
  claimant: string;
  at: number;
  /** A claim older than this lapses; null: a claim never lapses. */
  windowMs: number | null;
}

export interface StoredPlan {
  key: string;
  account: number;
  /** The plan as JSON. */
  body: string;
  createdAt: number;
}

export type EffectOutcome = 'done' | 'failed';

export interface EffectRecord {
  planKey: string;
  callIndex: number;
  idempotencyKey: string;
  ruleId: string;
  outcome: EffectOutcome;
  /** HTTP status of the answer, when there was one. */
  status: number | null;
  objectType: string | null;
  /** The object written (for a create: the new object's id). */
  objectId: string | null;
  /** Why it failed, or a short note. */
  detail: string | null;
  at: number;
}

export interface EngineStore {
  /**
   * Counts the object under (rule, key) at `at` and returns the distinct objects counted within
   * the window ending at `at` (this one included), first counted first. Counting an object again only moves its time.
   */
  correlate(input: CorrelationInput): Promise<CorrelationMember[]>;
  /**
   * Takes (rule, key) for the claimant unless another claimant holds it and the claim has not
   * lapsed. True when the claimant holds it afterwards.
   */
  claimOnce(claim: OnceClaim): Promise<boolean>;
  /**
   * Gives up the once-only claims of the account held by claimants starting with `prefix` (the
   * plan key and a colon): the claims of an evaluation that stopped before its plan was stored,
   * which acted on nothing. Returns how many were released.
   */
  releaseClaims(account: number, prefix: string): Promise<number>;
  /**
   * Moves the time of a claim the claimant still holds to `claim.at` (a lease kept alive); false
   * when it no longer holds it (it lapsed and another claimant took it, or it was released).
   */
  renewClaim(claim: Omit<OnceClaim, 'windowMs'>): Promise<boolean>;
  /** Stores the plan unless one is stored under its key; returns the plan stored under the key. */
  savePlan(plan: StoredPlan): Promise<StoredPlan>;
  getPlan(key: string): Promise<StoredPlan | null>;
  /** Records an effect; the first record of a call wins (a later one is ignored). */
  recordEffect(effect: EffectRecord): Promise<void>;
  /** The effects of a plan, by call index. */
  listEffects(planKey: string): Promise<EffectRecord[]>;
  /**
   * The most recent successful effect on the object (the latest `at`; on a tie, the latest
   * recorded) with the plan it belongs to (null when that plan is gone), or null: how many hops
   * of engine writes led to an event, read in one go on each of the engine's own writes.
   */
  latestEffectWithPlan(
    objectId: string,
  ): Promise<{ effect: EffectRecord; plan: StoredPlan | null } | null>;
  /**
   * Deletes plans created before `before` with their effects, and correlation rows last counted
   * before it (the caller keeps `before` older than the longest correlation window). Once-only
   * claims are kept: a claim without a window holds for ever by design, and there is one row
   * per (rule, key). Returns the number of plans deleted.
   */
  purge(before: number): Promise<number>;
  close(): Promise<void>;
}
