// The D1 adapter of the connector's local state (src/storage/d1.ts, openD1ItsmStore), inside
// workerd on the local D1 database that test/worker/setup.ts migrated: the contract SQLite runs
// too (test/storage/connector-local.test.ts), over the same SQL (src/storage/sql-itsm.ts); and
// what only this adapter says: it keeps no objects, so any object read or write is refused by
// name rather than answered from an empty table.
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { D1ObjectsUnsupportedError, openD1ItsmStore } from '../../src/storage/d1.js';
import { describeConnectorLocalContract } from '../storage/connector-local-contract.js';

const LOCAL_TABLES = [
  'events',
  'accounts',
  'idempotency_keys',
  'webhooks',
  'upstream_versions',
  'feed_watermarks',
];

describeConnectorLocalContract('d1', async () => {
  // The database outlives a test: each test starts from empty tables.
  await env.DB.batch(LOCAL_TABLES.map((table) => env.DB.prepare(`DELETE FROM ${table}`)));
  return openD1ItsmStore(env.DB);
});

describe('the D1 ITSM store', () => {
  const store = openD1ItsmStore(env.DB);
  const object = {
    account: 1,
    id: 'incident.x',
    type: 'incident' as const,
    rawType: null,
    upstreamId: 'x',
    number: 'INC0010001',
    fields: {},
    extra: {},
    created: '2026-05-04T10:00:00Z',
    modified: '2026-05-04T10:00:00Z',
    version: 1,
  };
  const event = {
    account: 1,
    type: 'add' as const,
    action: 'insert',
    modified: '2026-05-04T10:00:00Z',
    ip: null,
    userId: null,
    metadata: {},
  };

  it.each([
    ['getObject', () => store.getObject(1, 'incident.x')],
    ['listObjects', () => store.listObjects({ account: 1, type: 'incident', offset: 0, limit: 1 })],
    ['nextCounter', () => store.nextCounter(1, 'INC')],
    ['a create', () => store.commit({ write: { kind: 'create', object }, event, retention: 10 })],
    [
      'an upstream write without its mark',
      () => store.commit({ write: { kind: 'upstream' }, event, retention: 10 }),
    ],
  ])('refuses %s: the objects live in the instance', async (_what, call) => {
    const refused = call();
    await expect(refused).rejects.toThrow(D1ObjectsUnsupportedError);
    await expect(refused).rejects.toThrow(/belongs to the ServiceNow instance/);
  });
});
