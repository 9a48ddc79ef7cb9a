// The ServiceNow Table API face beside the /v1 face of the same embedded server, in the same run
// and process: GET one incident and a list of 100 on each. The Table API filters an account's
// records of a table in memory (the embedded backend's choice), so the list reads the whole
// table: the store holds exactly the 100 incidents listed, so both faces read the same rows.
// Target: each Table API figure at least 0.5x of its /v1 twin. Medians of rounds.
//   npm run bench -- --only table-api     (or: npx tsx bench/table-api.ts --seconds 2 --rounds 3)
import { startItsmServer } from '../src/runtime/node.js';
import { loadShapeFromArgs, requestRate } from './stats.js';

const shape = loadShapeFromArgs();
const { seconds, rounds, connections } = shape;
const TARGET = 0.5;

const rate = (request: () => Promise<Response>) => requestRate(shape, request);

const itsm = await startItsmServer({
  port: 0,
  host: '127.0.0.1',
  db: ':memory:',
  apiKey: 'k',
  appId: 'a',
  tableApi: { users: [{ name: 'bench', password: 'pw', account: 1 }] },
  log: () => {},
});
const v1Headers = { Authorization: 'APIKey k', 'Content-Type': 'application/json' };
// A ServiceNow user with HTTP Basic, as integrations sign in.
const snHeaders = { Authorization: `Basic ${btoa('bench:pw')}` };
const v1 = `${itsm.url}/v1/accounts/1/itsm/incidents`;
const table = `${itsm.url}/api/now/table/incident`;

let first: { id: string; raw: { sys_id: string } } | undefined;
for (let i = 0; i < 100; i++) {
  const response = await fetch(v1, {
    method: 'POST',
    headers: { ...v1Headers, 'X-Kloudless-Raw-Data': 'true' },
    body: JSON.stringify({ description: `bench ${i}`, impact: 'high', urgency: 'medium' }),
  });
  first ??= (await response.json()) as { id: string; raw: { sys_id: string } };
}
if (!first) throw new Error('seeding failed');
const seed = first;

const v1Get = await rate(() => fetch(`${v1}/${seed.id}`, { headers: v1Headers }));
const snGet = await rate(() => fetch(`${table}/${seed.raw.sys_id}`, { headers: snHeaders }));
const v1List = await rate(() => fetch(`${v1}?page_size=100`, { headers: v1Headers }));
const snList = await rate(() => fetch(`${table}?sysparm_limit=100`, { headers: snHeaders }));

const row = (name: string, value: number) =>
  `${name.padEnd(40)} ${value.toFixed(0).padStart(7)} req/s`;
const ratio = (name: string, sn: number, base: number) =>
  `${name.padEnd(40)} ${(sn / base).toFixed(2).padStart(7)}x of /v1   (target >= ${TARGET}x: ${sn / base >= TARGET ? 'met' : 'NOT MET'})`;
console.log(
  `Table API face vs /v1, same server, ${connections} connections, median of ${rounds} x ${seconds}s, node ${process.version}`,
);
console.log(row('/v1 GET incident (baseline)', v1Get));
console.log(row('Table API GET incident', snGet));
console.log(ratio('  GET one', snGet, v1Get));
console.log(row('/v1 GET 100 incidents (baseline)', v1List));
console.log(row('Table API GET 100 incidents', snList));
console.log(ratio('  list of 100', snList, v1List));

await itsm.close();
