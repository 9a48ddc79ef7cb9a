// The SQL of the ITSM store's local state (migrations/0001_init.sql, 0007_upstream_state.sql,
// 0010_oauth_tokens.sql): the event log and its retention, idempotency records, webhook
// registrations, the upstream version marks, the change feed's watermarks and the Table API
// face's OAuth tokens. Shared by the SQLite adapter (sqlite.ts, in a
// transaction; it also keeps the objects of the embedded store, whose SQL stays there) and the
// D1 adapter (d1.ts, in a batch; the connector's local store on Workers, objects upstream).
// A D1 batch cannot branch, so the commit's steps after the version mark are guarded by
// `changes()`: a mark that reports nothing new changes no row, and then neither the idempotency
// record nor the event is written (SQLite branches in code and passes `guarded = false`).
import type {
  IdempotencyRecord,
  NewEvent,
  OAuthTokenRecord,
  UpstreamMark,
  WebhookRecord,
} from './port.js';
import { type SqlStatement, sql } from './sql-statement.js';

interface EventRow {
  seq: number;
  body: string;
}

interface IdempotencyRow {
  account: number;
  key: string;
  request_hash: string;
  status: number;
  body: string;
  created_at: number;
}

interface WebhookRow {
  id: number;
  app_id: string;
  url: string;
  created: string;
}

interface OAuthTokenRow {
  token_hash: string;
  kind: OAuthTokenRecord['kind'];
  account: number;
  user_name: string;
  client_id: string;
  expires_at: number;
}

interface MarkRow {
  sys_id: string;
  mod_count: number;
  metadata: string | null;
}

/** An event as stored: everything but its account, which is a column. */
type EventBody = Omit<NewEvent, 'account'>;

export function toEvent(account: number, row: EventRow) {
  return { seq: row.seq, account, ...(JSON.parse(row.body) as EventBody) };
}

export function eventBody(event: NewEvent): string {
  const { account: _account, ...body } = event;
  return JSON.stringify(body);
}

export function toIdempotencyRecord(row: IdempotencyRow): IdempotencyRecord {
  return {
    account: row.account,
    key: row.key,
    requestHash: row.request_hash,
    status: row.status,
    body: row.body,
    createdAt: row.created_at,
  };
}

export function toWebhook(row: WebhookRow): WebhookRecord {
  return { id: row.id, appId: row.app_id, url: row.url, created: row.created };
}

export function toOAuthToken(row: OAuthTokenRow): OAuthTokenRecord {
  return {
    hash: row.token_hash,
    kind: row.kind,
    account: row.account,
    userName: row.user_name,
    clientId: row.client_id,
    expiresAt: row.expires_at,
  };
}

export function toMark(table: string, row: MarkRow): UpstreamMark {
  return {
    table,
    sysId: row.sys_id,
    modCount: row.mod_count,
    metadata: row.metadata === null ? null : JSON.parse(row.metadata),
  };
}

/** The `counters` row of an account's event count on D1 (see countEventAdded). */
export const EVENT_COUNT = '(events)';

/** Whether a write failed on the unique key of `table` (better-sqlite3 and D1 say it alike). */
export function isUniqueViolationOf(error: unknown, table: string): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e.message.includes(`UNIQUE constraint failed: ${table}.`)) return true;
  }
  return false;
}

/**
 * sys_ids per mark lookup: D1 binds at most 100 parameters a statement. A lookup's list is padded
 * to a power of two (repeating its first id, which `IN` ignores), so that a handful of statement
 * texts cover every length and each is prepared once.
 */
export const MARKS_PER_LOOKUP = 64;

/** The marks of up to MARKS_PER_LOOKUP records of one table. */
export function getMarksSql(
  account: number,
  table: string,
  sysIds: readonly string[],
): SqlStatement<[], MarkRow> {
  let width = 1;
  while (width < sysIds.length) width *= 2;
  const padded = sysIds.concat(Array(width - sysIds.length).fill(sysIds[0]));
  return sql(
    `SELECT sys_id, mod_count, metadata FROM upstream_versions
     WHERE account = ? AND table_name = ? AND sys_id IN (${padded.map(() => '?').join(', ')})`,
    () => [account, table, ...padded],
  );
}

