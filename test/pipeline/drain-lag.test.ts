// The drain lag over real HTTP: an engine and a separate embedded ITSM API on 127.0.0.1, the
// engine notified only by the test's own signed notifications, and each drain held inside its
// page by a rule's call to an outside endpoint that the test answers when it chooses (never
// timed). Notifications arrive while a drain runs; /metrics and the console's overview must
// count the lag from the oldest notification not yet drained (not the newest one), keep counting
// once a drain that read its page before a notification has caught up, and read 0 only once a
// drain that started after the last notification has. Values are checked against the times the
// store recorded and the times the test read around each call.
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccountState } from '../../src/storage/pipeline-port.js';
import { consoleSession } from '../console/console-session.js';
import { startTestItsm } from '../helpers/itsm.js';
import {
  type Cleanups,
  callOutRule,
  runCleanups,
  startEngineWithEndpoints,
  startHttpEndpoint,
} from '../helpers/pipeline.js';
import { eventually, type TestEngine } from '../helpers/serve.js';

const ACCOUNT = 7;
const MINUTE = 60_000;

const cleanups: Cleanups = [];
let engine: TestEngine;
let api: Awaited<ReturnType<typeof startTestItsm>>;
let cookie: string;
/** The console's clock, when set; otherwise the real one. */
let consoleNow: number | null = null;

/** Calls to the endpoint not answered yet, in arrival order. */
const held: ServerResponse[] = [];
/** Set as the test file ends: calls are answered at once, so that the engine can close. */
let closing = false;
function release(): void {
  const response = held.shift();
  if (!response) throw new Error('no held call to release');
  response.writeHead(200).end('ok');
}

beforeAll(async () => {
  const endpoint = await startHttpEndpoint(cleanups, (request, response) => {
    request.resume();
    request.on('end', () => {
      held.push(response);
      if (closing) release();
    });
  });
  // A separate API that does not notify the engine: the only notifications are the test's.
  api = await startTestItsm();
  cleanups.push(() => api.close());
  engine = await startEngineWithEndpoints(
    cleanups,
    { 'incident/call-out.yaml': callOutRule({ url: endpoint }) },
    [endpoint],
    {
      apiUrl: `${api.url}/v1`,
      console: { now: () => consoleNow ?? Date.now() },
    },
  );
  ({ cookie } = await consoleSession(engine));
});

afterAll(async () => {
  closing = true;
  while (held.length > 0) release();
  await runCleanups(cleanups);
});

async function account(): Promise<AccountState> {
  const state = await engine.pipelineStore.getAccount(ACCOUNT);
  if (!state) throw new Error(`account ${ACCOUNT} has no drain state`);
  return state;
}

/** A new incident in the API, then a signed notification for it, answered 200 (durable). */
async function changeAndNotify(description: string): Promise<void> {
  const created = await api.call('POST', `/v1/accounts/${ACCOUNT}/itsm/incidents`, {
    body: { description },
  });
  expect(created.status, created.text).toBe(201);
  const answer = await engine.notify(JSON.stringify({ account: ACCOUNT, subscription: 1 }));
  expect(answer.status, answer.text).toBe(200);
}

/** The account's drain lag on /metrics, with the clock read just before and after the scrape. */
async function scrapeLag(): Promise<{ lag: number; before: number; after: number }> {
  const before = Date.now();
  const response = await engine.call('GET', '/metrics');
  const after = Date.now();
  expect(response.status).toBe(200);
  const line = new RegExp(`^itsm_rules_drain_lag_seconds\\{account="${ACCOUNT}"\\} (\\S+)$`, 'm');
  const value = line.exec(response.text)?.[1];
  if (value === undefined) throw new Error(`no drain lag for account ${ACCOUNT} on /metrics`);
  return { lag: Number(value), before, after };
}

/** /metrics counts the lag from `since`: between the scrape's start and end, less `since`. */
async function expectLagFrom(since: number): Promise<void> {
  const { lag, before, after } = await scrapeLag();
  // A millisecond either side: the gauge is seconds, a float.
  expect(lag * 1000).toBeGreaterThanOrEqual(before - since - 1);
  expect(lag * 1000).toBeLessThanOrEqual(after - since + 1);
}

/** The account's row of the console's overview, read with the console's clock at `at`. */
async function overviewRow(at: number | null): Promise<string> {
  consoleNow = at;
  try {
    const page = await engine.call('GET', '/', { auth: null, headers: { Cookie: cookie } });
    expect(page.status, page.text).toBe(200);
    const table = page.text.slice(page.text.indexOf('<table class="accounts">'));
    const start = table.indexOf(`<a href="/console/runs?account=${ACCOUNT}">`);
    expect(start, `account ${ACCOUNT} is not in the accounts table`).toBeGreaterThanOrEqual(0);
    return table.slice(start, table.indexOf('</tr>', start));
  } finally {
    consoleNow = null;
  }
}

