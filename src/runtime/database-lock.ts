// One database, one process: the lock a `serve` or `itsm-server` process holds on its SQLite file
// for as long as it runs. A second process on the same file would take over the webhook
// registration of the first and leave it deaf, so it is refused at start instead.
//
// The lock is SQLite's own file lock on a small side database (`<db>.lock`): the holder keeps a
// write transaction (BEGIN IMMEDIATE, a RESERVED lock) open for its whole life. The operating
// system drops that lock when the process ends, however it ends (SIGKILL and crashes included),
// so a dead holder can never leave it behind and there is no pid file to go stale. The holder's
// pid and start time are committed in the side database before the lock is taken for good, for
// the refusal message only: a RESERVED lock still lets others read them.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';

export class DatabaseInUseError extends Error {
  readonly code = 'DATABASE_IN_USE';
  constructor(
    readonly path: string,
    readonly holder: { pid: number; since: string } | null,
    options?: { cause?: unknown },
  ) {
    const who = holder
      ? `another itsm-rules process (pid ${holder.pid}, running since ${holder.since})`
      : 'another itsm-rules process';
    super(
      `the database ${path} is in use by ${who}; one database serves one process: stop that process first, or give this one its own database with --db`,
      options,
    );
    this.name = 'DatabaseInUseError';
  }
}

export interface DatabaseLock {
  /** The side file holding the lock. */
  readonly path: string;
  release(): void;
}

const isBusy = (error: unknown): boolean =>
  error instanceof Error &&
  'code' in error &&
  typeof error.code === 'string' &&
  error.code.startsWith('SQLITE_BUSY');

/** The side file of the lock of a database file. */
export const lockPathOf = (dbPath: string): string => `${resolve(dbPath)}.lock`;

/**
 * Takes the lock of the database file `dbPath` for this process, or throws DatabaseInUseError
 * naming the holder. `:memory:` needs no lock (nobody else can open it): null.
 */
export function lockDatabase(dbPath: string): DatabaseLock | null {
  if (dbPath === ':memory:') return null;
  const path = lockPathOf(dbPath);
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  // Never wait for the lock: a holder keeps it for hours.
  db.pragma('busy_timeout = 0');
  try {
    // A rollback journal, not WAL: readers then see the committed holder row while the lock is held.
    db.pragma('journal_mode = DELETE');
    db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL, started_at TEXT NOT NULL)');
    db.exec('BEGIN IMMEDIATE');
    db.exec('DELETE FROM holder');
    db.prepare('INSERT INTO holder (pid, started_at) VALUES (?, ?)').run(
      process.pid,
      new Date().toISOString(),
    );
    // The commit waits out a reader of the row; between it and the next BEGIN another starting
    // process could take the lock, and then this one is refused like any second process.
    db.pragma('busy_timeout = 2000');
    db.exec('COMMIT');
    db.pragma('busy_timeout = 0');
    db.exec('BEGIN IMMEDIATE');
  } catch (error) {
    const holder = isBusy(error) ? readHolder(db) : null;
    db.close();
    if (isBusy(error)) throw new DatabaseInUseError(dbPath, holder, { cause: error });
    throw error;
  }
  return {
    path,
    release() {
      if (!db.open) return;
      try {
        db.exec('ROLLBACK');
      } finally {
        db.close();
      }
    },
  };
}

function readHolder(db: Database.Database): { pid: number; since: string } | null {
  try {
    const row = db.prepare('SELECT pid, started_at FROM holder LIMIT 1').get() as
      | { pid: number; started_at: string }
      | undefined;
    return row ? { pid: row.pid, since: row.started_at } : null;
  } catch {
    // The table may not be there yet, or the holder is committing its row this very moment.
    return null;
  }
}
