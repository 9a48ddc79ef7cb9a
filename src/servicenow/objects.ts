// The ServiceNow adapter of the object port: the `/v1` objects of one account read and written
// in an instance through the Table API, with the value mapping of mapping.ts. Unified types live
// in their tables (incident, problem, change_request, kb_knowledge, alm_asset), team users are
// `sys_user`, generic objects any table. An object's id names its record (`incident.<sys_id>`),
// so a reference or a GET needs no local index; `raw` is the record exactly as the instance
// returned it. Writes are applied upstream first (`applyUpstream`), then the route commits the
// event locally with the version mark the change feed dedupes against.
import { type FieldKind, type ObjectType, TYPE_FIELDS, type UnifiedType } from '../itsm/fields.js';
import { normalizeIsoDate } from '../itsm/schemas.js';
import type {
  ObjectQuery,
  ObjectStore,
  ObjectWrite,
  StoredObject,
  UpstreamMark,
} from '../storage/port.js';
import { type ServiceNowClient, ServiceNowError, type SnRecord } from './client.js';
import {
  isJournalEntries,
  JOURNAL_COLUMNS,
  MappingError,
  SYSTEM_COLUMNS,
  toUnifiedValue,
  toUpstreamValue,
  UPSTREAM_COLUMNS,
  UPSTREAM_TABLES,
} from './mapping.js';
import { sysIdToUserId, userIdToSysId } from './user-id.js';

const OBJECT_ID = /^([A-Za-z0-9_.-]{1,80})\.([0-9a-f]{32})$/;
const SYS_ID = /^[0-9a-f]{32}$/;
/** Columns the instance keeps itself: never sent on a write. */
const SYSTEM_WRITE_COLUMNS = new Set<string>(SYSTEM_COLUMNS);
/** Largest page asked of the instance (its own default cap is 10,000). */
const MAX_LIMIT = 10_000;

const TYPE_BY_TABLE = new Map<string, UnifiedType>(
  Object.entries(UPSTREAM_TABLES).map(([type, { table }]) => [table, type as UnifiedType]),
);

/** The table a unified type lives in, or the generic object's own table. */
export function tableOf(type: ObjectType, rawType: string | null): string {
  return type === 'object' ? (rawType ?? '') : UPSTREAM_TABLES[type].table;
}

/** The unified type of a table, or 'object' for any other table. */
export function typeOfTable(table: string): ObjectType {
  return TYPE_BY_TABLE.get(table) ?? 'object';
}

export function objectIdOf(table: string, sysId: string): string {
  return `${table}.${sysId}`;
}

/** The table and sys_id an object id names, or null when it is not one of this adapter's. */
export function parseObjectId(id: string): { table: string; sysId: string } | null {
  const match = OBJECT_ID.exec(id);
  return match ? { table: match[1] ?? '', sysId: match[2] ?? '' } : null;
}

/** `2024-05-01 09:30:00` (UTC, as the Table API gives date-times) -> ISO 8601, or "" if none. */
function isoOf(value: string | undefined): string {
  if (!value) return '';
  return normalizeIsoDate(`${value.replace(' ', 'T')}Z`) ?? '';
}

export interface ServiceNowObjectsOptions {
  client: ServiceNowClient;
  /** The Kloudless account id the instance is served as. */
  account: number;
  /**
   * How long the server keeps an Idempotency-Key (its idempotency TTL). A create names a sys_id
   * derived from its key; a record already holding it is that create's only if it is younger
   * than this: an older one was made under the same key before the key was forgotten.
   */
  keyRetentionMs?: number;
  log?: (line: string) => void;
}

/** A new random sys_id (32 lower-case hex digits). */
function randomSysId(): string {
  return [...crypto.getRandomValues(new Uint8Array(16))]
    .map((b) => b.toString(16).padStart(2, '0'))
    .join('');
}

