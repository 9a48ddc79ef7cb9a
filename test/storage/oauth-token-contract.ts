// The contract of the Table API face's OAuth token store, one suite run unchanged against every
// adapter: SQLite on Node and the in-memory fallback (test/storage/oauth-tokens.test.ts), and D1
// inside workerd (test/worker/d1-oauth-tokens.test.ts). It speaks only the port, so the shared
// SQL (src/storage/sql-itsm.ts, migrations/0010_oauth_tokens.sql) is proven the same on both
// engines.
import { beforeEach, describe, expect, it } from 'vitest';
import type { OAuthTokenRecord, OAuthTokenStore } from '../../src/storage/port.js';

const AT = Date.UTC(2026, 4, 1);
const DAY_MS = 24 * 60 * 60 * 1000;

let nextHash = 0;
/** A fresh 64-hex hash, as SHA-256 gives. */
const newHash = () => (++nextHash).toString(16).padStart(64, '0');

function token(overrides: Partial<OAuthTokenRecord> = {}): OAuthTokenRecord {
  return {
    hash: newHash(),
    kind: 'access',
    account: 2,
    userName: 'ann',
    clientId: 'client-1',
    expiresAt: AT + 1800 * 1000,
    ...overrides,
  };
}

export function describeOAuthTokenContract(name: string, open: () => Promise<OAuthTokenStore>) {
  describe(`OAuth token store contract: ${name}`, () => {
    let store: OAuthTokenStore;

    beforeEach(async () => {
      store = await open();
    });

    it('answers a stored token by its kind and hash, every field as stored', async () => {
      const access = token();
      // A refresh token's 100 days in milliseconds since the epoch: more than 32 bits.
      const refresh = token({ kind: 'refresh', expiresAt: AT + 100 * DAY_MS });
      await store.putOAuthToken(access);
      await store.putOAuthToken(refresh);
      expect(await store.getOAuthToken('access', access.hash)).toEqual(access);
      expect(await store.getOAuthToken('refresh', refresh.hash)).toEqual(refresh);
    });

    it('answers null for an unknown hash and for a token of the other kind', async () => {
      const access = token();
      await store.putOAuthToken(access);
      expect(await store.getOAuthToken('access', newHash())).toBeNull();
      expect(await store.getOAuthToken('refresh', access.hash)).toBeNull();
    });

    it('answers an expired token until it is purged, so the caller can say it expired', async () => {
      const expired = token({ expiresAt: AT - 1 });
      await store.putOAuthToken(expired);
      expect(await store.getOAuthToken('access', expired.hash)).toEqual(expired);
    });

    it('purges the tokens expired at or before the cutoff and keeps the others', async () => {
      const before = token({ expiresAt: AT - 1 });
      const at = token({ kind: 'refresh', expiresAt: AT });
      const after = token({ expiresAt: AT + 1 });
      for (const t of [before, at, after]) await store.putOAuthToken(t);
      expect(await store.purgeOAuthTokens(AT)).toBe(2);
      expect(await store.getOAuthToken('access', before.hash)).toBeNull();
      expect(await store.getOAuthToken('refresh', at.hash)).toBeNull();
      expect(await store.getOAuthToken('access', after.hash)).toEqual(after);
      expect(await store.purgeOAuthTokens(AT)).toBe(0);
    });

    it('refuses a second token with a hash already stored, keeping the first', async () => {
      const first = token();
      await store.putOAuthToken(first);
      await expect(store.putOAuthToken({ ...first, userName: 'bo' })).rejects.toThrow();
      expect(await store.getOAuthToken('access', first.hash)).toEqual(first);
    });
  });
}
