// The SQL of the pipeline store (migrations/0003_pipeline.sql, 0004_run_rule_verdicts.sql and
// 0006_run_rule_version.sql),
// shared by its SQLite adapter (sqlite-pipeline.ts, in a transaction) and its D1 adapter (d1.ts,
// in a batch): each statement with the values it binds, the rows it answers, and those rows as the port's records.
// Saving a run is three statements that need nothing from each other's answers (so that D1 can
// send them as one batch): store the run first-wins, index the rules (with their verdicts) of
// whichever run is stored under the key, read that run back.
import type {
  AccountState,
  NewRunRecord,
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
  self_hops: number;
  outcome: string;
  rules: string;
  verdicts: string;
  summary: string;
  detail: string;
  at: number;
  rule_version: string | null;
}

export function toAccount(row: AccountRow): AccountState {
  return {
    account: row.account,
    cursor: row.cursor,
    notifiedAt: row.notified_at,
    drainedAt: row.drained_at,
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

export const pipelineSql = {
  // SQLite's max() of a NULL is NULL, hence the coalesce for a row a cursor save created.
  noteNotification: sql<[account: number, at: number]>(
    `INSERT INTO pipeline_accounts (account, notified_at) VALUES (?, ?)
     ON CONFLICT (account) DO UPDATE
     SET notified_at = max(coalesce(notified_at, excluded.notified_at), excluded.notified_at)`,
    (account, at) => [account, at],
  ),
  getAccount: sql<[account: number], AccountRow>(
    'SELECT * FROM pipeline_accounts WHERE account = ?',
    (account) => [account],
  ),
  listAccounts: sql<[], AccountRow>('SELECT * FROM pipeline_accounts ORDER BY account', () => []),
  saveCursor: sql<[account: number, cursor: string | null, at: number, drained: boolean]>(
    `INSERT INTO pipeline_accounts (account, cursor, drained_at) VALUES (?, ?, ?)
     ON CONFLICT (account) DO UPDATE
     SET cursor = excluded.cursor, drained_at = coalesce(excluded.drained_at, drained_at)`,
    (account, cursor, at, drained) => [account, cursor, drained ? at : null],
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
  /** saveRun, 1 of 3: the first run stored under a key wins. */
  insertRun: sql<[NewRunRecord]>(
    `INSERT INTO pipeline_runs (key, account, event_id, event_type, object_type, object_id,
       self_hops, outcome, rules, verdicts, summary, detail, at, rule_version)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (key) DO NOTHING`,
    (run) => [
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
    ],
  ),
  /**
   * saveRun, 2 of 3: indexes every rule the run stored under the key looked at, with its verdict,
   * read from the stored row (so a losing save indexes nothing of its own). The rows already
   * there for a run saved before stay as they are.
   */
  indexRunRules: sql<[NewRunRecord]>(
    `INSERT INTO pipeline_run_rules (run_id, rule_id, verdict)
     SELECT r.id, j.key, j.value FROM pipeline_runs r, json_each(r.verdicts) j WHERE r.key = ?
     ON CONFLICT DO NOTHING`,
    (run) => [run.key],
  ),
  /** purgeRuns, 1 of 2: the rule rows go with their run, so none points at a missing run. */
  purgeRunRules: sql<[before: number]>(
    'DELETE FROM pipeline_run_rules WHERE run_id IN (SELECT id FROM pipeline_runs WHERE at < ?)',
    (before) => [before],
  ),
  /** purgeRuns, 2 of 2: its `changes` is the number of runs deleted. */
  purgeRuns: sql<[before: number]>('DELETE FROM pipeline_runs WHERE at < ?', (before) => [before]),
};

/**
 * The statement that lists runs: one text per combination of filters (at most 192, so a runner can
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
  return sql<[], RunRow>(`SELECT r.* FROM ${from} ${shape} ORDER BY ${order} DESC LIMIT ?`, () => [
    ...values,
  ]);
}
