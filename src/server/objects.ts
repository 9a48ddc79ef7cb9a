// CRUD of the five unified types and generic objects: validation, reference checks, upstream
// numbering, Idempotency-Key (creates, updates and deletes), and the event appended with every write. Every write is one store
// commit (object + event + idempotency record), so a failed request stores nothing.
import type { Hono } from 'hono';
import { nanoid } from 'nanoid';
import {
  COLLECTION_PATHS,
  CREATE_DEFAULTS,
  type FieldKind,
  type ObjectType,
  READ_ONLY_FIELDS,
  TYPE_FIELDS,
  type UnifiedType,
} from '../itsm/fields.js';
import { jsonTextResponse } from '../itsm/json-response.js';
import { describeIssues, formatIsoDate, WRITE_SCHEMAS } from '../itsm/schemas.js';
import {
  hasJournals,
  JOURNAL_COLUMNS,
  type JournalEntry,
  STAMPED_COLUMNS,
} from '../servicenow/mapping.js';
import {
  type CommitInput,
  IdempotencyConflictError,
  type NewEvent,
  type ObjectWrite,
  StaleWriteError,
  type StoredObject,
  type UpstreamMark,
} from '../storage/port.js';
import {
  type AppContext,
  type AppEnv,
  baseUrlOf,
  objectList,
  pageParams,
  readJsonObject,
  type ServerDeps,
  wantsRaw,
} from './context.js';
import { ApiError, badRequest, jsonResponse, notFound } from './errors.js';
import { fillPage, listJson } from './page-budget.js';
import { mappedColumns, toUpstreamDate, UPSTREAM_TABLES } from './raw.js';
import { renderObject, renderObjects, withoutRaw } from './render.js';
import { USER_RAW_TYPE, userIdToSysId } from './users.js';

const COLLECTIONS = new Map<string, ObjectType>(
  Object.entries(COLLECTION_PATHS).flatMap(([type, paths]) => [
    [paths.plural, type as ObjectType],
    [paths.singular, type as ObjectType],
  ]),
);

const SYS_ID = /^[0-9a-f]{32}$/;
const RAW_TYPE = /^[A-Za-z0-9_.-]{1,80}$/;
const UPDATE_ATTEMPTS = 5;

function collectionType(c: AppContext): ObjectType {
  const name = c.req.param('collection') ?? '';
  const type = COLLECTIONS.get(name);
  if (!type) {
    throw notFound(
      `no such collection itsm/${name}; use one of ${Object.values(COLLECTION_PATHS)
        .map((p) => p.plural)
        .join(', ')}`,
    );
  }
  return type;
}

/** raw_type of a generic-object request: required there, refused elsewhere. */
function rawTypeOf(c: AppContext, type: ObjectType): string | null {
  const rawType = c.req.query('raw_type');
  if (type !== 'object') return null;
  if (rawType === undefined || rawType === '') {
    throw badRequest('raw_type is required for generic objects, e.g. ?raw_type=sys_user');
  }
  if (!RAW_TYPE.test(rawType)) {
    throw badRequest(
      `raw_type must be an upstream table name (letters, digits, _ . -), got ${JSON.stringify(rawType)}`,
    );
  }
  return rawType;
}

function randomSysId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function newObjectId(): string {
  return `F${nanoid(64)}`;
}

/**
 * Validates a create or update body of a unified type and returns the fields to write
 * (null = clear) and the upstream-only `raw.object` fields.
 */
