// The Node engine's ticks of scheduled rules, in order: every minute the timer fires is queued,
// and the runs of the queue go one after another, so that sweeps longer than a minute queue up
// instead of piling up at once. A tick the API failed part of waits for its next run on a timer
// of its own, out of the queue, and joins the back of it when that is due: the waits between a
// tick's attempts never hold up the ticks of later minutes (a timer that skipped the minutes
// coming while a tick was retried lost rules due only then, such as `0 8 * * *`, for the day).
// A minute the timer did not fire at, because the process was too busy to turn its loop, is run
// late rather than lost; a longer gap is the engine not running (suspended, or the clock jumped)
// and, as minutes the engine was down for, is not caught up. The Worker re-queues a failed tick
// through its Queue instead and has no use for this.
import type { Rule } from '../engine/rule.js';
import { formatIsoDate } from '../itsm/schemas.js';
import { describeSummary, type ScheduleSummary, tickOf } from '../webhook/schedule.js';

const MINUTE_MS = 60_000;

/**
 * Minutes between two of the timer's ticks that are caught up, at most. A gap this long is not a
 * busy process (a sweep runs on the same loop, but between its awaits) but a suspended one or a
 * clock stepped forward: running an hour of ticks at once on waking would act on rules hours late.
 */
export const SCHEDULE_CATCH_UP_MINUTES = 10;

export interface ScheduleQueueOptions {
  /** The rules due at the tick (read when its first run starts: the rules then in force). */
  dueRules(tick: Date): Rule[];
  /** One run of the tick's rules. */
  runTick(tick: Date, rules: readonly Rule[]): Promise<ScheduleSummary>;
  /** Runs of a tick the API failed part of, the first included (at least 1). */
  attempts: number;
  /** Wait between those runs. */
  retryMs: number;
  /** The clock of the timer's ticks, which their lateness is measured on. */
  now(): Date;
  log(line: string): void;
  /** A tick from the timer that threw (the store failing): nobody awaits it. */
  onError(error: unknown): void;
}

export interface ScheduleQueue {
  /**
   * Queues a run of the rules due at the tick; resolves with its last summary once it is done
   * with its retries (null: no rule due, or the queue stopped before it started).
   */
  run(tick: Date): Promise<ScheduleSummary | null>;
  /**
   * The timer fired at `at`: queues its minute, and the minutes since the last one it fired at
   * if it missed some (up to SCHEDULE_CATCH_UP_MINUTES). A minute already queued is not again.
   */
  fire(at: Date): void;
  /** Nothing new starts; a tick waiting for its retry is given up with its last summary. */
  stop(): void;
}

interface QueuedTick {
  tick: Date;
  /** From the timer (late means something); not a caller's tick of its choice. */
  timed: boolean;
  /**
   * Why it would start late: queued behind other runs (the ticks before it ran long), or on
   * its own, the timer having fired late or not at all at its minute (the process was busy).
   */
  behind: boolean;
  attempt: number;
  last: ScheduleSummary | null;
  resolve(summary: ScheduleSummary | null): void;
  reject(error: unknown): void;
}

export function createScheduleQueue(options: ScheduleQueueOptions): ScheduleQueue {
  const attempts = Math.max(1, options.attempts);
  let stopping = false;
  let lastFired: number | null = null;
  let wentBack = false;
  let chain: Promise<void> = Promise.resolve();
  const waiting = new Map<QueuedTick, ReturnType<typeof setTimeout>>();
  /** Runs queued or in hand. */
  let queued = 0;

  const enqueue = (entry: QueuedTick) => {
    queued++;
    chain = chain.then(() => attempt(entry)).finally(() => queued--);
  };

  const attempt = async (entry: QueuedTick): Promise<void> => {
    if (stopping) return entry.resolve(entry.last);
    try {
      const iso = formatIsoDate(entry.tick);
      if (entry.attempt === 0 && entry.timed) {
        const lateMs = options.now().getTime() - entry.tick.getTime();
        if (lateMs > MINUTE_MS) {
          options.log(
            `schedule: ${iso} starts ${Math.round(lateMs / 1000)} s late: ${entry.behind ? 'the ticks before it ran long' : 'the timer fired late (the process was busy)'}`,
          );
        }
      }
      const due = options.dueRules(entry.tick);
      if (due.length === 0) return entry.resolve(null);
      entry.attempt++;
      const summary = await options.runTick(entry.tick, due);
      entry.last = summary;
      const unfinished = summary.errors.length;
      options.log(
        `schedule: ${describeSummary(summary)}${unfinished ? `; ${unfinished} unfinished` : ''}`,
      );
      if (unfinished === 0 || entry.attempt >= attempts || stopping) {
        return entry.resolve(summary);
      }
      options.log(
        `schedule: running ${summary.tick} again in ${options.retryMs / 1000} s (attempt ${entry.attempt + 1} of ${attempts})`,
      );
      // The wait is out of the queue: the minutes after this one run meanwhile. Unref'd: a
      // retry waiting does not keep the process alive.
      const timer = setTimeout(() => {
        waiting.delete(entry);
        enqueue(entry);
      }, options.retryMs);
      timer.unref();
      waiting.set(entry, timer);
    } catch (error) {
      entry.reject(error);
    }
  };

  const run = (tick: Date, timed = false, caughtUp = false) =>
    new Promise<ScheduleSummary | null>((resolve, reject) => {
      // A minute caught up is late because the timer missed it, whatever else is queued.
      const behind = queued > 0 && !caughtUp;
      enqueue({ tick: tickOf(tick), timed, behind, attempt: 0, last: null, resolve, reject });
    });

  const runTimed = (tick: Date, caughtUp: boolean) => {
    run(tick, true, caughtUp).catch(options.onError);
  };

  return {
    run: (tick) => run(tick),
    fire(at) {
      if (stopping) return;
      const tick = tickOf(at).getTime();
      // The same minute again: its tick is queued already. A clock stepped back: the minutes up
      // to the last tick have had theirs, and are not run twice (said once, not every minute).
      if (lastFired !== null && tick <= lastFired) {
        if (tick < lastFired && !wentBack) {
          wentBack = true;
          options.log(
            `schedule: the clock went back to ${formatIsoDate(new Date(tick))}, before the last tick ${formatIsoDate(new Date(lastFired))}; the minutes up to that tick are not run again`,
          );
        }
        return;
      }
      wentBack = false;
      if (lastFired !== null && tick - lastFired > MINUTE_MS) {
        const missed = (tick - lastFired) / MINUTE_MS - 1;
        if (missed <= SCHEDULE_CATCH_UP_MINUTES) {
          for (let minute = lastFired + MINUTE_MS; minute < tick; minute += MINUTE_MS) {
            runTimed(new Date(minute), true);
          }
        } else {
          const from = formatIsoDate(new Date(lastFired + MINUTE_MS));
          const to = formatIsoDate(new Date(tick - MINUTE_MS));
          options.log(
            `schedule: no tick from ${from} to ${to} (${missed} minutes): the timer did not fire, as when the engine is down (the process was suspended or the clock jumped); those minutes are not caught up`,
          );
        }
      }
      lastFired = tick;
      runTimed(new Date(tick), false);
    },
    stop() {
      stopping = true;
      for (const [entry, timer] of waiting) {
        clearTimeout(timer);
        entry.resolve(entry.last);
      }
      waiting.clear();
    },
  };
}
