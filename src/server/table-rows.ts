// The records of the Table API face, read from the store: a table's rows (the upstream records
// of unified objects, generic objects as written, and the derived sys_audit_delete and
// sys_journal_field views), one row by sys_id, the table a name means, and lookups of the
// records that references and dot-walks reach. Rows are read per request; the only state is a
// sys_id index of unified objects, a hint checked against the store on every use.

import type { UnifiedType } from '../itsm/fields.js';
import { invalidRequest, noRecord } from '../servicenow/errors.js';
import { isJournalEntries, JOURNAL_COLUMNS, UPSTREAM_TABLES } from '../servicenow/mapping.js';
import {
  type DisplayMode,
  type RecordLookup,
  tableDef,
  type UpstreamRecord,
} from '../servicenow/record.js';
import {
  AUDIT_DELETE_TABLE,
  isDeclared,
  isTableName,
  JOURNAL_TABLE,
  type TableDef,
} from '../servicenow/tables.js';
import type { StoredObject } from '../storage/port.js';
import type { ServerDeps } from './context.js';
import { toRawRecord, toUpstreamDate } from './raw.js';
import { genericRecord, referenceSysIdsOf } from './render.js';
import { USER_RAW_TYPE, userIdToSysId } from './users.js';

const SYS_ID = /^[0-9a-f]{32}$/;

/** Records of the tables a request reaches, by sys_id, and the sys_ids of each table. */
export interface Lookup {
  get: RecordLookup;
  ids(table: string): string[];
}

/** A record of the face with the stored object it comes from (null for derived views). */
export interface Row {
  record: UpstreamRecord;
  object: StoredObject | null;
}

function asText(value: unknown): string {
  if (value === null || value === undefined) return '';
  return typeof value === 'string'
    ? value
    : typeof value === 'object'
      ? JSON.stringify(value)
      : String(value);
}

export type TableRows = ReturnType<typeof createTableRows>;

