// A small load measurement of the Worker run locally by wrangler (`npm run dev:worker`) against
// the embedded ITSM API (`itsm-rules itsm-server --webhook http://127.0.0.1:8787/webhooks/kloudless`):
//   1. notifications/s the receiver accepts: autocannon POSTs one signed notification over and
//      over (each answer 200 only after a D1 write and a Queue send), for --seconds;
//   2. events/s drained: --events incidents created in a fresh account through the API (which
//      notifies the Worker after each write), timed until the Worker's /metrics count them all.
// Figures are for this machine and wrangler's local simulation of D1 and Queues, not Cloudflare's.
//
//   tsx scripts/measure-worker.ts [--worker URL] [--api URL] [--key KEY] [--seconds N] [--events N]
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { signBody } from '../src/itsm/signature.js';

const { values } = parseArgs({
  options: {
    worker: { type: 'string', default: 'http://127.0.0.1:8787' },
    api: { type: 'string', default: 'http://127.0.0.1:8788/v1' },
    key: { type: 'string', default: 'dev-api-key' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '10' },
    events: { type: 'string', default: '500' },
  },
});
const worker = String(values.worker);
const api = String(values.api);
const key = String(values.key);
const auth = { Authorization: `APIKey ${key}` };

async function processedEvents(): Promise<number> {
  const text = await (await fetch(`${worker}/metrics`, { headers: auth })).text();
  let total = 0;
  for (const match of text.matchAll(/^itsm_rules_events_processed_total\{[^}]*\} (\d+)/gm)) {
    total += Number(match[1]);
  }
  return total;
}

async function measureReceiver(account: number): Promise<void> {
  const body = JSON.stringify({ account, subscription: 1 });
  const result = await autocannon({
    url: `${worker}/webhooks/kloudless`,
    method: 'POST',
    connections: Number(values.connections),
    duration: Number(values.seconds),
    headers: {
      'Content-Type': 'application/json',
      'X-Kloudless-Signature': await signBody(body, key),
    },
    body,
  });
  console.log(
    `receiver: ${result.requests.average.toFixed(0)} notifications/s accepted (mean over ${values.seconds} s, ${values.connections} connections); latency p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms; ${result['2xx']} answered 2xx, ${result.non2xx} other, ${result.errors} errors`,
  );
}

async function measureDrain(account: number): Promise<void> {
  const count = Number(values.events);
  const before = await processedEvents();
  const started = performance.now();
  let next = 0;
  // Eight writers at once, as fast as the API takes them.
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < count) {
        next++;
        const response = await fetch(`${api}/accounts/${account}/itsm/incidents`, {
          method: 'POST',
          headers: { ...auth, 'Content-Type': 'application/json' },
          body: JSON.stringify({ description: `load ${next}`, impact: 'low', urgency: 'low' }),
        });
        if (response.status !== 201) throw new Error(`create answered ${response.status}`);
      }
    }),
  );
  const created = performance.now();
  for (;;) {
    if ((await processedEvents()) - before >= count) break;
    if (performance.now() - created > 300_000) throw new Error('not drained within 5 minutes');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const done = performance.now();
  console.log(
    `drain: ${count} events (one incident add each, evaluated against the rules, no match) in ${((done - started) / 1000).toFixed(1)} s from the first create: ${(count / ((done - started) / 1000)).toFixed(0)} events/s; the API took the creates at ${(count / ((created - started) / 1000)).toFixed(0)}/s; the last event was done ${((done - created) / 1000).toFixed(1)} s after the last create`,
  );
}

const base = 100_000 + Math.floor(Math.random() * 100_000);
await measureReceiver(base);
await measureDrain(base + 1);
