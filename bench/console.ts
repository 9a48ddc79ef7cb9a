// The operator console's pages with 100k run records in the database: the time to answer each
// page (server-side render included, as a browser would ask for it) beside the JSON API's answer
// to the same query (/runs, /runs/:id) in the same run. The engine runs in a child process on a
// SQLite file filled beforehand (runs spread over the last 24 hours, 5000 incidents, 10 rules,
// each run looking at 3 of them, one in 50 failed by its call; 8 accounts, 60 parked objects); requests come one at a time from this process. Target: every
// page under 200 ms (median). Medians and p95 of `--requests` per page.
//   npx tsx bench/console.ts [--runs 100000] [--requests 30]
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from './stats.js';

const KEY = 'bench-key';
const RULES = 10;
const OBJECTS = 5000;
const ACCOUNTS = 8;
/** Parked objects: more than the 50 the overview lists. */
const PARKED = 60;
const HOUR = 60 * 60 * 1000;

const ruleText = (i: number) => `
description: Benchmark rule ${i}.
on:
  type: incident
  events: [add, update]
when: {"==": [{var: object.description}, "bench ${i}"]}
then:
  - update: {priority: critical}
`;

function objectId(i: number): string {
  return `bench-incident-${String(i).padStart(6, '0')}-${'x'.repeat(40)}`;
}
const objectNumber = (i: number) => `INC${String(10_000 + i).padStart(7, '0')}`;

/** Fills a database file with `count` runs, spread over the last 24 hours (in the child). */
async function fill(db: string, count: number): Promise<void> {
  const { loadMigrations } = await import('../src/runtime/node.js');
  const { openSqliteDatabase } = await import('../src/storage/sqlite.js');
  const { createSqlitePipelineStore } = await import('../src/storage/sqlite-pipeline.js');
  const database = openSqliteDatabase(db, loadMigrations());
  const store = createSqlitePipelineStore({ database });
  const now = Date.now();
  const insert = database.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const object = i % OBJECTS;
      const looked = [0, 1, 2].map((k) => `rule-${(i + k * 3) % RULES}`);
      const outcome = i % 50 === 0 ? 'failed' : i % 3 === 0 ? 'done' : 'no_match';
      const verdicts = Object.fromEntries(
        looked.map((rule, k) => [
          rule,
          // As the engine records it: a rule whose call failed matched (the call's outcome
          // in detail.calls says it failed).
          k === 0 && outcome !== 'no_match' ? 'matched' : 'no_match',
        ]),
      );
      const detail = {
        event: {
          id: String(i),
          type: 'update',
          account: 1 + (i % 8),
          at: new Date(now).toISOString(),
          user_id: null,
        },
        rules: looked.map((rule) => ({
          ruleId: rule,
          file: `rules/${rule}.yaml`,
          verdict: verdicts[rule],
          ...(verdicts[rule] === 'no_match' && {
            reason: 'the condition (when) is false',
            details: [
              `/when: {"==":[{"var":"object.impact"},"level-x"]} is false, because {"var":"object.impact"} is "high"`,
            ],
          }),
        })),
        calls:
          outcome === 'no_match'
            ? []
            : [
                {
                  index: 0,
                  ruleId: looked[0],
                  action: 0,
                  kind: 'api',
                  summary: `update incident ${objectId(object)}: {"priority":"critical"}`,
                  outcome: outcome === 'failed' ? 'failed' : 'done',
                  earlier: false,
                  status: outcome === 'failed' ? 422 : 200,
                  objectId: objectId(object),
                  detail: null,
                  ms: 12,
                },
              ],
        notes: [],
        changes: [
          { field: 'impact', before: 'low', after: 'high' },
          { field: 'description', before: 'x'.repeat(200), after: 'y'.repeat(200) },
        ],
      };
      void store.saveRun({
        key: `e:${1 + (i % 8)}:${i}`,
        account: 1 + (i % 8),
        eventId: String(i),
        eventType: 'update',
        objectType: 'incident',
        objectId: objectId(object),
        objectNumber: objectNumber(object),
        selfHops: 0,
        outcome,
        rules: outcome === 'no_match' ? [] : [looked[0] as string],
        verdicts: verdicts as Record<string, 'matched' | 'no_match' | 'failed'>,
        summary:
          outcome === 'no_match'
            ? 'no rule matched (3 looked at)'
            : `matched ${looked[0]}; 1 call done`,
        detail: JSON.stringify(detail),
        // Oldest first, up to a minute ago: the whole day's window is full.
        at: now - 24 * HOUR + Math.floor(((i + 1) / count) * (24 * HOUR - 60_000)),
      });
    }
  });
  for (let from = 0; from < count; from += 10_000) insert(from, Math.min(count, from + 10_000));
  // What the overview lists beside the charts: every account notified, and parked work (more
  // than the 50 it shows, each looked up for its number), none due during the benchmark.
  for (let account = 1; account <= ACCOUNTS; account++) {
    await store.noteNotification(account, now - 60_000);
  }
  for (let k = 0; k < PARKED; k++) {
    const account = 1 + (k % ACCOUNTS);
    const object = (k * 7) % OBJECTS;
    await store.park(
      {
        account,
        objectId: objectId(object),
        objectType: 'incident',
        parkedAt: now - (k + 1) * 60_000,
        attempts: 3,
        nextAt: now + 24 * HOUR,
        error: 'POST https://desk.example.com/hook answered 503',
      },
      [
        {
          account,
          objectId: objectId(object),
          eventId: `parked-${k}`,
          body: JSON.stringify({ id: `parked-${k}`, metadata: { id: objectId(object) } }),
          at: now - (k + 1) * 60_000,
        },
      ],
    );
  }
  database.close();
}

