// The SQLite adapter of the storage port (better-sqlite3, Node only). better-sqlite3 is
// synchronous, so each port call runs to completion without interleaving; `commit` is one
// transaction. Migrations are the shared `migrations/*.sql`, recorded in `d1_migrations` exactly
// as wrangler records them for D1, so one database file could be inspected by either tool.
import Database from 'better-sqlite3';
import {
  type CommitInput,
  DuplicateUpstreamIdError,
  IdempotencyConflictError,
  type IdempotencyRecord,
  type ItsmStore,
  type Migration,
  type ObjectQuery,
  StaleWriteError,
  type StoredEvent,
  type StoredObject,
  type UpstreamMark,
  type UpstreamStateStore,
  type WebhookRecord,
} from './port.js';
import {
  getMarksSql,
  isUniqueViolationOf,
  MARKS_PER_LOOKUP,
  itsmSql as q,
  toEvent,
  toIdempotencyRecord,
  toMark,
  toOAuthToken,
  toWebhook,
} from './sql-itsm.js';
import { createSyncRunner } from './sql-statement.js';

/** How an adapter gets its connection: a database to open, or one it borrows. */
export type SqliteConnectionOptions =
  | {
      /** A file path, or `:memory:`. */
      path: string;
      migrations: readonly Migration[];
    }
  /** An open connection (migrations already applied), shared by several stores; the caller closes it. */
  | { database: Database.Database };

export type SqliteStoreOptions = SqliteConnectionOptions;

/**
 * The connection an adapter works on, and whether it owns it: an adapter closes only the
 * connection it opened, never a borrowed one (all-in-one mode shares one among three stores).
 */
export function connectSqlite(options: SqliteConnectionOptions): {
  db: Database.Database;
  close(): void;
} {
  if ('database' in options) return { db: options.database, close: () => {} };
  const db = openSqliteDatabase(options.path, options.migrations);
  return {
    db,
    close: () => {
      if (db.open) db.close();
    },
  };
}

interface ObjectRow {
  account: number;
  id: string;
  type: string;
  raw_type: string | null;
  upstream_id: string;
  number: string | null;
  fields: string;
  extra: string;
  created: string;
  modified: string;
  version: number;
}

function toObject(row: ObjectRow): StoredObject {
  return {
    account: row.account,
    id: row.id,
    type: row.type as StoredObject['type'],
    rawType: row.raw_type,
    upstreamId: row.upstream_id,
    number: row.number,
    fields: JSON.parse(row.fields),
    extra: JSON.parse(row.extra),
    created: row.created,
    modified: row.modified,
    version: row.version,
  };
}

/**
 * Runs `query` over `values` in chunks: SQLite limits bound parameters per statement. A chunk's
 * list is padded to a power of two (repeating its first value, which `IN` ignores), so that a
 * handful of statement texts cover every length and each is prepared once.
 */
function selectIn(
  values: readonly string[],
  query: (chunk: string[], marks: string) => unknown[],
): StoredObject[] {
  const unique = [...new Set(values)];
  const found: StoredObject[] = [];
  for (let i = 0; i < unique.length; i += 512) {
    const chunk = unique.slice(i, i + 512);
    let width = 1;
    while (width < chunk.length) width *= 2;
    const padded = chunk.concat(Array(width - chunk.length).fill(chunk[0]));
    const rows = query(padded, Array(width).fill('?').join(', ')) as ObjectRow[];
    found.push(...rows.map(toObject));
  }
  return found;
}

export function applyMigrations(db: Database.Database, migrations: readonly Migration[]): void {
  db.exec(`CREATE TABLE IF NOT EXISTS d1_migrations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT UNIQUE,
    applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
  )`);
  const applied = new Set(
    (db.prepare('SELECT name FROM d1_migrations').all() as { name: string }[]).map((r) => r.name),
  );
  const record = db.prepare('INSERT INTO d1_migrations (name) VALUES (?)');
  // Code-unit order, not localeCompare: the numbered names sort the same, and the collator would
  // page in ICU data (megabytes of resident memory) for nothing.
  const ordered = [...migrations].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const migration of ordered) {
    if (applied.has(migration.name)) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      record.run(migration.name);
    })();
  }
}

/** The database cannot be written (read-only file or file system, disk full, I/O error). */
export class DatabaseUnwritableError extends Error {
  readonly code = 'DATABASE_UNWRITABLE';
  constructor(
    readonly path: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      `the database ${path} cannot be written: ${reason}; make the file, its folder and its -wal and -shm files writable by this process (or free disk space), then start again`,
      options,
    );
    this.name = 'DatabaseUnwritableError';
  }
}