export type ServiceNowObjects = ObjectStore &
  Required<Pick<ObjectStore, 'writeUpstream'>> & {
    /** A record of `table` as the object `/v1` serves. */
    toObject(table: string, record: SnRecord): StoredObject;
    /** Resolves when no write of the account is between its upstream call and its commit. */
    writesSettled(): Promise<void>;
  };

export function createServiceNowObjects(options: ServiceNowObjectsOptions): ServiceNowObjects {
  const { client, account } = options;
  const log = options.log ?? (() => {});
  // Writes between their upstream call and their event's commit, and who waits for none.
  let inFlight = 0;
  const waiters: (() => void)[] = [];

  function toObject(table: string, record: SnRecord): StoredObject {
    const type = typeOfTable(table);
    const sysId = record.sys_id ?? '';
    const base = {
      account,
      id: objectIdOf(table, sysId),
      type,
      rawType: type === 'object' ? table : null,
      upstreamId: sysId,
      number: type === 'object' ? null : record.number || null,
      created: isoOf(record.sys_created_on),
      modified: isoOf(record.sys_updated_on),
      version: Number(record.sys_mod_count ?? 0) + 1,
      upstreamRecord: record,
    };
    if (type === 'object') {
      const { sys_id: _s, sys_created_on: _c, sys_updated_on: _u, ...fields } = record;
      return { ...base, fields, extra: {} };
    }
    const fields: Record<string, unknown> = {};
    const columns = UPSTREAM_COLUMNS[type] as Record<string, string>;
    for (const [field, column] of Object.entries(columns)) {
      const value = record[column];
      if (value === undefined) continue;
      try {
        const unified = toUnifiedValue(type, field, column, value, {
          user: sysIdToUserId,
          reference: (target, id) => objectIdOf(UPSTREAM_TABLES[target as UnifiedType].table, id),
        });
        if (unified !== null && unified !== '') fields[field] = unified;
      } catch (error) {
        // A value the unified model has no word for (an impact of 7): the field is left out of
        // the unified object; `raw` still shows it.
        if (!(error instanceof MappingError)) throw error;
        log(`servicenow: ${table} ${sysId}: ${error.message}; ${field} left out`);
      }
    }
    return { ...base, fields, extra: {} };
  }

  /** The upstream values of an object's fields and `raw.object` extras, as strings. */
  function upstreamValues(object: StoredObject): Record<string, string> {
    const values: Record<string, string> = {};
    if (object.type === 'object') {
      for (const [key, value] of Object.entries(object.fields)) {
        if (SYSTEM_WRITE_COLUMNS.has(key)) continue;
        values[key] =
          value === null || value === undefined
            ? ''
            : typeof value === 'string'
              ? value
              : JSON.stringify(value);
      }
      return values;
    }
    const type = object.type as UnifiedType;
    for (const [key, value] of Object.entries(object.extra)) {
      if (SYSTEM_WRITE_COLUMNS.has(key)) continue;
      if ((JOURNAL_COLUMNS as readonly string[]).includes(key)) {
        // The write path keeps journals as entries, newest first; the instance appends one.
        if (isJournalEntries(value) && value[0]) values[key] = value[0].value;
        continue;
      }
      values[key] = typeof value === 'string' ? value : JSON.stringify(value);
    }
    const kinds: Record<string, FieldKind> = TYPE_FIELDS[type];
    const columns = UPSTREAM_COLUMNS[type] as Record<string, string>;
    const referenceSysIds = new Map<string, string>();
    for (const [field, kind] of Object.entries(kinds)) {
      const value = object.fields[field];
      if (kind === 'reference' && typeof value === 'string') {
        const target = parseObjectId(value);
        if (target) referenceSysIds.set(value, target.sysId);
      }
    }
    for (const [field, kind] of Object.entries(kinds)) {
      const column = columns[field];
      if (!column) continue;
      const value = object.fields[field];
      values[column] =
        value === undefined || value === null ? '' : toUpstreamValue(kind, value, referenceSysIds);
    }
    return values;
  }

  async function readMany(table: string, sysIds: readonly string[]): Promise<StoredObject[]> {
    const unique = [...new Set(sysIds)].filter((id) => /^[0-9a-f]{32}$/.test(id));
    const found: StoredObject[] = [];
    // Long IN lists make long URLs: 100 sys_ids (about 3.3 kB) a call.
    for (let i = 0; i < unique.length; i += 100) {
      const chunk = unique.slice(i, i + 100);
      const { records } = await client.list(table, {
        query: `sys_idIN${chunk.join(',')}`,
        limit: chunk.length,
      });
      found.push(...records.map((r) => toObject(table, r)));
    }
    return found;
  }

  return {
    toObject,

    async getObject(forAccount, id) {
      const target = parseObjectId(id);
      if (forAccount !== account || !target) return null;
      const record = await client.get(target.table, target.sysId);
      return record ? toObject(target.table, record) : null;
    },

    async getObjects(forAccount, ids) {
      if (forAccount !== account) return [];
      const byTable = new Map<string, string[]>();
      for (const id of ids) {
        const target = parseObjectId(id);
        if (!target) continue;
        byTable.set(target.table, [...(byTable.get(target.table) ?? []), target.sysId]);
      }
      const found: StoredObject[] = [];
      for (const [table, sysIds] of byTable) found.push(...(await readMany(table, sysIds)));
      return found;
    },

    async listObjects(query: ObjectQuery) {
      if (query.account !== account) return { total: 0, objects: [] };
      const table = tableOf(query.type, query.rawType ?? null);
      // Oldest first and stable, as the embedded store lists: by creation; within a second by
      // number where the table has one (issued in order; alm_asset has none), then by sys_id.
      const numbered = query.type !== 'object' && query.type !== 'asset';
      const order = numbered
        ? 'ORDERBYsys_created_on^ORDERBYnumber^ORDERBYsys_id'
        : 'ORDERBYsys_created_on^ORDERBYsys_id';
      const { records, total } = await client.list(table, {
        query: order,
        offset: query.offset,
        limit: Math.min(query.limit, MAX_LIMIT),
      });
      return {
        total: total ?? query.offset + records.length,
        objects: records.map((r) => toObject(table, r)),
      };
    },

    async findByUpstreamIds(forAccount, rawType, upstreamIds) {
      if (forAccount !== account || upstreamIds.length === 0) return [];
      return readMany(rawType, upstreamIds);
    },

    async nextCounter() {
      // Numbers (INC0010001) are the instance's to give.
      return 0;
    },

    async writeUpstream(write, previous, then) {
      inFlight++;
      try {
        const applied = await applyUpstream(write, previous);
        const target = applied ?? previous;
        const mark = (metadata: Record<string, unknown> | null): UpstreamMark => ({
          table: target ? tableOf(target.type, target.rawType) : '',
          sysId: target?.upstreamId ?? '',
          modCount: (target?.version ?? 1) - 1,
          metadata,
        });
        return await then(applied, mark);
      } finally {
        inFlight--;
        if (inFlight === 0) for (const resolve of waiters.splice(0)) resolve();
      }
    },

    writesSettled() {
      if (inFlight === 0) return Promise.resolve();
      return new Promise<void>((resolve) => waiters.push(resolve));
    },
  };

  /**
   * Over an instance a user field holds a sys_user sys_id, and a team user id is `u` + Base64 of
   * it: an id that names no sys_id (the embedded store keeps any id) cannot be written, so it is
   * refused here, before the call, rather than by the instance in its own words.
   */
  function refuseForeignUsers(object: StoredObject): void {
    if (object.type === 'object') return;
    const kinds: Record<string, FieldKind> = TYPE_FIELDS[object.type as UnifiedType];
    const problems: string[] = [];
    for (const [field, kind] of Object.entries(kinds)) {
      const value = object.fields[field];
      if (kind !== 'user' || typeof value !== 'string' || value === '') continue;
      if (!SYS_ID.test(userIdToSysId(value) ?? '')) {
        problems.push(
          `${field}: ${JSON.stringify(value)} is not a user of this ServiceNow instance; a user id is u + Base64 of a sys_user sys_id (32 hex digits), as team/users lists them`,
        );
      }
    }
    if (problems.length > 0) {
      throw new ServiceNowError('SN_REFUSED', problems.join('; '), null);
    }
  }

  /**
   * After a failed insert that named its sys_id: the record, when the insert was applied after
   * all (answered 5xx, cut off, timed out), or already made by an earlier try of the same
   * request (the instance refuses a second insert of a sys_id); null when it is not there.
   * A sys_id is never reused, so a record that holds it is this insert's.
   */
  async function insertThatLanded(
    table: string,
    sysId: string,
    error: unknown,
  ): Promise<SnRecord | 'stale' | null> {
    if (!(error instanceof ServiceNowError)) return null;
    const landed = [
      'SN_FORBIDDEN',
      'SN_UNAVAILABLE',
      'SN_TIMEOUT',
      'SN_UNREACHABLE',
      'SN_BAD_RESPONSE',
    ];
    if (!landed.includes(error.code)) return null;
    let record: SnRecord | null;
    try {
      record = await client.get(table, sysId);
    } catch {
      return null;
    }
    // sys_created_on is in whole seconds: compared as is, which only matters for retentions
    // of about a second (tests).
    const created = Date.parse(`${record?.sys_created_on?.replace(' ', 'T')}Z`);
    const retention = options.keyRetentionMs;
    if (record && retention !== undefined && created < Date.now() - retention) return 'stale';
    if (record) {
      log(
        `servicenow: the insert into ${table} failed (${error.message}) but its record ${sysId} is there: taken as written, not inserted again`,
      );
    }
    return record;
  }

  async function applyUpstream(
    write: ObjectWrite,
    previous: StoredObject | null,
  ): Promise<StoredObject | null> {
    if (write.kind === 'delete') {
      const target = parseObjectId(write.id);
      if (!target) return null;
      await client.delete(target.table, target.sysId);
      return null;
    }
    const object = write.object;
    const table = tableOf(object.type, object.rawType);
    refuseForeignUsers(object);
    const next = upstreamValues(object);
    if (write.kind === 'create') {
      const values = Object.fromEntries(Object.entries(next).filter(([, v]) => v !== ''));
      // The insert names its sys_id when one was chosen (as a Table API insert may): a generic
      // object's, or the one the route derived from the create's Idempotency-Key.
      if (SYS_ID.test(object.upstreamId)) values.sys_id = object.upstreamId;
      try {
        return toObject(table, await client.create(table, values));
      } catch (error) {
        const landed = values.sys_id ? await insertThatLanded(table, values.sys_id, error) : null;
        if (!landed) throw error;
        if (landed !== 'stale') return toObject(table, landed);
        // The key was used for a record before it was forgotten: a new create, a new sys_id.
        return toObject(table, await client.create(table, { ...values, sys_id: randomSysId() }));
      }
    }
    const before = previous ? upstreamValues(previous) : {};
    const changed: Record<string, string> = {};
    for (const [column, value] of Object.entries(next)) {
      if (before[column] !== value) changed[column] = value;
    }
    // A generic field removed by the patch (null) is cleared upstream.
    for (const column of Object.keys(before)) {
      if (!(column in next) && object.type === 'object') changed[column] = '';
    }
    // Landed: the record moved past the version this write was made on and holds its values
    // (a journal entry by its text, as the instance renders the journal with it).
    const version = previous ? previous.version - 1 : -1;
    const record = await client.patch(table, object.upstreamId, changed, {
      landed: (now) =>
        Number(now.sys_mod_count ?? -1) > version &&
        Object.entries(changed).every(([column, value]) =>
          (JOURNAL_COLUMNS as readonly string[]).includes(column)
            ? (now[column] ?? '').includes(value)
            : (now[column] ?? '') === value,
        ),
    });
    return toObject(table, record);
  }
}
