// `matches` on attacker-controlled text, end to end: `itsm-rules serve` in a child process with a
// rule whose pattern makes a backtracking engine run for years (`^(a+)+$`), fed an incident whose
// description almost matches it. With a linear-time engine the event is evaluated (no match), the
// next event is acted on, and the server keeps answering; with a backtracking one the process
// would hang on the first event, and this test with it until its timeout.
import { afterEach, describe, expect, it } from 'vitest';
import { callHttp, TEST_API_KEY } from '../helpers/itsm.js';
import { type CliProcess, eventually, spawnServe, writeRules } from '../helpers/serve.js';

const TIMEOUT = 60_000;
const RULE = [
  'on: {type: incident, events: [add]}',
  'when: {matches: [{var: object.description}, "^(a+)+$"]}',
  'then:',
  '  - update: {priority: critical}',
].join('\n');

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('matches on hostile text in a running engine', () => {
  it(
    'evaluates a catastrophic pattern on a 10,000-character description without stalling /healthz',
    async () => {
      const rules = writeRules({ 'incident/all-a.yaml': RULE });
      cleanups.push(rules.remove);
      const serve: CliProcess & { url: string } = await spawnServe([
        '--port',
        '0',
        '--db',
        ':memory:',
        '--rules',
        rules.dir,
        '--api-key',
        TEST_API_KEY,
      ]);
      cleanups.push(() => serve.stop('SIGKILL'));
      const create = async (description: string) => {
        const created = await callHttp(serve.url, 'POST', '/v1/accounts/1/itsm/incidents', {
          body: { description, priority: 'low' },
        });
        expect(created.status).toBe(201);
        return (created.json as { id: string }).id;
      };
      const read = async (id: string) =>
        (await callHttp(serve.url, 'GET', `/v1/accounts/1/itsm/incidents/${id}`)).json as {
          priority: string;
        };

      const hostile = await create(`${'a'.repeat(10_000)}b`);
      const plain = await create('a'.repeat(10_000));
      // Events are drained in order: the second is acted on only after the first was evaluated.
      await eventually(
        async () => (await read(plain)).priority === 'critical',
        'the all-a incident to be raised to critical',
      );
      expect((await read(hostile)).priority).toBe('low');
      const health = await callHttp(serve.url, 'GET', '/healthz', { auth: null });
      expect(health.status).toBe(200);
    },
    TIMEOUT,
  );
});
