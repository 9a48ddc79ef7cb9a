// A write through the connector lands once on the instance, whatever happens to its answer
// (found by the soak over the connector: the engine's retried creates opened a second problem,
// and retried PATCHes wrote every escalation twice into the instance's history). The instance is
// the Table API face on 127.0.0.1 over real HTTP, in the test process so that the test can script
// its faults: the write applied and then answered 500, or applied and its connection cut; and the
// retry of a create, under the same Idempotency-Key, after the connector could not learn that its
// insert had landed.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { startTestItsm, type TestItsm } from '../helpers/itsm.js';

let face: TestItsm;
let connector: TestItsm;
const INSERT = { method: 'POST', path: '/api/now/table/incident' };

beforeEach(async () => {
  face = await startTestItsm({
    faults: {},
    tableApi: { users: [{ name: 'integration', password: 's3cret', account: 1 }] },
  });
  connector = await startTestItsm({
    servicenow: {
      instanceUrl: face.url,
      auth: { kind: 'basic', username: 'integration', password: 's3cret' },
      pollIntervalMs: 0,
      retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 },
    },
  });
});

afterEach(async () => {
  await connector.close();
  await face.close();
});

/** The incidents the instance holds (read on the face's own /v1). */
async function incidentsOnInstance(): Promise<string[]> {
  const listed = await face.call('GET', '/v1/accounts/1/itsm/incidents');
  expect(listed.status).toBe(200);
  return listed.json.objects.map((o: { description?: string }) => o.description);
}

const create = (key: string) =>
  connector.call('POST', '/v1/accounts/1/itsm/incidents', {
    body: { description: 'switch down', impact: 'high' },
    headers: { 'Idempotency-Key': key },
  });

it.each([
  ['answered 500 after the insert was applied', { status: 500 as const, afterWrite: true }],
  ['cut off after the insert was applied', { drop: true }],
])('makes one record when the insert is %s', async (_, fault) => {
  face.itsm.faults?.inject({ ...INSERT, ...fault });
  const made = await create('create-once-1');
  expect(made.status, made.text).toBe(201);
  expect(face.itsm.faults?.pending()).toBe(0);
  expect(await incidentsOnInstance()).toEqual(['switch down']);
  expect(connector.logs.join('\n')).toMatch(/its record [0-9a-f]{32} is there: taken as written/);
  // The answer is the record on the instance, and a replay of the key gives it again.
  const again = await create('create-once-1');
  expect(again.json.id).toBe(made.json.id);
});

it('makes no second record when a create is retried under its key after its insert landed unseen', async () => {
  // The insert lands but is answered 500, and the connector's look for it fails too: the
  // client gets a 503 and retries with the same Idempotency-Key.
  face.itsm.faults?.inject({ ...INSERT, status: 500, afterWrite: true });
  face.itsm.faults?.inject({
    method: 'GET',
    path: /^\/api\/now\/table\/incident\//,
    status: 500,
    times: 2,
  });
  const failed = await create('create-once-2');
  expect(failed.status, failed.text).toBe(503);
  expect(await incidentsOnInstance()).toEqual(['switch down']);

  const retried = await create('create-once-2');
  expect(retried.status, retried.text).toBe(201);
  expect(await incidentsOnInstance()).toEqual(['switch down']);
  // A create under another key is another record.
  expect((await create('create-once-3')).status).toBe(201);
  expect(await incidentsOnInstance()).toHaveLength(2);
});

it.each([
  ['answered 500 after it was applied', { status: 500 as const, afterWrite: true }],
  ['cut off after it was applied', { drop: true }],
])('applies an update once when its PATCH is %s', async (_, fault) => {
  const made = await create('update-once');
  face.itsm.faults?.inject({ method: 'PATCH', path: /^\/api\/now\/table\/incident\//, ...fault });
  const updated = await connector.call('PATCH', `/v1/accounts/1/itsm/incidents/${made.json.id}`, {
    body: { priority: 'critical' },
  });
  expect(updated.status, updated.text).toBe(200);
  expect(updated.json.priority).toBe('critical');
  expect(face.itsm.faults?.pending()).toBe(0);
  // The instance's own history: the insert and one update, not two.
  const events = await face.call('GET', '/v1/accounts/1/events?page_size=100');
  const ofIncident = events.json.objects.filter(
    (e: { metadata: { type: string } }) => e.metadata.type === 'incident',
  );
  expect(ofIncident.map((e: { type: string }) => e.type)).toEqual(['add', 'update']);
  expect(connector.logs.join('\n')).toMatch(/had landed before its answer was lost; not repeated/);
});
