// Recovery of the webhook pipeline, end to end on 127.0.0.1 with real HTTP and real SQLite: the
// process killed mid-drain and started again, the ITSM API failing for a while, an action the API
// refuses for good, an expired events cursor, `--from latest`, a graceful shutdown, and a
// scheduled tick interrupted mid-plan. Each one ends in the state a smooth run would have
// reached: every effect exactly once, nothing lost.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadMigrations } from '../../src/runtime/node.js';
import { createSqliteStore, openSqliteDatabase } from '../../src/storage/sqlite.js';
import { createSqlitePipelineStore } from '../../src/storage/sqlite-pipeline.js';
import { DEFAULT_OBJECT_CONCURRENCY } from '../../src/webhook/drain.js';
import { startTestItsm, TEST_API_KEY, TEST_APP_ID, type TestItsm } from '../helpers/itsm.js';
import { type Cleanups, killedByCleanups, runCleanups } from '../helpers/pipeline.js';
import { type ReceivedRequest, startReceiver, type TestReceiver } from '../helpers/receiver.js';
import {
  copyExampleRules,
  eventually,
  spawnServe,
  startTestEngine,
  type TestEngine,
  writeRules,
} from '../helpers/serve.js';

const KEY = 'K';
const APP = 'A';
const ACCOUNT = 1;

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'itsm-recovery-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function pager(delayMs: number): Promise<TestReceiver> {
  const receiver = await startReceiver({
    answer: () => ({ status: 200, body: 'paged', delayMs }),
  });
  cleanups.push(() => receiver.close());
  return receiver;
}

const track = killedByCleanups(cleanups);

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
type Json = any;

/** An engine (its /v1 is the embedded API, all-in-one) or an ITSM API, and the key it takes. */
interface Endpoint {
  url: string;
  key: string;
}

const at = (target: { url: string }, key = TEST_API_KEY): Endpoint => ({ url: target.url, key });