async function prepareUnifiedWrite(
  deps: ServerDeps,
  account: number,
  type: UnifiedType,
  body: Record<string, unknown>,
): Promise<{ fields: Record<string, unknown>; extra: Record<string, unknown> }> {
  // JSON.parse keeps "__proto__" as an own key, but an assignment of it anywhere later (the
  // upstream record is built key by key) would replace a prototype and drop the field silently.
  const rawObject = (body.raw as { object?: unknown } | null | undefined)?.object;
  if (
    rawObject !== null &&
    typeof rawObject === 'object' &&
    Object.hasOwn(rawObject, '__proto__')
  ) {
    throw badRequest('raw.object may not have a __proto__ field');
  }
  const writable = { ...body };
  for (const field of READ_ONLY_FIELDS) delete writable[field];
  const parsed = WRITE_SCHEMAS[type].safeParse(writable);
  if (!parsed.success) throw badRequest(describeIssues(parsed.error).join('; '));
  const { raw, ...fields } = parsed.data as Record<string, unknown> & {
    raw?: { object: Record<string, unknown> };
  };

  const kinds: Record<string, FieldKind> = TYPE_FIELDS[type];
  const references = new Map<string, string>();
  for (const [field, value] of Object.entries(fields)) {
    const kind = kinds[field];
    if ((kind === 'reference' || kind === 'user') && value === '') fields[field] = null;
    else if (kind === 'reference' && typeof value === 'string') references.set(field, value);
  }
  if (references.size > 0) {
    const found = new Map(
      (await deps.store.getObjects(account, [...references.values()])).map((o) => [o.id, o]),
    );
    const dangling = [...references].filter(([field, id]) => found.get(id)?.type !== field);
    if (dangling.length > 0) {
      throw badRequest(
        dangling
          .map(
            ([field, id]) =>
              `${field}: no ${field} with id ${JSON.stringify(id)} exists in account ${account}`,
          )
          .join('; '),
      );
    }
  }

  const extra = raw?.object ?? {};
  const owned = mappedColumns(type);
  const clashes = Object.keys(extra).filter((key) => owned.has(key));
  if (clashes.length > 0) {
    throw badRequest(
      `raw.object may only set upstream fields the unified model lacks; set these through their unified fields instead: ${clashes.join(', ')}`,
    );
  }
  return { fields, extra };
}

function mergeRecord(
  base: Record<string, unknown>,
  patch: Record<string, unknown>,
): Record<string, unknown> {
  const merged = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    else merged[key] = value;
  }
  return merged;
}

/** Validates a generic object's record; sys_id may be given once, on create. */
async function prepareGenericRecord(
  deps: ServerDeps,
  account: number,
  rawType: string,
  body: Record<string, unknown>,
  mode: 'create' | 'update',
): Promise<{ record: Record<string, unknown>; sysId: string | null }> {
  if (Object.hasOwn(body, '__proto__')) throw badRequest('a record may not have a __proto__ field');
  const { sys_id: sysId, sys_created_on: _created, sys_updated_on: _updated, ...record } = body;
  // Who wrote the record and how often is the server's to say, as on an instance.
  for (const column of STAMPED_COLUMNS) delete record[column];
  if (mode === 'update' || sysId === undefined || sysId === null) return { record, sysId: null };
  if (typeof sysId !== 'string' || !SYS_ID.test(sysId)) {
    throw badRequest(`sys_id must be 32 lower-case hex digits, got ${JSON.stringify(sysId)}`);
  }
  if ((await deps.store.findByUpstreamIds(account, rawType, [sysId])).length > 0) {
    throw new ApiError(
      'conflict',
      `a ${rawType} record with sys_id ${sysId} already exists in account ${account}`,
    );
  }
  return { record, sysId };
}

function makeEvent(
  writer: Writer,
  type: NewEvent['type'],
  metadata: Record<string, unknown>,
  previousMetadata?: Record<string, unknown>,
): NewEvent {
  return {
    account: writer.account,
    type,
    action: { add: 'insert', update: 'update', delete: 'delete' }[type],
    modified: formatIsoDate(new Date()),
    ip: writer.ip,
    userId: writer.actor,
    metadata,
    ...(previousMetadata && { previousMetadata }),
  };
}

async function findObject(
  deps: ServerDeps,
  c: AppContext,
  type: ObjectType,
  rawType: string | null,
): Promise<StoredObject> {
  const id = c.req.param('id') ?? '';
  const object = await deps.store.getObject(c.get('account'), id);
  if (!object || object.type !== type || (rawType !== null && object.rawType !== rawType)) {
    const what = rawType ? `${rawType} object` : type;
    throw notFound(`no ${what} with id ${JSON.stringify(id)} in account ${c.get('account')}`);
  }
  return object;
}

