import { env } from 'cloudflare:workers';
import { expect, it } from 'vitest';

it('runs inside workerd with the migrated D1 database', async () => {
  expect(typeof navigator !== 'undefined' && navigator.userAgent).toBe('Cloudflare-Workers');
  const tables = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all();
  expect(tables.results.map((r) => r.name)).toContain('pipeline_runs');
});
