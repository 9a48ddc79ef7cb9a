// `--faults` on the command line (a testing aid): `itsm-rules itsm-server` and `itsm-rules serve`
// (all-in-one) started as child processes on 127.0.0.1, each fault kind observed over real HTTP,
// the counters read back from GET /_faults, bad specs refused with exit 2 naming the bad part,
// and writes made exactly once under dropped connections and applied-then-failed writes when
// the client repeats them with the same Idempotency-Key.
import { afterEach, describe, expect, it } from 'vitest';
import { createItsmClient } from '../src/itsm/client.js';
import {
  type CliProcess,
  spawnCli,
  spawnItsmServer,
  spawnServe,
  writeRules,
} from './helpers/serve.js';

const TIMEOUT = 30_000;
const KEY = 'faults-cli-key';
const INCIDENTS = '/v1/accounts/1/itsm/incidents';

const running: CliProcess[] = [];
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const cli of running.splice(0)) await cli.stop('SIGKILL');
  for (const cleanup of cleanups.splice(0)) cleanup();
});

async function itsmServer(faults: string) {
  const cli = await spawnItsmServer([
    '--port',
    '0',
    '--db',
    ':memory:',
    '--api-key',
    KEY,
    '--faults',
    faults,
  ]);
  running.push(cli);
  return cli;
}

