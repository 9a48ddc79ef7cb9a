// The D1 adapters of the engine and pipeline storage ports (Cloudflare Workers), over the same
// statements as the SQLite adapters (sql-engine.ts, sql-pipeline.ts) and the same migrations.
// D1 is asynchronous and other Worker invocations write between two of our calls, so whatever
// SQLite does in a transaction is one D1 batch here (a batch is one transaction), and a
// read-then-write decision (a once-only claim) is a single statement whose `changes` answers it.
// `D1Database` below is the part of the Workers binding these adapters use, declared here so that
// src/storage/ is type-checked without Workers globals; the real `env.DB` satisfies it.
import type { EngineStore } from './engine-port.js';
import type { PipelineStore } from './pipeline-port.js';
import { engineSql as e, toEffect, toMember, toPlan } from './sql-engine.js';
import {
  listParkedSql,
  listRunsSql,
  pipelineSql as p,
  retryParkedSql,
  toAccount,
  toParked,
  toParkedEvent,
  toRuleActivity,
  toRun,
  toSnapshot,
} from './sql-pipeline.js';
import type { SqlStatement } from './sql-statement.js';

export interface D1Result<Row = unknown> {
  results: Row[];
  meta: { changes: number };
}

export interface D1PreparedStatement {
  bind(...values: unknown[]): D1PreparedStatement;
  first<Row = Record<string, unknown>>(): Promise<Row | null>;
  all<Row = Record<string, unknown>>(): Promise<D1Result<Row>>;
  run<Row = Record<string, unknown>>(): Promise<D1Result<Row>>;
}

/** The part of the Workers `D1Database` binding the adapters use. */
export interface D1Database {
  prepare(query: string): D1PreparedStatement;
  /** Runs the statements as one transaction: all of them or none. */
  batch<Row = unknown>(statements: D1PreparedStatement[]): Promise<D1Result<Row>[]>;
}

function createD1Runner(db: D1Database) {
  // Each text prepared once per store: `bind` answers a new statement with the values and leaves
  // the prepared one as it was, so one can serve every call, concurrent ones included.
  const prepared = new Map<string, D1PreparedStatement>();
  const prepare = (text: string): D1PreparedStatement => {
    let statement = prepared.get(text);
    if (!statement) {
      statement = db.prepare(text);
      prepared.set(text, statement);
    }
    return statement;
  };
  const bind = <A extends unknown[], R>(statement: SqlStatement<A, R>, ...args: A) =>
    prepare(statement.text).bind(...statement.values(...args));
  return {
    bind,
    /** Runs a write; returns how many rows it changed. */
    run: async <A extends unknown[], R>(statement: SqlStatement<A, R>, ...args: A) =>
      (await bind(statement, ...args).run()).meta.changes,
    first: <A extends unknown[], R>(statement: SqlStatement<A, R>, ...args: A) =>
      bind(statement, ...args).first<R>(),
    all: async <A extends unknown[], R>(statement: SqlStatement<A, R>, ...args: A) =>
      (await bind(statement, ...args).all<R>()).results,
    /** Runs the writes, then the read, as one batch (one transaction); answers the read's rows. */
    readAfter: async <A extends unknown[], R>(
      writes: D1PreparedStatement[],
      read: SqlStatement<A, R>,
      ...args: A
    ): Promise<R[]> => {
      const results = await db.batch<R>([...writes, bind(read, ...args)]);
      return results.at(-1)?.results ?? [];
    },
    /** Runs writes as one batch (one transaction); answers how many rows each changed. */
    runAll: async (writes: D1PreparedStatement[]): Promise<number[]> =>
      (await db.batch(writes)).map((result) => result.meta.changes),
  };
}

