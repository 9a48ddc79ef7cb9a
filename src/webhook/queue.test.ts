// The in-process drain queue with real timers. The drain it runs is a function written here (the
// queue's own argument, not a stand-in for one of our components): each call is recorded and
// finishes when the test says so, or at once by a script, so the tests control every overlap
// instead of guessing it from sleeps.
import { describe, expect, it } from 'vitest';
import { createDrainQueue, type DrainQueueOptions } from './queue.js';

type Outcome = 'ok' | 'fail';

interface DrainCall {
  account: number;
  /** performance.now() when the queue called the drain. */
  startedAt: number;
  shouldStop: () => boolean;
  /** What shouldStop() answered when the drain started. */
  stopAtStart: boolean;
  settled: boolean;
  succeed(): void;
  fail(message?: string): void;
}

interface Failure {
  account: number;
  message: string;
  delayMs: number;
  at: number;
}

/**
 * A drain that records its calls. The n-th call settles at once as `script[n]` says; calls past
 * the script stay open until the test calls succeed() or fail().
 */
function createRecorder(script: Outcome[] = []) {
  const calls: DrainCall[] = [];
  const failures: Failure[] = [];
  const active = new Map<number, number>();
  let activeTotal = 0;
  let maxActive = 0;
  let overlaps = 0;
  let waiters: { count: number; resolve: () => void }[] = [];

  const drain: DrainQueueOptions['drain'] = (account, shouldStop) =>
    new Promise<void>((resolve, reject) => {
      if ((active.get(account) ?? 0) > 0) overlaps++;
      active.set(account, (active.get(account) ?? 0) + 1);
      activeTotal++;
      maxActive = Math.max(maxActive, activeTotal);
      const end = () => {
        active.set(account, (active.get(account) ?? 1) - 1);
        activeTotal--;
        call.settled = true;
      };
      const call: DrainCall = {
        account,
        startedAt: performance.now(),
        shouldStop,
        stopAtStart: shouldStop(),
        settled: false,
        succeed: () => {
          end();
          resolve();
        },
        fail: (message = 'the API is down') => {
          end();
          reject(new Error(message));
        },
      };
      const scripted = script[calls.length];
      calls.push(call);
      const ready = waiters.filter((w) => calls.length >= w.count);
      waiters = waiters.filter((w) => calls.length < w.count);
      for (const waiter of ready) waiter.resolve();
      if (scripted === 'ok') call.succeed();
      if (scripted === 'fail') call.fail();
    });

  return {
    drain,
    calls,
    failures,
    onFailure: (account: number, error: unknown, delayMs: number) => {
      failures.push({ account, message: (error as Error).message, delayMs, at: performance.now() });
    },
    /** Resolves once `count` drains have started; fails the test after `timeoutMs`. */
    started(count: number, timeoutMs = 5_000): Promise<DrainCall[]> {
      if (calls.length >= count) return Promise.resolve(calls);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`expected ${count} drains to start, ${calls.length} did`)),
          timeoutMs,
        );
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve(calls);
          },
        });
      });
    },
    /** The n-th drain call (0-based); the test fails if it has not started. */
    call(n: number): DrainCall {
      const call = calls[n];
      if (!call) throw new Error(`drain ${n} has not started (${calls.length} did)`);
      return call;
    },
    failure(n: number): Failure {
      const failure = failures[n];
      if (!failure) throw new Error(`failure ${n} has not happened (${failures.length} did)`);
      return failure;
    },
    accounts: () => calls.map((call) => call.account),
    maxActive: () => maxActive,
    overlaps: () => overlaps,
  };
}

/** Lets the queue's promise callbacks (a finished drain, its follow-up) run. */
const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Node may fire a timer up to a millisecond before its delay as measured by performance.now(). */
const TIMER_SLACK_MS = 2;

function tracked<T>(promise: Promise<T>) {
  const state = { settled: false };
  void promise.then(() => {
    state.settled = true;
  });
  return state;
}

