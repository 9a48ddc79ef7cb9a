// The Table API face's OAuth token store on SQLite (`:memory:`, every migration applied) and in
// memory: the shared contract that D1 runs too (test/worker/d1-oauth-tokens.test.ts).
import { afterAll } from 'vitest';
import { openSqliteStore } from '../../src/runtime/node.js';
import { createMemoryOAuthTokenStore } from '../../src/storage/memory-oauth-tokens.js';
import type { ItsmStore } from '../../src/storage/port.js';
import { describeOAuthTokenContract } from './oauth-token-contract.js';

const opened: ItsmStore[] = [];
afterAll(async () => {
  for (const store of opened) await store.close();
});

describeOAuthTokenContract('sqlite :memory:', async () => {
  const store = openSqliteStore(':memory:');
  opened.push(store);
  if (!store.oauthTokens) throw new Error('the SQLite store keeps no OAuth tokens');
  return store.oauthTokens;
});

describeOAuthTokenContract('memory', async () => createMemoryOAuthTokenStore());
