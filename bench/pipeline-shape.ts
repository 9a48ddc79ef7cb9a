// The pipeline at production shape: the engine (`itsm-rules serve --api-url`) and the API
// (`itsm-rules itsm-server`) as SEPARATE processes, and all-in-one (`serve` alone), each beside
// its floor: the same writes made directly against a bare `itsm-server` process (no engine, no
// webhook) with the same client concurrency. The rule raises each high-impact incident (a PATCH)
// and then calls an outside endpoint (an `http` action to a receiver in this process), so the
// moment a change is finished is the moment that call arrives; the floor makes the same create,
// PATCH and call itself.
//   throughput: `writers` concurrent loops create N incidents spread over the accounts; changes/s
//     until every call has arrived, against the floor's create + PATCH + call per incident.
//   latency: creates sent at half the floor's rate (open loop); p50/p99 from each create's answer
//     (the write committed) to its call's arrival.
//   slow API: the API given 100 ms of added latency per call (`--faults latency=100ms`), one
//     account, many distinct objects: changes/s (objects are processed concurrently).
//   npx tsx bench/pipeline-shape.ts [--incidents 400] [--writers 16] [--accounts 1,10,100,1000]
//     [--shapes separate,all-in-one] [--slow-incidents 200] [--cpu-prof DIR (each child's profile)]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type CliChild, callJson, startCli } from './processes.js';
import { percentile } from './stats.js';

const KEY = 'bench-key';
const APP = 'bench';
/** The engine's --object-concurrency. */
let objectConcurrency = '8';
/** With --cpu-prof: where each child (`serve`, `itsm-server`) writes its CPU profile as it exits. */
let profileDir: string | undefined;
/** Node's own arguments for each child: its CPU profile with --cpu-prof. */
const nodeArgs = () => (profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []);

const rule = (hook: string) => `
description: The benchmark's rule, a PATCH and a call per high-impact incident.
on:
  type: incident
  events: [add]
when: {"==": [{var: object.impact}, high]}
then:
  - update: {priority: critical}
  - http:
      url: ${hook}
      method: POST
      headers:
        Content-Type: application/json
      body: {id: {var: object.id}}
`;

/** The outside endpoint the rule calls: when each incident's call arrived. */
async function startHook() {
  const arrivals = new Map<string, number>();
  let waiter: { count: number; resolve: () => void } | null = null;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const { id } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: string };
      if (!arrivals.has(id)) arrivals.set(id, performance.now());
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
      if (waiter && arrivals.size >= waiter.count) waiter.resolve();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    host: `127.0.0.1:${port}`,
    arrivals,
    /** Resolves once `count` distinct incidents have been called for (fails after 5 minutes). */
    until(count: number): Promise<void> {
      if (arrivals.size >= count) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`only ${arrivals.size} of ${count} calls arrived`)),
          300_000,
        );
        waiter = {
          count,
          resolve: () => {
            clearTimeout(timer);
            waiter = null;
            resolve();
          },
        };
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const call = (method: string, url: string, body?: unknown) =>
  callJson(method, url, { Authorization: `APIKey ${KEY}` }, body);

const INCIDENT = { impact: 'high', urgency: 'low', priority: 'low', description: 'bench' };