export function createTableRows(deps: ServerDeps) {
  // sys_id -> object id of the unified tables, per account: a hint checked on every use (the
  // object is read by id and its sys_id compared), rebuilt from a scan when it misses.
  const sysIdIndex = new Map<string, string>();

  async function listStored(account: number, table: TableDef): Promise<StoredObject[]> {
    const { objects } = await deps.store.listObjects({
      account,
      type: table.type ?? 'object',
      rawType: table.type ? null : table.name,
      offset: 0,
      limit: Number.MAX_SAFE_INTEGER,
    });
    return objects;
  }

  /** The upstream records of stored objects: the same records `/v1` renders as `raw`. */
  async function toRows(objects: StoredObject[]): Promise<Row[]> {
    const referenceSysIds = await referenceSysIdsOf(deps.store, objects);
    return objects.map((object) => {
      if (object.type !== 'object') {
        const record = toRawRecord(object as StoredObject & { type: UnifiedType }, referenceSysIds);
        return { record, object };
      }
      const fields = genericRecord(object);
      return {
        record: Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, asText(v)])),
        object,
      };
    });
  }

  /** The journal entries of the account's task records, newest first within each record. */
  async function journalRows(account: number): Promise<Row[]> {
    const rows: Row[] = [];
    for (const type of ['incident', 'problem', 'change'] as const) {
      for (const object of await listStored(account, tableDef(UPSTREAM_TABLES[type].table))) {
        for (const column of JOURNAL_COLUMNS) {
          const entries = object.extra[column];
          if (!isJournalEntries(entries)) continue;
          // Oldest first, so that the sort by time below keeps entries of one second in order.
          for (const entry of [...entries].reverse()) {
            rows.push({
              record: {
                sys_id: entry.sys_id,
                element_id: object.upstreamId,
                name: UPSTREAM_TABLES[type].table,
                element: column,
                value: entry.value,
                sys_created_on: entry.sys_created_on,
                sys_created_by: entry.sys_created_by,
              },
              object: null,
            });
          }
        }
      }
    }
    return rows.sort((a, b) =>
      (a.record.sys_created_on ?? '').localeCompare(b.record.sys_created_on ?? ''),
    );
  }

  /** One row per retained delete event, from the last record the event carries. */
  async function auditDeleteRows(account: number): Promise<Row[]> {
    const rows: Row[] = [];
    for (let after = 0; ; ) {
      const { events } = await deps.store.listEvents(account, after, 1000);
      for (const event of events) {
        if (event.type !== 'delete') continue;
        const raw = event.metadata.raw as Record<string, unknown> | undefined;
        if (!raw) continue;
        const generic = event.metadata.type === 'object';
        const record = (generic ? raw.object : raw) as Record<string, unknown> | undefined;
        const sysId = asText(generic ? raw.id : raw.sys_id);
        const who = event.userId === null ? 'system' : await userNameOf(account, event.userId);
        rows.push({
          record: {
            sys_id: event.seq.toString(16).padStart(32, '0'),
            tablename: asText(generic ? raw.type : raw.sys_class_name),
            documentkey: sysId,
            display_value: asText(record?.number ?? record?.name ?? ''),
            sys_created_on: toUpstreamDate(event.modified),
            sys_created_by: who,
          },
          object: null,
        });
      }
      if (events.length < 1000) return rows;
      after = events.at(-1)?.seq ?? after;
    }
  }

  async function userNameOf(account: number, userId: string): Promise<string> {
    const sysId = userIdToSysId(userId);
    const [user] = sysId ? await deps.store.findByUpstreamIds(account, USER_RAW_TYPE, [sysId]) : [];
    return asText(user?.fields.user_name) || userId;
  }

  async function loadRows(account: number, table: TableDef): Promise<Row[]> {
    if (table.name === AUDIT_DELETE_TABLE) return auditDeleteRows(account);
    if (table.name === JOURNAL_TABLE) return journalRows(account);
    return toRows(await listStored(account, table));
  }

  /** The table named in the path: declared, or a generic table that has records already. */
  async function resolveTable(name: string, account: number): Promise<TableDef> {
    const invalid = () =>
      invalidRequest(
        `Invalid table ${name}`,
        `no table ${JSON.stringify(name)} in this instance; tables: incident, problem, change_request, kb_knowledge, alm_asset, sys_user, sys_user_group, cmdb_ci, sys_audit_delete, sys_journal_field, and any table created through the generic objects of /v1`,
      );
    if (!isTableName(name)) throw invalid();
    const table = tableDef(name);
    if (isDeclared(table)) return table;
    const { total } = await deps.store.listObjects({
      account,
      type: 'object',
      rawType: name,
      offset: 0,
      limit: 1,
    });
    if (total === 0) throw invalid();
    return table;
  }

  /** A lookup over the tables a request's references and dot-walks reach, loaded once each. */
  async function makeLookup(account: number, tables: Iterable<string>): Promise<Lookup> {
    const loaded = new Map<string, Map<string, UpstreamRecord>>();
    for (const name of tables) {
      if (loaded.has(name)) continue;
      const table = tableDef(name);
      const rows = table.readOnly ? [] : await loadRows(account, table);
      const byId = new Map<string, UpstreamRecord>();
      for (const { record } of rows) {
        // A user's display value is its name, or first and last name joined when it has none.
        const named =
          name === USER_RAW_TYPE && !record.name
            ? { ...record, name: [record.first_name, record.last_name].filter(Boolean).join(' ') }
            : record;
        byId.set(record.sys_id ?? '', named);
      }
      loaded.set(name, byId);
    }
    return {
      get: (table, sysId) => loaded.get(table)?.get(sysId),
      ids: (table) => [...(loaded.get(table)?.keys() ?? [])],
    };
  }

  /** Tables whose records a presentation or query needs (references shown or walked). */
  function reachedTables(
    table: TableDef,
    fields: Iterable<string>,
    display: DisplayMode,
  ): Set<string> {
    const reached = new Set<string>();
    for (const field of fields) {
      const head = field.split('.')[0] ?? '';
      const column = table.columns[head];
      if (column?.kind !== 'reference' || !column.table) continue;
      if (field.includes('.') || display !== 'false') reached.add(column.table);
    }
    return reached;
  }

  async function findRow(account: number, table: TableDef, sysId: string): Promise<Row> {
    const missing = () =>
      noRecord(`no record of table ${table.name} has sys_id ${JSON.stringify(sysId)}`);
    if (table.readOnly || table.type === null) {
      const rows =
        table.readOnly || !SYS_ID.test(sysId)
          ? await loadRows(account, table)
          : await toRows(await deps.store.findByUpstreamIds(account, table.name, [sysId]));
      const row = rows.find((r) => r.record.sys_id === sysId);
      if (!row) throw missing();
      return row;
    }
    const key = `${account}:${table.name}:${sysId}`;
    const hinted = sysIdIndex.get(key);
    if (hinted) {
      const object = await deps.store.getObject(account, hinted);
      if (object && object.type === table.type && object.upstreamId === sysId) {
        const [row] = await toRows([object]);
        if (row) return row;
      }
      sysIdIndex.delete(key);
    }
    let found: StoredObject | undefined;
    for (const object of await listStored(account, table)) {
      sysIdIndex.set(`${account}:${table.name}:${object.upstreamId}`, object.id);
      if (object.upstreamId === sysId) found = object;
    }
    if (!found) throw missing();
    const [row] = await toRows([found]);
    if (!row) throw missing();
    return row;
  }

  return { listStored, toRows, loadRows, resolveTable, makeLookup, reachedTables, findRow };
}
