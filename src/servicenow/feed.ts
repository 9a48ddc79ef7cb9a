// The change feed: ServiceNow pushes nothing by itself, so per account and mapped table the
// connector polls `sys_updated_on>=<watermark>^ORDERBYsys_updated_on^ORDERBYsys_id` (seconds
// have ties and commits land late: the watermark is read back a few seconds, and versions
// already reported are skipped by sys_id + sys_mod_count), tells adds from updates by the
// version mark it keeps (or sys_mod_count 0), takes `previous_metadata` from that mark, and reads
// deletes from `sys_audit_delete`. Each change is one event in the local log, committed with its
// mark in one transaction, so a restart (even after SIGKILL) neither repeats nor misses one. A
// push (a Business Rule on the instance) reads one record at once; the poll is the safety net.
// A poll reads its tables a few at a time (each call waits on the instance, often 100 ms or
// more), so events of different tables come in the order their reads finish; see pollAll.
import { createLimiter } from '../itsm/limiter.js';
import { formatIsoDate } from '../itsm/schemas.js';
import type { ItsmStore, NewEvent, StoredObject, UpstreamStateStore } from '../storage/port.js';
import type { ServiceNowClient, SnRecord } from './client.js';
import { ServiceNowError } from './client.js';
import { objectIdOf, type ServiceNowObjects, typeOfTable } from './objects.js';
import { AUDIT_DELETE_TABLE } from './tables.js';
import { sysIdToUserId } from './user-id.js';

export const DEFAULT_POLL_INTERVAL_MS = 5_000;
/** How far back each poll reads before its watermark (late commits, clock ties). */
export const DEFAULT_OVERLAP_SECONDS = 5;
const PAGE_SIZE = 200;
/**
 * Tables a poll reads at the same time. One after another, the six watched tables and
 * sys_audit_delete took seven instance round trips a poll, which set the polling latency; four
 * at a time is two rounds, and stays well under what an instance (or a Worker's six open
 * connections) allows one client.
 */
export const POLL_CONCURRENCY = 4;

export interface ChangeFeedOptions {
  client: ServiceNowClient;
  objects: ServiceNowObjects;
  store: ItsmStore & UpstreamStateStore;
  account: number;
  /** Tables to watch: the mapped ones (incident, problem, ...) and sys_user. */
  tables: readonly string[];
  /** The object as `/v1` shows it, raw included: the metadata of its event. */
  render(object: StoredObject): Promise<Record<string, unknown>>;
  retention: number;
  /** Called after events were appended (webhook notification). */
  notify(): void;
  overlapSeconds?: number;
  /**
   * Pages (of 200 records) one poll reads per table at most; default no limit. A poll that
   * stops early moves the watermark to the newest change it read, and the next poll goes on
   * from there (the Worker's cron bounds the work of one invocation so).
   */
  maxPagesPerTable?: number;
  log?: (line: string) => void;
}

export interface ChangeFeed {
  /**
   * Sets where each table's feed starts, for tables that have never been polled: call it before
   * serving, so that every change after the server is up is reported.
   */
  prime(): Promise<void>;
  /** Polls every table once (and the deletes); resolves with the events appended. */
  pollOnce(): Promise<number>;
  /**
   * Reads one record now (a push): its new version becomes an event, or its delete. Resolves with
   * the events its read appended (pushes that arrive together are read together).
   */
  readRecord(table: string, sysId: string): Promise<number>;
  /** Polls every `intervalMs` until stopped; a failed poll is logged and retried next time. */
  start(intervalMs: number): void;
  /** Stops polling and waits for the poll in progress. */
  stop(): Promise<void>;
}

/** `2024-05-01 09:30:05` minus `seconds`, in the same form. */
function minusSeconds(value: string, seconds: number): string {
  const ms = Date.parse(`${value.replace(' ', 'T')}Z`);
  if (Number.isNaN(ms)) return value;
  return new Date(ms - seconds * 1000).toISOString().slice(0, 19).replace('T', ' ');
}