export function openD1EngineStore(db: D1Database): EngineStore {
  const sql = createD1Runner(db);
  return {
    async correlate(input) {
      const writes = [sql.bind(e.dropExpired, input), sql.bind(e.countMember, input)];
      return (await sql.readAfter(writes, e.members, input)).map(toMember);
    },
    async claimOnce(claim) {
      return (await sql.run(e.claimOnce, claim)) === 1;
    },
    async renewClaim(claim) {
      return (await sql.run(e.renewClaim, claim)) === 1;
    },
    async releaseClaims(account, prefix) {
      return sql.run(e.releaseClaims, account, prefix);
    },
    async savePlan(plan) {
      const [row] = await sql.readAfter([sql.bind(e.insertPlan, plan)], e.getPlan, plan.key);
      if (!row) throw new Error(`plan ${plan.key} vanished after it was stored`);
      return toPlan(row);
    },
    async getPlan(key) {
      const row = await sql.first(e.getPlan, key);
      return row ? toPlan(row) : null;
    },
    async recordEffect(effect) {
      await sql.run(e.insertEffect, effect);
    },
    async listEffects(planKey) {
      return (await sql.all(e.listEffects, planKey)).map(toEffect);
    },
    async latestEffectOn(objectId) {
      const row = await sql.first(e.latestEffectOn, objectId);
      return row ? toEffect(row) : null;
    },
    async purge(before) {
      const [, plans = 0] = await sql.runAll([
        sql.bind(e.purgeEffects, before),
        sql.bind(e.purgePlans, before),
        sql.bind(e.purgeCorrelations, before),
      ]);
      return plans;
    },
    // The binding belongs to the Worker's environment: nothing to close.
    async close() {},
  };
}

export function openD1PipelineStore(db: D1Database): PipelineStore {
  const sql = createD1Runner(db);
  return {
    async noteNotification(account, at) {
      await sql.run(p.noteNotification, account, at);
    },
    async getAccount(account) {
      const row = await sql.first(p.getAccount, account);
      return row ? toAccount(row) : null;
    },
    async listAccounts() {
      return (await sql.all(p.listAccounts)).map(toAccount);
    },
    async saveCursor(account, cursor, at, drained) {
      await sql.run(p.saveCursor, account, cursor, at, drained);
    },
    async getSnapshot(account, objectId) {
      const row = await sql.first(p.getSnapshot, account, objectId);
      return row ? toSnapshot(row) : null;
    },
    async putSnapshot(snapshot) {
      await sql.run(p.putSnapshot, snapshot);
    },
    async deleteSnapshot(account, objectId) {
      await sql.run(p.deleteSnapshot, account, objectId);
    },
    async getRun(key) {
      const row = await sql.first(p.getRun, key);
      return row ? toRun(row) : null;
    },
    async getRunById(id) {
      const row = await sql.first(p.getRunById, id);
      return row ? toRun(row) : null;
    },
    async saveRun(run) {
      const writes = [
        sql.bind(p.unindexParkedRun, run),
        sql.bind(p.insertRun, run),
        sql.bind(p.indexRunRules, run),
      ];
      const [row] = await sql.readAfter(writes, p.getRun, run.key);
      if (!row) throw new Error(`run ${run.key} vanished after it was stored`);
      return toRun(row);
    },
    async listRuns(query) {
      return (await sql.all(listRunsSql(query))).map(toRun);
    },
    async ruleActivity(query) {
      return (await sql.all(p.ruleActivity, query)).map(toRuleActivity);
    },
    async purgeRuns(before) {
      const [, runs = 0] = await sql.runAll([
        sql.bind(p.purgeRunRules, before),
        sql.bind(p.purgeRuns, before),
      ]);
      return runs;
    },
    async park(object, events) {
      const writes = [
        sql.bind(p.parkObject, object),
        ...events.map((event) => sql.bind(p.parkEvent, event)),
      ];
      const [row] = await sql.readAfter(writes, p.getParked, object.account, object.objectId);
      if (!row) throw new Error(`parked object ${object.objectId} vanished after it was stored`);
      return toParked(row);
    },
    async getParked(account, objectId) {
      const row = await sql.first(p.getParked, account, objectId);
      return row ? toParked(row) : null;
    },
    async listParked(query) {
      return (await sql.all(listParkedSql(query))).map(toParked);
    },
    async parkedEvents(account, objectId) {
      return (await sql.all(p.parkedEvents, account, objectId)).map(toParkedEvent);
    },
    async removeParkedEvent(account, eventId) {
      await sql.run(p.removeParkedEvent, account, eventId);
    },
    async rescheduleParked(account, objectId, schedule) {
      return (await sql.run(p.rescheduleParked, account, objectId, schedule)) > 0;
    },
    async retryParkedAt(query, at) {
      const rows = await sql.readAfter([sql.bind(retryParkedSql(query, at))], listParkedSql(query));
      return rows.map(toParked);
    },
    async unpark(account, objectId) {
      return (await sql.run(p.unpark, account, objectId)) > 0;
    },
    // The binding belongs to the Worker's environment: nothing to close.
    async close() {},
  };
}