async function serve(db: string, rulesDir: string, count: number): Promise<void> {
  await fill(db, count);
  const { startEngine } = await import('../src/runtime/engine.js');
  const engine = await startEngine({
    port: 0,
    host: '127.0.0.1',
    rulesDir,
    db,
    apiKey: KEY,
    appId: 'bench',
    reloadIntervalMs: 0,
    schedules: false,
    log: () => {},
  });
  process.send?.({ url: engine.url });
}

async function timeRequests(
  url: string,
  headers: Record<string, string>,
  requests: number,
): Promise<{ median: number; p95: number; bytes: number }> {
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < requests + 3; i++) {
    const started = performance.now();
    const response = await fetch(url, { headers, redirect: 'manual' });
    const body = await response.arrayBuffer();
    const ms = performance.now() - started;
    if (response.status !== 200) throw new Error(`${url}: ${response.status}`);
    bytes = body.byteLength;
    // The first few warm the JIT and SQLite's page cache.
    if (i >= 3) times.push(ms);
  }
  const sorted = [...times].sort((a, b) => a - b);
  return { median: median(times), p95: sorted[Math.floor(sorted.length * 0.95)] ?? 0, bytes };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '100000' },
      requests: { type: 'string', default: '30' },
      serve: { type: 'string' },
      rules: { type: 'string' },
    },
  });
  const count = Number(values.runs);
  if (values.serve && values.rules) return serve(values.serve, values.rules, count);
  const requests = Number(values.requests);
  const dir = mkdtempSync(join(tmpdir(), 'bench-console-'));
  const rulesDir = join(dir, 'rules');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(rulesDir);
  for (let i = 0; i < RULES; i++) writeFileSync(join(rulesDir, `rule-${i}.yaml`), ruleText(i));
  const db = join(dir, 'engine.db');
  console.log(
    `console: filling ${count} run records, then starting the engine in a child process...`,
  );
  const child = fork(
    fileURLToPath(import.meta.url),
    ['--serve', db, '--rules', rulesDir, '--runs', String(count)],
    {
      execArgv: ['--import', 'tsx'],
    },
  );
  try {
    const [message] = (await Promise.race([
      once(child, 'message'),
      once(child, 'exit').then(() => {
        throw new Error('the engine process exited before it was ready (see above)');
      }),
    ])) as [{ url: string }];
    const base = message.url;
    const signIn = await fetch(`${base}/console/sign-in`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: base },
      body: new URLSearchParams({ key: KEY }).toString(),
    });
    const cookie = (signIn.headers.get('Set-Cookie') ?? '').split(';')[0] as string;
    const page = { Cookie: cookie };
    const api = { Authorization: `APIKey ${KEY}` };
    const newest = (await (await fetch(`${base}/runs?page_size=1`, { headers: api })).json()) as {
      objects: { id: number }[];
    };
    const runId = newest.objects[0]?.id ?? 1;
    const object = 1234;
    const rows: [string, string, string | null][] = [
      // No database read: what the busy machine costs any page, beside the pages below.
      ['sign-in page (the floor: no database read)', '/console/sign-in', null],
      ['overview (24 h of rule activity, failing, 8 accounts, 60 parked)', '/', null],
      ['runs, first page of 50', '/console/runs', '/runs?page_size=50'],
      [
        'runs of one incident by number',
        `/console/runs?object=${objectNumber(object)}`,
        `/runs?object_id=${objectId(object)}&page_size=50`,
      ],
      [
        'runs of one rule that failed',
        '/console/runs?rule=rule-3&outcome=failed',
        '/runs?rule_id=rule-3&outcome=failed&page_size=50',
      ],
      ['live rows (nothing new)', `/console/runs/rows?after=${runId}`, '/runs?page_size=50'],
      ['one run', `/console/runs/${runId}`, `/runs/${runId}`],
      [
        'an incident timeline',
        `/console/objects/${objectId(object)}?account=1`,
        `/runs?object_id=${objectId(object)}&page_size=100`,
      ],
      ['rules (10, with counts and last match)', '/console/rules', null],
      ['one rule', '/console/rules/rule-3', '/runs?rule_id=rule-3&page_size=20'],
    ];
    console.log(
      `\n${count} run records; ${requests} requests per page, one at a time; medians (p95)\n`,
    );
    console.log('| page | console | JSON API, same query | ratio | under 200 ms |');
    console.log('| --- | --- | --- | --- | --- |');
    for (const [name, path, baseline] of rows) {
      const ui = await timeRequests(`${base}${path}`, page, requests);
      const json = baseline ? await timeRequests(`${base}${baseline}`, api, requests) : null;
      const ms = (t: { median: number; p95: number }) =>
        `${t.median.toFixed(1)} ms (${t.p95.toFixed(1)})`;
      console.log(
        `| ${name} | ${ms(ui)} | ${json ? ms(json) : '-'} | ${json ? `${(ui.median / json.median).toFixed(2)}x` : '-'} | ${ui.median < 200 ? 'yes' : 'NO'} |`,
      );
    }
  } finally {
    child.kill();
    await once(child, 'exit').catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