/** JSON with object keys sorted, so that the same body in another key order is the same body. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function replayOrConflict(
  record: { requestHash: string; status: number; body: string },
  requestHash: string,
  key: string,
): Response {
  if (record.requestHash !== requestHash) {
    throw new ApiError(
      'conflict',
      `Idempotency-Key ${JSON.stringify(key)} was already used with a different request (another method, object or body); use a new key for a new request`,
    );
  }
  return jsonTextResponse(record.status, record.status === 204 ? null : record.body, {
    'Idempotent-Replayed': 'true',
  });
}

interface IdempotencyClaim {
  key: string;
  requestHash: string;
}

/**
 * Reads the request's Idempotency-Key: none (undefined), a replay of the request that first used
 * it (a Response), or the key and request hash to store with this request's write. `what` names
 * the request (method, collection, object) so that a key reused for another request is a 409.
 */
async function claimIdempotencyKey(
  deps: ServerDeps,
  c: AppContext,
  what: string,
): Promise<IdempotencyClaim | Response | undefined> {
  const key = c.req.header('Idempotency-Key');
  if (key === undefined) return undefined;
  if (key.length === 0 || key.length > 255) {
    throw badRequest('Idempotency-Key must be 1 to 255 characters');
  }
  const requestHash = await deps.sha256Hex(what);
  const existing = await deps.keys.lookup(c.get('account'), key);
  if (existing) return replayOrConflict(existing, requestHash, key);
  return { key, requestHash };
}

// Requests in flight per `deps` and `account:key`. Over the embedded store the commit settles a
// race for a key; over a remote system of record the write lands upstream before that commit,
// so requests that share a key run one after another here (in this process), and the later
// ones find the first one's record and replay it.
const keyQueues = new WeakMap<ServerDeps, Map<string, Promise<unknown>>>();

/** Runs `handle` after every earlier request of this process with the same Idempotency-Key. */
async function oneKeyAtATime(
  deps: ServerDeps,
  c: AppContext,
  handle: () => Promise<Response>,
): Promise<Response> {
  const key = c.req.header('Idempotency-Key');
  if (key === undefined || !deps.store.writeUpstream) return handle();
  let queues = keyQueues.get(deps);
  if (!queues) {
    queues = new Map();
    keyQueues.set(deps, queues);
  }
  const slot = `${c.get('account')}:${key}`;
  const before = queues.get(slot) ?? Promise.resolve();
  const held = () => holdingKey(deps, c.get('account'), key, handle);
  const run = before.then(held, held);
  const settled = run.catch(() => {});
  queues.set(slot, settled);
  void settled.then(() => {
    if (queues.get(slot) === settled) queues.delete(slot);
  });
  return run;
}

/** How long a key's hold lasts unless renewed: a server that died holding it blocks no longer. */
export const KEY_HOLD_MS = 60_000;
/** The holder renews its hold this often while its upstream write runs (it may retry for minutes). */
const KEY_HOLD_RENEW_MS = 20_000;
/** A request waiting for another server's hold looks again after this, doubling up to 1 s. */
const KEY_HOLD_FIRST_WAIT_MS = 25;

/**
 * Runs `handle` holding `key` across the servers that share the store (Worker isolates on one D1
 * database), so that a request sent twice at once reaches the system of record once. The queue
 * above orders the requests of one server; without holds two servers could both find no record
 * for the key and both write upstream (a work note twice). A request whose key another server
 * holds waits until that one's answer is stored, then replays it; a hold whose server died
 * expires, and the next request takes it over.
 */
