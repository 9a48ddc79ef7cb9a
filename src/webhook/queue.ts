// The in-process drain queue (the Node form of the design's queue; Workers use a Cloudflare
// Queue instead). One drain at a time per account, different accounts concurrently up to a
// bound. A notification for an account being drained marks it to be drained once more after,
// so no notification is lost and any number of them cause at most one extra drain. A drain that
// fails is retried after an exponential backoff with jitter; the account's state (its cursor)
// is untouched by the failure, so nothing is lost, only delayed.
// Fairness: accounts wait in one first-come queue, and a drain that has had its turn (`turnMs`)
// while others wait is asked to stop after its page in hand and goes to the back of the queue,
// so a busy account never starves the others; an idle account is drained the moment it is
// notified (or, with `defer`, in the same turn of the event loop).

export interface DrainQueueOptions {
  /** Drains one account; `shouldStop` turns true when the queue is closing. */
  drain(account: number, shouldStop: () => boolean): Promise<unknown>;
  /** Accounts drained at once; default 4. */
  concurrency?: number;
  /**
   * How long a drain runs before, with other accounts waiting, `shouldStop` asks it to stop after
   * the page in hand (it is then queued again, behind them). Default 250 ms.
   */
  turnMs?: number;
  /** First retry delay after a failed drain; doubled per failure. Default 1 s. */
  retryBaseMs?: number;
  /** Cap on a retry delay. Default 60 s. */
  retryMaxMs?: number;
  /**
   * Least time between the starts of two drains of one account (default 0). Under a stream of
   * notifications a drain then collects many events per page instead of starting once per
   * notification, which keeps the receiver's process free to answer webhooks.
   */
  minIntervalMs?: number;
  /**
   * When given, drains are started in one pass per call of `defer` (Node: setImmediate, right
   * after the loop has read the requests waiting in its turn) instead of at each notification
   * and at the end of each drain. A burst of notifications for many accounts is then scheduled in
   * one pass, and drains that finish without waiting on anything (an API in the same process)
   * leave the loop a turn to read the requests that came meanwhile instead of following one
   * another: notifications for an account still waiting for its drain are then taken by it.
   */
  defer?: (pump: () => void) => void;
  /**
   * With `defer`: drains started in one pass at most (default: as many as `concurrency` allows);
   * the rest are started in the next passes. Drains of an API in the same process run on this
   * thread to their end once started; a bound per pass keeps each turn of the loop short, so
   * the receiver keeps answering, and under a flood of notifications an account waits in the
   * queue long enough to take several of them in one drain instead of one drain each.
   */
  startsPerPass?: number;
  random?: () => number;
  log?: (line: string) => void;
  /** Called for each failed drain, before its retry is scheduled. */
  onFailure?: (account: number, error: unknown, delayMs: number) => void;
}

export interface DrainQueueStatus {
  running: number[];
  pending: number[];
  /** Accounts waiting for a retry, with the number of failures in a row. */
  retrying: { account: number; failures: number }[];
}

export interface DrainQueue {
  notify(account: number): void;
  /** Resolves when nothing is running, pending or waiting for a retry. */
  idle(): Promise<void>;
  status(): DrainQueueStatus;
  /** Stops taking work; running drains finish the page in hand. Pending work is dropped. */
  close(): Promise<void>;
}

