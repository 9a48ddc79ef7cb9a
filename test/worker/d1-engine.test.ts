// The D1 adapter of the engine store, inside workerd on the local D1 database that
// test/worker/setup.ts migrated: the shared engine storage contract, unchanged.
import { env } from 'cloudflare:workers';
import { openD1EngineStore } from '../../src/storage/d1.js';
import { describeEngineStoreContract } from '../storage/engine-contract.js';

const ENGINE_TABLES = ['engine_correlations', 'engine_once', 'engine_plans', 'engine_effects'];

describeEngineStoreContract('d1', async () => {
  // The database outlives a test: each test starts from empty engine tables.
  await env.DB.batch(ENGINE_TABLES.map((table) => env.DB.prepare(`DELETE FROM ${table}`)));
  return openD1EngineStore(env.DB);
});
