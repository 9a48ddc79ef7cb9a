// The pipeline at production shape: the engine (`itsm-rules serve --api-url`) and the API
// (`itsm-rules itsm-server`) as SEPARATE processes, and all-in-one (`serve` alone), each beside
// its floor. The rule raises each high-impact incident (a PATCH) and then calls an outside
// endpoint (an `http` action to a receiver in this process), so the moment a change is finished
// is the moment that call arrives.
//   floor: the same work made directly against a bare `itsm-server` process (no engine, no
//     webhook): `writers` loops make the creates, as in the pipeline, and as each create answers,
//     its PATCH (with an Idempotency-Key and the engine's acting user, as the engine sends it)
//     and then its call are made by `writers` more loops, so no writer waits on a PATCH or call
//     (bench/README.md says why this is the fair upper bound).
//   throughput: `writers` concurrent loops create N incidents spread over the accounts; changes/s
//     until every call has arrived.
//   latency: creates sent at half the floor's rate (open loop); p50/p99 from each create's answer
//     (the write committed) to its call's arrival.
//   slow API: the API given 100 ms of added latency per call (`--faults latency=100ms`), one
//     account, many distinct objects: changes/s (objects are processed concurrently).
//   The load's own calls go over node:http with kept-alive connections (createJsonClient), not
//   fetch, so that the client takes as little as it can of the CPU the systems share with it.
//   npx tsx bench/pipeline-shape.ts [--incidents 400] [--writers 16] [--accounts 1,10,100,1000]
//     [--shapes separate,all-in-one] [--slow-incidents 200] [--cpu-prof DIR (each child's profile)]
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLimiter } from '../src/itsm/limiter.js';
import { DEFAULT_OBJECT_CONCURRENCY } from '../src/webhook/drain.js';
import { type CliChild, createJsonClient, startCli } from './processes.js';
import { median, percentile } from './stats.js';

const KEY = 'bench-key';
const APP = 'bench';
/** The engine's --object-concurrency: the product's default unless given. */
let objectConcurrency = String(DEFAULT_OBJECT_CONCURRENCY);
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

// Sockets per origin: the writers, the floor's actors and the latency phase's open loop.
const client = createJsonClient({ Authorization: `APIKey ${KEY}` }, 256);
const call = client.call;
/** The engine's acting user (its default `--as-user`): the floor's PATCH is made as the engine's. */
const ENGINE_USER = 'itsm-rules';

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
  /** CPU time so far (ms, user + system) of the API's process and the engine's (0 if none). */
  cpu(): { api: number; engine: number };
  stop(): Promise<void>;
}