describe('one account', () => {
  it('runs one drain at a time for an account', async () => {
    const recorder = createRecorder();
    const queue = createDrainQueue({ drain: recorder.drain });

    queue.notify(1);
    queue.notify(1);
    await flush();

    expect(recorder.accounts()).toEqual([1]);
    expect(queue.status()).toEqual({ running: [1], pending: [], retrying: [] });
    recorder.call(0).succeed();
    await recorder.started(2);
    expect(recorder.call(0).settled).toBe(true);
    recorder.call(1).succeed();
    await queue.idle();
    expect(recorder.overlaps()).toBe(0);
    expect(recorder.maxActive()).toBe(1);
  });

  it.each([1, 2, 50])(
    'drains exactly once more after a drain during which %i notifications arrived',
    async (notifications) => {
      const recorder = createRecorder();
      const queue = createDrainQueue({ drain: recorder.drain });

      queue.notify(7);
      await recorder.started(1);
      for (let i = 0; i < notifications; i++) queue.notify(7);
      expect(queue.status().pending).toEqual([]);
      recorder.call(0).succeed();
      await recorder.started(2);
      // The follow-up drain starts only once the first one has finished.
      expect(recorder.call(0).settled).toBe(true);
      recorder.call(1).succeed();
      await queue.idle();

      expect(recorder.accounts()).toEqual([7, 7]);
      expect(recorder.overlaps()).toBe(0);
    },
  );

  it('does not drain again when no notification came during the drain', async () => {
    const recorder = createRecorder(['ok']);
    const queue = createDrainQueue({ drain: recorder.drain });

    queue.notify(3);
    await queue.idle();
    await flush();

    expect(recorder.accounts()).toEqual([3]);
    expect(queue.status()).toEqual({ running: [], pending: [], retrying: [] });
  });
});

describe('several accounts', () => {
  it('drains different accounts at the same time up to the bound, and never more', async () => {
    const recorder = createRecorder();
    const queue = createDrainQueue({ drain: recorder.drain, concurrency: 2 });

    for (const account of [1, 2, 3, 4, 5]) queue.notify(account);
    await recorder.started(2);
    await flush();
    expect(recorder.accounts()).toEqual([1, 2]);
    expect(queue.status()).toEqual({ running: [1, 2], pending: [3, 4, 5], retrying: [] });

    // Each finished drain lets exactly one waiting account in, in the order they were notified.
    recorder.call(1).succeed();
    await recorder.started(3);
    expect(queue.status()).toEqual({ running: [1, 3], pending: [4, 5], retrying: [] });
    recorder.call(0).succeed();
    await recorder.started(4);
    expect(queue.status()).toEqual({ running: [3, 4], pending: [5], retrying: [] });
    recorder.call(2).succeed();
    await recorder.started(5);
    expect(queue.status()).toEqual({ running: [4, 5], pending: [], retrying: [] });
    recorder.call(3).succeed();
    recorder.call(4).succeed();
    await queue.idle();

    expect(recorder.accounts()).toEqual([1, 2, 3, 4, 5]);
    expect(recorder.maxActive()).toBe(2);
  });

  it('defaults to four accounts at a time', async () => {
    const recorder = createRecorder();
    const queue = createDrainQueue({ drain: recorder.drain });

    for (let account = 1; account <= 6; account++) queue.notify(account);
    await recorder.started(4);
    await flush();

    expect(recorder.accounts()).toEqual([1, 2, 3, 4]);
    expect(queue.status().pending).toEqual([5, 6]);
    for (let n = 5; n <= 6; n++) {
      recorder.calls.find((call) => !call.settled)?.succeed();
      await recorder.started(n);
    }
    for (const call of recorder.calls) if (!call.settled) call.succeed();
    await queue.idle();
    expect(recorder.maxActive()).toBe(4);
  });

  it('queues a notified account once however many notifications wait with it', async () => {
    const recorder = createRecorder();
    const queue = createDrainQueue({ drain: recorder.drain, concurrency: 1 });

    queue.notify(1);
    for (let i = 0; i < 5; i++) queue.notify(2);
    expect(queue.status().pending).toEqual([2]);
    await recorder.started(1);
    recorder.call(0).succeed();
    await recorder.started(2);
    recorder.call(1).succeed();
    await queue.idle();

    expect(recorder.accounts()).toEqual([1, 2]);
  });
});

