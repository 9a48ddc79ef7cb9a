// The Table API face's OAuth tokens on D1 (src/storage/d1.ts, openD1ItsmStore's `oauthTokens`),
// inside workerd on the local D1 database that test/worker/setup.ts migrated: the contract
// SQLite and the in-memory store run too (test/storage/oauth-tokens.test.ts), over the same SQL;
// and what D1 is there for: Worker requests land on different isolates, so a token one isolate
// issued must be accepted by another that never saw it. Each "isolate" here is an adapter opened
// on its own over the binding, holding nothing of the others (the adapter keeps no token in
// memory: every lookup is a D1 read).
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/itsm/signature.js';
import { openD1ItsmStore } from '../../src/storage/d1.js';
import type { OAuthTokenStore } from '../../src/storage/port.js';
import { describeOAuthTokenContract } from '../storage/oauth-token-contract.js';

/** The token store of a fresh adapter over the binding, as a new isolate opens it. */
function isolate(): OAuthTokenStore {
  const tokens = openD1ItsmStore(env.DB).oauthTokens;
  if (!tokens) throw new Error('the D1 ITSM store keeps no OAuth tokens');
  return tokens;
}

describeOAuthTokenContract('d1', async () => {
  // The database outlives a test: each test starts from an empty table.
  await env.DB.prepare('DELETE FROM oauth_tokens').run();
  return isolate();
});

describe('OAuth tokens across isolates', () => {
  it('accepts on a later request, in another isolate, the token one isolate issued, from its D1 row', async () => {
    await env.DB.prepare('DELETE FROM oauth_tokens').run();
    const now = Date.UTC(2026, 4, 1);
    const accessToken = 'an-access-token-of-32-random-bytes-in-base64url';
    const issued = {
      hash: await sha256Hex(accessToken),
      kind: 'access' as const,
      account: 1,
      userName: 'ann',
      clientId: 'client-1',
      expiresAt: now + 1800 * 1000,
    };
    await isolate().putOAuthToken(issued);

    // The row holds the hash, never the token.
    const rows = await env.DB.prepare('SELECT * FROM oauth_tokens').all();
    expect(rows.results).toEqual([
      {
        token_hash: issued.hash,
        kind: 'access',
        account: 1,
        user_name: 'ann',
        client_id: 'client-1',
        expires_at: issued.expiresAt,
      },
    ]);
    expect(JSON.stringify(rows.results)).not.toContain(accessToken);

    // Another isolate, holding nothing of the first, finds it by hashing what the client sends.
    expect(await isolate().getOAuthToken('access', await sha256Hex(accessToken))).toEqual(issued);

    // A third isolate's purge after the expiry removes it for everyone.
    expect(await isolate().purgeOAuthTokens(issued.expiresAt)).toBe(1);
    expect(await isolate().getOAuthToken('access', issued.hash)).toBeNull();
  });
});
