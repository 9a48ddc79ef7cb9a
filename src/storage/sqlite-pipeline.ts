// The SQLite adapter of the pipeline storage port (better-sqlite3, Node only): drain state per
// account, object snapshots and run records over migrations/0003_pipeline.sql. Like the engine
// store, it can work on a connection it is given, so all-in-one mode keeps every table in one `--db`.
import type Database from 'better-sqlite3';
import type {
  AccountState,
  NewRunRecord,
  PipelineStore,
  RunQuery,
  RunRecord,
  SnapshotRecord,
} from './pipeline-port.js';
import { connectSqlite, type SqliteConnectionOptions } from './sqlite.js';

export type SqlitePipelineStoreOptions = SqliteConnectionOptions;

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
  summary: string;
  detail: string;
  at: number;
}

function toAccount(row: AccountRow): AccountState {
  return {
    account: row.account,
    cursor: row.cursor,
    notifiedAt: row.notified_at,
    drainedAt: row.drained_at,
  };
}

function toSnapshot(row: SnapshotRow): SnapshotRecord {
  return {
    account: row.account,
    objectId: row.object_id,
    objectType: row.object_type,
    body: row.body,
    eventId: row.event_id,
    at: row.at,
  };
}

function toRun(row: RunRow): RunRecord {
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
    summary: row.summary,
    detail: row.detail,
    at: row.at,
  };
}

