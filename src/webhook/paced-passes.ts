// The spacing of the drain queue's passes (the moments it starts the drains waiting for a slot):
// a pass asked for less than `intervalMs` after the last one waits for the rest of that interval
// instead of running at the end of this turn. Under a flood of notifications spread over many
// accounts the loop turns very often, each turn reading a few requests, and a bound per turn
// bounded nothing: an account drained and notified again ~70 ms later set off a drain for nearly
// every other notification, each a call to the API that found nothing new, and those drains took
// more of the receiver's process than its own work (bench/README.md). Spaced, an account waits in
// the queue long enough to take the notifications of that while in one drain. A pass after a quiet
// spell is not delayed, and the spacing is per queue, so it bounds how often drains start, not how
// many run. Runtime-neutral: the caller gives the end-of-turn deferral and the timer.

export interface PacedPassesOptions {
  /** Runs a pass at the end of this turn (Node: setImmediate). */
  defer(pass: () => void): void;
  /** Least time between the starts of two passes; 0 or less: every pass at the end of its turn. */
  intervalMs: number;
  /** Runs a pass after `ms` (default: setTimeout). */
  wait?(pass: () => void, ms: number): void;
  now?: () => number;
}

/** A deferral for the drain queue (DrainQueueOptions.defer) that spaces its passes. */
export function pacedPasses(options: PacedPassesOptions): (pass: () => void) => void {
  const now = options.now ?? Date.now;
  const wait = options.wait ?? ((pass, ms) => void setTimeout(pass, ms));
  let last = Number.NEGATIVE_INFINITY;
  return (pass) => {
    const run = () => {
      last = now();
      pass();
    };
    const left = last + options.intervalMs - now();
    if (left > 0) wait(run, left);
    else options.defer(run);
  };
}
