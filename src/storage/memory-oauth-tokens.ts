// The Table API face's OAuth tokens in memory, for a server whose store keeps none (a store with
// no database of its own): tokens last as long as the process. Same contract as the SQL adapters
// (test/storage/oauth-token-contract.ts), keyed by hash as they are, never by the token.
import type { OAuthTokenRecord, OAuthTokenStore } from './port.js';

export function createMemoryOAuthTokenStore(): OAuthTokenStore {
  const tokens = new Map<string, OAuthTokenRecord>();
  return {
    async putOAuthToken(token) {
      if (tokens.has(token.hash))
        throw new Error('an OAuth token with this hash is stored already');
      tokens.set(token.hash, { ...token });
    },
    async getOAuthToken(kind, hash) {
      const token = tokens.get(hash);
      return token && token.kind === kind ? { ...token } : null;
    },
    async purgeOAuthTokens(expiredBy) {
      let purged = 0;
      for (const [hash, token] of tokens) {
        if (token.expiresAt <= expiredBy) {
          tokens.delete(hash);
          purged++;
        }
      }
      return purged;
    },
  };
}