describe('failures', () => {
  it('retries a failed drain after its backoff, doubling it per failure and resetting it after a success', async () => {
    // Three failures, a success; then a new notification meets one more failure and a success.
    const recorder = createRecorder(['fail', 'fail', 'fail', 'ok', 'fail', 'ok']);
    const queue = createDrainQueue({
      drain: recorder.drain,
      retryBaseMs: 20,
      random: () => 1,
      onFailure: recorder.onFailure,
    });

    queue.notify(9);
    await queue.idle();
    queue.notify(9);
    await queue.idle();

    expect(recorder.accounts()).toEqual([9, 9, 9, 9, 9, 9]);
    expect(recorder.failures.map((f) => [f.account, f.delayMs])).toEqual([
      [9, 20],
      [9, 40],
      [9, 80],
      [9, 20],
    ]);
    // Each retry starts no earlier than its backoff after the failure it follows.
    [1, 2, 3, 5].forEach((retry, i) => {
      const failure = recorder.failure(i);
      expect(recorder.call(retry).startedAt - failure.at).toBeGreaterThanOrEqual(
        failure.delayMs - TIMER_SLACK_MS,
      );
    });
  });

  it.each([
    { random: 0, failures: 1, delay: 50 },
    { random: 0.5, failures: 1, delay: 75 },
    { random: 1, failures: 1, delay: 100 },
    { random: 1, failures: 2, delay: 200 },
    { random: 1, failures: 3, delay: 250 },
    { random: 0, failures: 3, delay: 125 },
  ])(
    'waits $delay ms after failure $failures with jitter $random (base 100 ms, cap 250 ms)',
    async ({ random, failures, delay }) => {
      const recorder = createRecorder([...Array<Outcome>(failures).fill('fail'), 'ok']);
      const queue = createDrainQueue({
        drain: recorder.drain,
        retryBaseMs: 100,
        retryMaxMs: 250,
        random: () => random,
        onFailure: recorder.onFailure,
      });

      queue.notify(1);
      await queue.idle();

      expect(recorder.failures.at(-1)?.delayMs).toBe(delay);
      expect(recorder.calls).toHaveLength(failures + 1);
    },
  );

  it('shows an account waiting for a retry, with its failures in a row, in the status', async () => {
    const recorder = createRecorder(['fail', 'fail']);
    const queue = createDrainQueue({
      drain: recorder.drain,
      retryBaseMs: 30,
      random: () => 1,
      onFailure: recorder.onFailure,
    });

    queue.notify(4);
    await flush();
    expect(queue.status()).toEqual({
      running: [],
      pending: [],
      retrying: [{ account: 4, failures: 1 }],
    });
    await recorder.started(2);
    await flush();
    expect(queue.status().retrying).toEqual([{ account: 4, failures: 2 }]);
    await recorder.started(3);
    recorder.call(2).succeed();
    await queue.idle();
    expect(queue.status()).toEqual({ running: [], pending: [], retrying: [] });
  });

  it('does not start a drain early for notifications that arrive during a backoff', async () => {
    const recorder = createRecorder(['fail']);
    const queue = createDrainQueue({
      drain: recorder.drain,
      retryBaseMs: 500,
      random: () => 1,
      onFailure: recorder.onFailure,
    });

    queue.notify(2);
    await flush();
    expect(recorder.failures).toHaveLength(1);
    for (let i = 0; i < 5; i++) {
      queue.notify(2);
      await sleep(20);
    }
    expect(recorder.calls).toHaveLength(1);
    expect(queue.status()).toEqual({
      running: [],
      pending: [],
      retrying: [{ account: 2, failures: 1 }],
    });

    await recorder.started(2);
    const retry = recorder.call(1);
    expect(retry.startedAt - recorder.failure(0).at).toBeGreaterThanOrEqual(500 - TIMER_SLACK_MS);
    retry.succeed();
    await queue.idle();
    // The notifications of the backoff are all served by that one retry.
    expect(recorder.calls).toHaveLength(2);
  });

  it('serves a notification that came during a failing drain by the retry alone', async () => {
    const recorder = createRecorder();
    const queue = createDrainQueue({
      drain: recorder.drain,
      retryBaseMs: 20,
      random: () => 1,
      onFailure: recorder.onFailure,
    });

    queue.notify(5);
    await recorder.started(1);
    queue.notify(5);
    recorder.call(0).fail();
    await flush();
    expect(queue.status()).toEqual({
      running: [],
      pending: [],
      retrying: [{ account: 5, failures: 1 }],
    });
    await recorder.started(2);
    const retry = recorder.call(1);
    retry.succeed();
    await queue.idle();

    expect(recorder.calls).toHaveLength(2);
  });

  it('keeps draining other accounts while one waits for its retry', async () => {
    const recorder = createRecorder(['fail', 'ok', 'ok']);
    const queue = createDrainQueue({
      drain: recorder.drain,
      concurrency: 1,
      retryBaseMs: 200,
      random: () => 1,
      onFailure: recorder.onFailure,
    });

    queue.notify(1);
    queue.notify(2);
    await recorder.started(2);

    expect(recorder.accounts()).toEqual([1, 2]);
    // Account 2 was drained inside account 1's backoff.
    expect(recorder.call(1).startedAt - recorder.failure(0).at).toBeLessThan(200);
    await queue.idle();
    expect(recorder.accounts()).toEqual([1, 2, 1]);
  });
});