/** A child's CPU time so far, ms (Linux /proc; 0 elsewhere). */
function cpuMsOf(child: CliChild | undefined): number {
  if (!child?.process.pid) return 0;
  try {
    const stat = readFileSync(`/proc/${child.process.pid}/stat`, 'utf8');
    // After the command name in parentheses: state is field 3, utime 14 and stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}
/** USER_HZ, the unit of /proc's CPU times: 100 on every Linux this runs on. */
const CLOCK_TICKS = 100;

/** The load's own CPU time so far, ms. */
const loadCpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

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
  let apiProcess: CliChild | undefined;
  let engineProcess: CliChild | undefined;
  if (shape === 'all-in-one') {
    const engine = await startCli(['serve', ...common, ...engineFlags, ...faults], {}, nodeArgs());
    children.push(engine);
    api = `${engine.url}/v1`;
    engineProcess = engine;
  } else {
    const server = await startCli(['itsm-server', ...common, ...faults], {}, nodeArgs());
    children.push(server);
    api = `${server.url}/v1`;
    apiProcess = server;
    if (shape === 'separate') {
      const engine = await startCli(
        ['serve', ...common, ...engineFlags, '--api-url', api],
        {},
        nodeArgs(),
      );
      children.push(engine);
      engineProcess = engine;
      await call('POST', `${api}/applications/${APP}/webhooks`, {
        url: `${engine.url}/webhooks/kloudless`,
      });
    }
  }
  return {
    api,
    hook,
    cpu: () => ({ api: cpuMsOf(apiProcess), engine: cpuMsOf(engineProcess) }),
    async stop() {
      for (const child of children) child.process.kill('SIGTERM');
      await hook.close();
      rmSync(rulesDir, { recursive: true, force: true });
    },
  };
}

interface Cpu {
  api: number;
  engine: number;
  load: number;
}

/** Runs `measure` and adds the CPU time per change it took (us) of each process to `into`. */
async function withCpu(
  system: System,
  changes: number,
  into: Cpu[],
  measure: () => Promise<number>,
): Promise<number> {
  const before = { ...system.cpu(), load: loadCpuMs() };
  const result = await measure();
  const after = { ...system.cpu(), load: loadCpuMs() };
  const per = (ms: number) => (ms * 1000) / changes;
  into.push({
    api: per(after.api - before.api),
    engine: per(after.engine - before.engine),
    load: per(after.load - before.load),
  });
  return result;
}

/**
 * The most changes/s the machine's cores could give the pipeline at the CPU per change it took,
 * were no process ever waiting (every core busy with it and its load), and that as a share of the
 * floor's measured rate: a ceiling no scheduling can pass, only doing less work per change.
 */
function describeBound(rounds: Cpu[], floorChanges: number): string {
  const perChange = median(rounds.map((r) => r.api + r.engine + r.load));
  const bound = (availableParallelism() * 1e6) / perChange;
  return `${bound.toFixed(0)} (${(bound / floorChanges).toFixed(2)}x)`;
}

function describeCpu(rounds: Cpu[]): string {
  const of = (part: keyof Cpu) => median(rounds.map((r) => r[part])).toFixed(0);
  const engine = rounds.some((r) => r.engine > 0) ? `, ${of('engine')}` : '';
  const api = rounds.some((r) => r.api > 0) ? `${of('api')}${engine}` : of('engine');
  return `${api}, ${of('load')}`;
}

const accountOf = (i: number, accounts: number, round: number) =>
  1 + round * 10_000 + (i % accounts);

/**
 * The floor: the creates, PATCHes and calls the pipeline causes, made directly; changes per
 * second. `writers` loops create (as the pipeline's writers do) and never wait for anything
 * else; each created incident's PATCH and then its call (one after the other, as the rule's
 * actions are) are taken by `writers` more loops as soon as its create has answered.
 */
async function floorRate(
  system: System,
  n: number,
  writers: number,
  accounts: number,
  round: number,
) {
  const started = performance.now();
  // `writers` more loops' worth of PATCH-then-call, taken in the order the creates answered.
  const actors = createLimiter(writers);
  const acts: Promise<unknown>[] = [];
  await loops(n, writers, async (i) => {
    const account = accountOf(i, accounts, round);
    const { id } = await call('POST', `${system.api}/accounts/${account}/itsm/incidents`, INCIDENT);
    const act = actors.run(async () => {
      await call(
        'PATCH',
        `${system.api}/accounts/${account}/itsm/incidents/${id}`,
        { priority: 'critical' },
        { 'Idempotency-Key': `floor-${account}-${id}`, 'X-Kloudless-As-User': ENGINE_USER },
      );
      await call('POST', system.hook.url, { id: `${account}/${id}` });
    });
    // Awaited below, once every create is made; marked handled meanwhile.
    act.catch(() => {});
    acts.push(act);
  });
  await Promise.all(acts);
  return n / ((performance.now() - started) / 1000);
}

/** The pipeline: creates only; changes per second until every rule's call has arrived. */
async function pipelineRate(
  system: System,
  n: number,
  writers: number,
  accounts: number,
  round: number,
) {
  const before = system.hook.arrivals.size;
  const started = performance.now();
  await loops(n, writers, async (i) => {
    await call(
      'POST',
      `${system.api}/accounts/${accountOf(i, accounts, round)}/itsm/incidents`,
      INCIDENT,
    );
  });
  await system.hook.until(before + n);
  return n / ((performance.now() - started) / 1000);
}

/** Creates sent at `rate` per second; the time from each create's answer to its call's arrival. */
async function latencies(system: System, n: number, rate: number, accounts: number, round: number) {
  const answered = new Map<string, number>();
  const before = system.hook.arrivals.size;
  const interval = 1000 / rate;
  const started = performance.now();
  const sends: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const due = started + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const account = accountOf(i, accounts, round);
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
      'object-concurrency': { type: 'string', default: String(DEFAULT_OBJECT_CONCURRENCY) },
      rounds: { type: 'string', default: '3' },
      'warm-up': { type: 'string' },
      'cpu-prof': { type: 'string' },
    },
  });
  objectConcurrency = values['object-concurrency'];
  profileDir = values['cpu-prof'];
  const n = Number(values.incidents);
  const writers = Number(values.writers);
  const accountCounts = values.accounts.split(',').map(Number);
  const shapes = values.shapes.split(',').filter(Boolean) as ('separate' | 'all-in-one')[];
  const rounds = Number(values.rounds);
  // Two runs' worth: after one, V8 was still optimising (the floor's first round ran at about
  // half its later rate).
  const warmUp = Number(values['warm-up'] ?? 2 * n);

  console.log(
    `pipeline at production shape: ${n} incidents, ${writers} concurrent writers, --object-concurrency ${objectConcurrency}; every system in child processes; ${warmUp} incidents of warm-up, then ${rounds} rounds alternating floor and pipeline (medians; the ratio is the median of each round's ratio)`,
  );
  console.log(
    '| shape | accounts | floor changes/s | pipeline changes/s | of floor | each round | p50 ms at half floor | p99 ms |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  const cpuRows: string[] = [];
  for (const shape of shapes) {
    for (const accounts of accountCounts) {
      // Both systems stay up for the whole row: each round measures one and then the other, so
      // the machine's drift (it is shared) falls on both, and both run with their code warm.
      const floor = await startSystem('floor', { accounts });
      const system = await startSystem(shape, { accounts }).catch(async (error: unknown) => {
        await floor.stop();
        throw error;
      });
      try {
        // Round 0 is the warm-up: V8 has optimised neither process's code at first, and a cold
        // start is no deployment's steady state (it cost the floor about half its rate).
        if (warmUp > 0) {
          await floorRate(floor, warmUp, writers, accounts, 0);
          await pipelineRate(system, warmUp, writers, accounts, 0);
        }
        const floors: number[] = [];
        const pipelines: number[] = [];
        const ratios: number[] = [];
        const floorCpu: Cpu[] = [];
        const pipelineCpu: Cpu[] = [];
        for (let round = 1; round <= rounds; round++) {
          const floorChanges = await withCpu(floor, n, floorCpu, () =>
            floorRate(floor, n, writers, accounts, round),
          );
          const changes = await withCpu(system, n, pipelineCpu, () =>
            pipelineRate(system, n, writers, accounts, round),
          );
          floors.push(floorChanges);
          pipelines.push(changes);
          ratios.push(changes / floorChanges);
        }
        const floorChanges = median(floors);
        cpuRows.push(
          `| ${shape} | ${accounts} | ${describeCpu(pipelineCpu)} | ${describeCpu(floorCpu)} | ${describeBound(pipelineCpu, floorChanges)} |`,
        );
        const { p50, p99 } = await latencies(
          system,
          Math.max(50, n / 2),
          floorChanges / 2,
          accounts,
          rounds + 1,
        );
        console.log(
          `| ${shape} | ${accounts} | ${floorChanges.toFixed(0)} | ${median(pipelines).toFixed(0)} | ${median(ratios).toFixed(2)}x | ${ratios.map((r) => r.toFixed(2)).join(', ')} | ${p50.toFixed(0)} | ${p99.toFixed(0)} |`,
        );
      } finally {
        await system.stop();
        await floor.stop();
      }
    }
  }

  console.log(
    "\nCPU time per change, medians of the rounds (us, user + system): API process, engine process (all-in-one: both in it), the load (this process: writers, the hook, the floor's PATCHes and calls)",
  );
  console.log(
    `| shape | accounts | pipeline: API, engine, load | floor: API, load | the ${availableParallelism()} cores' ceiling for the pipeline: changes/s (of floor) |`,
  );
  console.log('| --- | --- | --- | --- | --- |');
  for (const row of cpuRows) console.log(row);

  // The API answers every call 100 ms late: one account, distinct objects.
  const slow = Number(values['slow-incidents']);
  if (slow === 0) return;
  const faults = 'latency=100ms';
  const floor = await startSystem('floor', { accounts: 1, faults });
  let floorChanges: number;
  try {
    floorChanges = await floorRate(floor, slow, writers, 1, 0);
  } finally {
    await floor.stop();
  }
  const system = await startSystem('separate', { accounts: 1, faults });
  try {
    const changes = await pipelineRate(system, slow, writers, 1, 0);
    console.log(
      `\nAPI with 100 ms added per call, 1 account, ${slow} distinct incidents, separate processes: ${changes.toFixed(1)} changes/s (target >= 20); floor (${writers} writers) ${floorChanges.toFixed(1)} changes/s`,
    );
  } finally {
    await system.stop();
  }
}

try {
  await main();
} finally {
  client.close();
}
