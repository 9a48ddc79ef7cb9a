// The console's overview over real HTTP, all-in-one on 127.0.0.1, against real runs: each rule's
// hits and failures by hour over the last 24 hours (the window moves with the console's clock),
// the work that failed lately, each account's drain lag and events remaining while its drain is
// held up by an outside endpoint that has not answered yet, the API the engine acts through, and
// "Run scheduled rules now" doing what a scheduled tick does. Endpoints stand for systems
// outside the project; they are held and released by the test, never timed.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestItsm } from '../helpers/itsm.js';
import {
  type Cleanups,
  callOutRule,
  createIncident,
  listRuns,
  runCleanups,
  startEngineWithEndpoints,
  startHttpEndpoint,
} from '../helpers/pipeline.js';
import { eventually, startTestEngine, type TestEngine } from '../helpers/serve.js';
import { consoleSession, FORM } from './console-session.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

const cleanups: Cleanups = [];
let engine: TestEngine;
let cookie: string;
let csrf: string;
/** Added to the console's clock: the overview's window and the drain lag are read against it. */
let offset = 0;

/** Calls to the endpoint not answered yet, in arrival order; `release` answers the oldest. */
const held: ServerResponse[] = [];
function release(): void {
  const response = held.shift();
  if (!response) throw new Error('no held call to release');
  response.writeHead(200).end('ok');
}

beforeAll(async () => {
  const endpoint = await startHttpEndpoint(
    cleanups,
    (request: IncomingMessage, response: ServerResponse) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        // The broken desk refuses every call for good (4xx): the run fails, nothing parks.
        if (request.url?.includes('broken')) {
          response.writeHead(422).end('no such queue');
          return;
        }
        held.push(response);
      });
    },
  );
  // Answer what is still held, so that the engine's drain can finish as it closes.
  cleanups.push(() => {
    while (held.length > 0) release();
  });
  engine = await startEngineWithEndpoints(
    cleanups,
    {
      'incident/slow-call.yaml': callOutRule({
        url: `${endpoint}?slow`,
        when: '{"==": [{var: object.category}, slow]}',
        extra: 'order: 10\n',
        description: 'Tell the slow desk about slow incidents.',
      }),
      'incident/broken-call.yaml': callOutRule({
        url: `${endpoint}?broken`,
        when: '{"==": [{var: object.category}, broken]}',
        extra: 'order: 20\n',
        description: 'Tell the broken desk about broken incidents.',
      }),
      'incident/sweep-notes.yaml': [
        'description: A note on every sweep incident, when scheduled rules run.',
        'on:',
        '  type: incident',
        '  schedule: "0 0 1 1 *"',
        'when: {"==": [{var: object.category}, sweep]}',
        'then:',
        '  - note: {text: "Swept."}',
        '',
      ].join('\n'),
    },
    [endpoint],
    // One event a page: a drain held on its second page has read the first one's remaining count.
    {
      pageSize: 1,
      faults: {},
      console: { now: () => Date.now() + offset, sessionTtlMs: 48 * HOUR },
    },
  );
  ({ cookie, csrf } = await consoleSession(engine));
});

afterAll(() => runCleanups(cleanups));

async function overview(): Promise<string> {
  const answer = await engine.call('GET', '/', { auth: null, headers: { Cookie: cookie } });
  expect(answer.status, answer.text).toBe(200);
  return answer.text;
}

/** The HTML of the overview's row that starts with `<tr${attributes}>`. */
function rowOf(html: string, attributes: string): string {
  const at = html.indexOf(`<tr${attributes}>`);
  expect(at, `no <tr${attributes}> in the overview`).toBeGreaterThanOrEqual(0);
  return html.slice(at, html.indexOf('</tr>', at));
}

function accountRow(html: string, account: number): string {
  const table = html.slice(html.indexOf('<table class="accounts">'));
  const at = table.indexOf(`<a href="/console/runs?account=${account}">`);
  expect(at, `account ${account} is not in the accounts table`).toBeGreaterThanOrEqual(0);
  return table.slice(at, table.indexOf('</tr>', at));
}

