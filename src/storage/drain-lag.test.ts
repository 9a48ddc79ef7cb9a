import { describe, expect, it } from 'vitest';
import { drainLagMs, isPending } from './drain-lag.js';

const NOW = Date.UTC(2026, 11, 5, 0, 0, 0);

describe('the drain lag of an account', () => {
  it.each([
    ['nothing waits', null, false, 0],
    ['the oldest waiting notification is 90 s old', NOW - 90_000, true, 90_000],
    ['it was noted this very millisecond: pending, lag 0', NOW, true, 0],
    ['the clock stepped back behind it: pending, never a negative lag', NOW + 5_000, true, 0],
  ])('%s', (_name, pendingSince, pending, lagMs) => {
    expect(isPending({ pendingSince })).toBe(pending);
    expect(drainLagMs({ pendingSince }, NOW)).toBe(lagMs);
  });
});