/** A JSON call with the endpoint's API key; anything but a 2xx throws. */
async function call(to: Endpoint, method: string, path: string, body?: unknown): Promise<Json> {
  const response = await fetch(`${to.url}${path}`, {
    method,
    headers: {
      Authorization: `APIKey ${to.key}`,
      ...(body !== undefined && { 'Content-Type': 'application/json' }),
    },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
  return text ? JSON.parse(text) : undefined;
}

interface Run {
  id: number;
  key: string;
  event: { id: string; type: string };
  object: { type: string; id: string } | null;
  outcome: string;
  rules: string[];
  summary: string;
}

/** Every run record, newest first, following the pages. */
async function allRuns(engine: Endpoint, query = ''): Promise<Run[]> {
  const runs: Run[] = [];
  let before: number | null = null;
  for (;;) {
    const params = new URLSearchParams(query);
    params.set('page_size', '100');
    if (before !== null) params.set('before', String(before));
    const page = await call(engine, 'GET', `/runs?${params}`);
    runs.push(...page.objects);
    if (page.next_before === null) return runs;
    before = page.next_before;
  }
}

/** Every event the API still holds for the account, oldest first. */
async function allEvents(api: Endpoint): Promise<Json[]> {
  const page = await call(api, 'GET', `/v1/accounts/${ACCOUNT}/events?page_size=1000`);
  expect(page.remaining).toBe(0);
  return page.objects;
}

async function list(api: Endpoint, type: 'incidents' | 'problems' | 'changes'): Promise<Json[]> {
  const page = await call(api, 'GET', `/v1/accounts/${ACCOUNT}/itsm/${type}?page_size=1000`);
  return page.objects;
}

/** What a stopped (or killed) `serve` left in its database file. */
async function readEngineDb(path: string) {
  const database = openSqliteDatabase(path, loadMigrations());
  const pipeline = createSqlitePipelineStore({ database });
  const itsm = createSqliteStore({ database });
  try {
    return {
      runs: await pipeline.listRuns({ limit: 10_000 }),
      cursor: (await pipeline.getAccount(ACCOUNT))?.cursor ?? null,
      /** The seq of the newest event in the embedded API's log (all-in-one: the same file). */
      latestEvent: (await itsm.eventBounds(ACCOUNT)).latest,
    };
  } finally {
    database.close();
  }
}

function keysOf(requests: readonly ReceivedRequest[]): string[] {
  return requests.map((request) => String(request.headers['idempotency-key']));
}

function countBy<T>(items: readonly T[]): Map<T, number> {
  const counts = new Map<T, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return counts;
}

/** The value of one unlabelled Prometheus sample. */
async function metric(engine: TestEngine, name: string): Promise<number> {
  const { text } = await engine.call('GET', '/metrics');
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no ${name} in /metrics:\n${text}`);
  return Number(line.slice(name.length + 1));
}

async function started(overrides: Parameters<typeof startTestEngine>[0]): Promise<TestEngine> {
  const engine = await startTestEngine(overrides);
  cleanups.push(() => engine.close());
  return engine;
}

async function startedItsm(overrides: Parameters<typeof startTestItsm>[0] = {}): Promise<TestItsm> {
  const itsm = await startTestItsm(overrides);
  cleanups.push(() => itsm.close());
  return itsm;
}

/** Registers the engine's receiver as a webhook of the (separate) ITSM API. */
async function register(itsm: TestItsm, engine: TestEngine): Promise<void> {
  const response = await itsm.call('POST', `/v1/applications/${TEST_APP_ID}/webhooks`, {
    body: { url: `${engine.url}/webhooks/kloudless` },
  });
  expect(response.status).toBe(201);
}

/** Creates an incident through `call` (an engine's or an API's) and returns it. */
async function createIncident(
  target: { call: TestEngine['call'] },
  fields: Record<string, unknown>,
): Promise<Json> {
  const response = await target.call('POST', `/v1/accounts/${ACCOUNT}/itsm/incidents`, {
    body: fields,
  });
  expect(response.status).toBe(201);
  return response.json;
}

/** No example rule acts on it (no category: nothing to correlate). */
const MINOR_INCIDENT = { impact: 'low', urgency: 'low', priority: 'low' };

/** The example rules raise it to critical, page for it and count it towards a network cluster. */
const MAJOR_NETWORK_INCIDENT = {
  impact: 'high',
  urgency: 'high',
  priority: 'medium',
  category: 'network',
};

describe('the process killed mid-drain (SIGKILL) and started again', () => {
  it('finishes the work with every incident escalated once, one problem, one page per incident and one run per event', async () => {
    const INCIDENTS = 20;
    // A slow pager makes the drain slow: 20 pages of 150 ms take 3 s at the very least.
    const receiver = await pager(150);
    const rules = copyExampleRules(receiver.url);
    cleanups.push(() => rules.remove());
    const db = join(tempDir(), 'engine.db');
    const args = [
      '--port',
      '0',
      '--db',
      db,
      '--rules',
      rules.dir,
      '--api-key',
      KEY,
      '--app-id',
      APP,
      '--http-allow',
      `127.0.0.1:${new URL(receiver.url).port}`,
      '--no-schedules',
    ];

    const first = track(await spawnServe(args));
    const firstEngine = at(first, KEY);
    const created: string[] = [];
    for (let i = 0; i < INCIDENTS; i++) {
      const incident = await call(firstEngine, 'POST', `/v1/accounts/${ACCOUNT}/itsm/incidents`, {
        ...MAJOR_NETWORK_INCIDENT,
        description: `switch ${i} down`,
      });
      created.push(incident.id);
    }
    await eventually(
      async () => (await allRuns(firstEngine)).length >= 3,
      'the first runs to be recorded',
      15_000,
    );
    first.child.kill('SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });

    // What the killed process had finished, read from its database file.
    const runsAtKill = (await readEngineDb(db)).runs.length;
    const pagesAtKill = receiver.requests.length;
    expect(runsAtKill).toBeGreaterThanOrEqual(3);
    expect(pagesAtKill).toBeLessThan(INCIDENTS);

    // A new port: the engine replaces its stale webhook registration by itself.
    const second = track(await spawnServe(args));
    const api = at(second, KEY);
    const webhooks = await call(api, 'GET', `/v1/applications/${APP}/webhooks`);
    expect(webhooks.objects.map((w: Json) => w.url)).toEqual([`${second.url}/webhooks/kloudless`]);
    await eventually(
      async () => {
        const incidents = await list(api, 'incidents');
        if (!incidents.every((i) => i.priority === 'critical' && i.escalation === 1)) {
          return false;
        }
        const events = await allEvents(api);
        const runs = await allRuns(api);
        return runs.length >= events.length;
      },
      'the restarted engine to finish the work',
      30_000,
    );

    const incidents = await list(api, 'incidents');
    expect(incidents.map((i) => [i.id, i.priority, i.escalation]).sort()).toEqual(
      [...created].sort().map((id) => [id, 'critical', 1]),
    );
    const problems = await list(api, 'problems');
    expect(problems).toHaveLength(1);
    const problem = problems[0];
    // The three incidents that made the cluster are linked to it; later ones open nothing. Which
    // three is the order the drain counted them in: different incidents are taken concurrently.
    const linked = incidents.filter((i) => i.problem === problem.id).map((i) => i.id);
    expect(linked).toHaveLength(3);
    expect(created).toEqual(expect.arrayContaining(linked));

    // One page per incident. A call that was in flight at the kill (sent, not yet recorded) is
    // sent again after the restart, with the same Idempotency-Key, so that the pager can tell the
    // repeat: one per object processed at the kill at most (--object-concurrency, the default here),
    // and no key more than twice.
    const keys = countBy(keysOf(receiver.requests));
    expect(keys.size).toBe(INCIDENTS);
    const repeated = [...keys.values()].filter((n) => n > 1);
    expect(repeated.length).toBeLessThanOrEqual(DEFAULT_OBJECT_CONCURRENCY);
    expect(Math.max(...keys.values())).toBeLessThanOrEqual(2);
    const paged = receiver.requests.map((r) => JSON.parse(r.body.toString()).incident as string);
    expect([...new Set(paged.map((href) => href.split('/').at(-1)))].sort()).toEqual(
      [...created].sort(),
    );

    // Exactly one run per event, and the kill came before most of them.
    const events = await allEvents(api);
    const runs = await allRuns(api);
    expect(runs.map((r) => r.event.id).sort()).toEqual(events.map((e) => e.id).sort());
    expect(runs.map((r) => r.key).sort()).toEqual(events.map((e) => `e:${ACCOUNT}:${e.id}`).sort());
    expect(runsAtKill).toBeLessThan(events.length);
    expect(runs.filter((r) => r.outcome === 'failed')).toEqual([]);

    // The problem moves to Fix in Progress: exactly one linked change follows.
    await call(api, 'PATCH', `/v1/accounts/${ACCOUNT}/itsm/problems/${problem.id}`, {
      status: 104,
    });
    const change = await eventually(async () => {
      const [linkedChange] = await list(api, 'changes');
      const updated = await call(api, 'GET', `/v1/accounts/${ACCOUNT}/itsm/problems/${problem.id}`);
      return linkedChange && updated.change === linkedChange.id ? linkedChange : undefined;
    }, 'the change of the problem in fix');
    expect(change.problem).toBe(problem.id);
    await eventually(
      async () => (await allRuns(api)).length === (await allEvents(api)).length,
      'the change and its links to be drained',
    );
    expect(await list(api, 'changes')).toHaveLength(1);

    const stopped = await second.stop('SIGTERM');
    expect(stopped).toEqual({ code: 0, signal: null });
  }, 60_000);
});

describe('the ITSM API failing for a while', () => {
  it('delays the work but loses nothing: every incident escalated once, one problem, every page sent once', async () => {
    const receiver = await pager(0);
    const rules = copyExampleRules(receiver.url);
    cleanups.push(() => rules.remove());
    const engine = await started({
      faults: {},
      rulesDir: rules.dir,
      httpAllow: [new URL(receiver.url).host],
      // The client tries each request twice; the queue retries a failed drain soon after, and
      // an object parked by a failed write is retried soon after too.
      clientRetry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 },
      drainRetry: { baseMs: 20, maxMs: 100 },
      parkRetry: { baseMs: 20, maxMs: 100 },
      parkCheckMs: 10,
    });
    const faults = engine.itsm?.faults;
    if (!faults) throw new Error('the embedded API was started without fault injection');
    // In the order the engine meets them (it drains the account one request at a time):
    // the event log unavailable for three drains (twice the client's two attempts, and more),
    // then the first escalation refused twice, then applied but answered 500, then the
    // problem's create applied but answered 500 three times (its Idempotency-Key replays it).
    faults.inject({ status: 503, method: 'GET', path: /\/events$/, times: 6 });
    faults.inject({ status: 500, method: 'PATCH', times: 3 });
    faults.inject({ status: 500, method: 'PATCH', afterWrite: true });
    faults.inject({ status: 500, method: 'POST', path: /\/problems$/, afterWrite: true, times: 3 });

    const created: string[] = [];
    for (let i = 0; i < 5; i++) {
      created.push((await createIncident(engine, { ...MAJOR_NETWORK_INCIDENT })).id);
    }
    const api = at(engine);
    await eventually(
      async () => {
        if (faults.pending() > 0) return false;
        const incidents = await list(api, 'incidents');
        if (!incidents.every((i) => i.priority === 'critical')) return false;
        // A parked event has a run too (outcome parked): nothing may be left parked.
        if ((await metric(engine, 'itsm_rules_parked_objects')) > 0) return false;
        return (await allRuns(at(engine))).length >= (await allEvents(api)).length;
      },
      'the engine to get through the faults',
      20_000,
    );
    await engine.idle();

    expect(faults.counters().byKind).toMatchObject({ status503: 6, status500: 3, afterWrite: 4 });
    const incidents = await list(api, 'incidents');
    expect(incidents.map((i) => [i.id, i.priority, i.escalation]).sort()).toEqual(
      [...created].sort().map((id) => [id, 'critical', 1]),
    );
    const problems = await list(api, 'problems');
    expect(problems).toHaveLength(1);
    const linked = incidents.filter((i) => i.problem === problems[0].id).map((i) => i.id);
    expect(linked).toHaveLength(3);
    expect(created).toEqual(expect.arrayContaining(linked));
    // Every incident paged once; no page repeated by the retried drains.
    const keys = countBy(keysOf(receiver.requests));
    expect([...keys.values()]).toEqual(created.map(() => 1));
    const pagedHrefs = receiver.requests.map((r) => JSON.parse(r.body.toString()).incident);
    expect(pagedHrefs.map((href: string) => href.split('/').at(-1)).sort()).toEqual(
      [...created].sort(),
    );

    const events = await allEvents(api);
    const runs = await allRuns(at(engine));
    expect(runs.map((r) => r.key).sort()).toEqual(events.map((e) => `e:${ACCOUNT}:${e.id}`).sort());
    const adds = runs.filter((r) => r.event.type === 'add' && r.object?.type === 'incident');
    expect(adds.map((r) => [r.object?.id, r.outcome]).sort()).toEqual(
      [...created].sort().map((id) => [id, 'done']),
    );
    expect(await allRuns(at(engine), 'outcome=failed')).toEqual([]);

    // Three drains without the event log, each retried with the cursor kept. A write refused or
    // unanswered past the client's retries parks its object instead (the other incidents go
    // on), and the parked object is retried until the write goes through. How many writes that
    // takes depends on which concurrent calls meet the injected faults, so it is only bounded.
    expect(await metric(engine, 'itsm_rules_drain_retries_total')).toBe(3);
    const retried = engine.logs.filter((line) =>
      /^drain: account 1 stopped: .*; the cursor stays, retrying in/.test(line),
    );
    expect(retried).toHaveLength(3);
    expect(retried.every((line) => line.includes('503'))).toBe(true);
    const parkedTimes = await metric(engine, 'itsm_rules_parked_total');
    expect(parkedTimes).toBeGreaterThanOrEqual(1);
    expect(parkedTimes).toBeLessThanOrEqual(4);
    expect(engine.logs.filter((line) => line.includes(' PARKED at event '))).toHaveLength(
      parkedTimes,
    );
    expect(await metric(engine, 'itsm_rules_parked_objects')).toBe(0);
  }, 30_000);
});

describe('an action the API refuses for good', () => {
  it('is recorded as failed on its run, and the account goes on with the next event', async () => {
    const rules = writeRules({
      'incident/link-missing-problem.yaml': [
        'description: Links new incidents of category broken to a problem that does not exist.',
        'on:',
        '  type: incident',
        '  events: [add]',
        'when: {"==": [{var: object.category}, broken]}',
        'then:',
        '  - update: {problem: PRB-does-not-exist}',
        '',
      ].join('\n'),
      'incident/escalate-network.yaml': [
        'description: Escalates new network incidents one step.',
        'on:',
        '  type: incident',
        '  events: [add]',
        'when: {"==": [{var: object.category}, network]}',
        'then:',
        '  - escalate: {levels: 1}',
        '',
      ].join('\n'),
    });
    cleanups.push(() => rules.remove());
    const engine = await started({ rulesDir: rules.dir });

    const broken = await createIncident(engine, { ...MINOR_INCIDENT, category: 'broken' });
    const later = await createIncident(engine, { ...MINOR_INCIDENT, category: 'network' });
    const laterRun = await eventually(async () => {
      const runs = await allRuns(at(engine), `object_id=${later.id}`);
      return runs.find((run) => run.event.type === 'add');
    }, 'the run of the later incident');
    await engine.idle();

    expect(laterRun).toMatchObject({ outcome: 'done', rules: ['escalate-network'] });
    const { json: escalated } = await engine.call(
      'GET',
      `/v1/accounts/${ACCOUNT}/itsm/incidents/${later.id}`,
    );
    expect([escalated.priority, escalated.escalation]).toEqual(['medium', 1]);

    const failed = await allRuns(at(engine), 'outcome=failed');
    expect(failed.map((r) => [r.object?.id, r.event.type, r.rules])).toEqual([
      [broken.id, 'add', ['link-missing-problem']],
    ]);
    // The run says why: the API's 400 naming the reference that does not exist.
    expect(failed[0]?.summary).toMatch(/1 failed/);
    expect(failed[0]?.summary).toMatch(/400/);
    expect(failed[0]?.summary).toContain('PRB-does-not-exist');
    const { json: untouched } = await engine.call(
      'GET',
      `/v1/accounts/${ACCOUNT}/itsm/incidents/${broken.id}`,
    );
    expect(untouched.problem ?? null).toBe(null);
    // A refusal is not a failure of the drain: nothing was retried, the cursor moved on.
    expect(await metric(engine, 'itsm_rules_drain_retries_total')).toBe(0);
    expect(engine.logs.filter((line) => line.includes('retrying'))).toEqual([]);
  }, 20_000);
});

describe('an expired events cursor', () => {
  it('is logged loudly, and the engine goes on from the oldest retained event, never the trimmed ones', async () => {
    const itsm = await startedItsm({ eventRetention: 5 });
    const db = join(tempDir(), 'engine.db');
    const options = { apiUrl: `${itsm.url}/v1`, db };

    const before = await started(options);
    await register(itsm, before);
    const first = await createIncident(itsm, MINOR_INCIDENT);
    await eventually(
      async () => (await allRuns(at(before), `object_id=${first.id}`)).length === 1,
      'the run of the first incident',
    );
    await before.close();

    // 10 more events while the engine is away: the API keeps only the last 5 of the 11.
    for (let i = 0; i < 10; i++) await createIncident(itsm, MINOR_INCIDENT);
    const retained = (await itsm.call('GET', `/v1/accounts/${ACCOUNT}/events?page_size=100`)).json
      .objects as Json[];
    expect(retained.map((e) => e.id)).toEqual(['7', '8', '9', '10', '11']);

    const after = await started(options);
    await register(itsm, after);
    await eventually(
      async () => (await allRuns(at(after))).length >= 6,
      'the retained events to be drained',
    );
    await after.idle();

    const runs = await allRuns(at(after));
    expect(runs.map((r) => r.event.id).sort((a, b) => Number(a) - Number(b))).toEqual([
      '1',
      '7',
      '8',
      '9',
      '10',
      '11',
    ]);
    expect(after.logs).toContainEqual(
      expect.stringMatching(
        /^drain: ERROR account 1: the stored cursor 1 has expired .*events in the gap cannot be processed; recovering from the oldest retained event$/,
      ),
    );
    expect((await after.pipelineStore.getAccount(ACCOUNT))?.cursor).toBe('11');
  }, 20_000);
});

describe('--from latest', () => {
  it('starts the first drain at the newest event, so only changes after the first notification get runs', async () => {
    const itsm = await startedItsm();
    // Major incidents the example rules would escalate, had the engine seen them.
    const earlier: string[] = [];
    for (let i = 0; i < 3; i++) {
      earlier.push((await createIncident(itsm, MAJOR_NETWORK_INCIDENT)).id);
    }
    const engine = await started({ apiUrl: `${itsm.url}/v1`, from: 'latest' });
    await register(itsm, engine);

    // This change sends the first notification; the drain starts after it.
    earlier.push((await createIncident(itsm, MAJOR_NETWORK_INCIDENT)).id);
    const start = await eventually(
      async () => (await engine.pipelineStore.getAccount(ACCOUNT))?.cursor ?? undefined,
      'the first drain to store its starting cursor',
    );
    expect(start).toBe('4');
    expect(engine.logs).toContain('drain: account 1 starts at the newest event (--from latest)');

    const next = await createIncident(itsm, MAJOR_NETWORK_INCIDENT);
    await eventually(async () => {
      const { json } = await itsm.call('GET', `/v1/accounts/${ACCOUNT}/itsm/incidents/${next.id}`);
      return json.priority === 'critical';
    }, 'the new incident to be escalated');
    await eventually(
      async () => (await allRuns(at(engine))).length >= 2,
      'the runs of the new incident',
    );
    await engine.idle();

    const runs = await allRuns(at(engine));
    expect(runs.map((r) => [r.event.id, r.event.type, r.object?.id])).toEqual([
      ['6', 'update', next.id],
      ['5', 'add', next.id],
    ]);
    for (const id of earlier) {
      const { json } = await itsm.call('GET', `/v1/accounts/${ACCOUNT}/itsm/incidents/${id}`);
      expect([json.priority, json.escalation]).toEqual(['medium', 0]);
    }
  }, 20_000);
});

describe('graceful shutdown', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    'exits 0 on %s after saying it is shutting down, once the page in hand is finished',
    async (signal) => {
      // A pager slower than the server's close grace: a shutdown that did not wait for the page
      // in hand would close the database under the call in flight.
      const receiver = await pager(1_200);
      const rules = copyExampleRules(receiver.url);
      cleanups.push(() => rules.remove());
      const db = join(tempDir(), 'engine.db');
      const serve = track(
        await spawnServe([
          '--port',
          '0',
          '--db',
          db,
          '--rules',
          rules.dir,
          '--api-key',
          KEY,
          '--app-id',
          APP,
          '--http-allow',
          new URL(receiver.url).host,
          '--page-size',
          '4',
          '--no-schedules',
        ]),
      );
      // Eight escalations, each followed by a page; distinct categories open no problem.
      for (let i = 0; i < 8; i++) {
        await call(at(serve, KEY), 'POST', `/v1/accounts/${ACCOUNT}/itsm/incidents`, {
          ...MAJOR_NETWORK_INCIDENT,
          category: `site-${i}`,
        });
      }
      // The first page call has arrived and waits for its answer: the drain is mid-page.
      await receiver.waitFor(1, 15_000);

      const sent = Date.now();
      const exit = await serve.stop(signal);
      expect(exit).toEqual({ code: 0, signal: null });
      expect(Date.now() - sent).toBeLessThan(15_000);
      expect(serve.stdout()).toContain('itsm-rules: shutting down (finishing the page in hand)');

      const { runs, cursor, latestEvent } = await readEngineDb(db);
      // The page in hand was finished: every event up to the stored cursor has its run, no
      // event after it has one, and every page call the pager received is on a run, so none
      // will be sent again.
      expect(runs.map((r) => Number(r.eventId)).sort((a, b) => a - b)).toEqual(
        Array.from({ length: Number(cursor) }, (_, i) => i + 1),
      );
      const pagesRecorded = runs
        .flatMap(
          (r) => (JSON.parse(r.detail) as { calls: { kind: string; outcome: string }[] }).calls,
        )
        .filter((c) => c.kind === 'http' && c.outcome === 'done');
      expect(pagesRecorded).toHaveLength(receiver.requests.length);
      // And no page after it was started: the rest of the log waits for the next start. (The
      // page holding the first page call ends within 12 events; there are 16 by then at least.)
      expect(Number(cursor)).toBeLessThan(latestEvent);
    },
    30_000,
  );
});

describe('a scheduled tick that failed mid-plan', () => {
  it('is finished by running the tick again, even when its condition no longer holds', async () => {
    const rules = writeRules({
      'incident/raise-stale-incidents.yaml': [
        'description: Raises open incidents to critical and opens a problem for each.',
        'on:',
        '  type: incident',
        '  schedule: "0 0 1 1 *"',
        'when: {"!=": [{var: object.priority}, critical]}',
        'then:',
        '  - escalate: {levels: 3}',
        '  - create:',
        '      type: problem',
        '      link: true',
        '      fields: {description: {cat: ["Stale incident ", {var: object.id}]}}',
        '',
      ].join('\n'),
    });
    cleanups.push(() => rules.remove());
    const engine = await started({
      faults: {},
      rulesDir: rules.dir,
      clientRetry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 },
    });
    const incident = await createIncident(engine, MINOR_INCIDENT);
    const tick = { rules: ['raise-stale-incidents'], at: '2026-01-01T00:00:00Z', accounts: [1] };

    // The escalation goes through; the problem's create meets the API down (both attempts).
    engine.itsm?.faults?.inject({ status: 503, method: 'POST', path: /\/problems$/, times: 2 });
    const interrupted = await engine.call('POST', '/admin/schedules/run', { body: tick });
    expect(interrupted.status).toBe(207);
    expect(interrupted.json.errors).toHaveLength(1);
    const { json: escalated } = await engine.call(
      'GET',
      `/v1/accounts/${ACCOUNT}/itsm/incidents/${incident.id}`,
    );
    expect([escalated.priority, escalated.problem ?? null]).toEqual(['critical', null]);

    // Run again, the incident is critical, so `when` is now false: the stored plan still runs.
    const again = await engine.call('POST', '/admin/schedules/run', { body: tick });
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ objects: 1, errors: [], outcomes: { done: 1 } });
    const problems = await list(at(engine), 'problems');
    expect(problems.map((p) => p.incident)).toEqual([incident.id]);
    const { json: linked } = await engine.call(
      'GET',
      `/v1/accounts/${ACCOUNT}/itsm/incidents/${incident.id}`,
    );
    expect([linked.priority, linked.escalation, linked.problem]).toEqual([
      'critical',
      1,
      problems[0].id,
    ]);
  }, 20_000);
});
