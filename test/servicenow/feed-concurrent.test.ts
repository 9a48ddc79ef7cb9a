// A poll reads its tables a few at a time (found by bench/connector.ts: one after another, the
// seven reads of a poll were 0.7 s at 100 ms a call, most of the polling latency). The instance is
// the Table API face on 127.0.0.1 over real HTTP; `gate` stands between the connector and the
// face and holds the feed's list calls of the tables it is told to hold (before they reach the
// face, or once the face has answered) until the test releases them, so that the test sees what
// is in flight at once without timing anything. Every other call passes through untouched.
import { expect, it } from 'vitest';
import { WATCHED_TABLES } from '../../src/servicenow/connector.js';
import { POLL_CONCURRENCY } from '../../src/servicenow/feed.js';
import { eventually } from '../helpers/eventually.js';
import { useInstance } from '../helpers/instance.js';

const instance = useInstance({ faults: true });

interface Held {
  table: string;
  release(): void;
}

/**
 * Holds list calls (GET of a whole table) of the tables in `holdBefore` before they reach the
 * face, and of those in `holdAfter` once the face has answered them; counts the calls in flight.
 */
function gate() {
  const g = {
    holdBefore: new Set<string>(),
    holdAfter: new Set<string>(),
    held: [] as Held[],
    inFlight: 0,
    mostInFlight: 0,
    listed: [] as string[],
    fetch: (async (input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const table = /\/api\/now\/table\/([^/]+)$/.exec(url.pathname)?.[1];
      const method = (init?.method ?? 'GET').toUpperCase();
      if (table === undefined || method !== 'GET') return fetch(input, init);
      const hold = () => new Promise<void>((release) => g.held.push({ table, release }));
      g.listed.push(table);
      g.inFlight++;
      g.mostInFlight = Math.max(g.mostInFlight, g.inFlight);
      try {
        if (g.holdBefore.has(table)) await hold();
        const answer = await fetch(input, init);
        const body = await answer.arrayBuffer();
        if (g.holdAfter.has(table)) await hold();
        return new Response(body, { status: answer.status, headers: answer.headers });
      } finally {
        g.inFlight--;
      }
    }) as typeof globalThis.fetch,
    /** Lets the held calls of `table` go on. */
    release(table: string) {
      for (const h of g.held.filter((x) => x.table === table)) h.release();
      g.held = g.held.filter((x) => x.table !== table);
    },
  };
  return g;
}

const connect = (g: ReturnType<typeof gate>, notified: { count: number }) =>
  instance.connect({
    fetch: g.fetch,
    notify: () => {
      notified.count++;
    },
  });

/** The feed's events as [type, object id], users (sign-ins make sys_user records) left out. */
const feedEvents = () => instance.feedEvents((id) => !id.startsWith('sys_user.'));

it('reads the watched tables and sys_audit_delete four at a time, each once', async () => {
  const g = gate();
  const { feed } = await connect(g, { count: 0 });
  g.listed = [];
  g.mostInFlight = 0;
  for (const table of [...WATCHED_TABLES, 'sys_audit_delete']) g.holdBefore.add(table);

  const poll = feed.pollOnce();
  await eventually(() => g.held.length === POLL_CONCURRENCY, 'four reads held at once');
  // The next read starts when one finishes, until every table has been read.
  while (g.listed.length < WATCHED_TABLES.length + 1 || g.held.length > 0) {
    const [first] = await eventually(() => (g.held.length > 0 ? g.held : false), 'a held read');
    g.release(first?.table ?? '');
  }
  await poll;
  expect(g.mostInFlight).toBe(POLL_CONCURRENCY);
  expect([...g.listed].sort()).toEqual([...WATCHED_TABLES, 'sys_audit_delete'].sort());
});

it('reports a record updated and then deleted during one poll as its update, then its delete', async () => {
  const g = gate();
  const { feed } = await connect(g, { count: 0 });
  const made = await instance.asAnn('POST', 'incident', { short_description: 'disk full' });
  await feed.pollOnce();
  await instance.asAnn('PATCH', `incident/${made.sys_id}`, { impact: '1' });

  // The incident list sees the update, but its answer is held; meanwhile the record is deleted
  // and sys_audit_delete, read after that, shows the delete.
  g.holdAfter.add('incident');
  g.holdBefore.add('sys_audit_delete');
  const poll = feed.pollOnce();
  await eventually(
    () =>
      g.held.some((h) => h.table === 'incident') &&
      g.held.some((h) => h.table === 'sys_audit_delete'),
    'the incident answer and the sys_audit_delete read held together',
  );
  await instance.asAnn('DELETE', `incident/${made.sys_id}`);
  g.release('sys_audit_delete');
  // The audit read completes before the incident answer arrives; its delete waits for it.
  await eventually(() => g.inFlight === 1, 'only the incident answer still held');
  g.release('incident');
  expect(await poll).toBe(2);
  expect(await feedEvents()).toEqual([
    ['add', `incident.${made.sys_id}`],
    ['update', `incident.${made.sys_id}`],
    ['delete', `incident.${made.sys_id}`],
  ]);
});

it('keeps and notifies the other tables’ changes when one table cannot be read, and reads it at the next poll', async () => {
  const g = gate();
  const notified = { count: 0 };
  const { feed } = await connect(g, notified);
  const problem = await instance.asAnn('POST', 'problem', { short_description: 'flaky vpn' });
  const change = await instance.asAnn('POST', 'change_request', { short_description: 'patch' });

  // The instance refuses the problem list once (the user lacks a role for a while, say).
  instance
    .face()
    .itsm.faults?.inject({ method: 'GET', path: '/api/now/table/problem', status: 503 });
  await expect(feed.pollOnce()).rejects.toThrow(/problem/);
  expect(await feedEvents()).toEqual([['add', `change_request.${change.sys_id}`]]);
  expect(notified.count).toBe(1);

  expect(await feed.pollOnce()).toBe(1);
  expect(await feedEvents()).toEqual([
    ['add', `change_request.${change.sys_id}`],
    ['add', `problem.${problem.sys_id}`],
  ]);
});