/** Runs `count` tasks over `writers` concurrent loops. */
async function loops(count: number, writers: number, task: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(writers, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

interface System {
  /** Where writes go (/v1). */
  api: string;
  hook: Awaited<ReturnType<typeof startHook>>;
  stop(): Promise<void>;
}

async function startSystem(
  shape: 'separate' | 'all-in-one' | 'floor',
  options: { faults?: string; accounts: number },
): Promise<System> {
  const hook = await startHook();
  const rulesDir = mkdtempSync(join(tmpdir(), 'bench-shape-'));
  writeFileSync(join(rulesDir, 'raise-and-call.yaml'), rule(hook.url));
  const common = ['--db', ':memory:', '--api-key', KEY, '--app-id', APP, '--port', '0'];
  const faults = options.faults ? ['--faults', options.faults] : [];
  const children: CliChild[] = [];
  const engineFlags = [
    '--rules',
    rulesDir,
    '--http-allow',
    hook.host,
    '--no-schedules',
    '--reload-interval',
    '0',
    '--object-concurrency',
    objectConcurrency,
  ];
  let api: string;
  if (shape === 'all-in-one') {
    const engine = await startCli(['serve', ...common, ...engineFlags, ...faults], {}, nodeArgs());
    children.push(engine);
    api = `${engine.url}/v1`;
  } else {
    const server = await startCli(['itsm-server', ...common, ...faults], {}, nodeArgs());
    children.push(server);
    api = `${server.url}/v1`;
    if (shape === 'separate') {
      const engine = await startCli(
        ['serve', ...common, ...engineFlags, '--api-url', api],
        {},
        nodeArgs(),
      );
      children.push(engine);
      await call('POST', `${api}/applications/${APP}/webhooks`, {
        url: `${engine.url}/webhooks/kloudless`,
      });
    }
  }
  return {
    api,
    hook,
    async stop() {
      for (const child of children) child.process.kill('SIGTERM');
      await hook.close();
      rmSync(rulesDir, { recursive: true, force: true });
    },
  };
}

const accountOf = (i: number, accounts: number, round: number) =>
  1 + round * 10_000 + (i % accounts);

/** The floor: create, PATCH and call, made directly; changes per second. */
async function floorRate(system: System, n: number, writers: number, accounts: number) {
  const started = performance.now();
  await loops(n, writers, async (i) => {
    const account = accountOf(i, accounts, 0);
    const created = await call(
      'POST',
      `${system.api}/accounts/${account}/itsm/incidents`,
      INCIDENT,
    );
    await call('PATCH', `${system.api}/accounts/${account}/itsm/incidents/${created.id}`, {
      priority: 'critical',
    });
    await call('POST', system.hook.url, { id: `${account}/${created.id}` });
  });
  return n / ((performance.now() - started) / 1000);
}

/** The pipeline: creates only; changes per second until every rule's call has arrived. */
async function pipelineRate(system: System, n: number, writers: number, accounts: number) {
  const before = system.hook.arrivals.size;
  const started = performance.now();
  await loops(n, writers, async (i) => {
    await call(
      'POST',
      `${system.api}/accounts/${accountOf(i, accounts, 1)}/itsm/incidents`,
      INCIDENT,
    );
  });
  await system.hook.until(before + n);
  return n / ((performance.now() - started) / 1000);
}

/** Creates sent at `rate` per second; the time from each create's answer to its call's arrival. */
async function latencies(system: System, n: number, rate: number, accounts: number) {
  const answered = new Map<string, number>();
  const before = system.hook.arrivals.size;
  const interval = 1000 / rate;
  const started = performance.now();
  const sends: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const due = started + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const account = accountOf(i, accounts, 2);
    sends.push(
      call('POST', `${system.api}/accounts/${account}/itsm/incidents`, INCIDENT).then((created) => {
        answered.set(String(created.id), performance.now());
      }),
    );
  }
  await Promise.all(sends);
  await system.hook.until(before + n);
  const samples: number[] = [];
  for (const [id, at] of answered) {
    const arrived = system.hook.arrivals.get(id);
    if (arrived !== undefined) samples.push(Math.max(0, arrived - at));
  }
  return { p50: percentile(samples, 0.5), p99: percentile(samples, 0.99) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      incidents: { type: 'string', default: '400' },
      writers: { type: 'string', default: '16' },
      accounts: { type: 'string', default: '1,10,100,1000' },
      shapes: { type: 'string', default: 'separate,all-in-one' },
      'slow-incidents': { type: 'string', default: '200' },
      'object-concurrency': { type: 'string', default: '8' },
      'cpu-prof': { type: 'string' },
    },
  });
  objectConcurrency = values['object-concurrency'];
  profileDir = values['cpu-prof'];
  const n = Number(values.incidents);
  const writers = Number(values.writers);
  const accountCounts = values.accounts.split(',').map(Number);
  const shapes = values.shapes.split(',').filter(Boolean) as ('separate' | 'all-in-one')[];

  console.log(
    `pipeline at production shape: ${n} incidents, ${writers} concurrent writers, --object-concurrency ${objectConcurrency}; every system in child processes; figures taken on a shared, busy machine (compare the ratios)`,
  );
  console.log(
    '| shape | accounts | floor changes/s | pipeline changes/s | of floor | p50 ms at half floor | p99 ms |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const shape of shapes) {
    for (const accounts of accountCounts) {
      const floor = await startSystem('floor', { accounts });
      let floorChanges: number;
      try {
        floorChanges = await floorRate(floor, n, writers, accounts);
      } finally {
        await floor.stop();
      }
      const system = await startSystem(shape, { accounts });
      try {
        const changes = await pipelineRate(system, n, writers, accounts);
        const { p50, p99 } = await latencies(
          system,
          Math.max(50, n / 2),
          floorChanges / 2,
          accounts,
        );
        console.log(
          `| ${shape} | ${accounts} | ${floorChanges.toFixed(0)} | ${changes.toFixed(0)} | ${(changes / floorChanges).toFixed(2)}x | ${p50.toFixed(0)} | ${p99.toFixed(0)} |`,
        );
      } finally {
        await system.stop();
      }
    }
  }

  // The API answers every call 100 ms late: one account, distinct objects.
  const slow = Number(values['slow-incidents']);
  const faults = 'latency=100ms';
  const floor = await startSystem('floor', { accounts: 1, faults });
  let floorChanges: number;
  try {
    floorChanges = await floorRate(floor, slow, writers, 1);
  } finally {
    await floor.stop();
  }
  const system = await startSystem('separate', { accounts: 1, faults });
  try {
    const changes = await pipelineRate(system, slow, writers, 1);
    console.log(
      `\nAPI with 100 ms added per call, 1 account, ${slow} distinct incidents, separate processes: ${changes.toFixed(1)} changes/s (target >= 20); floor (${writers} writers) ${floorChanges.toFixed(1)} changes/s`,
    );
  } finally {
    await system.stop();
  }
}

await main();