export function createDrainQueue(options: DrainQueueOptions): DrainQueue {
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const baseMs = options.retryBaseMs ?? 1_000;
  const maxMs = options.retryMaxMs ?? 60_000;
  const random = options.random ?? Math.random;
  const pending: number[] = [];
  /** The accounts in `pending`, for a look-up that does not walk a queue of many accounts. */
  const queued = new Set<number>();
  const running = new Map<number, Promise<void>>();
  const again = new Set<number>();
  const failures = new Map<number, number>();
  const timers = new Map<number, ReturnType<typeof setTimeout>>();
  const minIntervalMs = Math.max(0, options.minIntervalMs ?? 0);
  const turnMs = Math.max(0, options.turnMs ?? 250);
  const lastStart = new Map<number, number>();
  const spacing = new Map<number, ReturnType<typeof setTimeout>>();
  let idleWaiters: (() => void)[] = [];
  let closed = false;
  const defer = options.defer;
  const startsPerPass = Math.max(1, Math.trunc(options.startsPerPass ?? Number.POSITIVE_INFINITY));
  let pumpDeferred = false;

  const isIdle = () =>
    running.size === 0 && pending.length === 0 && timers.size === 0 && spacing.size === 0;
  const settle = () => {
    if (!isIdle()) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const resolve of waiters) resolve();
  };

  const pump = () => {
    let starts = 0;
    while (!closed && running.size < concurrency && pending.length > 0) {
      if (defer && starts >= startsPerPass) {
        // The rest wait for the next turn, after the loop has read what came meanwhile.
        schedulePump();
        break;
      }
      const account = pending.shift() as number;
      queued.delete(account);
      lastStart.set(account, Date.now());
      running.set(account, run(account));
      starts++;
    }
    settle();
  };
  const schedulePump = () => {
    if (!defer) {
      pump();
      return;
    }
    if (pumpDeferred) return;
    pumpDeferred = true;
    defer(() => {
      pumpDeferred = false;
      pump();
    });
  };

  const run = async (account: number): Promise<void> => {
    // Yield first, so that `running` holds this drain before it can finish.
    await Promise.resolve();
    const started = Date.now();
    let yielded = false;
    const shouldStop = () => {
      if (closed) return true;
      if (pending.length > 0 && Date.now() - started >= turnMs) yielded = true;
      return yielded;
    };
    try {
      await options.drain(account, shouldStop);
      failures.delete(account);
      // It stopped for the others' sake, not because it was done: its turn comes again.
      if (yielded) again.add(account);
    } catch (error) {
      const count = (failures.get(account) ?? 0) + 1;
      failures.set(account, count);
      // Jitter over the upper half of an exponential ceiling: many accounts failing together (the
      // API down) do not come back in step, and none retries sooner than half its backoff.
      const ceiling = Math.min(maxMs, baseMs * 2 ** (count - 1));
      const delay = Math.round(ceiling / 2 + (random() * ceiling) / 2);
      options.onFailure?.(account, error, delay);
      if (!closed) {
        again.delete(account);
        timers.set(
          account,
          setTimeout(() => {
            timers.delete(account);
            enqueue(account);
          }, delay),
        );
      }
    } finally {
      running.delete(account);
      if (again.delete(account)) enqueue(account);
      schedulePump();
    }
  };

  const enqueue = (account: number) => {
    if (closed) return;
    if (running.has(account)) {
      again.add(account);
      return;
    }
    // A retry already waiting will drain this account; a notification does not cut the
    // backoff short (the API is failing), it is served by that drain.
    if (timers.has(account) || spacing.has(account) || queued.has(account)) return;
    const wait = (lastStart.get(account) ?? Number.NEGATIVE_INFINITY) + minIntervalMs - Date.now();
    if (wait > 0) {
      spacing.set(
        account,
        setTimeout(() => {
          spacing.delete(account);
          enqueue(account);
        }, wait),
      );
      return;
    }
    pending.push(account);
    queued.add(account);
    schedulePump();
  };

  return {
    notify: enqueue,
    idle() {
      if (isIdle()) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    status() {
      return {
        running: [...running.keys()],
        pending: [...pending, ...spacing.keys()],
        retrying: [...timers.keys()].map((account) => ({
          account,
          failures: failures.get(account) ?? 0,
        })),
      };
    },
    async close() {
      closed = true;
      for (const timer of [...timers.values(), ...spacing.values()]) clearTimeout(timer);
      timers.clear();
      spacing.clear();
      pending.length = 0;
      queued.clear();
      again.clear();
      await Promise.all(running.values());
      settle();
    },
  };
}
