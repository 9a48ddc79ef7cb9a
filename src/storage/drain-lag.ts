// The drain lag of an account: whether a notification waits that no drain has covered yet, and
// for how long the oldest such notification has waited. One definition for /metrics
// (`itsm_rules_drain_lag_seconds`) on Node and on Workers, the Worker's sweep, and the console's
// overview, over the state the pipeline store keeps (pendingSince: see pipeline-port.ts and
// migrations/0011_pending_notifications.sql, which decide what a drain covers).
import type { AccountState } from './pipeline-port.js';

/** A notification for the account waits that no drain page reaching the end has covered. */
export function isPending(state: Pick<AccountState, 'pendingSince'>): boolean {
  return state.pendingSince !== null;
}

/**
 * Milliseconds since the oldest notification not yet drained, at `now`; 0 when none waits (and
 * never below 0: a clock that stepped back does not make a lag negative).
 */
export function drainLagMs(state: Pick<AccountState, 'pendingSince'>, now: number): number {
  return state.pendingSince === null ? 0 : Math.max(0, now - state.pendingSince);
}
