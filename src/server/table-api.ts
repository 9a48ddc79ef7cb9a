// The ServiceNow Table API face of the embedded backend: `/api/now/table/{table}` (and the
// versioned `/api/now/v1/table/...`, `/v2/`) over the same store as `/v1`, one record with two
// faces. Reads present the upstream record that `/v1` returns as `raw`; writes are read into
// `/v1` bodies and go through the same write path (objects.ts), so they validate, number, stamp,
// append the same events and notify the same webhooks; an insert first gets what an instance
// fills in on a new record (servicenow/insert-defaults.ts). Every failure answers in ServiceNow's
// error shape. Queries are evaluated in memory over the account's records of the table, which
// suits the embedded backend (a store of thousands of records, not millions).
import type { Context, Hono } from 'hono';
import { type FieldKind, TYPE_FIELDS, type UnifiedType } from '../itsm/fields.js';
import { formatIsoDate } from '../itsm/schemas.js';
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
  notAuthorized,
  TableApiError,
  type TableApiErrorCode,
} from '../servicenow/errors.js';
import { insertDefaults } from '../servicenow/insert-defaults.js';
import {
  derivePriority,
  MappingError,
  toUnifiedValue,
  toUpstreamDate,
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
  readField,
  readInput,
  tableDef,
  type UpstreamRecord,
} from '../servicenow/record.js';
import type { TableDef } from '../servicenow/tables.js';
import { DuplicateUpstreamIdError, type StoredObject } from '../storage/port.js';
import type { AppEnv, ServerDeps } from './context.js';
import { ApiError } from './errors.js';
import { createObject, deleteObject, updateObject, type Writer } from './objects.js';
import { createTableAuth, type TableApiOptions, type TableCaller } from './table-auth.js';
import { createTableRows, type Row } from './table-rows.js';
import { sysIdToUserId, userIdToSysId } from './users.js';

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
  const baseUrl = (c: Context) => (deps.publicUrl ?? new URL(c.req.url).origin).replace(/\/+$/, '');
  const tableRows = createTableRows(deps);

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
    const lookup = await tableRows.makeLookup(
      caller.account,
      tableRows.reachedTables(table, fields, options.display),
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
      return await tableRows.findRow(caller.account, table, sysId);
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
  ): Promise<Record<string, string>> {
    if (table.readOnly) {
      throw notAuthorized(`${table.name} is read-only: its rows are kept by the instance`);
    }
    const body = await readBody(c);
    const inputDisplayValue = flagParam(c, 'sysparm_input_display_value');
    // References by display value need the referenced tables' records.
    const lookupTables = inputDisplayValue
      ? tableRows.reachedTables(table, Object.keys(body), 'true')
      : new Set<string>();
    const lookup = await tableRows.makeLookup(caller.account, lookupTables);
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

  /**
   * The sys_id an insert names, or null to let the server choose: an instance takes a 32-hex
   * sys_id given on insert (integrations use it to keep one id across systems) and refuses one
   * already in use. Read before readInput, which drops the system columns.
   */
  async function insertSysId(c: Context, caller: TableCaller, table: TableDef) {
    const given = (await readBody(c)).sys_id;
    if (given === undefined || given === null || given === '') return null;
    if (typeof given !== 'string' || !SYS_ID.test(given)) {
      throw invalidRequest(
        'Invalid request body',
        `sys_id must be 32 lower-case hex digits (or left out for the instance to choose one), got ${JSON.stringify(given)}`,
      );
    }
    if (await findRowById(caller, table, given)) throw sysIdTaken(table, given);
    return given;
  }

  /** What an instance answers when the insert's sys_id is taken: the insert fails as a whole. */
  function sysIdTaken(table: TableDef, sysId: string): TableApiError {
    return new TableApiError(
      'SN_FORBIDDEN',
      'Operation Failed',
      `Error during insert of ${table.name} (${sysId}): a record with this sys_id already exists`,
    );
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
      const table = await tableRows.resolveTable(c.req.param('table') ?? '', caller.account);
      const options = presentOptions(c, base);
      const limit = wholeParam(c, 'sysparm_limit', 1, DEFAULT_LIMIT);
      const offset = wholeParam(c, 'sysparm_offset', 0, 0);
      const noCount = flagParam(c, 'sysparm_no_count');
      const noLinks = flagParam(c, 'sysparm_suppress_pagination_header');
      const query = parseQuery(table, c.req.query('sysparm_query'));
      let rows = await tableRows.loadRows(caller.account, table);
      if (query.queries.length > 0 || query.orderBy.length > 0) {
        const walked = queryFields(query).filter((f) => f.includes('.'));
        const lookup = await tableRows.makeLookup(
          caller.account,
          tableRows.reachedTables(table, walked, 'false'),
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
      const table = await tableRows.resolveTable(c.req.param('table') ?? '', caller.account);
      const options = presentOptions(c, base);
      const row = await tableRows.findRow(caller.account, table, c.req.param('sys_id') ?? '');
      const [record] = await present(caller, table, [row], options);
      return result(200, record);
    });

    app.post(`${root}/:table`, async (c) => {
      const caller = await auth.authenticate(c);
      const base = baseUrl(c);
      const table = await tableRows.resolveTable(c.req.param('table') ?? '', caller.account);
      const options = presentOptions(c, base);
      const input = await readWrite(c, caller, table);
      const sysId = await insertSysId(c, caller, table);
      // What the insert leaves out, the instance's defaults fill in; what it names wins.
      const callerSysId = caller.actor === null ? null : userIdToSysId(caller.actor);
      const defaults = table.type
        ? insertDefaults(
            table.type,
            callerSysId !== null && SYS_ID.test(callerSysId) ? callerSysId : null,
            toUpstreamDate(formatIsoDate(new Date())),
          )
        : {};
      const body = await toWriteBody(caller, table, { ...defaults, ...input }, null);
      const { object } = await createObject(
        deps,
        writerFor(caller, c, base),
        table.type ?? 'object',
        table.type ? null : table.name,
        body,
        undefined,
        sysId ?? undefined,
      ).catch((error: unknown) => {
        // Another insert of the same sys_id passed the check above at the same time and
        // committed first: the store's unique index refused this one, which kept nothing.
        if (sysId !== null && error instanceof DuplicateUpstreamIdError) {
          throw sysIdTaken(table, sysId);
        }
        throw error;
      });
      const [row] = await tableRows.toRows([object]);
      const [record] = await present(caller, table, row ? [row] : [], options);
      return result(201, record, {
        Location: `${base}/api/now/table/${table.name}/${object.upstreamId}`,
      });
    });

    const write = async (c: Context) => {
      const caller = await auth.authenticate(c);
      const base = baseUrl(c);
      const table = await tableRows.resolveTable(c.req.param('table') ?? '', caller.account);
      const options = presentOptions(c, base);
      const input = await readWrite(c, caller, table);
      const sysId = c.req.param('sys_id') ?? '';
      const { object } = await updateObject(
        deps,
        writerFor(caller, c, base),
        async () => (await tableRows.findRow(caller.account, table, sysId)).object as StoredObject,
        // The body depends on the record (a derived priority reads the current impact).
        async (current) => {
          const [row] = await tableRows.toRows([current]);
          return toWriteBody(caller, table, input, row?.record ?? null);
        },
      );
      const [row] = await tableRows.toRows([object]);
      const [record] = await present(caller, table, row ? [row] : [], options);
      return result(200, record);
    };
    app.put(`${root}/:table/:sys_id`, write);
    app.patch(`${root}/:table/:sys_id`, write);

    app.delete(`${root}/:table/:sys_id`, async (c) => {
      const caller = await auth.authenticate(c);
      const base = baseUrl(c);
      const table = await tableRows.resolveTable(c.req.param('table') ?? '', caller.account);
      if (table.readOnly) {
        throw notAuthorized(`${table.name} is read-only: its rows are kept by the instance`);
      }
      const sysId = c.req.param('sys_id') ?? '';
      await deleteObject(
        deps,
        writerFor(caller, c, base),
        async () => (await tableRows.findRow(caller.account, table, sysId)).object as StoredObject,
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
