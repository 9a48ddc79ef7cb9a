// The D1 adapter of the connector's local state (src/storage/d1.ts, openD1ItsmStore), inside
// workerd on the local D1 database that test/worker/setup.ts migrated: the contract SQLite runs
// too (test/storage/connector-local.test.ts), over the same SQL (src/storage/sql-itsm.ts); and
// what only this adapter says: it keeps no objects, so any object read or write is refused by
// name rather than answered from an empty table.
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { D1ObjectsUnsupportedError, openD1ItsmStore } from '../../src/storage/d1.js';
import { EVENT_COUNT, itsmSql } from '../../src/storage/sql-itsm.js';
import type { SqlStatement } from '../../src/storage/sql-statement.js';
import { describeConnectorLocalContract } from '../storage/connector-local-contract.js';

const LOCAL_TABLES = [
  'events',
  'accounts',
  'idempotency_keys',
  'webhooks',
  'upstream_versions',
  'feed_watermarks',
  // The event count of each account (src/storage/sql-itsm.ts EVENT_COUNT).
  'counters',
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

describe('event retention on D1', () => {
  const store = openD1ItsmStore(env.DB);
  const account = 41;
  let next = 0;
  const report = (retention: number) => {
    const sysId = (++next).toString(16).padStart(32, '0');
    return store.commit({
      write: { kind: 'upstream' },
      event: {
        account,
        type: 'add',
        action: 'insert',
        modified: '2026-05-04T10:00:00Z',
        ip: null,
        userId: null,
        metadata: { id: `incident.${sysId}` },
      },
      upstream: { table: 'incident', sysId, modCount: 0, metadata: { id: `incident.${sysId}` } },
      retention,
    });
  };
  const count = async () =>
    (
      await env.DB.prepare('SELECT value FROM counters WHERE account = ? AND name = ?')
        .bind(account, EVENT_COUNT)
        .first<{ value: number }>()
    )?.value;

  it("keeps the account's event count beside its log, and counts a log written before it once", async () => {
    const seqs: number[] = [];
    for (let i = 0; i < 4; i++) seqs.push((await report(100)).eventSeq);
    expect(await count()).toBe(4);
    // A database from before the count was kept: the first commit counts the log once.
    await env.DB.prepare('DELETE FROM counters WHERE account = ? AND name = ?')
      .bind(account, EVENT_COUNT)
      .run();
    seqs.push((await report(3)).eventSeq);
    expect(await count()).toBe(3);
    const page = await store.listEvents(account, 0, 100);
    expect(page.events.map((e) => e.seq)).toEqual(seqs.slice(-3));
    expect(page.trimmedThrough).toBe(seqs[1]);
  });

  it('reads a handful of rows to trim a full log, not the retention', async () => {
    const big = 42;
    const retention = 300;
    const bind = <A extends unknown[], R>(statement: SqlStatement<A, R>, ...args: A) =>
      env.DB.prepare(statement.text).bind(...statement.values(...args));
    const event = (n: number) => ({
      account: big,
      type: 'add' as const,
      action: 'insert',
      modified: '2026-05-04T10:00:00Z',
      ip: null,
      userId: null,
      metadata: { id: `incident.${n}` },
    });
    await env.DB.batch(
      Array.from({ length: retention }, (_, n) => bind(itsmSql.insertEvent, event(n), false)),
    );
    // The commit's statements after the mark, as d1.ts batches them: the first counts the log.
    const commit = (n: number) =>
      env.DB.batch([
        bind(itsmSql.insertEvent, event(n), false),
        bind(itsmSql.countEventAdded, big),
        bind(itsmSql.countEventsOnce, big),
        bind(itsmSql.markTrimmedByCount, big, retention),
        bind(itsmSql.trimEvents, big),
        bind(itsmSql.countEventsTrimmed, big),
      ]);
    await commit(retention);
    const results = await commit(retention + 1);
    const read = results.slice(1).reduce((sum, result) => sum + (result.meta.rows_read ?? 0), 0);
    expect(read).toBeGreaterThan(0);
    expect(read).toBeLessThan(20);
    const left = await env.DB.prepare('SELECT COUNT(*) AS n FROM events WHERE account = ?')
      .bind(big)
      .first<{ n: number }>();
    expect(left?.n).toBe(retention);
  });
});
