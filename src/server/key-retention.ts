// How long the API remembers an Idempotency-Key, and when forgotten keys leave the store. A key
// is forgotten the moment its retention has passed: a lookup compares the record's age itself,
// so the store's purge of old records only reclaims space. That purge runs at most once per
// interval (a minute, or the retention if shorter) rather than on every keyed write, which is
// every write the engine makes; and at once when a lookup meets a forgotten record, so that the
// request reusing that key can store its own record under it.
import type { IdempotencyRecord, ItsmStore } from '../storage/port.js';

/** The longest the store's purge of forgotten keys waits between two runs. */
export const KEY_PURGE_INTERVAL_MS = 60_000;

export interface KeyRetentionOptions {
  store: ItsmStore;
  /** How long a key is remembered after the request that first used it. */
  ttlMs: number;
  /** At most this long between two purges; default the shorter of a minute and `ttlMs`. */
  purgeIntervalMs?: number;
  now?: () => number;
}

export interface KeyRetention {
  /** The record of `key` while it is remembered; null once its retention has passed. */
  lookup(account: number, key: string): Promise<IdempotencyRecord | null>;
}

export function createKeyRetention(options: KeyRetentionOptions): KeyRetention {
  const { store, ttlMs } = options;
  const now = options.now ?? Date.now;
  const interval = options.purgeIntervalMs ?? Math.min(KEY_PURGE_INTERVAL_MS, ttlMs);
  let lastPurge = Number.NEGATIVE_INFINITY;
  const purge = async (cutoff: number, at: number) => {
    lastPurge = at;
    await store.purgeIdempotencyRecords(cutoff);
  };
  return {
    async lookup(account, key) {
      const at = now();
      // Kept while created at or after the cutoff, as the purge keeps it.
      const cutoff = at - ttlMs;
      if (at - lastPurge >= interval) await purge(cutoff, at);
      const record = await store.getIdempotencyRecord(account, key);
      if (record === null || record.createdAt >= cutoff) return record;
      await purge(cutoff, at);
      return null;
    },
  };
}
