// The ServiceNow Table API face of the embedded backend: `/api/now/table/{table}` (and the
// versioned `/api/now/v1/table/...`, `/v2/`) over the same store as `/v1`, one record with two
// faces. Reads present the upstream record that `/v1` returns as `raw`; writes are read into
// `/v1` bodies and go through the same write path (objects.ts), so they validate, number, stamp,
// append the same events and notify the same webhooks. Every failure answers in ServiceNow's
// error shape. Queries are evaluated in memory over the account's records of the table, which
// suits the embedded backend (a store of thousands of records, not millions).
import type { Context, Hono } from 'hono';
import { type FieldKind, TYPE_FIELDS, type UnifiedType } from '../itsm/fields.js';
import {
  type EncodedQuery,
  EncodedQueryError,
  matchesQuery,
  orderRecords,
  parseEncodedQuery,
  queryFields,
} from '../servicenow/encoded-query.js';
import {
  errorBody,
  invalidRequest,
  noRecord,
  notAuthorized,
  TableApiError,
  type TableApiErrorCode,
} from '../servicenow/errors.js';
import {
  derivePriority,
  isJournalEntries,
  JOURNAL_COLUMNS,
  MappingError,
  toUnifiedValue,
  UPSTREAM_TABLES,
  unifiedFieldOf,
} from '../servicenow/mapping.js';
import {
  type DisplayMode,
  displayOf,
  isKnownField,
  type PresentOptions,
  presentRecord,
  RecordInputError,
  type RecordLookup,
  readField,
  readInput,
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
import type { AppEnv, ServerDeps } from './context.js';
import { ApiError } from './errors.js';
import { createObject, deleteObject, updateObject, type Writer } from './objects.js';
import { toUpstreamDate } from './raw.js';
import { renderObjects } from './render.js';
import { createTableAuth, type TableApiOptions, type TableCaller } from './table-auth.js';
import { sysIdToUserId, USER_RAW_TYPE, userIdToSysId } from './users.js';

export type { TableApiOptions } from './table-auth.js';

const TABLE_PATHS = ['/api/now/table', '/api/now/v1/table', '/api/now/v2/table'];
const DEFAULT_LIMIT = 10_000;
const SYS_ID = /^[0-9a-f]{32}$/;
const JSON_TYPE = 'application/json;charset=UTF-8';

/** Whether a request path belongs to this face (its errors answer in ServiceNow's shape). */
export function isTableApiPath(path: string): boolean {
  return path.startsWith('/api/now/') || path === '/oauth_token.do';
}

const CODE_BY_STATUS: Record<number, TableApiErrorCode> = {
  400: 'SN_BAD_REQUEST',
  401: 'SN_UNAUTHENTICATED',
  403: 'SN_FORBIDDEN',
  404: 'SN_NOT_FOUND',
  405: 'SN_METHOD_NOT_ALLOWED',
  409: 'SN_CONFLICT',
  413: 'SN_PAYLOAD_TOO_LARGE',
};

/** Any error of this face (its own, the shared write path's, or a surprise) in SN's shape. */
export function tableApiErrorResponse(error: unknown, log: (line: string) => void): Response {
  let failure: TableApiError;
  if (error instanceof TableApiError) failure = error;
  else if (error instanceof ApiError) {
    const code = CODE_BY_STATUS[error.status] ?? 'SN_INTERNAL';
    const message = code === 'SN_BAD_REQUEST' ? 'Invalid request' : error.message;
    failure = new TableApiError(code, message, error.message, error.headers);
  } else {
    log(`itsm-api: internal error on the Table API: ${(error as Error)?.stack ?? error}`);
    failure = new TableApiError('SN_INTERNAL', 'Internal server error', 'see the server log');
  }
  return new Response(JSON.stringify(errorBody(failure)), {
    status: failure.status,
    headers: { ...failure.headers, 'Content-Type': JSON_TYPE },
  });
}

function result(status: number, value: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ result: value }), {
    status,
    headers: { ...headers, 'Content-Type': JSON_TYPE },
  });
}

