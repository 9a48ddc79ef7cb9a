// The durable notes of notifications for accounts not yet pending, gathered per turn of the event
// loop: every such notification taken in one turn is written in one transaction when the turn's
// requests are in, and each is answered once that write is done (never before: a notification
// answered 200 is durable). Spread over many accounts, almost every notification is for an
// account with no note pending, and one commit each was the receiver's largest cost after the
// drains it set off. Runtime-neutral: the caller says how a flush is deferred (Node: setImmediate,
// which runs right after the loop has read every waiting request).

export interface NoteBatchOptions {
  /** Writes a note for each account at `at`, all or none (one transaction). */
  write(accounts: readonly number[], at: number): void | Promise<void>;
  /** Runs `flush` later in this turn, once the requests waiting in it are read. */
  defer(flush: () => void): void;
  /** After a successful write, with the accounts it noted (each once), before anyone is answered. */
  onWritten?(accounts: readonly number[], at: number): void;
  /** After a failed write (every notification of the batch is then refused). */
  onFailed?(error: unknown): void;
  now?: () => number;
}

export interface NoteBatch {
  /**
   * Adds the account to this turn's batch; resolves once its note is durable, rejects when the
   * write failed. One promise per batch, shared by its notifications.
   */
  add(account: number): Promise<void>;
}

export function createNoteBatch(options: NoteBatchOptions): NoteBatch {
  const now = options.now ?? Date.now;
  let accounts: Set<number> | null = null;
  let written: Promise<void> | null = null;
  let settle: { resolve: () => void; reject: (error: unknown) => void } | null = null;

  const flush = async () => {
    const batch = [...(accounts as Set<number>)];
    const done = settle as NonNullable<typeof settle>;
    accounts = null;
    written = null;
    settle = null;
    const at = now();
    try {
      await options.write(batch, at);
    } catch (error) {
      options.onFailed?.(error);
      done.reject(error);
      return;
    }
    options.onWritten?.(batch, at);
    done.resolve();
  };

  return {
    add(account) {
      if (accounts === null) {
        accounts = new Set();
        written = new Promise<void>((resolve, reject) => {
          settle = { resolve, reject };
        });
        // Every notification of the batch is answered from this promise; a failure is theirs.
        written.catch(() => {});
        options.defer(() => void flush());
      }
      accounts.add(account);
      return written as Promise<void>;
    },
  };
}