/** The file at the database path is something else than a SQLite database (a text file...). */
export class DatabaseNotSqliteError extends Error {
  readonly code = 'DATABASE_NOT_SQLITE';
  constructor(
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(
      `the file ${path} is not a SQLite database (SQLITE_NOTADB), and it was left as it is; point --db at a database file, or at a new path for a new database`,
      options,
    );
    this.name = 'DatabaseNotSqliteError';
  }
}

/** SQLite result codes (extended codes included) that mean writes cannot succeed. */
const UNWRITABLE_CODES = /^SQLITE_(READONLY|FULL|IOERR|CANTOPEN|PERM|CORRUPT|NOTADB)(_|$)/;

/**
 * The SQLite result code of an error (looking through `cause`), and whether it means the
 * database cannot be written; null for an error that did not come from SQLite.
 */
export function sqliteErrorOf(
  error: unknown,
): { code: string; message: string; unwritable: boolean } | null {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('SQLITE_')) {
      return { code, message: e.message, unwritable: UNWRITABLE_CODES.test(code) };
    }
  }
  return null;
}

/**
 * Throws SQLite's own error when the database cannot be written now: a write to the migrations
 * table, rolled back. Cheap (no page reaches the disk), and it takes the write lock, so a
 * read-only file, file system or connection answers SQLITE_READONLY. A full disk shows only
 * when a real write grows the file.
 */
export function probeSqliteWrite(db: Database.Database): void {
  db.exec('SAVEPOINT itsm_write_probe');
  try {
    db.prepare(
      'UPDATE d1_migrations SET name = name WHERE id = (SELECT min(id) FROM d1_migrations)',
    ).run();
  } finally {
    db.exec('ROLLBACK TO itsm_write_probe');
    db.exec('RELEASE itsm_write_probe');
  }
}

/**
 * Opens a database (WAL for files) with every migration applied: the one way both stores open.
 * A file that cannot be written is refused here with DatabaseUnwritableError naming the path and
 * SQLite's reason, rather than at the first webhook; a file that is no SQLite database at all,
 * with DatabaseNotSqliteError.
 */
export function openSqliteDatabase(
  path: string,
  migrations: readonly Migration[],
): Database.Database {
  let db: Database.Database | undefined;
  try {
    db = new Database(path);
    if (path !== ':memory:') {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
    }
    db.pragma('busy_timeout = 5000');
    applyMigrations(db, migrations);
    probeSqliteWrite(db);
  } catch (error) {
    db?.close();
    const sqlite = sqliteErrorOf(error);
    // Permissions have nothing to do with it: telling to make the file writable would send the
    // user the wrong way (and SQLite writes nothing to a file it does not recognise).
    if (sqlite?.code === 'SQLITE_NOTADB') throw new DatabaseNotSqliteError(path, { cause: error });
    if (sqlite?.unwritable) {
      throw new DatabaseUnwritableError(path, `${sqlite.message} (${sqlite.code})`, {
        cause: error,
      });
    }
    throw error;
  }
  return db;
}

