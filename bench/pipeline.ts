// End to end, all-in-one: changes per second from an API write to the rule's finished action
// (webhook, drain, fetch, rules, PATCH, run record), beside the floor: the same API calls (the
// create and the PATCH the rule makes) made directly against an embedded API with no engine,
// with the same concurrency (one sequence per account, as the engine drains one account at a
// time). Servers run in a child process; the load comes from this one. Medians of rounds.
//   npx tsx bench/pipeline.ts [--incidents 400] [--accounts 8] [--rounds 3]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { callJson, forkSelf, metricValue, waitUntil } from './processes.js';
import { median } from './stats.js';

const KEY = 'bench-key';
const RULE = `
description: The benchmark's rule, one PATCH per matching incident.
on:
  type: incident
  events: [add]
when: {"==": [{var: object.impact}, high]}
then:
  - update: {priority: critical}
`;

async function serve(accounts: number): Promise<void> {
  const { startEngine } = await import('../src/runtime/engine.js');
  const { startItsmServer } = await import('../src/runtime/node.js');
  const rulesDir = mkdtempSync(join(tmpdir(), 'bench-rules-'));
  writeFileSync(join(rulesDir, 'raise.yaml'), RULE);
  const plain = await startItsmServer({
    port: 0,
    host: '127.0.0.1',
    db: ':memory:',
    apiKey: KEY,
    appId: 'bench',
    log: () => {},
  });
  const engine = await startEngine({
    port: 0,
    host: '127.0.0.1',
    rulesDir,
    db: ':memory:',
    apiKey: KEY,
    appId: 'bench',
    concurrency: accounts,
    reloadIntervalMs: 0,
    schedules: false,
    log: () => {},
  });
  process.on('exit', () => rmSync(rulesDir, { recursive: true, force: true }));
  process.send?.({ floor: `${plain.url}/v1`, engine: engine.url });
}

const call = (method: string, url: string, body?: unknown) =>
  callJson(method, url, { Authorization: `APIKey ${KEY}` }, body);

const incident = { impact: 'high', urgency: 'low', priority: 'low', description: 'bench' };

/** Seconds to create `perAccount` incidents in each account and PATCH each, one sequence per account. */
async function floor(api: string, accounts: number[], perAccount: number): Promise<number> {
  const started = performance.now();
  await Promise.all(
    accounts.map(async (account) => {
      for (let i = 0; i < perAccount; i++) {
        const created = await call('POST', `${api}/accounts/${account}/itsm/incidents`, incident);
        await call('PATCH', `${api}/accounts/${account}/itsm/incidents/${created.id}`, {
          priority: 'critical',
        });
      }
    }),
  );
  return (performance.now() - started) / 1000;
}

const actionsDone = (engine: string) =>
  metricValue(engine, KEY, 'itsm_rules_actions_total{outcome="done"}');

/** Seconds from the first create until the engine has made every PATCH. */
async function pipeline(engine: string, accounts: number[], perAccount: number): Promise<number> {
  const before = await actionsDone(engine);
  const expected = before + accounts.length * perAccount;
  const started = performance.now();
  await Promise.all(
    accounts.map(async (account) => {
      for (let i = 0; i < perAccount; i++) {
        await call('POST', `${engine}/v1/accounts/${account}/itsm/incidents`, incident);
      }
    }),
  );
  await waitUntil(async () => (await actionsDone(engine)) >= expected, 'every PATCH of the engine');
  return (performance.now() - started) / 1000;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      incidents: { type: 'string', default: '400' },
      accounts: { type: 'string', default: '8' },
      rounds: { type: 'string', default: '3' },
    },
  });
  const accountCount = Number(values.accounts);
  const perAccount = Math.max(1, Math.round(Number(values.incidents) / accountCount));
  const total = perAccount * accountCount;
  const rounds = Number(values.rounds);

  const { child, ready: urls } = await forkSelf<{ floor: string; engine: string }>(
    import.meta.url,
    ['--serve', String(accountCount)],
  );
  try {
    const floors: number[] = [];
    const pipes: number[] = [];
    for (let round = 0; round < rounds; round++) {
      // Fresh accounts each round: every round starts from empty event logs.
      const accounts = Array.from({ length: accountCount }, (_, i) => 1 + round * 100 + i);
      floors.push(await floor(urls.floor, accounts, perAccount));
      pipes.push(await pipeline(urls.engine, accounts, perAccount));
    }
    const floorRate = total / median(floors);
    const pipeRate = total / median(pipes);
    console.log(
      `end to end: ${total} incidents over ${accountCount} accounts, median of ${rounds} rounds (servers in a child process)`,
    );
    console.log('|                                        | changes/s | events/s | of floor |');
    console.log('| -------------------------------------- | --------- | -------- | -------- |');
    console.log(`| floor: create + PATCH made directly      | ${floorRate.toFixed(0)} |  |  |`);
    console.log(
      `| pipeline: create -> webhook -> PATCH     | ${pipeRate.toFixed(0)} | ${(2 * pipeRate).toFixed(0)} | ${((100 * pipeRate) / floorRate).toFixed(0)}% (target >= 70%) |`,
    );
  } finally {
    child.kill('SIGTERM');
  }
}

const serveAt = process.argv.indexOf('--serve');
if (serveAt >= 0) await serve(Number(process.argv[serveAt + 1] ?? 8));
else await main();
