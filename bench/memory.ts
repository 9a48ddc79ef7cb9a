// Memory under sustained load: the all-in-one engine on a file database (as `npm start` runs it)
// takes API writes until 100k events have been written and processed, and prints its RSS and
// heap (after a full collection) at each tenth, beside the figure at 50k: with nothing growing
// per event, the second half stays flat (target: RSS at 100k within 10% of RSS at 50k). Half the
// incidents are high impact, which the benchmark's rule answers with a PATCH (an event of its
// own, drained as an echo), so every create is 1.5 events. The server runs in a child process
// (with --expose-gc); the load comes from this one, over HTTP, spread over a few accounts.
//   npx tsx bench/memory.ts [--events 100000] [--accounts 10] [--connections 16]
import { once } from 'node:events';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { forkSelf } from './processes.js';

const KEY = 'bench-key';
const RULE = `
description: The benchmark's rule, one PATCH per high-impact incident.
on:
  type: incident
  events: [add]
when: {"==": [{var: object.impact}, high]}
then:
  - update: {priority: critical}
`;

interface Sample {
  rss: number;
  heapUsed: number;
  external: number;
  dbBytes: number;
}

async function serve(): Promise<void> {
  const { startEngine } = await import('../src/runtime/engine.js');
  const dir = mkdtempSync(join(tmpdir(), 'bench-memory-'));
  writeFileSync(join(dir, 'raise.yaml'), RULE);
  const db = join(dir, 'itsm.db');
  const engine = await startEngine({
    port: 0,
    host: '127.0.0.1',
    rulesDir: dir,
    db,
    apiKey: KEY,
    appId: 'bench',
    reloadIntervalMs: 0,
    schedules: false,
    log: () => {},
  });
  const fileBytes = (path: string) => {
    try {
      return statSync(path).size;
    } catch {
      return 0;
    }
  };
  process.on('message', async (message: { kind: string }) => {
    if (message.kind !== 'sample') return;
    // Settled first: every notified account drained, so that work in flight is not counted.
    await engine.idle();
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    gc?.();
    const usage = process.memoryUsage();
    const sample: Sample = {
      rss: usage.rss,
      heapUsed: usage.heapUsed,
      external: usage.external,
      dbBytes: fileBytes(db) + fileBytes(`${db}-wal`),
    };
    process.send?.({ kind: 'sample', sample });
  });
  process.on('SIGTERM', async () => {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
  process.send?.({ kind: 'ready', url: engine.url });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '100000' },
      accounts: { type: 'string', default: '10' },
      connections: { type: 'string', default: '16' },
    },
  });
  const events = Number(values.events);
  const accounts = Number(values.accounts);
  const connections = Number(values.connections);
  const creates = Math.ceil(events / 1.5);

  const { child, ready } = await forkSelf<{ url: string }>(
    import.meta.url,
    ['--serve'],
    ['--expose-gc'],
  );
  const sample = async (): Promise<Sample> => {
    child.send({ kind: 'sample' });
    for (;;) {
      const [message] = (await once(child, 'message')) as [{ kind: string; sample: Sample }];
      if (message.kind === 'sample') return message.sample;
    }
  };
  const headers = { Authorization: `APIKey ${KEY}`, 'Content-Type': 'application/json' };
  let next = 0;
  const createUntil = async (count: number) => {
    const loop = async () => {
      while (next < count) {
        const i = next++;
        const account = 1 + (i % accounts);
        const response = await fetch(`${ready.url}/v1/accounts/${account}/itsm/incidents`, {
          method: 'POST',
          headers,
          body: JSON.stringify({
            impact: i % 2 === 0 ? 'high' : 'low',
            urgency: 'low',
            description: `memory bench ${i}`,
          }),
        });
        await response.arrayBuffer();
        if (!response.ok) throw new Error(`create ${i} failed: ${response.status}`);
      }
    };
    await Promise.all(Array.from({ length: connections }, loop));
  };

  const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)}`;
  try {
    const started = performance.now();
    const rows: { events: number; sample: Sample; seconds: number }[] = [];
    for (let tenth = 1; tenth <= 10; tenth++) {
      await createUntil(Math.round((creates * tenth) / 10));
      rows.push({
        events: Math.round((events * tenth) / 10),
        sample: await sample(),
        seconds: (performance.now() - started) / 1000,
      });
    }
    const half = rows[4]?.sample as Sample;
    console.log(
      `memory: all-in-one engine, file database, ${events} events (${creates} creates over ${accounts} accounts, half of them PATCHed by a rule), ${connections} connections; RSS and heap after a full collection, once every notified account is drained`,
    );
    console.log(
      '| events | s | RSS MB | of RSS at 50% | heap used MB | external MB | database + WAL MB |',
    );
    console.log(
      '| ------ | - | ------ | ------------- | ------------ | ----------- | ----------------- |',
    );
    for (const { events: n, sample: s, seconds } of rows) {
      console.log(
        `| ${n} | ${seconds.toFixed(0)} | ${mb(s.rss)} | ${((100 * s.rss) / half.rss).toFixed(0)}% | ${mb(s.heapUsed)} | ${mb(s.external)} | ${mb(s.dbBytes)} |`,
      );
    }
    const last = rows.at(-1)?.sample as Sample;
    console.log(
      `RSS at ${events} events is ${((100 * last.rss) / half.rss).toFixed(0)}% of RSS at ${events / 2} (target 90-110%)`,
    );
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
}

if (process.argv.includes('--serve')) await serve();
else await main();