/** Records of the tables a request reaches, by sys_id, and the sys_ids of each table. */
interface Lookup {
  get: RecordLookup;
  ids(table: string): string[];
}

/** A record of the face with the stored object it comes from (null for derived views). */
interface Row {
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

function flagParam(c: Context, name: string): boolean {
  const value = c.req.query(name);
  if (value === undefined || value === '') return false;
  const lower = value.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  throw invalidRequest(
    `Invalid ${name}`,
    `${name} must be true or false, got ${JSON.stringify(value)}`,
  );
}

function wholeParam(c: Context, name: string, min: number, fallback: number): number {
  const value = c.req.query(name);
  if (value === undefined || value === '') return fallback;
  if (!/^-?\d{1,15}$/.test(value) || Number(value) < min) {
    throw invalidRequest(
      `Invalid ${name}`,
      `${name} must be a whole number >= ${min}, got ${JSON.stringify(value)}`,
    );
  }
  return Number(value);
}

function displayParam(c: Context, name: string): DisplayMode {
  const value = (c.req.query(name) ?? 'false').toLowerCase();
  if (value === 'true' || value === 'false' || value === 'all') return value;
  throw invalidRequest(
    `Invalid ${name}`,
    `${name} must be true, false or all, got ${JSON.stringify(c.req.query(name))}`,
  );
}

export function registerTableApiRoutes(
  app: Hono<AppEnv>,
  deps: ServerDeps,
  options: TableApiOptions,
): void {
  const auth = createTableAuth(app, deps, options);
  // sys_id -> object id of the unified tables, per account: a hint checked on every use (the
  // object is read by id and its sys_id compared), rebuilt from a scan when it misses.
  const sysIdIndex = new Map<string, string>();

  const baseUrl = (c: Context) => (deps.publicUrl ?? new URL(c.req.url).origin).replace(/\/+$/, '');

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

  async function toRows(objects: StoredObject[], base: string): Promise<Row[]> {
    const rendered = await renderObjects(deps.store, objects, { baseUrl: base, includeRaw: true });
    return rendered.map((body, i) => {
      const object = objects[i] as StoredObject;
      if (object.type !== 'object') return { record: body.raw as UpstreamRecord, object };
      const fields = (body.raw as { object: Record<string, unknown> }).object;
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

  async function loadRows(account: number, table: TableDef, base: string): Promise<Row[]> {
    if (table.name === AUDIT_DELETE_TABLE) return auditDeleteRows(account);
    if (table.name === JOURNAL_TABLE) return journalRows(account);
    return toRows(await listStored(account, table), base);
  }

  /** The table named in the path: declared, or a generic table that has records already. */
  async function resolveTable(c: Context, account: number): Promise<TableDef> {
    const name = c.req.param('table') ?? '';
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
  async function makeLookup(
    account: number,
    tables: Iterable<string>,
    base: string,
  ): Promise<Lookup> {
    const loaded = new Map<string, Map<string, UpstreamRecord>>();
    for (const name of tables) {
      if (loaded.has(name)) continue;
      const table = tableDef(name);
      const rows = table.readOnly ? [] : await loadRows(account, table, base);
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

  async function findRow(
    caller: TableCaller,
    table: TableDef,
    sysId: string,
    base: string,
  ): Promise<Row> {
    const missing = () =>
      noRecord(`no record of table ${table.name} has sys_id ${JSON.stringify(sysId)}`);
    if (table.readOnly || table.type === null) {
      const rows =
        table.readOnly || !SYS_ID.test(sysId)
          ? await loadRows(caller.account, table, base)
          : await toRows(
              await deps.store.findByUpstreamIds(caller.account, table.name, [sysId]),
              base,
            );
      const row = rows.find((r) => r.record.sys_id === sysId);
      if (!row) throw missing();
      return row;
    }
    const key = `${caller.account}:${table.name}:${sysId}`;
    const hinted = sysIdIndex.get(key);
    if (hinted) {
      const object = await deps.store.getObject(caller.account, hinted);
      if (object && object.type === table.type && object.upstreamId === sysId) {
        const [row] = await toRows([object], base);
        if (row) return row;
      }
      sysIdIndex.delete(key);
    }
    let found: StoredObject | undefined;
    for (const object of await listStored(caller.account, table)) {
      sysIdIndex.set(`${caller.account}:${table.name}:${object.upstreamId}`, object.id);
      if (object.upstreamId === sysId) found = object;
    }
    if (!found) throw missing();
    const [row] = await toRows([found], base);
    if (!row) throw missing();
    return row;
  }

  function presentOptions(c: Context, base: string): PresentOptions {
    const fieldsText = c.req.query('sysparm_fields');
    return {
      baseUrl: base,
      display: displayParam(c, 'sysparm_display_value'),
      excludeReferenceLink: flagParam(c, 'sysparm_exclude_reference_link'),
      fields: fieldsText
        ? fieldsText
            .split(',')
            .map((f) => f.trim())
            .filter(Boolean)
        : null,
    };
  }

  async function present(
    caller: TableCaller,
    table: TableDef,
    rows: Row[],
    options: PresentOptions,
  ): Promise<Record<string, unknown>[]> {
    const fields = options.fields ?? Object.keys(table.columns);
    const lookup = await makeLookup(
      caller.account,
      reachedTables(table, fields, options.display),
      options.baseUrl,
    );
    return rows.map((row) => presentRecord(table, row.record, options, lookup.get));
  }

  function parseQuery(table: TableDef, text: string | undefined): EncodedQuery {
    let query: EncodedQuery;
    try {
      query = parseEncodedQuery(text ?? '');
    } catch (error) {
      if (error instanceof EncodedQueryError) {
        throw invalidRequest('Invalid sysparm_query', error.message);
      }
      throw error;
    }
    // An instance drops conditions on unknown fields and answers more than was asked for;
    // here they are refused, so a misspelt field never widens a query silently.
    const unknown = queryFields(query).filter((field) => !isKnownField(table, field));
    if (unknown.length > 0) {
      throw invalidRequest(
        'Invalid sysparm_query',
        `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} in table ${table.name}`,
      );
    }
    return query;
  }

  function linkHeader(c: Context, base: string, offset: number, limit: number, total: number) {
    const url = new URL(c.req.url);
    const at = (start: number) => {
      const params = new URLSearchParams(url.search);
      // Paging parameters go last, in one order, whatever order the request had them in.
      params.delete('sysparm_offset');
      params.delete('sysparm_limit');
      params.set('sysparm_offset', String(start));
      params.set('sysparm_limit', String(limit));
      return `<${base}${url.pathname}?${params}>`;
    };
    const last = total === 0 ? 0 : Math.floor((total - 1) / limit) * limit;
    const links = [`${at(0)};rel="first"`];
    if (offset > 0) links.push(`${at(Math.max(0, offset - limit))};rel="prev"`);
    if (offset + limit < total) links.push(`${at(offset + limit)};rel="next"`);
    links.push(`${at(last)};rel="last"`);
    return links.join(',');
  }

  /** Reads a body of either face's write into the `/v1` body of the table's unified type. */
  async function unifiedBody(
    caller: TableCaller,
    table: TableDef & { type: UnifiedType },
    input: Record<string, string>,
    current: UpstreamRecord | null,
  ): Promise<Record<string, unknown>> {
    const type = table.type;
    const values = { ...input };
    if (type === 'incident' && !Object.hasOwn(values, 'priority')) {
      const touched = current === null || 'impact' in values || 'urgency' in values;
      const derived = derivePriority(
        values.impact ?? current?.impact ?? '',
        values.urgency ?? current?.urgency ?? '',
      );
      if (touched && derived) values.priority = derived;
    }
    const kinds: Record<string, FieldKind> = TYPE_FIELDS[type];
    const references = new Map<string, string>();
    for (const [column, value] of Object.entries(values)) {
      const field = unifiedFieldOf(type, column);
      if (field && kinds[field] === 'reference' && value !== '') {
        const target = tableDef(UPSTREAM_TABLES[field as UnifiedType].table);
        const row = await findRowById(caller, target, value);
        if (row?.object) references.set(`${field}:${value}`, row.object.id);
      }
    }
    const fields: Record<string, unknown> = {};
    const extra: Record<string, unknown> = {};
    const problems: string[] = [];
    for (const [column, value] of Object.entries(values)) {
      const field = unifiedFieldOf(type, column);
      if (!field) {
        extra[column] = value;
        continue;
      }
      try {
        fields[field] = toUnifiedValue(type, field, column, value, {
          user: sysIdToUserId,
          reference: (name, sysId) => references.get(`${name}:${sysId}`) ?? null,
        });
      } catch (error) {
        if (!(error instanceof MappingError)) throw error;
        problems.push(error.message);
      }
    }
    if (problems.length > 0) throw new RecordInputError(problems);
    return { ...fields, ...(Object.keys(extra).length > 0 && { raw: { object: extra } }) };
  }

  async function findRowById(caller: TableCaller, table: TableDef, sysId: string) {
    try {
      return await findRow(caller, table, sysId, '');
    } catch (error) {
      if (error instanceof TableApiError) return undefined;
      throw error;
    }
  }

  async function readBody(c: Context): Promise<Record<string, unknown>> {
    const text = await c.req.text();
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw invalidRequest(
        'Exception while reading request',
        `the body must be a JSON object of field values: ${(error as Error).message}`,
      );
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw invalidRequest(
        'Exception while reading request',
        `the body must be a JSON object of field values, got ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`,
      );
    }
    return value as Record<string, unknown>;
  }

  async function readWrite(
    c: Context,
    caller: TableCaller,
    table: TableDef,
    base: string,
  ): Promise<Record<string, string>> {
    if (table.readOnly) {
      throw notAuthorized(`${table.name} is read-only: its rows are kept by the instance`);
    }
    const body = await readBody(c);
    const inputDisplayValue = flagParam(c, 'sysparm_input_display_value');
    // References by display value need the referenced tables' records.
    const lookupTables = inputDisplayValue
      ? reachedTables(table, Object.keys(body), 'true')
      : new Set<string>();
    const lookup = await makeLookup(caller.account, lookupTables, base);
    const byDisplay = new Map<string, Map<string, string>>();
    try {
      return readInput(table, body, {
        inputDisplayValue,
        findByDisplay: (name, display) => {
          let index = byDisplay.get(name);
          if (!index) {
            index = new Map();
            for (const sysId of lookup.ids(name)) {
              index.set(displayOf(name, sysId, lookup.get), sysId);
            }
            byDisplay.set(name, index);
          }
          return index.get(display);
        },
      });
    } catch (error) {
      if (error instanceof RecordInputError)
        throw invalidRequest('Invalid request body', error.message);
      throw error;
    }
  }

  const writerFor = (caller: TableCaller, c: Context, base: string): Writer => ({
    account: caller.account,
    actor: caller.actor,
    ip: deps.clientIp(c),
    userName: caller.userName,
    baseUrl: base,
  });

  async function toWriteBody(
    caller: TableCaller,
    table: TableDef,
    input: Record<string, string>,
    current: UpstreamRecord | null,
  ): Promise<Record<string, unknown>> {
    try {
      return table.type
        ? await unifiedBody(caller, table as TableDef & { type: UnifiedType }, input, current)
        : input;
    } catch (error) {
      if (error instanceof RecordInputError)
        throw invalidRequest('Invalid request body', error.message);
      throw error;
    }
  }

  for (const root of TABLE_PATHS) {
    app.get(`${root}/:table`, async (c) => {
      const caller = await auth.authenticate(c);
      const base = baseUrl(c);
      const table = await resolveTable(c, caller.account);
      const options = presentOptions(c, base);
      const limit = wholeParam(c, 'sysparm_limit', 1, DEFAULT_LIMIT);
      const offset = wholeParam(c, 'sysparm_offset', 0, 0);
      const noCount = flagParam(c, 'sysparm_no_count');
      const noLinks = flagParam(c, 'sysparm_suppress_pagination_header');
      const query = parseQuery(table, c.req.query('sysparm_query'));
      let rows = await loadRows(caller.account, table, base);
      if (query.queries.length > 0 || query.orderBy.length > 0) {
        const walked = queryFields(query).filter((f) => f.includes('.'));
        const lookup = await makeLookup(
          caller.account,
          reachedTables(table, walked, 'false'),
          base,
        );
        const read = (row: Row, field: string) => readField(table, row.record, field, lookup.get);
        rows = orderRecords(
          rows.filter((row) => matchesQuery(query, (field) => read(row, field))),
          query.orderBy,
          read,
        );
      }
      const total = rows.length;
      const page = await present(caller, table, rows.slice(offset, offset + limit), options);
      const headers: Record<string, string> = {};
      if (!noCount) headers['X-Total-Count'] = String(total);
      if (!noLinks) headers.Link = linkHeader(c, base, offset, limit, total);
      return result(200, page, headers);
    });

    app.get(`${root}/:table/:sys_id`, async (c) => {
      const caller = await auth.authenticate(c);
      const base = baseUrl(c);
      const table = await resolveTable(c, caller.account);
      const options = presentOptions(c, base);
      const row = await findRow(caller, table, c.req.param('sys_id') ?? '', base);
      const [record] = await present(caller, table, [row], options);
      return result(200, record);
    });

    app.post(`${root}/:table`, async (c) => {
      const caller = await auth.authenticate(c);
      const base = baseUrl(c);
      const table = await resolveTable(c, caller.account);
      const options = presentOptions(c, base);
      const input = await readWrite(c, caller, table, base);
      const body = await toWriteBody(caller, table, input, null);
      const { object } = await createObject(
        deps,
        writerFor(caller, c, base),
        table.type ?? 'object',
        table.type ? null : table.name,
        body,
      );
      const [row] = await toRows([object], base);
      const [record] = await present(caller, table, row ? [row] : [], options);
      return result(201, record, {
        Location: `${base}/api/now/table/${table.name}/${object.upstreamId}`,
      });
    });

    const write = async (c: Context) => {
      const caller = await auth.authenticate(c);
      const base = baseUrl(c);
      const table = await resolveTable(c, caller.account);
      const options = presentOptions(c, base);
      const input = await readWrite(c, caller, table, base);
      const sysId = c.req.param('sys_id') ?? '';
      const { object } = await updateObject(
        deps,
        writerFor(caller, c, base),
        async () => (await findRow(caller, table, sysId, base)).object as StoredObject,
        // The body depends on the record (a derived priority reads the current impact).
        async (current) => {
          const [row] = await toRows([current], base);
          return toWriteBody(caller, table, input, row?.record ?? null);
        },
      );
      const [row] = await toRows([object], base);
      const [record] = await present(caller, table, row ? [row] : [], options);
      return result(200, record);
    };
    app.put(`${root}/:table/:sys_id`, write);
    app.patch(`${root}/:table/:sys_id`, write);

    app.delete(`${root}/:table/:sys_id`, async (c) => {
      const caller = await auth.authenticate(c);
      const base = baseUrl(c);
      const table = await resolveTable(c, caller.account);
      if (table.readOnly) {
        throw notAuthorized(`${table.name} is read-only: its rows are kept by the instance`);
      }
      const sysId = c.req.param('sys_id') ?? '';
      await deleteObject(
        deps,
        writerFor(caller, c, base),
        async () => (await findRow(caller, table, sysId, base)).object as StoredObject,
      );
      return c.body(null, 204);
    });

    app.all(`${root}/:table`, async (c) => {
      await auth.authenticate(c);
      throw new TableApiError(
        'SN_METHOD_NOT_ALLOWED',
        'Method not Supported',
        'use GET or POST on a table',
        { Allow: 'GET, POST' },
      );
    });
    app.all(`${root}/:table/:sys_id`, async (c) => {
      await auth.authenticate(c);
      throw new TableApiError(
        'SN_METHOD_NOT_ALLOWED',
        'Method not Supported',
        'use GET, PUT, PATCH or DELETE on a record',
        { Allow: 'GET, PUT, PATCH, DELETE' },
      );
    });
  }
}
