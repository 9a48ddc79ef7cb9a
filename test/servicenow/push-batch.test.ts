// Pushes that arrive together are read together (found by bench/connector.ts: each push was one
// read of its own, feed steps run one at a time, so a busy Business Rule was served at a few
// pushes a second). The instance is the Table API face on 127.0.0.1 over real HTTP, in the test
// process so that the test can slow its first list and count the lists that follow with
// scripted faults: while the first push's read is in flight, nine more arrive; they are read by
// one list call, and each push still answers the event its record appended.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { eventually } from '../helpers/eventually.js';
import { callHttp, startTestItsm, type TestItsm } from '../helpers/itsm.js';

const PUSH_SECRET = 'push-secret-0123456789';
const LIST = { method: 'GET', path: '/api/now/table/incident' };
let face: TestItsm;
let connector: TestItsm;

beforeEach(async () => {
  face = await startTestItsm({
    faults: {},
    tableApi: {
      users: [
        { name: 'integration', password: 's3cret', account: 1 },
        { name: 'ann', password: 'pw', account: 1 },
      ],
    },
  });
  connector = await startTestItsm({
    servicenow: {
      instanceUrl: face.url,
      auth: { kind: 'basic', username: 'integration', password: 's3cret' },
      pollIntervalMs: 0,
      pushSecret: PUSH_SECRET,
    },
  });
});

afterEach(async () => {
  await connector.close();
  await face.close();
});

it('reads the records pushed while a read is in flight with one list call, each push answering its event', async () => {
  const sysIds: string[] = [];
  for (let i = 0; i < 10; i++) {
    const made = await callHttp(face.url, 'POST', '/api/now/table/incident', {
      auth: `Basic ${btoa('ann:pw')}`,
      body: { short_description: `pushed ${i}` },
    });
    sysIds.push(made.json.result.sys_id);
  }
  // The first list is slow; every later list is counted (a scripted fault of 1 ms each).
  face.itsm.faults?.inject({ ...LIST, latencyMs: 300 });
  face.itsm.faults?.inject({ ...LIST, latencyMs: 1, times: 100 });
  const push = (sysId: string) =>
    connector.call('POST', '/servicenow/push', {
      auth: `Bearer ${PUSH_SECRET}`,
      body: { table: 'incident', sys_id: sysId },
    });
  const first = push(sysIds[0] as string);
  // The first read is in flight once the slow list has been taken.
  await eventually(
    () => (face.itsm.faults?.pending() ?? 0) <= 100,
    'the first push to be read with a list call',
    10_000,
  );
  const answers = await Promise.all([first, ...sysIds.slice(1).map(push)]);

  expect(answers.map((a) => [a.status, a.json.events])).toEqual(sysIds.map(() => [200, 1]));
  // The slow list and one more, for the nine pushed meanwhile.
  expect(100 - (face.itsm.faults?.pending() ?? 0)).toBe(1);
  const events = await connector.call('GET', '/v1/accounts/1/events?cursor=0&page_size=100');
  const added = events.json.objects
    .filter((e: { type: string; metadata: { type: string } }) => e.metadata.type === 'incident')
    .map((e: { metadata: { id: string } }) => e.metadata.id);
  expect(added.sort()).toEqual(sysIds.map((id) => `incident.${id}`).sort());
});
