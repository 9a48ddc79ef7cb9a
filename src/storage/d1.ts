// The D1 adapters of the engine and pipeline storage ports (Cloudflare Workers), and of the ITSM
// store's local state that the ServiceNow connector keeps beside its instance (events,
// idempotency records, webhooks, version marks, watermarks; the objects live upstream) and the
// Table API face's OAuth tokens, over the same statements as the SQLite adapters (sql-engine.ts,
// sql-pipeline.ts, sql-itsm.ts) and the same migrations.
// D1 is asynchronous and other Worker invocations write between two of our calls, so whatever
// SQLite does in a transaction is one D1 batch here (a batch is one transaction), and a
// read-then-write decision (a once-only claim) is a single statement whose `changes` answers it.
// `D1Database` below is the part of the Workers binding these adapters use, declared here so that
// src/storage/ is type-checked without Workers globals; the real `env.DB` satisfies it.
import type { EngineStore } from './engine-port.js';
import type { PipelineStore } from './pipeline-port.js';
import {
  type CommitInput,
  IdempotencyConflictError,
  type ItsmStore,
  type UpstreamMark,
  type UpstreamStateStore,
} from './port.js';
import { engineSql as e, toEffect, toEffectWithPlan, toMember, toPlan } from './sql-engine.js';
import {
  getMarksSql,
  itsmSql as i,
  isUniqueViolationOf,
  MARKS_PER_LOOKUP,
  toEvent,
  toIdempotencyRecord,
  toMark,
  toOAuthToken,
  toWebhook,
} from './sql-itsm.js';
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
    /** Runs statements as one batch (one transaction); answers the rows of each. */
    batch: async (statements: D1PreparedStatement[]): Promise<unknown[][]> =>
      (await db.batch(statements)).map((result) => result.results ?? []),
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
    async latestEffectWithPlan(objectId) {
      const row = await sql.first(e.latestEffectWithPlan, objectId);
      return row ? toEffectWithPlan(row) : null;
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
      await sql.runAll([
        sql.bind(p.noteNotification, account, at),
        sql.bind(p.notePending, account, at),
      ]);
    },
    async getAccount(account) {
      const row = await sql.first(p.getAccount, account);
      return row ? toAccount(row) : null;
    },
    async listAccounts() {
      return (await sql.all(p.listAccounts)).map(toAccount);
    },
    async saveCursor(account, cursor, at, drained) {
      await sql.runAll([
        sql.bind(p.saveCursor, account, cursor, at, drained),
        sql.bind(p.clearNotified, account, at, drained),
      ]);
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
    async saveRun(run, snapshot) {
      const writes = [
        ...(snapshot
          ? [
              'put' in snapshot
                ? sql.bind(p.putSnapshot, snapshot.put)
                : sql.bind(p.deleteSnapshot, snapshot.delete.account, snapshot.delete.objectId),
            ]
          : []),
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

/** The D1 ITSM store keeps no objects: they live in the ServiceNow instance. */
export class D1ObjectsUnsupportedError extends Error {
  readonly code = 'STORE_OBJECTS_UNSUPPORTED';
  constructor(what: string) {
    super(
      `the D1 ITSM store keeps only the connector's local state (events, idempotency records, webhooks, version marks, watermarks): ${what} belongs to the ServiceNow instance`,
    );
    this.name = 'D1ObjectsUnsupportedError';
  }
}

/**
 * The ITSM store of the connector on Workers: what the instance cannot keep, in D1. Its object
 * methods throw D1ObjectsUnsupportedError (the connector store reads and writes objects
 * upstream, src/servicenow/connector-store.ts), and `commit` takes only an `upstream` write with
 * its version mark: the mark, the idempotency record and the event are one batch.
 */
export function openD1ItsmStore(db: D1Database): ItsmStore & UpstreamStateStore {
  const sql = createD1Runner(db);
  const unsupported = (what: string) => Promise.reject(new D1ObjectsUnsupportedError(what));

  const commit = async (input: CommitInput): Promise<{ eventSeq: number }> => {
    const { write, event, upstream, idempotency } = input;
    if (write.kind !== 'upstream' || !upstream) {
      throw new D1ObjectsUnsupportedError(
        write.kind === 'upstream'
          ? 'an upstream write without its version mark'
          : `a ${write.kind}`,
      );
    }
    const account = event.account;
    // One transaction: the mark changes a row only when this version is news, and the guarded
    // steps after it follow it (a batch cannot branch on a result).
    const statements = [
      sql.bind(i.putMark, account, upstream),
      ...(idempotency ? [sql.bind(i.insertIdempotency, idempotency, true)] : []),
      sql.bind(i.insertEvent, event, true),
      sql.bind(i.countEventAdded, account),
      sql.bind(i.countEventsOnce, account),
      sql.bind(i.markTrimmedByCount, account, Math.max(1, input.retention)),
      sql.bind(i.trimEvents, account),
      sql.bind(i.countEventsTrimmed, account),
    ];
    let results: unknown[][];
    try {
      results = await sql.batch(statements);
    } catch (error) {
      if (idempotency && isUniqueViolationOf(error, 'idempotency_keys')) {
        throw new IdempotencyConflictError(idempotency.account, idempotency.key);
      }
      throw error;
    }
    const [row] = (results[idempotency ? 2 : 1] ?? []) as { seq: number }[];
    return { eventSeq: row?.seq ?? 0 };
  };

  return {
    getObject: () => unsupported('reading an object'),
    getObjects: () => unsupported('reading objects'),
    listObjects: () => unsupported('listing objects'),
    findByUpstreamIds: () => unsupported('finding objects by upstream id'),
    nextCounter: () => unsupported('numbering an object'),
    commit,

    async getUpstreamMarks(account, table, sysIds): Promise<UpstreamMark[]> {
      const unique = [...new Set(sysIds)];
      if (unique.length === 0) return [];
      const lookups = [];
      for (let start = 0; start < unique.length; start += MARKS_PER_LOOKUP) {
        lookups.push(
          sql.bind(getMarksSql(account, table, unique.slice(start, start + MARKS_PER_LOOKUP))),
        );
      }
      const pages = await sql.batch(lookups);
      return pages.flatMap((rows) =>
        (rows as Parameters<typeof toMark>[1][]).map((row) => toMark(table, row)),
      );
    },
    async getWatermark(account, table) {
      const row = await sql.first(i.getWatermark, account, table);
      return row ? { position: row.updated_on, floor: row.floor } : null;
    },
    async setWatermark(account, table, position) {
      await sql.run(i.putWatermark, account, table, position);
    },

    async getIdempotencyRecord(account, key) {
      const row = await sql.first(i.getIdempotency, account, key);
      return row ? toIdempotencyRecord(row) : null;
    },
    async purgeIdempotencyRecords(createdBefore) {
      const [, records = 0] = await sql.runAll([
        sql.bind(i.purgeHolds, createdBefore),
        sql.bind(i.purgeIdempotency, createdBefore),
      ]);
      return records;
    },
    async holdKey(account, key, holder, now, expiresAt) {
      return (await sql.first(i.holdKey, account, key, holder, now, expiresAt)) !== null;
    },
    async releaseKey(account, key, holder) {
      await sql.run(i.releaseKey, account, key, holder);
    },

    async listEvents(account, after, limit) {
      // One batch, one snapshot: no commit (and so no retention trim) lands between its parts.
      const [rows = [], [total] = [], [trimmed] = []] = (await sql.batch([
        sql.bind(i.listEvents, account, after, limit),
        sql.bind(i.countEventsAfter, account, after),
        sql.bind(i.trimmedThrough, account),
      ])) as [{ seq: number; body: string }[], { n: number }[], { trimmed_through: number }[]];
      return {
        events: rows.map((row) => toEvent(account, row)),
        remaining: Math.max(0, (total?.n ?? 0) - rows.length),
        trimmedThrough: trimmed?.trimmed_through ?? 0,
      };
    },
    async eventBounds(account) {
      const [[trimmed] = [], [latest] = [], [global] = []] = (await sql.batch([
        sql.bind(i.trimmedThrough, account),
        sql.bind(i.latestEvent, account),
        sql.bind(i.globalLatest),
      ])) as [{ trimmed_through: number }[], { seq: number | null }[], { seq: number | null }[]];
      const trimmedThrough = trimmed?.trimmed_through ?? 0;
      return {
        trimmedThrough,
        latest: latest?.seq ?? trimmedThrough,
        globalLatest: global?.seq ?? 0,
      };
    },
    async listEventAccounts() {
      return (await sql.all(i.eventAccounts)).map((row) => row.account);
    },

    // Read from D1 every time: other isolates add and delete registrations.
    async listWebhooks(appId) {
      return (await sql.all(i.listWebhooks, appId)).map(toWebhook);
    },
    async addWebhook(appId, url, created) {
      const row = await sql.first(i.insertWebhook, appId, url, created);
      if (row) return { webhook: toWebhook(row), created: true };
      const existing = await sql.first(i.getWebhookByUrl, appId, url);
      if (!existing) throw new Error(`webhook ${url} was neither inserted nor found`);
      return { webhook: toWebhook(existing), created: false };
    },
    async getWebhook(appId, id) {
      const row = await sql.first(i.getWebhook, appId, id);
      return row ? toWebhook(row) : null;
    },
    async deleteWebhook(appId, id) {
      return (await sql.run(i.deleteWebhook, appId, id)) === 1;
    },
    // Read from D1 every time: a token issued by one isolate is used on requests that land on
    // others, and a Worker's isolate may be gone by the next request.
    oauthTokens: {
      async putOAuthToken(token) {
        await sql.run(i.putOAuthToken, token);
      },
      async getOAuthToken(kind, hash) {
        const row = await sql.first(i.getOAuthToken, kind, hash);
        return row ? toOAuthToken(row) : null;
      },
      purgeOAuthTokens: (expiredBy) => sql.run(i.purgeOAuthTokens, expiredBy),
    },
    // The binding belongs to the Worker's environment: nothing to close.
    async close() {},
  };
}