async function holdingKey(
  deps: ServerDeps,
  account: number,
  key: string,
  handle: () => Promise<Response>,
): Promise<Response> {
  const { holdKey, releaseKey } = deps.store;
  if (!holdKey || !releaseKey) return handle();
  const holder = crypto.randomUUID();
  for (let wait = KEY_HOLD_FIRST_WAIT_MS; ; wait = Math.min(wait * 2, 1_000)) {
    const now = Date.now();
    if (await holdKey(account, key, holder, now, now + KEY_HOLD_MS)) break;
    // Held elsewhere: once that server's answer is stored, this request replays it.
    if (await deps.keys.lookup(account, key)) return handle();
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
  const renew = setInterval(() => {
    const now = Date.now();
    holdKey(account, key, holder, now, now + KEY_HOLD_MS).catch(() => {});
  }, KEY_HOLD_RENEW_MS);
  try {
    return await handle();
  } finally {
    clearInterval(renew);
    // The write's answer stands even if the hold cannot be given back: it expires on its own.
    await releaseKey(account, key, holder).catch(() => {});
  }
}

/** Another request with the same key committed first: answer as a replay of it. */
async function replayWinner(
  deps: ServerDeps,
  c: AppContext,
  claim: IdempotencyClaim | undefined,
  error: unknown,
): Promise<Response | null> {
  if (!(error instanceof IdempotencyConflictError) || !claim) return null;
  const winner = await deps.store.getIdempotencyRecord(c.get('account'), claim.key);
  return winner ? replayOrConflict(winner, claim.requestHash, claim.key) : null;
}

/**
 * A create or update under its Idempotency-Key claim, answered with the object as written (raw
 * included only when asked for). The answer's text is stored with the claim, so a repeat of the
 * request replays it; a request that lost the race for the key replays the winner's answer.
 */
async function answerWrite(
  deps: ServerDeps,
  c: AppContext,
  claim: IdempotencyClaim | undefined,
  status: 200 | 201,
  write: (
    idempotency: WriteIdempotency | undefined,
  ) => Promise<{ metadata: Record<string, unknown> }>,
): Promise<Response> {
  const respond = (metadata: Record<string, unknown>) =>
    JSON.stringify(wantsRaw(c) ? metadata : withoutRaw(metadata));
  let metadata: Record<string, unknown>;
  try {
    ({ metadata } = await write(claim && { ...claim, responseText: respond }));
  } catch (error) {
    const replay = await replayWinner(deps, c, claim, error);
    if (replay) return replay;
    throw error;
  }
  return jsonTextResponse(status, respond(metadata));
}

/** Who writes, from where: what every write of either face records on its event. */
export interface Writer {
  account: number;
  /** The user id recorded as the event's `user_id`, or null for the application itself. */
  actor: string | null;
  ip: string | null;
  /** The user name stamped on the upstream record (`sys_created_by`, `sys_updated_by`). */
  userName: string;
  baseUrl: string;
}

/** The name a write by `actor` is stamped with: its sys_user's user_name, else the id itself. */
async function userNameOf(deps: ServerDeps, account: number, actor: string | null) {
  if (actor === null) return 'system';
  const sysId = userIdToSysId(actor);
  const [record] = sysId ? await deps.store.findByUpstreamIds(account, USER_RAW_TYPE, [sysId]) : [];
  const name = record?.fields.user_name;
  return typeof name === 'string' && name !== '' ? name : actor;
}

/** The writer of a `/v1` request (after the auth middleware). */
export async function writerOf(deps: ServerDeps, c: AppContext): Promise<Writer> {
  const account = c.get('account');
  const actor = c.get('actor');
  return {
    account,
    actor,
    ip: deps.clientIp(c),
    userName: await userNameOf(deps, account, actor),
    baseUrl: baseUrlOf(deps, c),
  };
}

/**
 * The upstream columns every write stamps (who created and last updated the record, how many
 * updates it has had), and journal columns appended as entries rather than overwritten: the same
 * on both faces, so one record reads the same through `/v1` raw and the Table API.
 */
function stampUpstream(
  writer: Writer,
  type: ObjectType,
  current: Record<string, unknown> | null,
  patch: Record<string, unknown>,
  version: number,
  now: string,
): Record<string, unknown> {
  const stamped: Record<string, unknown> = { ...patch };
  if (type !== 'object' && hasJournals(type)) {
    for (const column of JOURNAL_COLUMNS) {
      const text = patch[column];
      if (!Object.hasOwn(patch, column)) continue;
      delete stamped[column];
      if (typeof text !== 'string' || text.trim() === '') continue;
      const entries = Array.isArray(current?.[column]) ? (current[column] as JournalEntry[]) : [];
      const entry: JournalEntry = {
        sys_id: randomSysId(),
        value: text,
        sys_created_on: toUpstreamDate(now),
        sys_created_by: writer.userName,
      };
      stamped[column] = [entry, ...entries];
    }
  }
  if (current === null) stamped.sys_created_by = writer.userName;
  stamped.sys_updated_by = writer.userName;
  stamped.sys_mod_count = String(version - 1);
  return stamped;
}

/** An Idempotency-Key claimed for a write: stored in the write's own commit with its answer. */
export interface WriteIdempotency {
  key: string;
  requestHash: string;
  /** The response body to replay, from the object as rendered with raw. */
  responseText(metadata: Record<string, unknown>): string;
}

function idempotencyOf(
  account: number,
  claim: WriteIdempotency | undefined,
  status: number,
  metadata: Record<string, unknown>,
): Pick<CommitInput, 'idempotency'> {
  if (!claim) return {};
  return {
    idempotency: {
      account,
      key: claim.key,
      requestHash: claim.requestHash,
      status,
      body: claim.responseText(metadata),
      createdAt: Date.now(),
    },
  };
}

/**
 * Creates an object of either face: validated as `/v1` validates it (`body` is a `/v1` body),
 * numbered, stamped, and committed with its add event (and idempotency record) in one commit.
 * `upstreamId` is a sys_id the caller chose and checked as unused (a Table API insert may name
 * one); without it the record gets a random one.
 */
export async function createObject(
  deps: ServerDeps,
  writer: Writer,
  type: ObjectType,
  rawType: string | null,
  body: Record<string, unknown>,
  idempotency?: WriteIdempotency,
  upstreamId?: string,
): Promise<{ object: StoredObject; metadata: Record<string, unknown> }> {
  const account = writer.account;
  const now = formatIsoDate(new Date());
  let object: StoredObject;
  if (type === 'object') {
    const { record, sysId } = await prepareGenericRecord(
      deps,
      account,
      rawType ?? '',
      body,
      'create',
    );
    object = {
      account,
      id: newObjectId(),
      type,
      rawType,
      upstreamId: sysId ?? upstreamId ?? randomSysId(),
      number: null,
      fields: stampUpstream(writer, type, null, record, 1, now),
      extra: {},
      created: now,
      modified: now,
      version: 1,
    };
  } else {
    const { fields, extra } = await prepareUnifiedWrite(deps, account, type, body);
    const kinds: Record<string, FieldKind> = TYPE_FIELDS[type];
    const defaults = Object.fromEntries(
      Object.entries(CREATE_DEFAULTS).filter(([field]) => field in kinds),
    );
    const { prefix } = UPSTREAM_TABLES[type];
    const counter = await deps.store.nextCounter(account, prefix);
    object = {
      account,
      id: newObjectId(),
      type,
      rawType: null,
      // Over a system of record, the record's own sys_id comes back from the insert; one is
      // named only when chosen (a Table API insert's, or one derived from an Idempotency-Key).
      upstreamId: upstreamId ?? (deps.store.writeUpstream ? '' : randomSysId()),
      number: `${prefix}${String(10_000 + counter).padStart(7, '0')}`,
      fields: mergeRecord(defaults, fields),
      extra: stampUpstream(writer, type, null, extra, 1, now),
      created: now,
      modified: now,
      version: 1,
    };
  }

  const result = await writeThrough(
    deps,
    { kind: 'create', object },
    null,
    async (stored, upstream) => {
      const written = stored ?? object;
      const metadata = await renderObject(deps.store, written, {
        baseUrl: writer.baseUrl,
        includeRaw: true,
      });
      await deps.store.commit({
        write: upstream ? { kind: 'upstream' } : { kind: 'create', object },
        event: makeEvent(writer, 'add', metadata),
        retention: deps.eventRetention,
        ...(upstream && { upstream: upstream(metadata) }),
        ...idempotencyOf(account, idempotency, 201, metadata),
      });
      return { object: written, metadata };
    },
  );
  deps.notifier.notify(account);
  return result;
}

/**
 * Runs `finish` (render the object as written, commit its event) after the write: over the
 * embedded store the write is part of finish's commit (`applied` is null, `upstream`
 * undefined); over a remote system of record it is applied there first, and finish gets the
 * object as it now stands upstream and the version mark to commit with the event.
 */
async function writeThrough<T>(
  deps: ServerDeps,
  write: ObjectWrite,
  previous: StoredObject | null,
  finish: (
    applied: StoredObject | null,
    upstream?: (metadata: Record<string, unknown> | null) => UpstreamMark,
  ) => Promise<T>,
): Promise<T> {
  if (!deps.store.writeUpstream) return finish(null);
  return deps.store.writeUpstream(write, previous, finish);
}

/**
 * Updates an object of either face: `find` reads the current object (a 404 of the caller's
 * face when it is gone), `body` is a `/v1` body or builds one from the current object; re-read
 * and re-applied on a concurrent write.
 */
export async function updateObject(
  deps: ServerDeps,
  writer: Writer,
  find: () => Promise<StoredObject>,
  body: Record<string, unknown> | ((current: StoredObject) => Promise<Record<string, unknown>>),
  idempotency?: WriteIdempotency,
): Promise<{ object: StoredObject; metadata: Record<string, unknown> }> {
  const account = writer.account;
  for (let attempt = 1; ; attempt++) {
    const current = await find();
    const type = current.type;
    // A body built from the current object is rebuilt from each read of the retry loop.
    const patch = typeof body === 'function' ? await body(current) : body;
    const now = formatIsoDate(new Date());
    let next: StoredObject;
    if (type === 'object') {
      const rawType = current.rawType ?? '';
      const { record } = await prepareGenericRecord(deps, account, rawType, patch, 'update');
      next = {
        ...current,
        fields: mergeRecord(
          current.fields,
          stampUpstream(writer, type, current.fields, record, current.version + 1, now),
        ),
      };
    } else {
      const { fields, extra } = await prepareUnifiedWrite(deps, account, type, patch);
      next = {
        ...current,
        fields: mergeRecord(current.fields, fields),
        extra: mergeRecord(
          current.extra,
          stampUpstream(writer, type, current.extra, extra, current.version + 1, now),
        ),
      };
    }
    next.modified = now;
    next.version = current.version + 1;
    const options = { baseUrl: writer.baseUrl, includeRaw: true };
    const write: ObjectWrite = { kind: 'update', object: next, expectedVersion: current.version };
    let result: { object: StoredObject; metadata: Record<string, unknown> };
    try {
      result = await writeThrough(deps, write, current, async (stored, upstream) => {
        const written = stored ?? next;
        const previous = await renderObject(deps.store, current, options);
        const metadata = await renderObject(deps.store, written, options);
        await deps.store.commit({
          write: upstream ? { kind: 'upstream' } : write,
          event: makeEvent(writer, 'update', metadata, previous),
          retention: deps.eventRetention,
          ...(upstream && { upstream: upstream(metadata) }),
          ...idempotencyOf(account, idempotency, 200, metadata),
        });
        return { object: written, metadata };
      });
    } catch (error) {
      if (error instanceof StaleWriteError && attempt < UPDATE_ATTEMPTS) continue;
      throw error;
    }
    deps.notifier.notify(account);
    return result;
  }
}

/**
 * Deletes an object of either face. The delete event's metadata is `{id, type, api}` plus the
 * object's last upstream record as `raw` (hidden from `/v1` readers unless they ask for raw
 * data), from which the Table API face answers `sys_audit_delete`.
 */
export async function deleteObject(
  deps: ServerDeps,
  writer: Writer,
  find: () => Promise<StoredObject>,
  idempotency?: Omit<WriteIdempotency, 'responseText'>,
): Promise<StoredObject> {
  const account = writer.account;
  for (let attempt = 1; ; attempt++) {
    const current = await find();
    const rendered = await renderObject(deps.store, current, {
      baseUrl: writer.baseUrl,
      includeRaw: true,
    });
    const write: ObjectWrite = {
      kind: 'delete',
      account,
      id: current.id,
      expectedVersion: current.version,
    };
    try {
      await writeThrough(deps, write, current, (_gone, upstream) =>
        deps.store.commit({
          write: upstream ? { kind: 'upstream' } : write,
          event: makeEvent(writer, 'delete', {
            id: current.id,
            type: current.type,
            api: 'itsm',
            raw: rendered.raw,
          }),
          retention: deps.eventRetention,
          ...(upstream && { upstream: upstream(null) }),
          ...idempotencyOf(
            account,
            idempotency && { ...idempotency, responseText: () => '' },
            204,
            rendered,
          ),
        }),
      );
    } catch (error) {
      if (error instanceof StaleWriteError && attempt < UPDATE_ATTEMPTS) continue;
      throw error;
    }
    deps.notifier.notify(account);
    return current;
  }
}

export function registerObjectRoutes(app: Hono<AppEnv>, deps: ServerDeps): void {
  const collection = '/v1/accounts/:account/itsm/:collection';
  const item = `${collection}/:id`;

  app.get(collection, async (c) => {
    const type = collectionType(c);
    const rawType = rawTypeOf(c, type);
    const { page, pageSize, offset } = pageParams(c);
    const account = c.get('account');
    const renderOptions = { baseUrl: baseUrlOf(deps, c), includeRaw: wantsRaw(c) };
    let total = 0;
    const filled = await fillPage<StoredObject>({
      limit: pageSize,
      budgetBytes: deps.maxPageBytes,
      read: async (skip, take) => {
        const chunk = await deps.store.listObjects({
          account,
          type,
          rawType,
          offset: offset + skip,
          limit: take,
        });
        // The first chunk's count: later chunks of the same page must not move the goalposts.
        if (skip === 0) total = chunk.total;
        return { items: chunk.objects, more: offset + skip + chunk.objects.length < total };
      },
      serialise: async (objects) =>
        (await renderObjects(deps.store, objects, renderOptions)).map((o) => JSON.stringify(o)),
    });
    const { objects: _none, ...head } = objectList(
      filled.items,
      { page, pageSize, offset, total },
      'itsm',
    );
    const { type: listType, api, ...counts } = head;
    return jsonTextResponse(
      200,
      listJson(
        counts,
        filled.items.map((entry) => entry.json),
        { type: listType, api },
      ),
    );
  });

  app.post(collection, (c) => oneKeyAtATime(deps, c, () => createRoute(c)));
  const createRoute = async (c: AppContext) => {
    const type = collectionType(c);
    const rawType = rawTypeOf(c, type);
    const body = await readJsonObject(c);

    // The create's hash keeps its original form (no method prefix), so that keys stored before
    // updates and deletes took keys too still replay.
    const claim = await claimIdempotencyKey(
      deps,
      c,
      `${type}\n${rawType ?? ''}\n${canonicalJson(body)}`,
    );
    if (claim instanceof Response) return claim;
    // Over a system of record (the connector) the record is written upstream before the key's
    // record is committed here, so a create whose answer was lost (a 5xx after the insert, a cut
    // connection, a crash) may already be upstream when its client retries. Its sys_id comes from
    // the key: the retry names the same one and finds that record instead of making a second.
    const upstreamId =
      claim && deps.store.writeUpstream
        ? (await deps.sha256Hex(`${c.get('account')}\n${claim.key}`)).slice(0, 32)
        : undefined;
    return answerWrite(deps, c, claim, 201, async (idempotency) =>
      createObject(deps, await writerOf(deps, c), type, rawType, body, idempotency, upstreamId),
    );
  };

  app.get(item, async (c) => {
    const type = collectionType(c);
    const object = await findObject(deps, c, type, rawTypeOf(c, type));
    const body = await renderObject(deps.store, object, {
      baseUrl: baseUrlOf(deps, c),
      includeRaw: wantsRaw(c),
    });
    return jsonResponse(200, body);
  });

  app.patch(item, (c) => oneKeyAtATime(deps, c, () => updateRoute(c)));
  const updateRoute = async (c: AppContext) => {
    const type = collectionType(c);
    const rawType = rawTypeOf(c, type);
    const body = await readJsonObject(c);
    const claim = await claimIdempotencyKey(
      deps,
      c,
      `PATCH\n${type}\n${rawType ?? ''}\n${c.req.param('id')}\n${canonicalJson(body)}`,
    );
    if (claim instanceof Response) return claim;
    return answerWrite(deps, c, claim, 200, async (idempotency) =>
      updateObject(
        deps,
        await writerOf(deps, c),
        () => findObject(deps, c, type, rawType),
        body,
        idempotency,
      ),
    );
  };

  app.delete(item, (c) => oneKeyAtATime(deps, c, () => deleteRoute(c)));
  const deleteRoute = async (c: AppContext) => {
    const type = collectionType(c);
    const rawType = rawTypeOf(c, type);
    const claim = await claimIdempotencyKey(
      deps,
      c,
      `DELETE\n${type}\n${rawType ?? ''}\n${c.req.param('id')}`,
    );
    if (claim instanceof Response) return claim;
    try {
      await deleteObject(
        deps,
        await writerOf(deps, c),
        () => findObject(deps, c, type, rawType),
        claim,
      );
    } catch (error) {
      const replay = await replayWinner(deps, c, claim, error);
      if (replay) return replay;
      throw error;
    }
    return c.body(null, 204);
  };
}
