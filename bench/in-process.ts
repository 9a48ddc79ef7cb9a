// The engine's calls to the embedded API all-in-one: the client over the in-process transport
// (src/itsm/in-process.ts, what `serve` uses with no --api-url) beside the way it called the app
// before, `app.fetch(new Request(...))` with an abort signal per call (the baseline, same run,
// same app and database). Both go through every route, auth check, validation and idempotency
// claim; the difference is the web Request, AbortSignal and body streams. Calls are made one
// after another, as one drain does, rounds alternating between the two; medians of rounds.
//   npx tsx bench/in-process.ts --ms 1000 --rounds 5
import { parseArgs } from 'node:util';
import { getRequestListener } from '@hono/node-server';
import { createItsmClient, type ItsmClient } from '../src/itsm/client.js';
import { createInProcessTransport } from '../src/itsm/in-process.js';
import { openSqliteStore } from '../src/runtime/node.js';
import { createItsmServer } from '../src/server/app.js';
import { median } from './stats.js';

const { values } = parseArgs({
  options: {
    ms: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '5' },
  },
});
const ms = Number(values.ms);
const rounds = Number(values.rounds);

// All-in-one, the engine's server is served by @hono/node-server, which puts its lightweight
// Request and Response in place of the global ones: do the same, so that both figures are those
// of a running engine.
getRequestListener(() => new Response(null));

const store = openSqliteStore(':memory:');
const itsm = createItsmServer({ store, apiKey: 'k', appId: 'a' });
const options = { baseUrl: 'http://127.0.0.1:8787/v1', auth: { apiKey: 'k' } } as const;
const clients: Record<'fetch' | 'in-process', ItsmClient> = {
  fetch: createItsmClient({
    ...options,
    fetch: ((input: string, init?: RequestInit) =>
      itsm.app.fetch(new Request(input, init))) as typeof fetch,
  }),
  'in-process': createItsmClient({ ...options, transport: createInProcessTransport(itsm.app) }),
};

const seed = await clients.fetch.create(1, 'incident', { impact: 'high' });
const cursor = await clients.fetch.latestCursor(2);
let serial = 0;
const calls: Record<string, (client: ItsmClient) => Promise<unknown>> = {
  'GET incident': (client) => client.get(1, 'incident', seed.id),
  'PATCH incident (Idempotency-Key)': (client) =>
    client.update(
      1,
      'incident',
      seed.id,
      { description: `bench ${++serial}` },
      { idempotencyKey: `bench-${serial}` },
    ),
  'GET events (none new)': (client) => client.events(2, { cursor }),
};

/** Calls per second, one after another, for at least `ms`. */
async function rate(call: () => Promise<unknown>): Promise<number> {
  let done = 0;
  const started = performance.now();
  const until = started + ms;
  while (performance.now() < until) {
    await call();
    done++;
  }
  return done / ((performance.now() - started) / 1000);
}

console.log(
  `engine -> embedded API in one process, calls one after another, median of ${rounds} x ${ms} ms, node ${process.version}`,
);
console.log(
  `${'call'.padEnd(34)} ${'fetch(new Request)'.padStart(18)} ${'in-process'.padStart(12)}`,
);
for (const [name, call] of Object.entries(calls)) {
  for (const client of Object.values(clients)) await rate(() => call(client)); // warm-up
  const figures: Record<string, number[]> = { fetch: [], 'in-process': [] };
  for (let i = 0; i < rounds; i++) {
    for (const [which, client] of Object.entries(clients)) {
      figures[which]?.push(await rate(() => call(client)));
    }
  }
  const before = median(figures.fetch ?? []);
  const after = median(figures['in-process'] ?? []);
  console.log(
    `${name.padEnd(34)} ${`${before.toFixed(0)}/s`.padStart(18)} ${`${after.toFixed(0)}/s`.padStart(12)}   ${(after / before).toFixed(2)}x`,
  );
}
await itsm.close();
await store.close();
