// Runs inside workerd before each Worker test file: applies migrations/ to the test D1 database
// (the same files `wrangler d1 migrations apply` applies). applyD1Migrations is idempotent.
import { applyD1Migrations } from 'cloudflare:test';
import { env } from 'cloudflare:workers';

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