export function createChangeFeed(options: ChangeFeedOptions): ChangeFeed {
  const { client, objects, store, account } = options;
  const overlap = options.overlapSeconds ?? DEFAULT_OVERLAP_SECONDS;
  const log = options.log ?? (() => {});
  // One feed step at a time (polls and pushes): two steps must never report one version twice.
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(step: () => Promise<T>): Promise<T> => {
    const run = chain.then(step, step);
    chain = run.catch(() => {});
    return run;
  };

  // Who made changes, by user_name: looked up once per process, since every change of a busy
  // writer would otherwise cost a sys_user read (a pushed record: two calls instead of one). A
  // user keeps its sys_id when renamed; a name not found is asked again next time.
  const knownUsers = new Map<string, string>();

  /** The user id of a sys_user by user_name (who the instance says made the change). */
  async function userIdsOf(names: Iterable<string>): Promise<Map<string, string>> {
    const named = [...new Set(names)].filter((n) => n !== '' && n !== 'system');
    const wanted = named.filter((n) => !knownUsers.has(n));
    if (wanted.length > 0) {
      const { records } = await client.list('sys_user', {
        query: `user_nameIN${wanted.join(',')}`,
        fields: ['sys_id', 'user_name'],
        limit: wanted.length,
      });
      for (const r of records) {
        if (r.user_name && r.sys_id) knownUsers.set(r.user_name, sysIdToUserId(r.sys_id));
      }
    }
    const found = new Map<string, string>();
    for (const name of named) {
      const id = knownUsers.get(name);
      if (id !== undefined) found.set(name, id);
    }
    return found;
  }

  /** Appends an event for each record version not reported yet; returns how many. */
  async function report(
    table: string,
    records: readonly SnRecord[],
    floor: string | null,
  ): Promise<number> {
    if (records.length === 0) return 0;
    // A write through the connector reports its own version with its user: let those in
    // flight commit first, then read the marks, so the feed never reports such a version.
    await objects.writesSettled();
    const marks = new Map(
      (
        await store.getUpstreamMarks(
          account,
          table,
          records.map((r) => r.sys_id ?? ''),
        )
      ).map((m) => [m.sysId, m]),
    );
    const fresh = records.filter((record) => {
      const mark = marks.get(record.sys_id ?? '');
      const modCount = Number(record.sys_mod_count ?? 0);
      return !mark || (mark.modCount !== -1 && mark.modCount < modCount);
    });
    const users = await userIdsOf(fresh.map((r) => r.sys_updated_by ?? ''));
    let appended = 0;
    for (const record of fresh) {
      const sysId = record.sys_id ?? '';
      const mark = marks.get(sysId);
      const modCount = Number(record.sys_mod_count ?? 0);
      const object = objects.toObject(table, record);
      const metadata = await options.render(object);
      // New to the feed: an add if the instance created it since the feed started (a poll sees
      // the newest version only, so an insert may come with updates already on it).
      const created = record.sys_created_on ?? '';
      const isNew = !mark && (modCount === 0 || (floor !== null && created >= floor));
      const type: NewEvent['type'] = isNew ? 'add' : 'update';
      const previous = mark?.metadata ?? undefined;
      const { eventSeq } = await store.commit({
        write: { kind: 'upstream' },
        event: {
          account,
          type,
          action: type === 'add' ? 'insert' : 'update',
          modified: object.modified || formatIsoDate(new Date()),
          ip: null,
          userId: users.get(record.sys_updated_by ?? '') ?? null,
          metadata,
          ...(type === 'update' && previous && { previousMetadata: previous }),
        },
        upstream: { table, sysId, modCount, metadata },
        retention: options.retention,
      });
      if (eventSeq !== 0) appended++;
    }
    return appended;
  }

  /** Appends a delete event for each audited delete not reported yet. */
  async function reportDeletes(rows: readonly SnRecord[]): Promise<number> {
    let appended = 0;
    await objects.writesSettled();
    for (const row of rows) {
      const table = row.tablename ?? '';
      const sysId = row.documentkey ?? '';
      if (!options.tables.includes(table) || sysId === '') continue;
      const [mark] = await store.getUpstreamMarks(account, table, [sysId]);
      if (mark?.modCount === -1) continue;
      const users = await userIdsOf([row.sys_created_by ?? '']);
      const raw = (mark?.metadata as { raw?: unknown } | null | undefined)?.raw;
      const { eventSeq } = await store.commit({
        write: { kind: 'upstream' },
        event: {
          account,
          type: 'delete',
          action: 'delete',
          modified: formatIsoDate(new Date()),
          ip: null,
          userId: users.get(row.sys_created_by ?? '') ?? null,
          metadata: {
            id: objectIdOf(table, sysId),
            type: typeOfTable(table),
            api: 'itsm',
            ...(raw !== undefined && { raw }),
          },
        },
        upstream: { table, sysId, modCount: mark?.modCount ?? 0, metadata: null },
        retention: options.retention,
      });
      if (eventSeq !== 0) appended++;
    }
    return appended;
  }

  /**
   * Where a table's feed starts the first time: its newest change, so that connecting to an
   * instance does not replay its whole history as events.
   */
  async function startingPoint(table: string, column: string, filter: string): Promise<string> {
    const { records } = await client.list(table, {
      query: `${filter}ORDERBYDESC${column}`,
      fields: [column],
      limit: 1,
    });
    const newest = records[0]?.[column] ?? '1970-01-01 00:00:00';
    await store.setWatermark(account, table, newest);
    return newest;
  }

  /** Reads `table` from its watermark (minus the overlap), page by page, reporting each page. */
  async function pollTable(
    table: string,
    column: string,
    filter: string,
    handle: (page: SnRecord[], floor: string) => Promise<number>,
  ): Promise<number> {
    const stored = await store.getWatermark(account, table);
    const watermark = stored?.position ?? (await startingPoint(table, column, filter));
    const floor = stored?.floor ?? watermark;
    let newest = watermark;
    let appended = 0;
    const maxPages = options.maxPagesPerTable ?? Number.POSITIVE_INFINITY;
    for (let offset = 0, pages = 1; ; offset += PAGE_SIZE, pages++) {
      const { records } = await client.list(table, {
        query: `${filter}${column}>=${minusSeconds(watermark, overlap)}^ORDERBY${column}^ORDERBYsys_id`,
        offset,
        limit: PAGE_SIZE,
      });
      // What changed before the feed's start is history, never reported. The second it started
      // in is reported: a change in it may have come after the start, and missing one is worse.
      appended += await handle(
        records.filter((r) => (r[column] ?? '') >= floor),
        floor,
      );
      for (const r of records) if ((r[column] ?? '') > newest) newest = r[column] ?? newest;
      if (records.length < PAGE_SIZE || pages >= maxPages) break;
    }
    // Moved only once every record up to it is reported: a crash before this repeats the read,
    // and the marks make the repeat report nothing twice.
    if (newest !== watermark) await store.setWatermark(account, table, newest);
    return appended;
  }

  /**
   * One poll: every watched table and sys_audit_delete, read POLL_CONCURRENCY at a time. Each
   * table keeps its own watermark and reads its pages in order, so the events of one record stay
   * in the order of its versions; events of different tables interleave in the order their reads
   * finish. Deletes are read alongside but reported only once every table's changes are: a
   * record's update read just before its delete still comes out before the delete (the delete
   * marks the record gone, and a version reported after it would be dropped). A table whose read
   * fails does not hold back the others: their events are kept and notified, its watermark stays
   * for the next poll, and the poll then rejects with the first failure.
   */
  async function pollAll(): Promise<number> {
    const limit = createLimiter(POLL_CONCURRENCY);
    const tableReads = options.tables.map((table) =>
      limit.run(() =>
        pollTable(table, 'sys_updated_on', '', (page, floor) => report(table, page, floor)),
      ),
    );
    const tablesReported = Promise.allSettled(tableReads).then(() => {});
    const reads = [...tableReads, limit.run(() => pollDeletes(tablesReported))];
    const outcomes = await Promise.allSettled(reads);
    let appended = 0;
    const failures: unknown[] = [];
    for (const outcome of outcomes) {
      if (outcome.status === 'fulfilled') appended += outcome.value;
      else failures.push(outcome.reason);
    }
    if (appended > 0) options.notify();
    if (failures.length > 1) {
      const more = failures.slice(1).map((error) => (error as Error).message ?? String(error));
      log(`servicenow feed: the same poll also failed to read: ${more.join('; ')}`);
    }
    if (failures.length > 0) throw failures[0];
    return appended;
  }

  const auditFilter = `tablenameIN${options.tables.join(',')}^`;
  /** Whether the last read of sys_audit_delete was refused: said once per spell of refusals. */
  let deletesRefused = false;

  /**
   * Reports the audited deletes. An instance whose ACL keeps sys_audit_delete from the
   * integration user (admin only on many) answers 403: the other changes are still reported, and
   * the log says so once, not on every poll; once a read succeeds the feed says so and the deletes
   * come from where they stopped (its watermark did not move meanwhile). The rows read are
   * reported once `after` settles (a poll's table reads).
   */
  async function pollDeletes(after: Promise<void> = Promise.resolve()): Promise<number> {
    try {
      const appended = await pollTable(
        AUDIT_DELETE_TABLE,
        'sys_created_on',
        auditFilter,
        async (rows) => {
          await after;
          return reportDeletes(rows);
        },
      );
      if (deletesRefused) {
        deletesRefused = false;
        log(
          'servicenow feed: sys_audit_delete can be read again; deletes made on the instance are reported again',
        );
      }
      return appended;
    } catch (error) {
      if (!(error instanceof ServiceNowError) || error.code !== 'SN_FORBIDDEN') throw error;
      if (!deletesRefused) {
        deletesRefused = true;
        log(
          `servicenow feed: the instance refuses to let the integration user read sys_audit_delete (403${error.instanceMessage ? ` ${error.instanceMessage}` : ''}), so deletes made on the instance are not reported (every other change is); give the user a role its ACL allows (admin on many instances). Said once: the feed keeps trying on every poll and says when it can read it again`,
        );
      }
      return 0;
    }
  }

  interface Pushed {
    resolve(appended: number): void;
    reject(error: unknown): void;
  }
  // Pushed records waiting for their read, by table and sys_id. Feed steps run one at a time, so
  // pushes that arrive during a step (a poll, or the read of earlier pushes) wait together and
  // are read together: one list call per table instead of one read per push.
  const pushed = new Map<string, Map<string, Pushed[]>>();
  let flushQueued = false;

  /** Reads every record pushed so far (one feed step); each push learns its events appended. */
  async function readPushed(): Promise<void> {
    flushQueued = false;
    const batch = [...pushed];
    pushed.clear();
    let appendedAll = 0;
    for (const [table, waiting] of batch) {
      const settle = (sysId: string, outcome: { appended: number } | { error: unknown }) => {
        for (const push of waiting.get(sysId) ?? []) {
          if ('error' in outcome) push.reject(outcome.error);
          else push.resolve(outcome.appended);
        }
      };
      try {
        const sysIds = [...waiting.keys()];
        const found = new Map<string, SnRecord>();
        // Long IN lists make long URLs: 100 sys_ids (about 3.3 kB) a call.
        for (let i = 0; i < sysIds.length; i += 100) {
          const chunk = sysIds.slice(i, i + 100);
          const { records } = await client.list(table, {
            query: `sys_idIN${chunk.join(',')}`,
            limit: chunk.length,
          });
          for (const r of records) if (r.sys_id) found.set(r.sys_id, r);
        }
        const floor = (await store.getWatermark(account, table))?.floor ?? null;
        const gone: string[] = [];
        for (const sysId of sysIds) {
          const record = found.get(sysId);
          if (!record) {
            gone.push(sysId);
            continue;
          }
          const appended = await report(table, [record], floor);
          appendedAll += appended;
          settle(sysId, { appended });
        }
        if (gone.length > 0) {
          // Deleted before they could be read: their deletes come from sys_audit_delete.
          log(
            `servicenow feed: ${table} ${gone.join(', ')} ${gone.length === 1 ? 'is' : 'are'} gone (deleted before it was read); reading sys_audit_delete`,
          );
          const appended = await pollDeletes();
          appendedAll += appended;
          for (const sysId of gone) settle(sysId, { appended });
        }
      } catch (error) {
        for (const sysId of waiting.keys()) settle(sysId, { error });
      }
    }
    if (appendedAll > 0) options.notify();
  }

  let timer: ReturnType<typeof setTimeout> | null = null;
  let stopped = true;
  let current: Promise<unknown> = Promise.resolve();

  return {
    prime: () =>
      serial(async () => {
        for (const table of options.tables) {
          if (!(await store.getWatermark(account, table))) {
            await startingPoint(table, 'sys_updated_on', '');
          }
        }
        if (!(await store.getWatermark(account, AUDIT_DELETE_TABLE))) {
          try {
            await startingPoint(AUDIT_DELETE_TABLE, 'sys_created_on', auditFilter);
          } catch (error) {
            // Refused (403): the first poll says so, and the deletes start once it may read.
            if (!(error instanceof ServiceNowError) || error.code !== 'SN_FORBIDDEN') throw error;
          }
        }
      }),

    pollOnce: () => serial(pollAll),

    readRecord(table, sysId) {
      if (!options.tables.includes(table)) {
        return Promise.reject(
          new ServiceNowError(
            'SN_REFUSED',
            `the change feed does not watch table ${JSON.stringify(table)}; it watches ${options.tables.join(', ')}`,
            null,
          ),
        );
      }
      return new Promise<number>((resolve, reject) => {
        const waiting = pushed.get(table) ?? new Map<string, Pushed[]>();
        pushed.set(table, waiting);
        waiting.set(sysId, [...(waiting.get(sysId) ?? []), { resolve, reject }]);
        if (!flushQueued) {
          flushQueued = true;
          // Each push learns its own outcome; nothing is left to reject here.
          void serial(readPushed).catch(() => {});
        }
      });
    },

    start(intervalMs) {
      stopped = false;
      const tick = async () => {
        if (stopped) return;
        current = serial(pollAll).catch((error: unknown) => {
          const message =
            error instanceof ServiceNowError ? error.message : ((error as Error).stack ?? error);
          log(`servicenow feed: poll failed, retrying in ${intervalMs} ms: ${message}`);
        });
        await current;
        if (!stopped) timer = setTimeout(tick, intervalMs);
      };
      void tick();
    },

    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await current;
    },
  };
}
