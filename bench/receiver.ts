// The webhook receiver under load: signed notifications per second and p50/p99 latency with 50
// connections (autocannon), beside a bare Hono route that answers 200, served the same way in the
// same run. The servers run in a child process, so that the load generator does not share their
// event loop. Each notification is verified (HMAC-SHA256 over the raw bytes), recorded in SQLite
// and queued; the drains it sets off (coalesced per account) run in the same process, as in
// production. With `--accounts N` (default 1, and 1000 in `npm run bench`'s second pass) the
// notifications go round-robin over accounts 1..N, each body signed for its account, so that
// every notification may be for an account not yet noted as pending (a durable note, then a
// drain), the shape of an ITSM serving many tenants.
//   npx tsx bench/receiver.ts [--seconds 3] [--rounds 6] [--connections 50] [--accounts 1,1000]
//     [--cpu-prof DIR]   a V8 CPU profile of the servers' process per spread, written to DIR
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { signBody } from '../src/itsm/signature.js';
import { median } from './stats.js';

const KEY = 'bench-key';

async function serve(): Promise<void> {
  const { createAdaptorServer } = await import('@hono/node-server');
  const { Hono } = await import('hono');
  const { listen } = await import('../src/runtime/node.js');
  const { startEngine } = await import('../src/runtime/engine.js');
  const bare = new Hono();
  bare.post('/ok', (c) => c.text('ok'));
  // For context only: what reading the body (which any receiver must) costs on its own.
  bare.post('/read', async (c) => {
    await c.req.arrayBuffer();
    return c.text('ok');
  });
  const bareServer = createAdaptorServer({ fetch: bare.fetch });
  const bareAddress = await listen(bareServer, 0, '127.0.0.1');
  const engine = await startEngine({
    port: 0,
    host: '127.0.0.1',
    rulesDir: 'rules',
    db: ':memory:',
    apiKey: KEY,
    appId: 'bench',
    reloadIntervalMs: 0,
    schedules: false,
    log: () => {},
  });
  // Exit (not die) on the parent's SIGTERM, so that a --cpu-prof of this process gets written.
  process.on('SIGTERM', () => process.exit(0));
  process.send?.({
    bare: `http://127.0.0.1:${bareAddress.port}/ok`,
    read: `http://127.0.0.1:${bareAddress.port}/read`,
    receiver: `${engine.url}/webhooks/kloudless`,
  });
}

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

/** One body and its headers per account; the load sends them round-robin. */
interface Payload {
  body: string;
  headers: Record<string, string>;
}

async function load(
  url: string,
  payloads: readonly Payload[],
  seconds: number,
  connections: number,
): Promise<Figures> {
  let next = 0;
  const first = payloads[0] as Payload;
  const result = await autocannon({
    url,
    method: 'POST',
    body: first.body,
    headers: first.headers,
    connections,
    duration: seconds,
    ...(payloads.length > 1 && {
      requests: [
        {
          setupRequest: (request: autocannon.Request) => {
            const payload = payloads[next++ % payloads.length] as Payload;
            return { ...request, body: payload.body, headers: payload.headers };
          },
        },
      ],
    }),
  });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
  };
}

/** Each figure's median over the rounds. */
function medianOf(values: Figures[]): Figures {
  const pick = (key: keyof Figures) => median(values.map((v) => v[key]));
  return { rps: pick('rps'), p50: pick('p50'), p99: pick('p99'), errors: pick('errors') };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '3' },
      rounds: { type: 'string', default: '6' },
      connections: { type: 'string', default: '50' },
      accounts: { type: 'string', default: '1,1000' },
      'cpu-prof': { type: 'string' },
    },
  });
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const connections = Number(values.connections);
  const spreads = values.accounts.split(',').map(Number);
  if (spreads.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new Error(
      `--accounts takes whole numbers >= 1 separated by commas, got ${values.accounts}`,
    );
  }
  for (const [i, accounts] of spreads.entries()) {
    if (i > 0) console.log('');
    await measureSpread(seconds, rounds, connections, accounts, values['cpu-prof']);
  }
}

async function measureSpread(
  seconds: number,
  rounds: number,
  connections: number,
  accounts: number,
  profileDir: string | undefined,
): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve'], {
    execArgv: [
      '--import',
      'tsx',
      ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
    ],
    stdio: 'inherit',
  });
  const [urls] = (await once(child, 'message')) as [
    { bare: string; read: string; receiver: string },
  ];
  try {
    // The bare routes get the same rotation of bodies (unsigned), so that the load generator does
    // the same work for every route.
    const plain = { 'Content-Type': 'application/json' };
    const unsigned: Payload[] = [];
    const signed: Payload[] = [];
    for (let account = 1; account <= accounts; account++) {
      const body = JSON.stringify({ account, subscription: 1 });
      unsigned.push({ body, headers: plain });
      signed.push({
        body,
        headers: { ...plain, 'X-Kloudless-Signature': await signBody(body, KEY) },
      });
    }
    const routes = [
      { name: 'bare', url: urls.bare, payloads: unsigned },
      { name: 'read', url: urls.read, payloads: unsigned },
      { name: 'receiver', url: urls.receiver, payloads: signed },
    ] as const;
    const figures: Record<(typeof routes)[number]['name'], Figures[]> = {
      bare: [],
      read: [],
      receiver: [],
    };
    // Each round loads the three in turn, reversing the order every other round, and each ratio
    // is taken within its round: the rate of the whole machine drifts from one round to the next
    // (it is shared), and a ratio of neighbours cancels most of that drift.
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? routes : [...routes].reverse();
      for (const route of order) {
        figures[route.name].push(await load(route.url, route.payloads, seconds, connections));
      }
    }
    const ratios = (name: 'read' | 'receiver') =>
      figures[name].map((f, round) => f.rps / (figures.bare[round] as Figures).rps);
    const b = medianOf(figures.bare);
    const d = medianOf(figures.read);
    const r = medianOf(figures.receiver);
    const percent = (x: number) => `${(100 * x).toFixed(0)}%`;
    console.log(
      `receiver: notifications over ${accounts} account${accounts === 1 ? '' : 's'}, ${connections} connections, ${rounds} rounds x ${seconds} s (autocannon; servers in a child process, a fresh engine per spread); medians, and the median of each round's ratio to the bare route`,
    );
    console.log(
      '|                        | req/s | p50 ms | p99 ms | errors | of bare route (per round) |',
    );
    console.log(
      '| ---------------------- | ----- | ------ | ------ | ------ | ------------------------- |',
    );
    console.log(
      `| bare Hono route (200)  | ${b.rps.toFixed(0)} | ${b.p50} | ${b.p99} | ${b.errors} |  |`,
    );
    console.log(
      `| bare route reading the body | ${d.rps.toFixed(0)} | ${d.p50} | ${d.p99} | ${d.errors} | ${percent(median(ratios('read')))} (for context; ${ratios('read').map(percent).join(' ')}) |`,
    );
    console.log(
      `| signed notification    | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.errors} | ${percent(median(ratios('receiver')))} (target >= ${accounts > 1 ? '60% and p99 < 20 ms' : '80%'}; ${ratios('receiver').map(percent).join(' ')}) |`,
    );
  } finally {
    child.kill('SIGTERM');
    // The profile is written as the child exits.
    if (child.exitCode === null) await once(child, 'exit');
  }
}

if (process.argv.includes('--serve')) await serve();
else await main();
