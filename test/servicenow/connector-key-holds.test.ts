// Two API servers over one ServiceNow instance, sharing one local database (as Worker isolates
// share one D1 database), each sent the same keyed write at the same moment (a client's retry
// of a request whose first attempt is still in flight landing on the other server). Over the
// connector the write reaches the instance before the commit that stores its key, so without a
// hold across servers both would find no record and both write upstream. The instance is the
// Table API face on 127.0.0.1 over real HTTP; its own event log counts the writes it took.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/runtime/node.js';
import type { ItsmStore } from '../../src/storage/port.js';
import { startTestItsm, type TestItsm } from '../helpers/itsm.js';

let dir: string;
let face: TestItsm;
let servers: TestItsm[];
let stores: ItsmStore[];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'itsm-key-holds-'));
  face = await startTestItsm({
    faults: {},
    tableApi: { users: [{ name: 'integration', password: 's3cret', account: 1 }] },
  });
  const db = join(dir, 'local.sqlite');
  // Two connections to one file: two servers that share nothing in memory.
  stores = [openSqliteStore(db), openSqliteStore(db)];
  servers = [];
  for (const store of stores) {
    servers.push(
      await startTestItsm({
        store,
        servicenow: {
          instanceUrl: face.url,
          auth: { kind: 'basic', username: 'integration', password: 's3cret' },
          pollIntervalMs: 0,
          retry: { maxAttempts: 1, baseDelayMs: 5, maxDelayMs: 20 },
        },
      }),
    );
  }
});

afterEach(async () => {
  for (const server of servers) await server.close();
  for (const store of stores) await store.close();
  await face.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The instance's own update events of one incident: one per write it took. */
async function updatesOnInstance(id: string): Promise<number> {
  const events = await face.call('GET', '/v1/accounts/1/events?page_size=1000');
  expect(events.status).toBe(200);
  return events.json.objects.filter(
    (event: { type: string; metadata: { id: string } }) =>
      event.type === 'update' && event.metadata.id === id,
  ).length;
}

/** An incident made through the first server: its /v1 id, and its id on the instance's face. */
async function createIncident(description: string): Promise<{ id: string; onInstance: string }> {
  const made = await (servers[0] as TestItsm).call('POST', '/v1/accounts/1/itsm/incidents', {
    body: { description, impact: 'high' },
  });
  expect(made.status, made.text).toBe(201);
  const listed = await face.call('GET', '/v1/accounts/1/itsm/incidents');
  const onInstance = listed.json.objects.find(
    (object: { description?: string }) => object.description === description,
  );
  expect(await updatesOnInstance(onInstance.id)).toBe(0);
  return { id: made.json.id, onInstance: onInstance.id };
}

/**
 * The same keyed PATCH sent to both servers at once, the instance's first PATCH held 300 ms (so
 * both are in flight together) and, given `status`, then refused without being applied.
 */
function patchOnBoth(id: string, key: string, status?: 503) {
  face.itsm.faults?.inject({
    method: 'PATCH',
    path: /^\/api\/now\/table\/incident\//,
    latencyMs: 300,
    ...(status ? { status } : { times: 2 }),
  });
  return Promise.all(
    servers.map((server) =>
      server.call('PATCH', `/v1/accounts/1/itsm/incidents/${id}`, {
        body: { priority: 'critical' },
        headers: { 'Idempotency-Key': key },
      }),
    ),
  );
}

it('writes a request sent to two servers at once under one Idempotency-Key once, and both answer it', async () => {
  const incident = await createIncident('switch down');
  const answers = await patchOnBoth(incident.id, 'escalate-once');
  expect(answers.map((answer) => answer.status)).toEqual([200, 200]);
  expect(answers[1]?.json).toEqual(answers[0]?.json);
  expect(
    answers.filter((answer) => answer.headers.get('Idempotent-Replayed') === 'true'),
  ).toHaveLength(1);
  expect(await updatesOnInstance(incident.onInstance)).toBe(1);
  // The connector's own event log has the write once too.
  const events = await (servers[0] as TestItsm).call('GET', '/v1/accounts/1/events?page_size=1000');
  expect(
    events.json.objects.filter((event: { type: string }) => event.type === 'update'),
  ).toHaveLength(1);
});

it('lets the waiting server write when the one holding the key fails without writing', async () => {
  const incident = await createIncident('printer jam');
  // The first PATCH to reach the instance (the holder's) is refused; the waiter's goes through.
  const answers = await patchOnBoth(incident.id, 'retry-after-failure', 503);
  expect(answers.map((answer) => answer.status).sort()).toEqual([200, 503]);
  expect(await updatesOnInstance(incident.onInstance)).toBe(1);
});
