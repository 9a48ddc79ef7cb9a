// The SQL of the pipeline store (migrations/0003_pipeline.sql, 0004_run_rule_verdicts.sql and
// 0005_parked.sql, 0006_run_rule_version.sql, 0008_run_object_number.sql,
// 0011_pending_notifications.sql),
// shared by its SQLite adapter (sqlite-pipeline.ts, in a transaction) and its D1 adapter (d1.ts,
// in a batch): each statement with the values it binds, the rows it answers, and those rows as the port's records.
// Saving a run is four statements that need nothing from each other's answers (so that D1 can
// send them as one batch): drop the rule rows of a parked run under the key (the one run a save
// replaces), store the run first-wins over any other, index the rules (with their verdicts) of
// whichever run is stored under the key, read that run back. SQLite, which can branch between
// statements, first tries the common case alone: the key is new, so the insert answers the row
// it stored (nothing to unindex, nothing to read back) and its rules are indexed from that row.
import type {
  AccountState,
  NewRunRecord,
  ParkedEvent,
  ParkedObject,
  ParkedQuery,
  RuleActivity,
  RuleActivityQuery,
  RuleVerdict,
  RunQuery,
  RunRecord,
  SnapshotRecord,
} from './pipeline-port.js';
import { type SqlStatement, sql } from './sql-statement.js';

interface AccountRow {
  account: number;
  cursor: string | null;
  notified_at: number | null;
  drained_at: number | null;
  /** The oldest note in pipeline_notifications; null when none is left. */
  pending_since: number | null;
}

interface SnapshotRow {
  account: number;
  object_id: string;
  object_type: string;
  body: string;
  event_id: string;
  at: number;
}

interface RunRow {
  id: number;
  key: string;
  account: number;
  event_id: string;
  event_type: string;
  object_type: string | null;
  object_id: string | null;
  /** Null too in a database migrated before 0008 had rows. */
  object_number?: string | null;
  self_hops: number;
  outcome: string;
  rules: string;
  verdicts: string;
  summary: string;
  detail: string;
  at: number;
  rule_version: string | null;
}

interface RuleActivityRow {
  rule_id: string;
  verdict: string;
  bucket: number;
  runs: number;
}

export function toRuleActivity(row: RuleActivityRow): RuleActivity {
  return {
    ruleId: row.rule_id,
    verdict: row.verdict as RuleActivity['verdict'],
    bucket: row.bucket,
    runs: row.runs,
  };
}

interface ParkedRow {
  id: number;
  account: number;
  object_id: string;
  object_type: string;
  parked_at: number;
  attempts: number;
  next_at: number;
  error: string;
  events: number;
}

interface ParkedEventRow {
  seq: number;
  account: number;
  object_id: string;
  event_id: string;
  body: string;
  at: number;
}

export function toParked(row: ParkedRow): ParkedObject {
  return {
    id: row.id,
    account: row.account,
    objectId: row.object_id,
    objectType: row.object_type,
    parkedAt: row.parked_at,
    attempts: row.attempts,
    nextAt: row.next_at,
    error: row.error,
    events: row.events,
  };
}

export function toParkedEvent(row: ParkedEventRow): ParkedEvent {
  return {
    account: row.account,
    objectId: row.object_id,
    eventId: row.event_id,
    body: row.body,
    at: row.at,
  };
}

/** An account's columns and the time of its oldest notification not yet drained. */
const ACCOUNT_COLUMNS = `a.*, (SELECT min(n.at) FROM pipeline_notifications n
  WHERE n.account = a.account) AS pending_since`;

/** A parked object's columns and the number of events waiting behind it. */
const PARKED_COLUMNS = `p.*, (SELECT count(*) FROM pipeline_parked_events e
  WHERE e.account = p.account AND e.object_id = p.object_id) AS events`;

export function toAccount(row: AccountRow): AccountState {
  return {
    account: row.account,
    cursor: row.cursor,
    notifiedAt: row.notified_at,
    drainedAt: row.drained_at,
    pendingSince: row.pending_since,
  };
}

export function toSnapshot(row: SnapshotRow): SnapshotRecord {
  return {
    account: row.account,
    objectId: row.object_id,
    objectType: row.object_type,
    body: row.body,
    eventId: row.event_id,
    at: row.at,
  };
}