describe('idle', () => {
  it('resolves at once when nothing was ever notified', async () => {
    const queue = createDrainQueue({ drain: createRecorder().drain });
    const idle = tracked(queue.idle());
    await flush();
    expect(idle.settled).toBe(true);
  });

  it('resolves only when nothing is running, pending or waiting for a retry', async () => {
    const recorder = createRecorder();
    const queue = createDrainQueue({
      drain: recorder.drain,
      concurrency: 1,
      retryBaseMs: 30,
      random: () => 1,
      onFailure: recorder.onFailure,
    });

    queue.notify(1);
    queue.notify(2);
    const idle = tracked(queue.idle());
    await recorder.started(1);
    await flush();
    expect(idle.settled).toBe(false); // 1 running, 2 pending

    recorder.call(0).succeed();
    await recorder.started(2);
    await flush();
    expect(idle.settled).toBe(false); // 2 running

    recorder.call(1).fail();
    await flush();
    expect(queue.status().retrying).toEqual([{ account: 2, failures: 1 }]);
    expect(idle.settled).toBe(false); // 2 waiting for its retry

    await recorder.started(3);
    await flush();
    expect(idle.settled).toBe(false); // 2 running again
    recorder.call(2).succeed();
    await flush();
    expect(idle.settled).toBe(true);
  });
});