export const itsmSql = {
  /**
   * commit, the version mark: written only when it reports something new (no mark yet, a newer
   * sys_mod_count, or the delete), so it changes one row when the event is to be stored and
   * none when another writer reported this version (or a newer one, or the delete) first.
   * A delete is kept as mod_count -1: nothing after it is the same record.
   */
  putMark: sql<[account: number, mark: UpstreamMark]>(
    `INSERT INTO upstream_versions (account, table_name, sys_id, mod_count, metadata)
     VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (account, table_name, sys_id) DO UPDATE
     SET mod_count = excluded.mod_count, metadata = excluded.metadata
     WHERE upstream_versions.mod_count <> -1
       AND (excluded.mod_count = -1 OR upstream_versions.mod_count < excluded.mod_count)`,
    (account, mark) => [
      account,
      mark.table,
      mark.sysId,
      mark.metadata === null ? -1 : mark.modCount,
      mark.metadata === null ? null : JSON.stringify(mark.metadata),
    ],
  ),
  /**
   * commit: the idempotency record; a key already taken fails the whole transaction (batch).
   * `guarded`: only when the statement before it changed a row (the mark, in a D1 batch).
   */
  insertIdempotency: sql<[record: IdempotencyRecord, guarded: boolean]>(
    `INSERT INTO idempotency_keys (account, key, request_hash, status, body, created_at)
     SELECT ?, ?, ?, ?, ?, ? WHERE ? = 0 OR changes() = 1`,
    (record, guarded) => [
      record.account,
      record.key,
      record.requestHash,
      record.status,
      record.body,
      record.createdAt,
      guarded ? 1 : 0,
    ],
  ),
  /** commit: the event, answering its seq (no row when the guard held it back). */
  insertEvent: sql<[event: NewEvent, guarded: boolean], { seq: number }>(
    `INSERT INTO events (account, body) SELECT ?, ? WHERE ? = 0 OR changes() = 1 RETURNING seq`,
    (event, guarded) => [event.account, eventBody(event), guarded ? 1 : 0],
  ),
  countEvents: sql<[account: number], { n: number }>(
    'SELECT COUNT(*) AS n FROM events WHERE account = ?',
    (account) => [account],
  ),
  /** Retention on SQLite, which counts an account's events once and keeps the count. */
  nthOldestEvent: sql<[account: number, offset: number], { seq: number }>(
    'SELECT seq FROM events WHERE account = ? ORDER BY seq LIMIT 1 OFFSET ?',
    (account, offset) => [account, offset],
  ),
  markTrimmed: sql<[account: number, seq: number]>(
    `INSERT INTO accounts (account, trimmed_through) VALUES (?, ?)
     ON CONFLICT (account) DO UPDATE SET trimmed_through = max(trimmed_through, excluded.trimmed_through)`,
    (account, seq) => [account, seq],
  ),
  /**
   * Retention on D1, where many isolates write and none can keep a count in memory: the count
   * of each account's events is a row of `counters` (EVENT_COUNT, a name no number prefix can
   * have; the D1 store numbers no objects), kept in the commit's batch, so that a commit reads
   * only the events it drops (one, once the log is full) instead of walking `retention` index
   * entries to find the newest one beyond it. After an insert the count goes up by one...
   */
  countEventAdded: sql<[account: number]>(
    `UPDATE counters SET value = value + 1
     WHERE account = ? AND name = '${EVENT_COUNT}' AND changes() = 1`,
    (account) => [account],
  ),
  /**
   * ...or, the first time (a log written before the count was kept), is counted once, the new
   * event included (whether or not it was stored).
   */
  countEventsOnce: sql<[account: number]>(
    `INSERT INTO counters (account, name, value)
     SELECT ?, '${EVENT_COUNT}', (SELECT COUNT(*) FROM events WHERE account = ?)
     WHERE NOT EXISTS (SELECT 1 FROM counters WHERE account = ? AND name = '${EVENT_COUNT}')`,
    (account) => [account, account, account],
  ),
  /**
   * The newest of the events beyond the newest `retention` (by the count: the (count -
   * retention)-th oldest) becomes the account's trimmed_through; no row when the count is within
   * the retention. Reads as many index entries as events are dropped.
   */
  markTrimmedByCount: sql<[account: number, retention: number]>(
    `INSERT INTO accounts (account, trimmed_through)
     SELECT account, seq FROM events
     WHERE account = ?1
       AND (SELECT value FROM counters WHERE account = ?1 AND name = '${EVENT_COUNT}') > ?2
     ORDER BY seq
     LIMIT 1 OFFSET (SELECT value FROM counters WHERE account = ?1 AND name = '${EVENT_COUNT}') - ?2 - 1
     ON CONFLICT (account) DO UPDATE SET trimmed_through = max(trimmed_through, excluded.trimmed_through)`,
    (account, retention) => [account, retention],
  ),
  /** After trimEvents: the count goes down by the events it dropped. */
  countEventsTrimmed: sql<[account: number]>(
    `UPDATE counters SET value = value - changes() WHERE account = ? AND name = '${EVENT_COUNT}'`,
    (account) => [account],
  ),
  /** Drops the account's events up to its trimmed_through. */
  trimEvents: sql<[account: number]>(
    'DELETE FROM events WHERE account = ? AND seq <= (SELECT trimmed_through FROM accounts WHERE account = ?)',
    (account) => [account, account],
  ),
  // CAST, as everywhere a limit is bound: a bare `LIMIT ?` costs better-sqlite3 about 6 us a
  // call (under 1 us with it), and every drain reads a page of events.
  listEvents: sql<[account: number, after: number, limit: number], EventRow>(
    'SELECT seq, body FROM events WHERE account = ? AND seq > ? ORDER BY seq LIMIT CAST(? AS INTEGER)',
    (account, after, limit) => [account, after, limit],
  ),
  countEventsAfter: sql<[account: number, after: number], { n: number }>(
    'SELECT COUNT(*) AS n FROM events WHERE account = ? AND seq > ?',
    (account, after) => [account, after],
  ),
  trimmedThrough: sql<[account: number], { trimmed_through: number }>(
    'SELECT trimmed_through FROM accounts WHERE account = ?',
    (account) => [account],
  ),
  latestEvent: sql<[account: number], { seq: number | null }>(
    'SELECT max(seq) AS seq FROM events WHERE account = ?',
    (account) => [account],
  ),
  /**
   * The newest seq issued in any account. Not max(seq) of the log: that could go back should
   * retention ever drop an account's newest event; AUTOINCREMENT's counter never does.
   */
  globalLatest: sql<[], { seq: number | null }>(
    "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
    () => [],
  ),
  eventAccounts: sql<[], { account: number }>(
    'SELECT DISTINCT account FROM events ORDER BY account',
    () => [],
  ),
  getIdempotency: sql<[account: number, key: string], IdempotencyRow>(
    'SELECT * FROM idempotency_keys WHERE account = ? AND key = ?',
    (account, key) => [account, key],
  ),
  /** KeyHolds.holdKey: a row back when the hold is `holder`'s now. */
  holdKey: sql<
    [account: number, key: string, holder: string, now: number, expiresAt: number],
    { holder: string }
  >(
    `INSERT INTO idempotency_holds (account, key, holder, expires_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (account, key) DO UPDATE SET holder = excluded.holder,
       expires_at = excluded.expires_at
     WHERE idempotency_holds.holder = excluded.holder OR idempotency_holds.expires_at <= ?
     RETURNING holder`,
    (account, key, holder, now, expiresAt) => [account, key, holder, expiresAt, now],
  ),
  releaseKey: sql<[account: number, key: string, holder: string]>(
    'DELETE FROM idempotency_holds WHERE account = ? AND key = ? AND holder = ?',
    (account, key, holder) => [account, key, holder],
  ),
  /** Holds a crashed server left, long expired: reclaimed with the records they guarded. */
  purgeHolds: sql<[expiredBefore: number]>(
    'DELETE FROM idempotency_holds WHERE expires_at < ?',
    (before) => [before],
  ),
  purgeIdempotency: sql<[createdBefore: number]>(
    'DELETE FROM idempotency_keys WHERE created_at < ?',
    (before) => [before],
  ),
  listWebhooks: sql<[appId: string], WebhookRow>(
    'SELECT * FROM webhooks WHERE app_id = ? ORDER BY id',
    (appId) => [appId],
  ),
  getWebhook: sql<[appId: string, id: number], WebhookRow>(
    'SELECT * FROM webhooks WHERE app_id = ? AND id = ?',
    (appId, id) => [appId, id],
  ),
  getWebhookByUrl: sql<[appId: string, url: string], WebhookRow>(
    'SELECT * FROM webhooks WHERE app_id = ? AND url = ?',
    (appId, url) => [appId, url],
  ),
  /** addWebhook, 1 of 2: no row when the URL is registered already (then getWebhookByUrl). */
  insertWebhook: sql<[appId: string, url: string, created: string], WebhookRow>(
    `INSERT INTO webhooks (app_id, url, created) VALUES (?, ?, ?)
     ON CONFLICT (app_id, url) DO NOTHING RETURNING *`,
    (appId, url, created) => [appId, url, created],
  ),
  deleteWebhook: sql<[appId: string, id: number]>(
    'DELETE FROM webhooks WHERE app_id = ? AND id = ?',
    (appId, id) => [appId, id],
  ),
  getWatermark: sql<[account: number, table: string], { updated_on: string; floor: string }>(
    'SELECT updated_on, floor FROM feed_watermarks WHERE account = ? AND table_name = ?',
    (account, table) => [account, table],
  ),
  /** Moves the position; the first write also sets the floor. */
  putWatermark: sql<[account: number, table: string, position: string]>(
    `INSERT INTO feed_watermarks (account, table_name, updated_on, floor) VALUES (?, ?, ?, ?)
     ON CONFLICT (account, table_name) DO UPDATE SET updated_on = excluded.updated_on`,
    (account, table, position) => [account, table, position, position],
  ),
  /** A new token; its hash is new too (32 random bytes), so a clash is a fault, not a retry. */
  putOAuthToken: sql<[token: OAuthTokenRecord]>(
    `INSERT INTO oauth_tokens (token_hash, kind, account, user_name, client_id, expires_at)
     VALUES (?, ?, ?, ?, ?, ?)`,
    (token) => [
      token.hash,
      token.kind,
      token.account,
      token.userName,
      token.clientId,
      token.expiresAt,
    ],
  ),
  getOAuthToken: sql<[kind: OAuthTokenRecord['kind'], hash: string], OAuthTokenRow>(
    'SELECT * FROM oauth_tokens WHERE token_hash = ? AND kind = ?',
    (kind, hash) => [hash, kind],
  ),
  purgeOAuthTokens: sql<[expiredBy: number]>(
    'DELETE FROM oauth_tokens WHERE expires_at <= ?',
    (expiredBy) => [expiredBy],
  ),
};