export function toRun(row: RunRow): RunRecord {
  return {
    id: row.id,
    key: row.key,
    account: row.account,
    eventId: row.event_id,
    eventType: row.event_type,
    objectType: row.object_type,
    objectId: row.object_id,
    objectNumber: row.object_number ?? null,
    selfHops: row.self_hops,
    outcome: row.outcome as RunRecord['outcome'],
    rules: JSON.parse(row.rules) as string[],
    verdicts: JSON.parse(row.verdicts) as Record<string, RuleVerdict>,
    summary: row.summary,
    detail: row.detail,
    at: row.at,
    // Absent, not null, when none was recorded: the shape of a run saved without one.
    ...(row.rule_version !== null && { ruleVersion: row.rule_version }),
  };
}

/** The values of a run's row, in the column order of insertRun and insertNewRun. */
function runValues(run: NewRunRecord): unknown[] {
  return [
    run.key,
    run.account,
    run.eventId,
    run.eventType,
    run.objectType,
    run.objectId,
    run.selfHops,
    run.outcome,
    JSON.stringify(run.rules),
    JSON.stringify(run.verdicts),
    run.summary,
    run.detail,
    run.at,
    run.ruleVersion ?? null,
    run.objectNumber ?? null,
  ];
}

/** A run's row, in the order of runValues; insertNewRun and insertRun differ in their conflict. */
const INSERT_RUN = `INSERT INTO pipeline_runs (key, account, event_id, event_type, object_type,
   object_id, self_hops, outcome, rules, verdicts, summary, detail, at, rule_version, object_number)
 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

export const pipelineSql = {
  /**
   * noteNotification, 1 of 2: the newest notification. SQLite's max() of a NULL is NULL, hence
   * the coalesce for a row a cursor save created.
   */
  noteNotification: sql<[account: number, at: number]>(
    `INSERT INTO pipeline_accounts (account, notified_at) VALUES (?, ?)
     ON CONFLICT (account) DO UPDATE
     SET notified_at = max(coalesce(notified_at, excluded.notified_at), excluded.notified_at)`,
    (account, at) => [account, at],
  ),
  /** noteNotification, 2 of 2: the note a drain page removes once it has covered it. */
  notePending: sql<[account: number, at: number]>(
    `INSERT INTO pipeline_notifications (account, at) VALUES (?, ?)
     ON CONFLICT (account, at) DO NOTHING`,
    (account, at) => [account, at],
  ),
  getAccount: sql<[account: number], AccountRow>(
    `SELECT ${ACCOUNT_COLUMNS} FROM pipeline_accounts a WHERE a.account = ?`,
    (account) => [account],
  ),
  listAccounts: sql<[], AccountRow>(
    `SELECT ${ACCOUNT_COLUMNS} FROM pipeline_accounts a ORDER BY a.account`,
    () => [],
  ),
  /** saveCursor, 1 of 2: the cursor, and the page's request time when it reached the end. */
  saveCursor: sql<[account: number, cursor: string | null, at: number, drained: boolean]>(
    `INSERT INTO pipeline_accounts (account, cursor, drained_at) VALUES (?, ?, ?)
     ON CONFLICT (account) DO UPDATE
     SET cursor = excluded.cursor, drained_at = coalesce(excluded.drained_at, drained_at)`,
    (account, cursor, at, drained) => [account, cursor, drained ? at : null],
  ),
  /**
   * saveCursor, 2 of 2: the notes the page covers. Reaching the end, it covers every note older
   * than its request (strictly: a note in the same millisecond may be of an event the page does
   * not hold). Otherwise the oldest such note stays, for the lag, and the others go: any later
   * page that reaches the end was requested after this one, so it covers them too.
   */
  clearNotified: sql<[account: number, at: number, drained: boolean]>(
    `DELETE FROM pipeline_notifications WHERE account = ? AND at < ?
       AND (? = 1 OR at > (SELECT min(at) FROM pipeline_notifications WHERE account = ?))`,
    (account, at, drained) => [account, at, drained ? 1 : 0, account],
  ),
  getSnapshot: sql<[account: number, objectId: string], SnapshotRow>(
    'SELECT * FROM pipeline_snapshots WHERE account = ? AND object_id = ?',
    (account, objectId) => [account, objectId],
  ),
  putSnapshot: sql<[SnapshotRecord]>(
    `INSERT INTO pipeline_snapshots (account, object_id, object_type, body, event_id, at)
     VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (account, object_id) DO UPDATE SET object_type = excluded.object_type,
       body = excluded.body, event_id = excluded.event_id, at = excluded.at`,
    (snapshot) => [
      snapshot.account,
      snapshot.objectId,
      snapshot.objectType,
      snapshot.body,
      snapshot.eventId,
      snapshot.at,
    ],
  ),
  deleteSnapshot: sql<[account: number, objectId: string]>(
    'DELETE FROM pipeline_snapshots WHERE account = ? AND object_id = ?',
    (account, objectId) => [account, objectId],
  ),
  getRun: sql<[key: string], RunRow>('SELECT * FROM pipeline_runs WHERE key = ?', (key) => [key]),
  getRunById: sql<[id: number], RunRow>('SELECT * FROM pipeline_runs WHERE id = ?', (id) => [id]),
  /**
   * saveRun when the key is new (SQLite's first try): stores the run and answers its row; no row
   * when a run is stored under the key already (the four statements below then save it).
   */
  insertNewRun: sql<[NewRunRecord], RunRow>(
    `${INSERT_RUN}
     ON CONFLICT (key) DO NOTHING
     RETURNING *`,
    (run) => runValues(run),
  ),
  /** Indexes the rules of the run just stored under `id` (insertNewRun's row), with its verdicts. */
  indexNewRun: sql<[id: number, verdicts: string]>(
    `INSERT INTO pipeline_run_rules (run_id, rule_id, verdict)
     SELECT ?, j.key, j.value FROM json_each(?) j WHERE true
     ON CONFLICT DO NOTHING`,
    (id, verdicts) => [id, verdicts],
  ),
  /**
   * saveRun, 1 of 4: a parked run is the one a save replaces; its rule rows go first (the new
   * run's are indexed after it).
   */
  unindexParkedRun: sql<[NewRunRecord]>(
    `DELETE FROM pipeline_run_rules
     WHERE run_id IN (SELECT id FROM pipeline_runs WHERE key = ? AND outcome = 'parked')`,
    (run) => [run.key],
  ),
  /**
   * saveRun, 2 of 4: the first run stored under a key wins, unless it is parked (not finished):
   * then the new one takes its place (and its id).
   */
  insertRun: sql<[NewRunRecord]>(
    `${INSERT_RUN}
     ON CONFLICT (key) DO UPDATE SET event_type = excluded.event_type,
       object_type = excluded.object_type, object_id = excluded.object_id,
       self_hops = excluded.self_hops, outcome = excluded.outcome, rules = excluded.rules,
       verdicts = excluded.verdicts, summary = excluded.summary, detail = excluded.detail,
       at = excluded.at, rule_version = excluded.rule_version,
       object_number = excluded.object_number
     WHERE pipeline_runs.outcome = 'parked'`,
    (run) => runValues(run),
  ),
  /**
   * saveRun, 3 of 4: indexes every rule the run stored under the key looked at, with its verdict,
   * read from the stored row (so a losing save indexes nothing of its own). The rows already
   * there for a run saved before stay as they are.
   */
  indexRunRules: sql<[NewRunRecord]>(
    `INSERT INTO pipeline_run_rules (run_id, rule_id, verdict)
     SELECT r.id, j.key, j.value FROM pipeline_runs r, json_each(r.verdicts) j WHERE r.key = ?
     ON CONFLICT DO NOTHING`,
    (run) => [run.key],
  ),
  /**
   * The runs since a time in which each of some rules matched or failed, per bucket: seeks the
   * (rule_id, verdict, run_id) index for each rule and verdict from the first run of the window
   * on, so it reads those rows only (not the far more numerous rules that did nothing), then
   * each one's run for its time (from the (id, at) index: `at` sits after the large `detail` in
   * the row, so reading it there walks overflow pages). Runs are numbered in the order they finish, so the first run at
   * or after `since` bounds the window's ids; `r.at` keeps the count exact at its edge.
   * A rule that matched but one of whose calls failed counts as failed: its verdict says only
   * that its condition held, and the calls are read (from `detail`) of the window's failed runs
   * alone, found by the (outcome, id) index.
   */
  ruleActivity: sql<[RuleActivityQuery], RuleActivityRow>(
    // CAST: a bound JavaScript number may arrive as a REAL, and a bucket must be a whole number.
    `WITH first_run (id) AS (
       SELECT coalesce(
         (SELECT id FROM pipeline_runs WHERE at >= ? ORDER BY at LIMIT 1), 9007199254740991)),
     failed_calls (run_id, rule_id) AS MATERIALIZED (
       SELECT DISTINCT f.id, json_extract(c.value, '$.ruleId')
       FROM pipeline_runs f INDEXED BY pipeline_runs_outcome, json_each(f.detail, '$.calls') c
       WHERE f.outcome = 'failed' AND f.id >= (SELECT id FROM first_run)
         AND json_extract(c.value, '$.outcome') = 'failed')
     SELECT rr.rule_id,
       CASE WHEN rr.verdict = 'matched' AND EXISTS (
           SELECT 1 FROM failed_calls fc WHERE fc.run_id = rr.run_id AND fc.rule_id = rr.rule_id)
         THEN 'failed' ELSE rr.verdict END AS verdict,
       CAST((r.at - ?) / ? AS INTEGER) AS bucket, count(*) AS runs
     FROM pipeline_run_rules rr
       JOIN pipeline_runs r INDEXED BY pipeline_runs_id_at ON r.id = rr.run_id
     WHERE rr.rule_id IN (SELECT value FROM json_each(?))
       AND rr.verdict IN ('matched', 'failed')
       AND rr.run_id >= (SELECT id FROM first_run)
       AND r.at >= ?
     GROUP BY rr.rule_id, 2, bucket`,
    (query) => [
      query.since,
      query.since,
      Math.max(1, Math.trunc(query.bucketMs)),
      JSON.stringify(query.ruleIds),
      query.since,
    ],
  ),
  /** purgeRuns, 1 of 2: the rule rows go with their run, so none points at a missing run. */
  purgeRunRules: sql<[before: number]>(
    'DELETE FROM pipeline_run_rules WHERE run_id IN (SELECT id FROM pipeline_runs WHERE at < ?)',
    (before) => [before],
  ),
  /** purgeRuns, 2 of 2: its `changes` is the number of runs deleted. */
  purgeRuns: sql<[before: number]>('DELETE FROM pipeline_runs WHERE at < ?', (before) => [before]),
  /** park, 1 of 3: an object parked already keeps its schedule. */
  parkObject: sql<[Omit<ParkedObject, 'id' | 'events'>]>(
    `INSERT INTO pipeline_parked (account, object_id, object_type, parked_at, attempts, next_at, error)
     VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (account, object_id) DO NOTHING`,
    (object) => [
      object.account,
      object.objectId,
      object.objectType,
      object.parkedAt,
      object.attempts,
      object.nextAt,
      object.error,
    ],
  ),
  /** park, 2 of 3 (once per event): an event waits once, in the order it was first parked. */
  parkEvent: sql<[ParkedEvent]>(
    `INSERT INTO pipeline_parked_events (account, object_id, event_id, body, at)
     VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (account, event_id) DO NOTHING`,
    (event) => [event.account, event.objectId, event.eventId, event.body, event.at],
  ),
  /** park, 3 of 3, and getParked. */
  getParked: sql<[account: number, objectId: string], ParkedRow>(
    `SELECT ${PARKED_COLUMNS} FROM pipeline_parked p WHERE p.account = ? AND p.object_id = ?`,
    (account, objectId) => [account, objectId],
  ),
  parkedEvents: sql<[account: number, objectId: string], ParkedEventRow>(
    'SELECT * FROM pipeline_parked_events WHERE account = ? AND object_id = ? ORDER BY seq',
    (account, objectId) => [account, objectId],
  ),
  removeParkedEvent: sql<[account: number, eventId: string]>(
    'DELETE FROM pipeline_parked_events WHERE account = ? AND event_id = ?',
    (account, eventId) => [account, eventId],
  ),
  rescheduleParked: sql<
    [
      account: number,
      objectId: string,
      schedule: { attempts: number; nextAt: number; error: string },
    ]
  >(
    'UPDATE pipeline_parked SET attempts = ?, next_at = ?, error = ? WHERE account = ? AND object_id = ?',
    (account, objectId, schedule) => [
      schedule.attempts,
      schedule.nextAt,
      schedule.error,
      account,
      objectId,
    ],
  ),
  /** Only an object with no event left behind it: one parked since keeps its row. */
  unpark: sql<[account: number, objectId: string]>(
    `DELETE FROM pipeline_parked WHERE account = ? AND object_id = ? AND NOT EXISTS
       (SELECT 1 FROM pipeline_parked_events e WHERE e.account = ? AND e.object_id = ?)`,
    (account, objectId) => [account, objectId, account, objectId],
  ),
};

/** The WHERE clause of a query of parked objects, and the values it binds. */
function parkedWhere(query: Omit<ParkedQuery, 'limit'>): { clause: string; values: unknown[] } {
  const where: string[] = [];
  const values: unknown[] = [];
  if (query.id !== undefined) {
    where.push('p.id = ?');
    values.push(query.id);
  }
  if (query.account !== undefined) {
    where.push('p.account = ?');
    values.push(query.account);
  }
  if (query.objectId !== undefined) {
    where.push('p.object_id = ?');
    values.push(query.objectId);
  }
  if (query.dueAt !== undefined) {
    where.push('p.next_at <= ?');
    values.push(query.dueAt);
  }
  return { clause: where.length > 0 ? `WHERE ${where.join(' AND ')}` : '', values };
}

/** The statement that lists parked objects, oldest parked first (one text per filter set). */
export function listParkedSql(query: ParkedQuery): SqlStatement<[], ParkedRow> {
  const { clause, values } = parkedWhere(query);
  values.push(Math.max(0, Math.trunc(query.limit)));
  return sql<[], ParkedRow>(
    // CAST: a bare `LIMIT ?` made better-sqlite3 take 6 us a call even on an empty table
    // (0.7 us with it), and every drain asks once per page.
    `SELECT ${PARKED_COLUMNS} FROM pipeline_parked p ${clause} ORDER BY p.id LIMIT CAST(? AS INTEGER)`,
    () => [...values],
  );
}

/** Makes the parked objects a query selects due at `at` (an operator's retry). */
export function retryParkedSql(query: Omit<ParkedQuery, 'dueAt' | 'limit'>, at: number) {
  const { clause, values } = parkedWhere(query);
  // UPDATE takes no table alias in SQLite: the filters name p.*, so they select ids.
  return sql<[]>(
    `UPDATE pipeline_parked SET next_at = ? WHERE id IN (SELECT p.id FROM pipeline_parked p ${clause})`,
    () => [at, ...values],
  );
}

/**
 * The statement that lists runs: one text per combination of filters (a few hundred at most, so a runner can
 * keep each prepared), each walking an index newest first and stopping at the limit; with a
 * rule, the (rule_id, run_id) key of pipeline_run_rules, or with `matched: true` its
 * (rule_id, verdict, run_id) index.
 */
export function listRunsSql(query: RunQuery): SqlStatement<[], RunRow> {
  const where: string[] = [];
  const values: unknown[] = [];
  const filter = (condition: string, value: unknown) => {
    where.push(condition);
    values.push(value);
  };
  if (query.ruleId !== undefined) filter('rr.rule_id = ?', query.ruleId);
  if (query.ruleId !== undefined && query.matched !== undefined) {
    filter(query.matched ? 'rr.verdict = ?' : 'rr.verdict <> ?', 'matched');
  }
  if (query.account !== undefined) filter('r.account = ?', query.account);
  if (query.objectId !== undefined) filter('r.object_id = ?', query.objectId);
  if (query.objectNumber !== undefined) filter('r.object_number = ?', query.objectNumber);
  if (query.since !== undefined) filter('r.at >= ?', query.since);
  if (query.until !== undefined) filter('r.at < ?', query.until);
  if (query.outcome !== undefined) filter('r.outcome = ?', query.outcome);
  if (query.ruleVersion !== undefined) {
    // A prefix, as with commit hashes: versions are lower-case hex, and "g" sorts after them all.
    filter('r.rule_version >= ?', query.ruleVersion);
    filter('r.rule_version < ?', `${query.ruleVersion}g`);
  }
  if (query.before !== undefined) filter('r.id < ?', query.before);
  const byRule = query.ruleId !== undefined;
  const from = byRule
    ? 'pipeline_run_rules rr JOIN pipeline_runs r ON r.id = rr.run_id'
    : 'pipeline_runs r';
  const order = byRule ? 'rr.run_id' : 'r.id';
  const shape = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
  // A negative LIMIT means "no limit" to SQLite; the port promises at most `limit` runs.
  values.push(Math.max(0, Math.trunc(query.limit)));
  return sql<[], RunRow>(
    `SELECT r.* FROM ${from} ${shape} ORDER BY ${order} DESC LIMIT CAST(? AS INTEGER)`,
    () => [...values],
  );
}