describe('close', () => {
  it('waits for running drains, telling them to stop', async () => {
    const recorder = createRecorder();
    const queue = createDrainQueue({ drain: recorder.drain });

    queue.notify(1);
    await recorder.started(1);
    const drain = recorder.call(0);
    expect(drain.stopAtStart).toBe(false);
    expect(drain.shouldStop()).toBe(false);

    const closed = tracked(queue.close());
    await flush();
    expect(drain.shouldStop()).toBe(true);
    expect(closed.settled).toBe(false);

    drain.succeed();
    await flush();
    expect(closed.settled).toBe(true);
  });

  it('cancels retries and drops pending accounts', async () => {
    const recorder = createRecorder(['fail']);
    const queue = createDrainQueue({
      drain: recorder.drain,
      concurrency: 1,
      retryBaseMs: 300,
      random: () => 1,
      onFailure: recorder.onFailure,
    });

    queue.notify(1); // fails, waits 300 ms for its retry
    queue.notify(2); // runs
    queue.notify(3); // pending behind 2
    await recorder.started(2);
    const second = recorder.call(1);
    expect(queue.status()).toEqual({
      running: [2],
      pending: [3],
      retrying: [{ account: 1, failures: 1 }],
    });

    const closing = queue.close();
    second.succeed();
    await closing;
    expect(queue.status()).toEqual({ running: [], pending: [], retrying: [] });
    // Past the cancelled retry's time: nothing more may have started.
    await sleep(400);
    expect(recorder.accounts()).toEqual([1, 2]);
  });

  it('does not retry a drain that fails while closing', async () => {
    const recorder = createRecorder();
    const queue = createDrainQueue({
      drain: recorder.drain,
      retryBaseMs: 10,
      random: () => 1,
      onFailure: recorder.onFailure,
    });

    queue.notify(1);
    await recorder.started(1);
    const drain = recorder.call(0);
    const closing = queue.close();
    drain.fail('stopped mid-page');
    await closing;

    expect(queue.status()).toEqual({ running: [], pending: [], retrying: [] });
    await sleep(60);
    expect(recorder.calls).toHaveLength(1);
  });

  it('ignores notifications after close, and idle() still resolves', async () => {
    const recorder = createRecorder(['ok']);
    const queue = createDrainQueue({ drain: recorder.drain });

    await queue.close();
    queue.notify(1);
    queue.notify(2);
    await queue.idle();
    await sleep(20);

    expect(recorder.calls).toHaveLength(0);
    expect(queue.status()).toEqual({ running: [], pending: [], retrying: [] });
  });

  it('does not drain again after close for a notification that came during the last drain', async () => {
    const recorder = createRecorder();
    const queue = createDrainQueue({ drain: recorder.drain });

    queue.notify(1);
    await recorder.started(1);
    const drain = recorder.call(0);
    queue.notify(1);
    const closing = queue.close();
    drain.succeed();
    await closing;
    await sleep(20);

    expect(recorder.calls).toHaveLength(1);
  });
});

describe('the least interval between drains of an account', () => {
  it('starts the next drain of an account no sooner than the interval after the last start', async () => {
    const recorder = createRecorder();
    const queue = createDrainQueue({ drain: recorder.drain, minIntervalMs: 150 });
    queue.notify(1);
    await recorder.started(1);
    for (let i = 0; i < 5; i++) queue.notify(1);
    recorder.call(0).succeed();
    await sleep(20);
    // The drain waiting for its turn counts as pending work: idle() waits for it.
    expect(queue.status().pending).toEqual([1]);
    expect(recorder.calls).toHaveLength(1);
    await recorder.started(2);
    recorder.call(1).succeed();
    await queue.idle();
    expect(recorder.calls.map((call) => call.account)).toEqual([1, 1]);
    expect(recorder.call(1).startedAt - recorder.call(0).startedAt).toBeGreaterThanOrEqual(
      150 - TIMER_SLACK_MS,
    );
    await queue.close();
  });

  it('does not hold back other accounts', async () => {
    const recorder = createRecorder(['ok', 'ok']);
    const queue = createDrainQueue({ drain: recorder.drain, minIntervalMs: 10_000 });
    queue.notify(1);
    queue.notify(2);
    await recorder.started(2);
    expect(recorder.calls.map((call) => call.account)).toEqual([1, 2]);
    queue.notify(1);
    await queue.close();
    // Closing cancels the spaced drain of account 1 instead of waiting 10 s for it.
    expect(recorder.calls).toHaveLength(2);
    expect(queue.status()).toEqual({ running: [], pending: [], retrying: [] });
  });
});

describe('fair turns between accounts', () => {
  it('asks a drain that has had its turn to stop while others wait, and queues it again behind them', async () => {
    const recorder = createRecorder();
    const queue = createDrainQueue({ drain: recorder.drain, concurrency: 1, turnMs: 30 });
    queue.notify(1);
    await recorder.started(1);
    await sleep(30 + TIMER_SLACK_MS + 5);
    // Past its turn, but alone: a drain is never asked to stop while nobody waits.
    expect(recorder.call(0).shouldStop()).toBe(false);
    queue.notify(2);
    expect(recorder.call(0).shouldStop()).toBe(true);
    recorder.call(0).succeed();
    await recorder.started(2);
    recorder.call(1).succeed();
    // Account 1 stopped before it was done: its turn comes again, after account 2's.
    await recorder.started(3);
    expect(recorder.accounts()).toEqual([1, 2, 1]);
    recorder.call(2).succeed();
    await queue.idle();
    expect(recorder.calls).toHaveLength(3);
    await queue.close();
  });

  it('does not ask a drain within its turn to stop, even with others waiting', async () => {
    const recorder = createRecorder();
    const queue = createDrainQueue({ drain: recorder.drain, concurrency: 1, turnMs: 60_000 });
    queue.notify(1);
    await recorder.started(1);
    queue.notify(2);
    expect(recorder.call(0).shouldStop()).toBe(false);
    recorder.call(0).succeed();
    await recorder.started(2);
    recorder.call(1).succeed();
    await queue.idle();
    expect(recorder.accounts()).toEqual([1, 2]);
    await queue.close();
  });
});

