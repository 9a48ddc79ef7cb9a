// End to end over the connector: from a write on the instance to the engine's action visible on
// the instance, with `itsm-rules serve --servicenow` (the engine all-in-one over the instance,
// its change feed polling) beside the baseline in the same run, the all-in-one embedded engine
// (`serve` with its embedded API, the same rule, writes through /v1). Every process is separate:
// the instance is the Table API face (`itsm-server --sn-user ...`) in its own process, and the
// load and the observer run in this one. The instance (and, for the baseline, the embedded API)
// answers every call `--latency` ms late (`--faults latency=`), as instances are slow.
//   rule: an incident added with high impact is raised to critical (one PATCH).
//   write: over the connector, a Table API POST of an incident as a ServiceNow user; for the
//     baseline, POST /v1/.../incidents. One account, every incident a distinct object.
//   visible: an observer lists the critical incidents on the instance (Table API, the same query
//     on both systems), a new list every `--observe-every` ms, several in flight, so that it
//     sees an action about one interval after it lands whatever the latency.
//   throughput: `--writers` loops create `--incidents` incidents; changes/s until every action
//     is visible. latency: `--latency-incidents` creates sent at `--rate` per second (open loop);
//     p50/p99 from each write's answer (the write committed) to its action being visible.
//   push: the connector once more, with a Business Rule's push after each write (this process
//     posts /servicenow/push, as the rule's async REST call would): the feed reads the record at
//     once instead of at its next poll, which stays on as the safety net at its default, 5 s.
//   npx tsx bench/connector.ts [--incidents 200] [--writers 8] [--latency 100] [--rate 4]
//     [--latency-incidents 40] [--poll-interval 250] [--observe-every 25] [--systems embedded,servicenow,push]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type CliChild, callJson, startCli } from './processes.js';
import { percentile } from './stats.js';

const KEY = 'bench-key';
const APP = 'bench';
const ACCOUNT = 1;
const USER = { name: 'bench-user', password: 'bench-pw' };
const INTEGRATION = { name: 'bench-integration', password: 'bench-integration-pw' };
const PUSH_SECRET = 'bench-push-secret-0123456789';
const RULE = `
description: The benchmark's rule, one PATCH per high-impact incident.
on:
  type: incident
  events: [add]
when: {"==": [{var: object.impact}, high]}
then:
  - update: {priority: critical}
`;

type SystemName = 'embedded' | 'servicenow' | 'push';

interface System {
  name: SystemName;
  /** Makes the `i`-th incident (tagged `token`); resolves once the write is answered. */
  write(token: string): Promise<void>;
  /** The tags of the incidents whose action is visible on the instance. */
  visible(): Promise<string[]>;
  stop(): Promise<void>;
}

const basic = (user: string, password: string) => ({
  Authorization: `Basic ${btoa(`${user}:${password}`)}`,
});

/** The critical incidents' tags, listed through the Table API of `url` with `auth`. */
async function criticalTags(url: string, auth: Record<string, string>): Promise<string[]> {
  const { result } = await callJson<{ result: { description: string }[] }>(
    'GET',
    `${url}/api/now/table/incident?sysparm_query=priority=1&sysparm_fields=description&sysparm_limit=100000`,
    auth,
  );
  return result.map((r) => r.description);
}

