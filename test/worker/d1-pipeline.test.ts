// The D1 adapter of the pipeline store, inside workerd on the local D1 database that
// test/worker/setup.ts migrated: the shared pipeline storage contract, unchanged.
import { env } from 'cloudflare:workers';
import { openD1PipelineStore } from '../../src/storage/d1.js';
import { describePipelineStoreContract } from '../storage/pipeline-contract.js';

const PIPELINE_TABLES = [
  'pipeline_accounts',
  'pipeline_snapshots',
  'pipeline_runs',
  'pipeline_run_rules',
  'pipeline_parked',
  'pipeline_parked_events',
  'pipeline_notifications',
];

describePipelineStoreContract('d1', async () => {
  // The database outlives a test: each test starts from empty pipeline tables.
  await env.DB.batch(PIPELINE_TABLES.map((table) => env.DB.prepare(`DELETE FROM ${table}`)));
  return openD1PipelineStore(env.DB);
});