describe('the overview', () => {
  it("charts each rule's hits and failures by hour over 24 hours, and lists the failed work", async () => {
    await createIncident(engine, 1, { category: 'broken', description: 'Badge reader broken' });
    const slow = await createIncident(engine, 1, { category: 'slow', description: 'Slow VPN' });
    await eventually(async () => held.length === 1, 'the slow call to arrive');
    release();
    await eventually(
      async () => (await listRuns(engine, `object_id=${slow.id}&outcome=done`)).length === 1,
      'the slow incident to be done',
    );
    const [failed] = await listRuns(engine, 'outcome=failed');
    expect(failed).toBeDefined();

    const html = await overview();
    const broken = rowOf(html, ' data-rule="broken-call"');
    expect(broken).toContain('aria-label="0 hits and 1 failures in the last 24 hours, by hour"');
    expect(broken.match(/<rect class="fail"/g)).toHaveLength(1);
    expect(broken).not.toContain('<rect class="hit"');
    expect(broken).toContain('href="/console/runs?rule=broken-call&amp;outcome=failed">1</a>');
    const slowRow = rowOf(html, ' data-rule="slow-call"');
    expect(slowRow).toContain('aria-label="1 hits and 0 failures in the last 24 hours, by hour"');
    expect(slowRow.match(/<rect class="hit"/g)).toHaveLength(1);
    expect(slowRow).not.toContain('<rect class="fail"');
    expect(rowOf(html, ' data-rule="sweep-notes"')).toContain('aria-label="0 hits and 0 failures');

    // The failed run is listed under the work that failed lately, with the call's refusal.
    const failing = html.slice(
      html.indexOf('Work that failed lately'),
      html.indexOf('Parked work'),
    );
    expect(failing).toContain(`href="/console/runs/${failed.id}"`);
    expect(failing).toContain('<span class="badge failed">failed</span>');

    // A day later the same runs are out of the window: no bar is left.
    offset = 25 * HOUR;
    try {
      const later = await overview();
      expect(rowOf(later, ' data-rule="broken-call"')).toContain(
        'aria-label="0 hits and 0 failures',
      );
      expect(later).not.toContain('<rect class=');
    } finally {
      offset = 0;
    }
  });

  it('shows the drain lag and the events remaining of an account whose drain is held up', async () => {
    const account = 3;
    const faults = engine.itsm?.faults;
    if (!faults) throw new Error('the engine was started without fault injection');
    // The account's event log answers 503 until cleared: three events wait, unread.
    faults.inject({ status: 503, path: /^\/v1\/accounts\/3\/events$/, times: 1_000_000 });
    await createIncident(engine, account, { category: 'slow', description: 'first' });
    await createIncident(engine, account, { category: 'slow', description: 'second' });
    await createIncident(engine, account, { category: 'network', description: 'third' });
    await eventually(
      async () => (await engine.pipelineStore.getAccount(account))?.notifiedAt != null,
      'the notification to be noted',
    );
    const notified = (await engine.pipelineStore.getAccount(account))?.notifiedAt as number;
    faults.clear();
    // One event a page: the first page is done (two events after it), the second one's call
    // is held, so the drain has not reached the end.
    await eventually(async () => held.length === 1, 'the first slow call to arrive');
    release();
    await eventually(async () => held.length === 1, 'the second slow call to arrive');

    offset = notified + 7 * MINUTE - Date.now();
    try {
      const row = accountRow(await overview(), account);
      expect(row).toContain('<td>7 min</td>');
      expect(row).toContain('<td>2</td>');
    } finally {
      offset = 0;
    }

    release();
    await eventually(async () => {
      const state = await engine.pipelineStore.getAccount(account);
      return (state?.drainedAt ?? 0) >= (state?.notifiedAt ?? Number.MAX_SAFE_INTEGER);
    }, 'the account to be drained to the end');
    await eventually(
      async () => accountRow(await overview(), account).includes('<td>0</td>'),
      'the last page to be read',
    );
    expect(accountRow(await overview(), account)).toContain('<td>caught up</td>');
  });

  it('names the API the engine acts through: the embedded one here', async () => {
    expect(await overview()).toContain(
      '<h2>ITSM API</h2><p class="mono">embedded (this process, /v1)</p>',
    );
  });

  it('runs the scheduled rules now: the scheduled rule acts on its objects', async () => {
    const swept = await createIncident(engine, 5, { category: 'sweep', description: 'Old' });
    await eventually(
      async () => (await listRuns(engine, `object_id=${swept.id}`)).length === 1,
      'the add run of the sweep incident',
    );
    const answer = await engine.call('POST', '/console/actions/run-schedules', {
      auth: null,
      headers: { ...FORM, Origin: new URL(engine.url).origin, Cookie: cookie },
      body: new URLSearchParams({ _csrf: csrf }).toString(),
    });
    expect(answer.status).toBe(200);
    expect(answer.text).toMatch(
      /Scheduled rules run at [^:]+:\d\d[^<]*: [1-9]\d* objects looked at/,
    );
    const [run, ...others] = await listRuns(
      engine,
      `object_id=${swept.id}&rule_id=sweep-notes&matched=true`,
    );
    expect(others).toEqual([]);
    expect(run.event.type).toBe('schedule');
    expect(run.outcome).toBe('done');
    expect(run.detail.calls.map((call: { outcome: string }) => call.outcome)).toEqual(['done']);
  });
});

describe('the overview of an engine over a separate API', () => {
  it('names the API URL it acts through', async () => {
    const itsm = await startTestItsm();
    cleanups.push(() => itsm.close());
    const separate = await startTestEngine({
      rulesDir: 'test/fixtures/console-rules',
      apiUrl: `${itsm.url}/v1`,
    });
    cleanups.push(() => separate.close());
    const session = await consoleSession(separate);
    const page = await separate.call('GET', '/', {
      auth: null,
      headers: { Cookie: session.cookie },
    });
    expect(page.text).toContain(`<h2>ITSM API</h2><p class="mono">${itsm.url}/v1</p>`);
  });

  it('names the ServiceNow instance and account an engine serving /v1 over ServiceNow acts on', async () => {
    const instance = await startTestItsm({
      tableApi: { users: [{ name: 'integration', password: 's3cret', account: 1 }] },
    });
    cleanups.push(() => instance.close());
    const connected = await startTestEngine({
      rulesDir: 'test/fixtures/console-rules',
      servicenow: {
        instanceUrl: instance.url,
        auth: { kind: 'basic', username: 'integration', password: 's3cret' },
        account: 4,
        pollIntervalMs: 0,
      },
    });
    cleanups.push(() => connected.close());
    const session = await consoleSession(connected);
    const page = await connected.call('GET', '/', {
      auth: null,
      headers: { Cookie: session.cookie },
    });
    expect(page.text).toContain(
      `<h2>ITSM API</h2><p class="mono">embedded (this process, /v1) over ServiceNow ${instance.url} as account 4</p>`,
    );
  });
});