async function startSystem(
  name: SystemName,
  options: { latency: number; pollInterval: number },
): Promise<System> {
  const rulesDir = mkdtempSync(join(tmpdir(), 'bench-connector-'));
  writeFileSync(join(rulesDir, 'raise.yaml'), RULE);
  const faults = ['--faults', `latency=${options.latency}ms`];
  const common = ['--db', ':memory:', '--api-key', KEY, '--app-id', APP, '--port', '0'];
  const engineFlags = ['--rules', rulesDir, '--no-schedules', '--reload-interval', '0'];
  const children: CliChild[] = [];
  const stop = async () => {
    for (const child of children.reverse()) await child.stop();
    rmSync(rulesDir, { recursive: true, force: true });
  };
  try {
    if (name === 'embedded') {
      const engine = await startCli(['serve', ...common, ...engineFlags, ...faults]);
      children.push(engine);
      const auth = { Authorization: `APIKey ${KEY}` };
      return {
        name,
        async write(token) {
          await callJson('POST', `${engine.url}/v1/accounts/${ACCOUNT}/itsm/incidents`, auth, {
            impact: 'high',
            urgency: 'low',
            priority: 'low',
            description: token,
          });
        },
        // The application itself on the Table API face of the same store (ACCOUNT:KEY).
        visible: () => criticalTags(engine.url, basic(String(ACCOUNT), KEY)),
        stop,
      };
    }
    const instance = await startCli([
      'itsm-server',
      ...common,
      ...faults,
      ...['--sn-user', `${USER.name}:${USER.password}:${ACCOUNT}`],
      ...['--sn-user', `${INTEGRATION.name}:${INTEGRATION.password}:${ACCOUNT}`],
    ]);
    children.push(instance);
    const engine = await startCli(
      [
        'serve',
        ...common,
        ...engineFlags,
        ...['--servicenow', instance.url, '--sn-account', String(ACCOUNT)],
        ...['--poll-interval', String(name === 'push' ? 5000 : options.pollInterval)],
        ...(name === 'push' ? ['--sn-push-secret', PUSH_SECRET] : []),
      ],
      { ITSM_SN_USERNAME: INTEGRATION.name, ITSM_SN_PASSWORD: INTEGRATION.password },
    );
    children.push(engine);
    const auth = basic(USER.name, USER.password);
    return {
      name,
      async write(token) {
        const { result } = await callJson<{ result: { sys_id: string } }>(
          'POST',
          `${instance.url}/api/now/table/incident`,
          auth,
          {
            short_description: token,
            description: token,
            impact: '1',
            urgency: '3',
            priority: '4',
          },
        );
        // The Business Rule's async REST call: not waited for by the write.
        if (name === 'push') {
          void callJson(
            'POST',
            `${engine.url}/servicenow/push`,
            { Authorization: `Bearer ${PUSH_SECRET}` },
            { table: 'incident', sys_id: result.sys_id },
          ).catch(() => {});
        }
      },
      visible: () => criticalTags(instance.url, auth),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Watches the instance: a new list every `everyMs` (at most 8 in flight), noting when each tag
 * was first seen critical. `until(tags)` resolves once all of them have been seen.
 */
function observe(system: System, everyMs: number) {
  const seen = new Map<string, number>();
  let stopped = false;
  let inFlight = 0;
  let failure: unknown = null;
  const timer = setInterval(() => {
    if (stopped || inFlight >= 8) return;
    inFlight++;
    system
      .visible()
      .then((tags) => {
        const now = performance.now();
        for (const tag of tags) if (!seen.has(tag)) seen.set(tag, now);
      })
      .catch((error) => {
        failure = error;
      })
      .finally(() => {
        inFlight--;
      });
  }, everyMs);
  return {
    seen,
    async until(tags: readonly string[], timeoutMs = 300_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (tags.some((t) => !seen.has(t))) {
        if (failure) throw failure;
        if (Date.now() > deadline) {
          const missing = tags.filter((t) => !seen.has(t)).length;
          throw new Error(
            `${system.name}: ${missing} of ${tags.length} actions never became visible`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}

/** `writers` loops making `n` writes; changes per second until every action is visible. */
async function throughput(
  system: System,
  watcher: ReturnType<typeof observe>,
  n: number,
  writers: number,
) {
  const tags = Array.from({ length: n }, (_, i) => `bench-throughput-${i}`);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(writers, n) }, async () => {
      while (next < n) await system.write(tags[next++] as string);
    }),
  );
  await watcher.until(tags);
  const last = Math.max(...tags.map((t) => watcher.seen.get(t) ?? 0));
  return n / ((last - started) / 1000);
}

/** Writes sent at `rate` per second; p50/p99 from each write's answer to its action visible. */
async function latency(
  system: System,
  watcher: ReturnType<typeof observe>,
  n: number,
  rate: number,
) {
  const tags = Array.from({ length: n }, (_, i) => `bench-latency-${i}`);
  const answered = new Map<string, number>();
  const started = performance.now();
  const sends: Promise<void>[] = [];
  for (const [i, tag] of tags.entries()) {
    const wait = started + (i * 1000) / rate - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    sends.push(system.write(tag).then(() => void answered.set(tag, performance.now())));
  }
  await Promise.all(sends);
  await watcher.until(tags);
  const samples = tags.map((t) => Math.max(0, (watcher.seen.get(t) ?? 0) - (answered.get(t) ?? 0)));
  return { p50: percentile(samples, 0.5), p99: percentile(samples, 0.99) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      incidents: { type: 'string', default: '200' },
      writers: { type: 'string', default: '8' },
      latency: { type: 'string', default: '100' },
      rate: { type: 'string', default: '4' },
      'latency-incidents': { type: 'string', default: '40' },
      'poll-interval': { type: 'string', default: '250' },
      'observe-every': { type: 'string', default: '25' },
      systems: { type: 'string', default: 'embedded,servicenow,push' },
    },
  });
  const n = Number(values.incidents);
  const writers = Number(values.writers);
  const rate = Number(values.rate);
  const latencyN = Number(values['latency-incidents']);
  const options = {
    latency: Number(values.latency),
    pollInterval: Number(values['poll-interval']),
  };
  const systems = values.systems.split(',').filter(Boolean) as SystemName[];
  const label: Record<SystemName, string> = {
    embedded: 'baseline: serve, embedded API (writes on /v1)',
    servicenow: `serve --servicenow, feed polls every ${options.pollInterval} ms`,
    push: 'serve --servicenow, Business Rule push (feed polls every 5 s)',
  };

  console.log(
    `over the connector, end to end: one account, ${n} distinct incidents from ${writers} writers (throughput), ${latencyN} at ${rate}/s (latency); the instance${systems.includes('embedded') ? ' (and the embedded API)' : ''} ${options.latency} ms late per call; every system in child processes; figures taken on a shared, busy machine (compare within the run)`,
  );
  console.log('| system | changes/s | of baseline | p50 ms write to action | p99 ms |');
  console.log('| --- | --- | --- | --- | --- |');
  let baseline: number | null = null;
  for (const name of systems) {
    const system = await startSystem(name, options);
    const watcher = observe(system, Number(values['observe-every']));
    try {
      const changes = await throughput(system, watcher, n, writers);
      const { p50, p99 } = await latency(system, watcher, latencyN, rate);
      if (name === 'embedded') baseline = changes;
      const ratio = baseline ? `${(changes / baseline).toFixed(2)}x` : '';
      console.log(
        `| ${label[name]} | ${changes.toFixed(1)} | ${ratio} | ${p50.toFixed(0)} | ${p99.toFixed(0)} |`,
      );
    } finally {
      watcher.stop();
      await system.stop();
    }
  }
}

await main();
