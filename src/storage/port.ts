// The storage port of the embedded ITSM API: a small async interface that the SQLite adapter
// (Node) implements today and a D1 adapter (Workers) can implement with the same migrations.
// Every write that must be atomic (object + event + idempotency record + retention) is one
// `commit` call, so an adapter can map it to one transaction or one D1 batch.
import type { ObjectType } from '../itsm/fields.js';

/** An object as stored: the unified fields in write form, plus the upstream bookkeeping. */
export interface StoredObject {
  account: number;
  id: string;
  type: ObjectType;
  /** Generic objects only: the upstream table (`sys_user`, ...). */
  rawType: string | null;
  /** The upstream record id (ServiceNow `sys_id`). */
  upstreamId: string;
  /** The upstream number (INC0010001), or null for generic objects. */
  number: string | null;
  /** Unified fields as written (user and reference ids); for generic objects, the record. */
  fields: Record<string, unknown>;
  /** Upstream-only fields set through `raw.object`. */
  extra: Record<string, unknown>;
  created: string;
  modified: string;
  /** Starts at 1, +1 on every update; guards read-modify-write against lost updates. */
  version: number;
  /**
   * Remote adapters: the upstream record exactly as the system of record returned it, which
   * `raw` then shows as is (instead of a record rebuilt from the unified fields).
   */
  upstreamRecord?: Readonly<Record<string, string>>;
}

export interface NewEvent {
  account: number;
  type: 'add' | 'update' | 'delete';
  action: string;
  modified: string;
  ip: string | null;
  userId: string | null;
  /** The object as a GET returns it, raw included (stripped on output unless asked for). */
  metadata: Record<string, unknown>;
  previousMetadata?: Record<string, unknown>;
}

export interface StoredEvent extends NewEvent {
  /** Global, increasing: the event id and the cursor after this event. */
  seq: number;
}

export type ObjectWrite =
  | { kind: 'create'; object: StoredObject }
  | { kind: 'update'; object: StoredObject; expectedVersion: number }
  | { kind: 'delete'; account: number; id: string; expectedVersion: number };

/**
 * A version of an upstream record that an event reports (the connector): kept with the event in
 * the same commit, so that the change feed neither reports that version again nor misses it,
 * and so that the next event of the record has its `previous_metadata`.
 */
export interface UpstreamMark {
  table: string;
  sysId: string;
  /** The record's `sys_mod_count` (0 on insert); a delete keeps the last one. */
  modCount: number;
  /** The object as this event shows it (null once deleted). */
  metadata: Record<string, unknown> | null;
}

export interface IdempotencyRecord {
  account: number;
  key: string;
  requestHash: string;
  status: number;
  body: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
}

export interface CommitInput {
  /** `upstream`: the object lives in a remote system of record, already written there. */
  write: ObjectWrite | { kind: 'upstream' };
  event: NewEvent;
  /** Stored in the same transaction; a key already taken fails the whole commit. */
  idempotency?: IdempotencyRecord;
  /** Keep at most this many events for the account; older ones are dropped. */
  retention: number;
  /**
   * The upstream version this event reports. When the store already holds this version or a
   * newer one (another writer reported it first), nothing is stored and `eventSeq` is 0.
   */
  upstream?: UpstreamMark;
}

export interface ObjectQuery {
  account: number;
  type: ObjectType;
  rawType?: string | null;
  offset: number;
  limit: number;
}

export interface WebhookRecord {
  id: number;
  appId: string;
  url: string;
  created: string;
}

/**
 * Where objects live: the embedded database (the SQL adapters), or a remote system of record
 * (the ServiceNow adapter, `servicenow/objects.ts`). Routes read objects only through this.
 */
export interface ObjectStore {
  getObject(account: number, id: string): Promise<StoredObject | null>;
  /** The objects among `ids` that exist in the account, in no particular order. */
  getObjects(account: number, ids: readonly string[]): Promise<StoredObject[]>;
  /** Oldest first, stable; `total` counts the whole collection. */
  listObjects(query: ObjectQuery): Promise<{ total: number; objects: StoredObject[] }>;
  /** Generic objects of one raw type whose upstream ids are among `upstreamIds`. */
  findByUpstreamIds(
    account: number,
    rawType: string,
    upstreamIds: readonly string[],
  ): Promise<StoredObject[]>;
  /** Atomically increments and returns a per-account counter (1 on first use). */
  nextCounter(account: number, name: string): Promise<number>;
  /**
   * Remote adapters only: applies the write to the system of record, then calls `then` with the
   * object as it now stands there (numbered and stamped upstream; null after a delete) and the
   * version mark to commit with its event. `then` renders and commits the event (a commit whose
   * write is `upstream`); the change feed holds back while it runs, so that the feed never
   * reports this version first. `previous` is the object the write started from (null on create).
   */
  writeUpstream?<T>(
    write: ObjectWrite,
    previous: StoredObject | null,
    then: (
      applied: StoredObject | null,
      mark: (metadata: Record<string, unknown> | null) => UpstreamMark,
    ) => Promise<T>,
  ): Promise<T>;
}

/**
 * Holds of Idempotency-Keys across servers (the connector's). Over a remote system of record a
 * write lands upstream before the commit that stores its key, so two servers sharing one store
 * (two Worker isolates on one D1 database) could both apply a request sent twice at once. The
 * server that holds the key writes; another one with the same key waits for its stored answer.
 */
export interface KeyHolds {
  /**
   * Takes or renews the hold of `key` for `holder` until `expiresAt` (ms): true when `holder`
   * has it now (it was free, its hold had expired at `now`, or it was already `holder`'s).
   */
  holdKey(
    account: number,
    key: string,
    holder: string,
    now: number,
    expiresAt: number,
  ): Promise<boolean>;
  /** Gives the hold back (nothing when `holder` no longer has it). */
  releaseKey(account: number, key: string, holder: string): Promise<void>;
}