/** Waits until the clock has moved past `at`, so that the next note is later than it. */
async function clockPast(at: number): Promise<void> {
  await eventually(() => Date.now() > at, `the clock to pass ${at}`);
}

describe('the drain lag', () => {
  it('grows from the first notification not yet drained, and is 0 only once a drain started after the last one has caught up', async () => {
    // 1. The first change: its drain reads the page, then holds on the rule's call.
    await changeAndNotify('first');
    await eventually(() => held.length === 1, 'the first drain to hold on its call');
    const first = (await account()).notifiedAt as number;
    expect(first).toEqual(expect.any(Number));

    // 2. A second change and notification while that drain runs: the lag still counts from the
    // first one, on /metrics, in the console and in the store.
    await clockPast(first);
    await changeAndNotify('second');
    await expectLagFrom(first);
    expect(await overviewRow(first + 7 * MINUTE)).toContain('<td>7 min</td>');
    expect((await account()).pendingSince).toBe(first);
    const second = (await account()).notifiedAt as number;

    // 3. The first drain reaches the end of the log as it stood when its page was read, before
    // the second change: the account is not caught up, its lag counts from the second
    // notification (or from the first, had the page been read in the very millisecond the
    // first was noted: a tie counts as not drained). A new drain holds on the second call.
    release();
    await eventually(() => held.length === 1, 'the second drain to hold on its call');
    let state = await account();
    expect(state.drainedAt).toEqual(expect.any(Number));
    expect(state.pendingSince).toBe(second);
    expect(second).toBeGreaterThanOrEqual(state.drainedAt as number);
    const row = await overviewRow(second + 7 * MINUTE);
    expect(row).not.toContain('caught up');
    expect(row).toContain('<td>7 min</td>');
    // The last page read left no event after the cursor, but a notification has come since.
    expect(row).toContain('<span class="muted">unknown</span>');
    await expectLagFrom(second);

    // 4. A third notification while the second drain runs: the oldest one waiting still counts.
    await clockPast(second);
    await changeAndNotify('third');
    expect((await account()).pendingSince).toBe(second);
    await expectLagFrom(second);

    // 5. The second drain catches up to before the third change: the third is what waits now.
    release();
    await eventually(() => held.length === 1, 'the third drain to hold on its call');
    state = await account();
    const third = state.notifiedAt as number;
    expect(state.pendingSince).toBe(third);
    expect(third).toBeGreaterThanOrEqual(state.drainedAt as number);
    expect(await overviewRow(third + 7 * MINUTE)).toContain('<td>7 min</td>');
    await expectLagFrom(third);

    // 6. The third drain, started after the last notification, catches up: the lag is 0.
    release();
    await eventually(async () => (await scrapeLag()).lag === 0, 'the lag to read 0');
    state = await account();
    expect(state.pendingSince).toBeNull();
    expect(state.drainedAt).toBeGreaterThan(state.notifiedAt as number);
    const done = await overviewRow(null);
    expect(done).toContain('<td>caught up</td>');
    expect(done).toContain('<td>0</td>');
    expect(held).toEqual([]);
  });
});

describe('a notification noted in the millisecond of the last page', () => {
  // A clock of 200 ms ticks: a notification's note and the page its drain reads then nearly
  // always share a tick, which is a tie (the page may have been read before the event), the case
  // a real clock meets now and then. No further notification comes to cover it.
  const TICK = 200;
  const coarse = () => Math.floor(Date.now() / TICK) * TICK;
  const tieCleanups: Cleanups = [];
  let tieApi: Awaited<ReturnType<typeof startTestItsm>>;
  let tieEngine: TestEngine;

  beforeAll(async () => {
    tieApi = await startTestItsm();
    tieCleanups.push(() => tieApi.close());
    tieEngine = await startEngineWithEndpoints(tieCleanups, {}, [], {
      apiUrl: `${tieApi.url}/v1`,
      now: coarse,
    });
  });
  afterAll(() => runCleanups(tieCleanups));

  it('is covered by one more page once the clock has passed it, so the lag goes back to 0', async () => {
    for (const account of [21, 22, 23]) {
      const created = await tieApi.call('POST', `/v1/accounts/${account}/itsm/incidents`, {
        body: { description: `tie ${account}` },
      });
      expect(created.status, created.text).toBe(201);
      const answer = await tieEngine.notify(JSON.stringify({ account, subscription: 1 }));
      expect(answer.status, answer.text).toBe(200);
      const state = await eventually(async () => {
        const current = await tieEngine.pipelineStore.getAccount(account);
        return current?.pendingSince === null ? current : undefined;
      }, `account ${account} to have no notification waiting`);
      // Drained by a page requested after the note's tick, not the tie.
      expect(state.drainedAt).toBeGreaterThan(state.notifiedAt as number);
      const metrics = await tieEngine.call('GET', '/metrics');
      expect(metrics.text).toContain(`itsm_rules_drain_lag_seconds{account="${account}"} 0\n`);
    }
  });
});