describe('drains started once per turn (defer)', () => {
  /** A deferral the test runs by hand: each run() is the end of one turn of the loop. */
  function turns() {
    const deferred: (() => void)[] = [];
    return {
      defer: (pump: () => void) => deferred.push(pump),
      waiting: () => deferred.length,
      run: () => {
        for (const pump of deferred.splice(0)) pump();
      },
    };
  }

  it('starts the drains of a burst of notified accounts in one pass at the end of the turn', async () => {
    const recorder = createRecorder();
    const turn = turns();
    const queue = createDrainQueue({ drain: recorder.drain, concurrency: 3, defer: turn.defer });

    for (const account of [1, 2, 3, 4, 5, 2, 1]) queue.notify(account);
    await flush();
    // One pass asked for the whole burst, and no drain started before it.
    expect(turn.waiting()).toBe(1);
    expect(recorder.calls).toHaveLength(0);
    expect(queue.status()).toEqual({ running: [], pending: [1, 2, 3, 4, 5], retrying: [] });

    turn.run();
    await recorder.started(3);
    expect(recorder.accounts()).toEqual([1, 2, 3]);
    expect(queue.status().pending).toEqual([4, 5]);
    for (const call of recorder.calls) call.succeed();
    await queue.close();
  });

  it('starts at most startsPerPass drains in one pass, and the rest in the next passes', async () => {
    const recorder = createRecorder();
    const turn = turns();
    const queue = createDrainQueue({
      drain: recorder.drain,
      concurrency: 16,
      startsPerPass: 2,
      defer: turn.defer,
    });

    for (const account of [1, 2, 3, 4, 5]) queue.notify(account);
    turn.run();
    await recorder.started(2);
    await flush();
    expect(recorder.accounts()).toEqual([1, 2]);
    // The rest wait for the next turn, however many slots are free; a notification for one of
    // them meanwhile is taken by its drain.
    queue.notify(4);
    expect(queue.status().pending).toEqual([3, 4, 5]);
    expect(turn.waiting()).toBe(1);
    turn.run();
    await recorder.started(4);
    await flush();
    expect(recorder.accounts()).toEqual([1, 2, 3, 4]);
    turn.run();
    await recorder.started(5);
    expect(recorder.accounts()).toEqual([1, 2, 3, 4, 5]);
    for (const call of recorder.calls) call.succeed();
    await flush();
    turn.run();
    await queue.idle();
    expect(recorder.calls).toHaveLength(5);
    await queue.close();
  });

  it('takes the notifications of an account still waiting for its drain into that drain', async () => {
    const recorder = createRecorder();
    const turn = turns();
    const queue = createDrainQueue({ drain: recorder.drain, concurrency: 1, defer: turn.defer });

    queue.notify(1);
    queue.notify(2);
    turn.run();
    await recorder.started(1);
    // Account 2 waits behind 1; more notifications for it add nothing.
    for (let i = 0; i < 5; i++) queue.notify(2);
    recorder.call(0).succeed();
    await flush();
    // The finished drain's slot is handed on at the end of the turn, not at once.
    expect(recorder.calls).toHaveLength(1);
    expect(turn.waiting()).toBe(1);
    turn.run();
    await recorder.started(2);
    recorder.call(1).succeed();
    await flush();
    turn.run();
    await queue.idle();
    expect(recorder.accounts()).toEqual([1, 2]);
    await queue.close();
  });
});