function request(base: string, method: string, path: string, body?: unknown) {
  return fetch(`${base}${path}`, {
    method,
    headers: {
      Authorization: `APIKey ${KEY}`,
      ...(body !== undefined && { 'Content-Type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function counters(base: string) {
  const response = await request(base, 'GET', '/_faults');
  expect(response.status).toBe(200);
  return (await response.json()) as {
    seed: number;
    requests: number;
    faults: number;
    byKind: Record<string, number>;
  };
}

async function total(base: string, path = INCIDENTS): Promise<number> {
  // Reads can be faulted too: try until one is answered.
  for (;;) {
    const response = await request(base, 'GET', path);
    if (response.ok) return ((await response.json()) as { total: number }).total;
  }
}

describe('itsm-rules itsm-server --faults', () => {
  it(
    'answers 500s, says faults are on and logs the seed',
    async () => {
      const server = await itsmServer('500=1,seed=42');
      const answer = await request(server.url, 'GET', INCIDENTS);
      expect(answer.status).toBe(500);
      expect(await answer.json()).toMatchObject({ error_code: 'internal_error' });
      expect(server.stderr()).toContain('fault injection is on (a testing aid)');
      expect(server.stderr()).toContain('seed=42');
      expect((await counters(server.url)).byKind.status500).toBe(1);
    },
    TIMEOUT,
  );

  it(
    'answers 429s with the Retry-After it was given',
    async () => {
      const server = await itsmServer('429=100%,retry-after=3');
      const answer = await request(server.url, 'GET', INCIDENTS);
      expect(answer.status).toBe(429);
      expect(answer.headers.get('retry-after')).toBe('3');
      expect((await counters(server.url)).byKind.status429).toBe(1);
    },
    TIMEOUT,
  );

  it(
    'adds latency to the share of requests it was told',
    async () => {
      const server = await itsmServer('latency=5ms,latency-rate=0.5,seed=1');
      for (let i = 0; i < 20; i++)
        expect((await request(server.url, 'GET', INCIDENTS)).ok).toBe(true);
      const seen = await counters(server.url);
      expect(seen.requests).toBe(20);
      expect(seen.byKind.latency).toBeGreaterThan(0);
      expect(seen.byKind.latency).toBeLessThan(20);
    },
    TIMEOUT,
  );

  it(
    'applies a write and then answers 500 (after-write)',
    async () => {
      const server = await itsmServer('after-write=1');
      const answer = await request(server.url, 'POST', INCIDENTS, { description: 'applied' });
      expect(answer.status).toBe(500);
      expect(((await answer.json()) as { message: string }).message).toContain('applied');
      expect(await total(server.url)).toBe(1);
      expect((await counters(server.url)).byKind.afterWrite).toBe(1);
    },
    TIMEOUT,
  );

  it(
    'applies a write and then cuts the connection (drop): a network error, not an answer',
    async () => {
      const server = await itsmServer('drop=1');
      const error = await request(server.url, 'POST', INCIDENTS, { description: 'applied' })
        .then((response) => response.text())
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TypeError);
      expect(await total(server.url)).toBe(1);
      expect((await counters(server.url)).byKind.drop).toBe(1);
      // The process survives its dropped connections.
      expect(server.child.exitCode).toBeNull();
    },
    TIMEOUT,
  );

  it(
    'takes the spec from ITSM_FAULTS',
    async () => {
      const server = await spawnItsmServer(['--port', '0', '--db', ':memory:', '--api-key', KEY], {
        ITSM_FAULTS: '500=1,seed=5',
      });
      running.push(server);
      expect((await request(server.url, 'GET', INCIDENTS)).status).toBe(500);
      expect((await counters(server.url)).seed).toBe(5);
    },
    TIMEOUT,
  );

  it(
    'is off without the flag: no faults and no /_faults',
    async () => {
      const server = await spawnItsmServer(['--port', '0', '--db', ':memory:', '--api-key', KEY]);
      running.push(server);
      expect((await request(server.url, 'GET', INCIDENTS)).status).toBe(200);
      expect((await request(server.url, 'GET', '/_faults')).status).toBe(404);
      expect(server.stderr()).not.toContain('fault injection');
    },
    TIMEOUT,
  );
});

describe('bad --faults specs are usage errors naming the bad part', () => {
  it.each([
    [
      'itsm-server',
      ['--faults', '500=2'],
      {},
      '--faults: "500=2": 500 must be a share from 0 to 1',
    ],
    ['itsm-server', ['--faults', 'flaky=0.1'], {}, '--faults: "flaky=0.1": unknown fault "flaky"'],
    [
      'itsm-server',
      [],
      { ITSM_FAULTS: 'latency=soon' },
      '"latency=soon": latency must be a duration',
    ],
    [
      'serve',
      ['--faults', '500=0.1,seed=x'],
      {},
      '--faults: "seed=x": seed must be a whole number',
    ],
    ['serve', ['--faults', '500=0.7,429=0.7'], {}, '--faults: 500 + 429 must be at most 1'],
    [
      'serve',
      ['--faults', '500=0.1', '--api-url', 'http://127.0.0.1:9/v1', '--api-key', KEY],
      {},
      '--faults works on the embedded API only (all-in-one); it cannot be used with --api-url',
    ],
  ])(
    '%s %j %j exits 2',
    async (command, args, env, says) => {
      const cli = spawnCli([command, '--port', '0', '--db', ':memory:', ...args], env);
      running.push(cli);
      const exit = await cli.exited;
      expect(exit.code).toBe(2);
      expect(cli.stderr()).toContain(says);
      expect(cli.stderr()).toContain(`\nRun 'itsm-rules ${command} --help' for usage.\n`);
    },
    TIMEOUT,
  );
});

describe('itsm-rules serve --faults (all-in-one)', () => {
  it(
    'writes once per Idempotency-Key under drops and applied-then-failed writes',
    async () => {
      const rules = writeRules({});
      cleanups.push(rules.remove);
      const serve = await spawnServe([
        '--port',
        '0',
        '--db',
        ':memory:',
        '--api-key',
        KEY,
        '--rules',
        rules.dir,
        '--no-schedules',
        '--faults',
        'after-write=0.3,drop=0.3,500=0.05,429=0.05,retry-after=0,seed=7',
      ]);
      running.push(serve);
      expect(serve.stderr()).toContain('seed=7');
      const client = createItsmClient({
        baseUrl: `${serve.url}/v1`,
        auth: { apiKey: KEY },
        retry: { maxAttempts: 30, baseDelayMs: 1, maxDelayMs: 5 },
      });

      const ids: string[] = [];
      for (let i = 0; i < 30; i++) {
        const made = await client.create(
          1,
          'incident',
          { description: `#${i}` },
          { idempotencyKey: `once-${i}` },
        );
        ids.push(made.id);
      }

      const seen = await counters(serve.url);
      expect(seen.byKind.drop).toBeGreaterThan(0);
      expect(seen.byKind.afterWrite).toBeGreaterThan(0);
      const listed: { id: string; description: string }[] = [];
      for await (const incident of client.list(1, 'incident', { pageSize: 100 })) {
        listed.push(incident as { id: string; description: string });
      }
      expect(listed.map((o) => o.description).sort()).toEqual(
        Array.from({ length: 30 }, (_, i) => `#${i}`).sort(),
      );
      expect(listed.map((o) => o.id).sort()).toEqual([...ids].sort());
    },
    TIMEOUT,
  );
});