export function createSqlitePipelineStore(options: SqlitePipelineStoreOptions): PipelineStore {
  const { db, close } = connectSqlite(options);

  const sql = {
    // SQLite's max() of a NULL is NULL, hence the coalesce for a row a cursor save created.
    noteNotification: db.prepare<[number, number]>(
      `INSERT INTO pipeline_accounts (account, notified_at) VALUES (?, ?)
       ON CONFLICT (account) DO UPDATE
       SET notified_at = max(coalesce(notified_at, excluded.notified_at), excluded.notified_at)`,
    ),
    getAccount: db.prepare<[number], AccountRow>(
      'SELECT * FROM pipeline_accounts WHERE account = ?',
    ),
    listAccounts: db.prepare<[], AccountRow>('SELECT * FROM pipeline_accounts ORDER BY account'),
    saveCursor: db.prepare<[number, string | null, number | null]>(
      `INSERT INTO pipeline_accounts (account, cursor, drained_at) VALUES (?, ?, ?)
       ON CONFLICT (account) DO UPDATE
       SET cursor = excluded.cursor, drained_at = coalesce(excluded.drained_at, drained_at)`,
    ),
    getSnapshot: db.prepare<[number, string], SnapshotRow>(
      'SELECT * FROM pipeline_snapshots WHERE account = ? AND object_id = ?',
    ),
    putSnapshot: db.prepare(
      `INSERT INTO pipeline_snapshots (account, object_id, object_type, body, event_id, at)
       VALUES (@account, @objectId, @objectType, @body, @eventId, @at)
       ON CONFLICT (account, object_id) DO UPDATE SET object_type = excluded.object_type,
         body = excluded.body, event_id = excluded.event_id, at = excluded.at`,
    ),
    deleteSnapshot: db.prepare<[number, string]>(
      'DELETE FROM pipeline_snapshots WHERE account = ? AND object_id = ?',
    ),
    getRun: db.prepare<[string], RunRow>('SELECT * FROM pipeline_runs WHERE key = ?'),
    getRunById: db.prepare<[number], RunRow>('SELECT * FROM pipeline_runs WHERE id = ?'),
    insertRun: db.prepare(
      `INSERT INTO pipeline_runs (key, account, event_id, event_type, object_type, object_id,
         self_hops, outcome, rules, summary, detail, at)
       VALUES (@key, @account, @eventId, @eventType, @objectType, @objectId,
         @selfHops, @outcome, @rules, @summary, @detail, @at)
       ON CONFLICT (key) DO NOTHING`,
    ),
    // A run may list a rule twice (say, matched then failed); the filter needs it once.
    insertRunRule: db.prepare<[number, string]>(
      'INSERT INTO pipeline_run_rules (run_id, rule_id) VALUES (?, ?) ON CONFLICT DO NOTHING',
    ),
    purgeRunRules: db.prepare<[number]>(
      'DELETE FROM pipeline_run_rules WHERE run_id IN (SELECT id FROM pipeline_runs WHERE at < ?)',
    ),
    purgeRuns: db.prepare<[number]>('DELETE FROM pipeline_runs WHERE at < ?'),
  };

  // One statement per combination of filters (at most 32), each walking an index newest first
  // and stopping at the limit: with a rule, the (rule_id, run_id) key of pipeline_run_rules.
  const listStatements = new Map<string, Database.Statement<unknown[], RunRow>>();
  const listRuns = (query: RunQuery): RunRow[] => {
    const where: string[] = [];
    const params: unknown[] = [];
    const filter = (condition: string, value: unknown) => {
      where.push(condition);
      params.push(value);
    };
    if (query.ruleId !== undefined) filter('rr.rule_id = ?', query.ruleId);
    if (query.account !== undefined) filter('r.account = ?', query.account);
    if (query.objectId !== undefined) filter('r.object_id = ?', query.objectId);
    if (query.outcome !== undefined) filter('r.outcome = ?', query.outcome);
    if (query.before !== undefined) filter('r.id < ?', query.before);
    const shape = where.join(' AND ');
    let statement = listStatements.get(shape);
    if (!statement) {
      const from =
        query.ruleId === undefined
          ? 'pipeline_runs r'
          : 'pipeline_run_rules rr JOIN pipeline_runs r ON r.id = rr.run_id';
      const order = query.ruleId === undefined ? 'r.id' : 'rr.run_id';
      statement = db.prepare<unknown[], RunRow>(
        `SELECT r.* FROM ${from} ${shape ? `WHERE ${shape}` : ''} ORDER BY ${order} DESC LIMIT ?`,
      );
      listStatements.set(shape, statement);
    }
    // A negative LIMIT means "no limit" to SQLite; the port promises at most `limit` runs.
    return statement.all(...params, Math.max(0, Math.trunc(query.limit)));
  };

  const saveRun = db.transaction((run: NewRunRecord): RunRecord => {
    const inserted = sql.insertRun.run({
      key: run.key,
      account: run.account,
      eventId: run.eventId,
      eventType: run.eventType,
      objectType: run.objectType,
      objectId: run.objectId,
      selfHops: run.selfHops,
      outcome: run.outcome,
      rules: JSON.stringify(run.rules),
      summary: run.summary,
      detail: run.detail,
      at: run.at,
    });
    if (inserted.changes === 1) {
      const runId = Number(inserted.lastInsertRowid);
      for (const ruleId of run.rules) sql.insertRunRule.run(runId, ruleId);
    }
    const row = sql.getRun.get(run.key);
    if (!row) throw new Error(`run ${run.key} vanished after it was stored`);
    return toRun(row);
  });

  const purgeRuns = db.transaction((before: number): number => {
    sql.purgeRunRules.run(before);
    return sql.purgeRuns.run(before).changes;
  });

  return {
    async noteNotification(account, at) {
      sql.noteNotification.run(account, at);
    },
    async getAccount(account) {
      const row = sql.getAccount.get(account);
      return row ? toAccount(row) : null;
    },
    async listAccounts() {
      return sql.listAccounts.all().map(toAccount);
    },
    async saveCursor(account, cursor, at, drained) {
      sql.saveCursor.run(account, cursor, drained ? at : null);
    },
    async getSnapshot(account, objectId) {
      const row = sql.getSnapshot.get(account, objectId);
      return row ? toSnapshot(row) : null;
    },
    async putSnapshot(snapshot) {
      sql.putSnapshot.run({
        account: snapshot.account,
        objectId: snapshot.objectId,
        objectType: snapshot.objectType,
        body: snapshot.body,
        eventId: snapshot.eventId,
        at: snapshot.at,
      });
    },
    async deleteSnapshot(account, objectId) {
      sql.deleteSnapshot.run(account, objectId);
    },
    async getRun(key) {
      const row = sql.getRun.get(key);
      return row ? toRun(row) : null;
    },
    async getRunById(id) {
      const row = sql.getRunById.get(id);
      return row ? toRun(row) : null;
    },
    async saveRun(run) {
      return saveRun(run);
    },
    async listRuns(query) {
      return listRuns(query).map(toRun);
    },
    async purgeRuns(before) {
      return purgeRuns(before);
    },
    async close() {
      close();
    },
  };
}