/** Upstream versions already reported, and the change feed's watermarks (the connector's). */
export interface UpstreamStateStore extends KeyHolds {
  /** The marks of these records of one table (missing ones are left out). */
  getUpstreamMarks(
    account: number,
    table: string,
    sysIds: readonly string[],
  ): Promise<UpstreamMark[]>;
  /** Where the feed of the table is (`position`) and where it started (`floor`), or null. */
  getWatermark(account: number, table: string): Promise<{ position: string; floor: string } | null>;
  /** Moves the position; the first call also sets the floor to `position`. */
  setWatermark(account: number, table: string, position: string): Promise<void>;
}

/** An OAuth token of the Table API face as stored: its SHA-256, never the token itself. */
export interface OAuthTokenRecord {
  /** Lower-case hex SHA-256 of the token. */
  hash: string;
  kind: 'access' | 'refresh';
  /** The account and user name of the user the token acts as. */
  account: number;
  userName: string;
  /** The OAuth client the token was issued to. */
  clientId: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

/**
 * The Table API face's OAuth tokens (migrations/0010_oauth_tokens.sql), kept where the server's
 * state is, so that a restart or another isolate accepts a token issued before or elsewhere.
 */
export interface OAuthTokenStore {
  putOAuthToken(token: OAuthTokenRecord): Promise<void>;
  /** The token of this kind with this hash, expired or not (the caller tells which); or null. */
  getOAuthToken(kind: OAuthTokenRecord['kind'], hash: string): Promise<OAuthTokenRecord | null>;
  /** Drops the tokens that expired at or before `expiredBy` (ms); returns how many. */
  purgeOAuthTokens(expiredBy: number): Promise<number>;
}

export interface ItsmStore extends ObjectStore, Partial<KeyHolds> {
  /**
   * Applies the write, appends the event and stores the idempotency record, all or nothing.
   * Throws `StaleWriteError` when an update or delete finds another version (or no object),
   * and `IdempotencyConflictError` when the idempotency key is already taken.
   */
  commit(input: CommitInput): Promise<{ eventSeq: number }>;

  getIdempotencyRecord(account: number, key: string): Promise<IdempotencyRecord | null>;
  /** Drops records created before `createdBefore` (ms); returns how many. */
  purgeIdempotencyRecords(createdBefore: number): Promise<number>;

  /**
   * Events of the account with seq > after, oldest first, how many remain after them, and the
   * account's `trimmedThrough` read in the same snapshot (so that a caller can tell, without a
   * race against retention, whether events after `after` were dropped).
   */
  listEvents(
    account: number,
    after: number,
    limit: number,
  ): Promise<{ events: StoredEvent[]; remaining: number; trimmedThrough: number }>;
  /**
   * `trimmedThrough`: seq of the newest event retention dropped for the account (0 if none);
   * `latest`: seq of the account's newest event (or trimmedThrough when it has none);
   * `globalLatest`: the newest seq issued in any account.
   */
  eventBounds(
    account: number,
  ): Promise<{ trimmedThrough: number; latest: number; globalLatest: number }>;
  /** The accounts that hold at least one (retained) event, in ascending order. */
  listEventAccounts(): Promise<number[]>;

  listWebhooks(appId: string): Promise<WebhookRecord[]>;
  /** Adds the URL, or returns the existing record for it (`created: false`). */
  addWebhook(
    appId: string,
    url: string,
    created: string,
  ): Promise<{ webhook: WebhookRecord; created: boolean }>;
  getWebhook(appId: string, id: number): Promise<WebhookRecord | null>;
  /** True when a webhook was deleted. */
  deleteWebhook(appId: string, id: number): Promise<boolean>;

  close(): Promise<void>;

  /**
   * Where the Table API face keeps its OAuth tokens. Absent (a store with no database of its
   * own), the face keeps them in memory, for the life of the process.
   */
  oauthTokens?: OAuthTokenStore;
}

/** An update or delete raced another write to the same object; re-read and try again. */
export class StaleWriteError extends Error {
  readonly code = 'STORE_STALE_WRITE';
  constructor(
    readonly account: number,
    readonly objectId: string,
  ) {
    super(`object ${objectId} in account ${account} changed or vanished during the write`);
    this.name = 'StaleWriteError';
  }
}

/**
 * A new object names an upstream id (a sys_id given on a Table API insert) that another object
 * of its table took first: the read that checked it raced that write. Nothing was kept.
 */
export class DuplicateUpstreamIdError extends Error {
  readonly code = 'STORE_DUPLICATE_UPSTREAM_ID';
  constructor(
    readonly account: number,
    /** The upstream table, or the unified type of a unified object. */
    readonly table: string,
    readonly upstreamId: string,
    options?: { cause?: unknown },
  ) {
    super(`account ${account} already has a ${table} record with sys_id ${upstreamId}`, options);
    this.name = 'DuplicateUpstreamIdError';
  }
}

/** The idempotency key was stored by another request first; nothing of this commit was kept. */
export class IdempotencyConflictError extends Error {
  readonly code = 'STORE_IDEMPOTENCY_CONFLICT';
  constructor(
    readonly account: number,
    readonly key: string,
  ) {
    super(`idempotency key ${JSON.stringify(key)} of account ${account} is already taken`);
    this.name = 'IdempotencyConflictError';
  }
}

/** A migration file, as read by the runtime (the adapters never touch the file system). */
export interface Migration {
  name: string;
  sql: string;
}
