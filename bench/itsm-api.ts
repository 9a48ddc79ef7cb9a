// Throughput of the embedded ITSM API on 127.0.0.1, beside a bare Hono route served the same
// way in the same run (the floor an HTTP framework on this machine sets). Medians of rounds.
//   npm run bench            (or: npx tsx bench/itsm-api.ts --seconds 2 --rounds 3 --connections 20)
import { createAdaptorServer } from '@hono/node-server';
import { Hono } from 'hono';
import { closeServer, listen, startItsmServer } from '../src/runtime/node.js';
import { loadShapeFromArgs, requestRate } from './stats.js';

const shape = loadShapeFromArgs();
const { seconds, rounds, connections } = shape;

const rate = (request: () => Promise<Response>) => requestRate(shape, request);

const bare = new Hono();
bare.get('/ok', (c) => c.json({ ok: true }));
const bareServer = createAdaptorServer({ fetch: bare.fetch });
const bareAddress = await listen(bareServer, 0, '127.0.0.1');
const bareUrl = `http://127.0.0.1:${bareAddress.port}/ok`;

const itsm = await startItsmServer({
  port: 0,
  host: '127.0.0.1',
  db: ':memory:',
  apiKey: 'k',
  appId: 'a',
  log: () => {},
});
const headers = { Authorization: 'APIKey k', 'Content-Type': 'application/json' };
const api = `${itsm.url}/v1/accounts/1/itsm/incidents`;
const seed = (await (
  await fetch(api, { method: 'POST', headers, body: JSON.stringify({ impact: 'high' }) })
).json()) as { id: string };
const body = JSON.stringify({
  category: 'network',
  impact: 'high',
  urgency: 'medium',
  priority: 'medium',
  description: 'bench',
});

const bareRate = await rate(() => fetch(bareUrl));
const getRate = await rate(() => fetch(`${api}/${seed.id}`, { headers }));
const createRate = await rate(() => fetch(api, { method: 'POST', headers, body }));
const listRate = await rate(() => fetch(`${api}?page_size=100`, { headers }));

const row = (name: string, rate: number) =>
  `${name.padEnd(34)} ${rate.toFixed(0).padStart(7)} req/s   ${((rate / bareRate) * 100).toFixed(0).padStart(3)}% of bare route`;
console.log(
  `embedded ITSM API, ${connections} connections, median of ${rounds} x ${seconds}s, node ${process.version}`,
);
console.log(`${'bare Hono route (baseline)'.padEnd(34)} ${bareRate.toFixed(0).padStart(7)} req/s`);
console.log(row('GET incident', getRate));
console.log(row('POST incident (+event, SQLite)', createRate));
console.log(row('GET 100 incidents', listRate));

await itsm.close();
await closeServer(bareServer);
