// The SQLite adapter of the pipeline storage port (better-sqlite3, Node only): drain state per
// account, object snapshots and run records, over the statements of sql-pipeline.ts that the D1
// adapter runs too. Like the engine store, it can work on a connection it is given, so all-in-one
// mode keeps every table in one `--db`. Each group of statements is one transaction (one commit:
// in WAL mode each commit appends every page it touched, table and indexes, to the log).
import type {
  NewRunRecord,
  ParkedEvent,
  ParkedObject,
  PipelineStore,
  RunRecord,
  SnapshotChange,
} from './pipeline-port.js';
import {
  listParkedSql,
  listRunsSql,
  pipelineSql as q,
  retryParkedSql,
  toAccount,
  toParked,
  toParkedEvent,
  toRuleActivity,
  toRun,
  toSnapshot,
} from './sql-pipeline.js';
import { createSyncRunner } from './sql-statement.js';
import { connectSqlite, type SqliteConnectionOptions } from './sqlite.js';

export type SqlitePipelineStoreOptions = SqliteConnectionOptions;

/** The port, and what only this adapter offers. */
export interface SqlitePipelineStore extends PipelineStore {
  /**
   * Records a verified notification for each account at `at`, all in one transaction (all or
   * none): the notifications of one turn of the event loop, which one by one cost a commit each.
   */
  noteNotifications(accounts: readonly number[], at: number): Promise<void>;
}

export function createSqlitePipelineStore(
  options: SqlitePipelineStoreOptions,
): SqlitePipelineStore {
  const { db, close } = connectSqlite(options);
  const sql = createSyncRunner(db);

  const noteNotifications = db.transaction((accounts: readonly number[], at: number) => {
    for (const account of accounts) {
      sql.run(q.noteNotification, account, at);
      sql.run(q.notePending, account, at);
    }
  });

  const saveCursor = db.transaction(
    (account: number, cursor: string | null, at: number, drained: boolean) => {
      sql.run(q.saveCursor, account, cursor, at, drained);
      sql.run(q.clearNotified, account, at, drained);
    },
  );

  const saveRun = db.transaction((run: NewRunRecord, snapshot?: SnapshotChange): RunRecord => {
    if (snapshot && 'put' in snapshot) sql.run(q.putSnapshot, snapshot.put);
    else if (snapshot) sql.run(q.deleteSnapshot, snapshot.delete.account, snapshot.delete.objectId);
    // Nearly every save is of a new key: its row is answered by the insert, and there is no
    // parked run to unindex. Only a key stored already takes the four statements D1 runs.
    const inserted = sql.get(q.insertNewRun, run);
    if (inserted) {
      if (Object.keys(run.verdicts).length > 0)
        sql.run(q.indexNewRun, inserted.id, inserted.verdicts);
      return toRun(inserted);
    }
    sql.run(q.unindexParkedRun, run);
    sql.run(q.insertRun, run);
    sql.run(q.indexRunRules, run);
    const row = sql.get(q.getRun, run.key);
    if (!row) throw new Error(`run ${run.key} vanished after it was stored`);
    return toRun(row);
  });

  const purgeRuns = db.transaction((before: number): number => {
    sql.run(q.purgeRunRules, before);
    return sql.run(q.purgeRuns, before);
  });

  const park = db.transaction(
    (object: Omit<ParkedObject, 'id' | 'events'>, events: readonly ParkedEvent[]) => {
      sql.run(q.parkObject, object);
      for (const event of events) sql.run(q.parkEvent, event);
      const row = sql.get(q.getParked, object.account, object.objectId);
      if (!row) throw new Error(`parked object ${object.objectId} vanished after it was stored`);
      return toParked(row);
    },
  );

  const retryParkedAt = db.transaction(
    (query: Parameters<PipelineStore['retryParkedAt']>[0], at: number) => {
      sql.run(retryParkedSql(query, at));
      return sql.all(listParkedSql(query)).map(toParked);
    },
  );

  return {
    async noteNotification(account, at) {
      noteNotifications([account], at);
    },
    async noteNotifications(accounts, at) {
      noteNotifications(accounts, at);
    },
    async getAccount(account) {
      const row = sql.get(q.getAccount, account);
      return row ? toAccount(row) : null;
    },
    async listAccounts() {
      return sql.all(q.listAccounts).map(toAccount);
    },
    async saveCursor(account, cursor, at, drained) {
      saveCursor(account, cursor, at, drained);
    },
    async getSnapshot(account, objectId) {
      const row = sql.get(q.getSnapshot, account, objectId);
      return row ? toSnapshot(row) : null;
    },
    async putSnapshot(snapshot) {
      sql.run(q.putSnapshot, snapshot);
    },
    async deleteSnapshot(account, objectId) {
      sql.run(q.deleteSnapshot, account, objectId);
    },
    async getRun(key) {
      const row = sql.get(q.getRun, key);
      return row ? toRun(row) : null;
    },
    async getRunById(id) {
      const row = sql.get(q.getRunById, id);
      return row ? toRun(row) : null;
    },
    async saveRun(run, snapshot) {
      return saveRun(run, snapshot);
    },
    async listRuns(query) {
      return sql.all(listRunsSql(query)).map(toRun);
    },
    async ruleActivity(query) {
      return sql.all(q.ruleActivity, query).map(toRuleActivity);
    },
    async purgeRuns(before) {
      return purgeRuns(before);
    },
    async park(object, events) {
      return park(object, events);
    },
    async getParked(account, objectId) {
      const row = sql.get(q.getParked, account, objectId);
      return row ? toParked(row) : null;
    },
    async listParked(query) {
      return sql.all(listParkedSql(query)).map(toParked);
    },
    async parkedEvents(account, objectId) {
      return sql.all(q.parkedEvents, account, objectId).map(toParkedEvent);
    },
    async removeParkedEvent(account, eventId) {
      sql.run(q.removeParkedEvent, account, eventId);
    },
    async rescheduleParked(account, objectId, schedule) {
      return sql.run(q.rescheduleParked, account, objectId, schedule) > 0;
    },
    async retryParkedAt(query, at) {
      return retryParkedAt(query, at);
    },
    async unpark(account, objectId) {
      return sql.run(q.unpark, account, objectId) > 0;
    },
    async close() {
      close();
    },
  };
}
