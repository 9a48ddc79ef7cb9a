// One SQL statement of a store as both of its adapters run it: the text, and the values of one
// call in parameter order, written once beside the SQL. Parameters are anonymous (`?`): the one
// style both better-sqlite3 and D1 bind (D1 takes no named parameters, better-sqlite3 no `?NNN`),
// so a value the SQL uses twice is bound twice. `Row` is the shape of a row the statement answers.
// Also the statement runner of the SQLite adapters, typed structurally so that this file, shared
// with the D1 adapter, imports no driver.

export interface SqlStatement<Args extends unknown[], Row = never> {
  readonly text: string;
  values(...args: Args): unknown[];
  /** Never set: carries the row type to the runners. */
  readonly row?: Row;
}

export function sql<Args extends unknown[], Row = never>(
  text: string,
  values: (...args: Args) => unknown[],
): SqlStatement<Args, Row> {
  return { text, values };
}

/** The part of a better-sqlite3 connection the SQLite adapters use. */
export interface SyncConnection {
  prepare(text: string): SyncPrepared;
}

interface SyncPrepared {
  run(...values: unknown[]): { changes: number };
  get(...values: unknown[]): unknown;
  all(...values: unknown[]): unknown[];
}

export interface SyncRunner {
  /** Runs a write; returns how many rows it changed. */
  run<A extends unknown[], R>(statement: SqlStatement<A, R>, ...args: A): number;
  get<A extends unknown[], R>(statement: SqlStatement<A, R>, ...args: A): R | undefined;
  all<A extends unknown[], R>(statement: SqlStatement<A, R>, ...args: A): R[];
}

/** Runs statements on a synchronous connection, each prepared once (the engine runs them per event). */
export function createSyncRunner(db: SyncConnection): SyncRunner {
  const prepared = new Map<string, SyncPrepared>();
  const prepare = (text: string): SyncPrepared => {
    let statement = prepared.get(text);
    if (!statement) {
      statement = db.prepare(text);
      prepared.set(text, statement);
    }
    return statement;
  };
  return {
    run: (statement, ...args) => prepare(statement.text).run(...statement.values(...args)).changes,
    get: <A extends unknown[], R>(statement: SqlStatement<A, R>, ...args: A) =>
      prepare(statement.text).get(...statement.values(...args)) as R | undefined,
    all: <A extends unknown[], R>(statement: SqlStatement<A, R>, ...args: A) =>
      prepare(statement.text).all(...statement.values(...args)) as R[],
  };
}