export function createSqliteStore(options: SqliteStoreOptions): ItsmStore & UpstreamStateStore {
  const { db, close } = connectSqlite(options);
  // The local state's statements, shared with the D1 adapter; the objects' stay here.
  const local = createSyncRunner(db);

  const sql = {
    getObject: db.prepare<[number, string], ObjectRow>(
      'SELECT * FROM objects WHERE account = ? AND id = ?',
    ),
    countObjects: db.prepare<[number, string, string | null], { n: number }>(
      'SELECT COUNT(*) AS n FROM objects WHERE account = ? AND type = ? AND raw_type IS ?',
    ),
    listObjects: db.prepare<[number, string, string | null, number, number], ObjectRow>(
      'SELECT * FROM objects WHERE account = ? AND type = ? AND raw_type IS ? ORDER BY seq LIMIT CAST(? AS INTEGER) OFFSET CAST(? AS INTEGER)',
    ),
    insertObject: db.prepare(
      `INSERT INTO objects (account, id, type, raw_type, upstream_id, number, fields, extra, created, modified, version)
       VALUES (@account, @id, @type, @rawType, @upstreamId, @number, @fields, @extra, @created, @modified, @version)`,
    ),
    updateObject: db.prepare(
      `UPDATE objects SET fields = @fields, extra = @extra, modified = @modified, version = @version
       WHERE account = @account AND id = @id AND version = @expectedVersion`,
    ),
    deleteObject: db.prepare(
      'DELETE FROM objects WHERE account = @account AND id = @id AND version = @expectedVersion',
    ),
    nextCounter: db.prepare<[number, string], { value: number }>(
      `INSERT INTO counters (account, name, value) VALUES (?, ?, 1)
       ON CONFLICT (account, name) DO UPDATE SET value = value + 1 RETURNING value`,
    ),
  };

  // Statements whose text depends on a list's length (`IN (?, ?, ...)`), prepared once per width.
  const preparedByText = new Map<string, Database.Statement>();
  const prepared = (text: string): Database.Statement => {
    let statement = preparedByText.get(text);
    if (!statement) {
      statement = db.prepare(text);
      preparedByText.set(text, statement);
    }
    return statement;
  };

  const objectParams = (object: StoredObject) => ({
    account: object.account,
    id: object.id,
    type: object.type,
    rawType: object.rawType,
    upstreamId: object.upstreamId,
    number: object.number,
    fields: JSON.stringify(object.fields),
    extra: JSON.stringify(object.extra),
    created: object.created,
    modified: object.modified,
    version: object.version,
  });

  // Events held per account, counted once per account and then kept here, so that the retention
  // trim of each commit looks at the oldest event instead of walking the whole retained log
  // (finding the n-th newest of 10,000 cost more than the rest of a write). Exact because one
  // process holds the database file (database-lock.ts) and only commit and the trim in it add or
  // delete events.
  const eventCounts = new Map<number, number>();
  const eventCount = (account: number) =>
    eventCounts.get(account) ?? local.get(q.countEvents, account)?.n ?? 0;

  // Every write reads the webhook registrations (the notification after it): kept per
  // application, dropped when one is added or deleted through this store. Exact for the same
  // reason (no other process writes this file); the D1 adapter, written by many isolates, reads
  // them each time instead.
  const webhookCache = new Map<string, WebhookRecord[]>();

  /** Forgotten keys and long-expired holds, in one commit. */
  const purgeKeys = db.transaction((createdBefore: number): number => {
    local.run(q.purgeHolds, createdBefore);
    return local.run(q.purgeIdempotency, createdBefore);
  });

  const commitTransaction = db.transaction((input: CommitInput): { seq: number; count: number } => {
    const { write, event, upstream } = input;
    const { account } = event;
    // A version another writer reported first (or an older one) stores nothing.
    if (upstream && local.run(q.putMark, account, upstream) === 0) {
      return { seq: 0, count: eventCount(account) };
    }
    if (write.kind === 'upstream') {
      // The object lives upstream and was written there: only the event is kept here.
    } else if (write.kind === 'create') {
      try {
        sql.insertObject.run(objectParams(write.object));
      } catch (error) {
        // objects_by_upstream_id and objects_by_unified_upstream_id (0009): a sys_id given on
        // insert that a concurrent insert took between the caller's check and this commit.
        if (isUniqueViolationOf(error, 'objects') && String(error).includes('upstream_id')) {
          const { account, rawType, type, upstreamId } = write.object;
          throw new DuplicateUpstreamIdError(account, rawType ?? type, upstreamId, {
            cause: error,
          });
        }
        throw error;
      }
    } else if (write.kind === 'update') {
      const changed = sql.updateObject.run({
        ...objectParams(write.object),
        expectedVersion: write.expectedVersion,
      }).changes;
      if (changed !== 1) throw new StaleWriteError(write.object.account, write.object.id);
    } else {
      const changed = sql.deleteObject.run(write).changes;
      if (changed !== 1) throw new StaleWriteError(write.account, write.id);
    }
    if (input.idempotency) {
      try {
        local.run(q.insertIdempotency, input.idempotency, false);
      } catch (error) {
        if (isUniqueViolationOf(error, 'idempotency_keys')) {
          throw new IdempotencyConflictError(input.idempotency.account, input.idempotency.key);
        }
        throw error;
      }
    }
    let count = eventCount(account) + 1; // counted before the insert, which it includes
    const inserted = local.get(q.insertEvent, event, false);
    if (!inserted) throw new Error(`the event of account ${account} was not appended`);
    const seq = inserted.seq;
    const retention = Math.max(1, input.retention);
    if (count > retention) {
      // Keep the newest `retention`: drop every event up to the (count - retention)-th oldest.
      const dropFrom = local.get(q.nthOldestEvent, account, count - retention - 1);
      if (dropFrom) {
        local.run(q.markTrimmed, account, dropFrom.seq);
        count -= local.run(q.trimEvents, account);
      }
    }
    return { seq, count };
  });

  const commit = (input: CommitInput): number => {
    const { seq, count } = commitTransaction(input);
    // Only once committed: a rolled-back write changed no count.
    eventCounts.set(input.event.account, count);
    return seq;
  };

  return {
    async getObject(account, id) {
      const row = sql.getObject.get(account, id);
      return row ? toObject(row) : null;
    },

    async listObjects(query: ObjectQuery) {
      const rawType = query.rawType ?? null;
      const total = sql.countObjects.get(query.account, query.type, rawType)?.n ?? 0;
      const rows = sql.listObjects.all(
        query.account,
        query.type,
        rawType,
        query.limit,
        query.offset,
      );
      return { total, objects: rows.map(toObject) };
    },

    async getObjects(account, ids) {
      return selectIn(ids, (chunk, marks) =>
        prepared(`SELECT * FROM objects WHERE account = ? AND id IN (${marks})`).all(
          account,
          ...chunk,
        ),
      );
    },

    async findByUpstreamIds(account, rawType, upstreamIds) {
      return selectIn(upstreamIds, (chunk, marks) =>
        prepared(
          `SELECT * FROM objects WHERE account = ? AND raw_type = ? AND upstream_id IN (${marks}) ORDER BY seq`,
        ).all(account, rawType, ...chunk),
      );
    },

    async nextCounter(account, name) {
      const row = sql.nextCounter.get(account, name);
      if (!row) throw new Error(`counter ${name} of account ${account} returned no value`);
      return row.value;
    },

    async commit(input) {
      return { eventSeq: commit(input) };
    },

    async getUpstreamMarks(account, table, sysIds) {
      const unique = [...new Set(sysIds)];
      const marks: UpstreamMark[] = [];
      for (let i = 0; i < unique.length; i += MARKS_PER_LOOKUP) {
        const chunk = unique.slice(i, i + MARKS_PER_LOOKUP);
        for (const row of local.all(getMarksSql(account, table, chunk))) {
          marks.push(toMark(table, row));
        }
      }
      return marks;
    },

    async getWatermark(account, table) {
      const row = local.get(q.getWatermark, account, table);
      return row ? { position: row.updated_on, floor: row.floor } : null;
    },

    async setWatermark(account, table, position) {
      local.run(q.putWatermark, account, table, position);
    },

    async getIdempotencyRecord(account, key): Promise<IdempotencyRecord | null> {
      const row = local.get(q.getIdempotency, account, key);
      return row ? toIdempotencyRecord(row) : null;
    },

    async purgeIdempotencyRecords(createdBefore) {
      return purgeKeys(createdBefore);
    },

    async holdKey(account, key, holder, now, expiresAt) {
      return local.get(q.holdKey, account, key, holder, now, expiresAt) !== undefined;
    },

    async releaseKey(account, key, holder) {
      local.run(q.releaseKey, account, key, holder);
    },

    async listEvents(account, after, limit) {
      // One synchronous read: no commit (and so no retention trim) can land between its parts.
      const rows = local.all(q.listEvents, account, after, limit);
      const total = local.get(q.countEventsAfter, account, after)?.n ?? 0;
      const trimmedThrough = local.get(q.trimmedThrough, account)?.trimmed_through ?? 0;
      const events: StoredEvent[] = rows.map((row) => toEvent(account, row));
      return { events, remaining: Math.max(0, total - rows.length), trimmedThrough };
    },

    async eventBounds(account) {
      const trimmedThrough = local.get(q.trimmedThrough, account)?.trimmed_through ?? 0;
      const latest = local.get(q.latestEvent, account)?.seq ?? trimmedThrough;
      const globalLatest = local.get(q.globalLatest)?.seq ?? 0;
      return { trimmedThrough, latest, globalLatest };
    },

    async listEventAccounts() {
      return local.all(q.eventAccounts).map((row) => row.account);
    },

    async listWebhooks(appId) {
      let webhooks = webhookCache.get(appId);
      if (!webhooks) {
        webhooks = local.all(q.listWebhooks, appId).map(toWebhook);
        webhookCache.set(appId, webhooks);
      }
      return webhooks.map((webhook) => ({ ...webhook }));
    },

    async addWebhook(appId, url, created) {
      const row = local.get(q.insertWebhook, appId, url, created);
      if (row) {
        webhookCache.delete(appId);
        return { webhook: toWebhook(row), created: true };
      }
      const existing = local.get(q.getWebhookByUrl, appId, url);
      if (!existing) throw new Error(`webhook ${url} was neither inserted nor found`);
      return { webhook: toWebhook(existing), created: false };
    },

    async getWebhook(appId, id) {
      const row = local.get(q.getWebhook, appId, id);
      return row ? toWebhook(row) : null;
    },

    async deleteWebhook(appId, id) {
      webhookCache.delete(appId);
      return local.run(q.deleteWebhook, appId, id) === 1;
    },

    oauthTokens: {
      async putOAuthToken(token) {
        local.run(q.putOAuthToken, token);
      },
      async getOAuthToken(kind, hash) {
        const row = local.get(q.getOAuthToken, kind, hash);
        return row ? toOAuthToken(row) : null;
      },
      async purgeOAuthTokens(expiredBy) {
        return local.run(q.purgeOAuthTokens, expiredBy);
      },
    },

    async close() {
      close();
    },
  };
}
