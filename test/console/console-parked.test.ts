// Parked work in the console over real HTTP, all-in-one on 127.0.0.1: a desk incident whose
// `http` action's endpoint (a test server) answers 503 is parked; the overview, the Runs page and
// the object's timeline show it; POST /console/actions/retry-parked retries it (one by id, or all)
// exactly as POST /admin/parked/retry does, only with the session's CSRF token, and sends the
// operator back with how many were retried. Checked by store state and call counts, never by time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReceiver, type TestReceiver } from '../helpers/receiver.js';
import { eventually, startTestEngine, type TestEngine } from '../helpers/serve.js';
import { consoleSession, FORM } from './console-session.js';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
type Json = any;

const ACCOUNT = 7;

let engine: TestEngine;
let desk: TestReceiver;
const state = { down: true, accepted: 0, refused: 0 };
let incident: Json;
let cookie: string;
let csrf: string;

beforeAll(async () => {
  desk = await startReceiver({
    answer: () => {
      if (state.down) {
        state.refused++;
        return { status: 503, body: 'down for maintenance' };
      }
      state.accepted++;
      return { status: 200, body: 'ok' };
    },
  });
  engine = await startTestEngine({
    rulesDir: 'test/fixtures/console-parked-rules',
    httpAllow: [new URL(desk.url).host],
    secrets: (name) => (name === 'DESK_URL' ? desk.url : undefined),
    // No retry on the clock during the test: only the operator's retries bring it back.
    parkRetry: { baseMs: 600_000 },
  });
  const created = await engine.call('POST', `/v1/accounts/${ACCOUNT}/itsm/incidents`, {
    body: { category: 'desk', description: 'Badge reader broken' },
  });
  expect(created.status, created.text).toBe(201);
  incident = created.json;
  await eventually(async () => (await parked()).length === 1, 'the desk incident to be parked');
  ({ cookie, csrf } = await consoleSession(engine));
});

afterAll(async () => {
  await engine?.close();
  await desk?.close();
});

async function parked(): Promise<Json[]> {
  const answer = await engine.call('GET', '/admin/parked');
  expect(answer.status, answer.text).toBe(200);
  return answer.json.objects;
}

function page(path: string) {
  return engine.call('GET', path, { auth: null, redirect: 'manual', headers: { Cookie: cookie } });
}

function retry(fields: Record<string, string>) {
  return engine.call('POST', '/console/actions/retry-parked', {
    auth: null,
    redirect: 'manual',
    headers: { ...FORM, Origin: new URL(engine.url).origin, Cookie: cookie },
    body: new URLSearchParams(fields).toString(),
  });
}

describe('parked work in the console', () => {
  it('lists the parked object on the overview, the Runs page and its timeline', async () => {
    const [object] = await parked();
    const overview = await page('/');
    expect(overview.status).toBe(200);
    const row = new RegExp(`<tr data-parked="${object.id}">([\\s\\S]*?)</tr>`).exec(overview.text);
    expect(row, overview.text).not.toBeNull();
    const cells = row?.[1] ?? '';
    expect(cells).toContain(`>${ACCOUNT}</td>`);
    expect(cells).toContain(
      `href="/console/objects/${encodeURIComponent(incident.id)}?account=${ACCOUNT}"`,
    );
    // Known by its number (the account's first incident), from the waiting event: no run of it
    // has read the object yet.
    expect(cells).toContain('>INC0010001</a>');
    expect(cells).toContain('503');
    expect(cells).toContain(`name="id" value="${object.id}"`);
    expect(cells).toContain('Retry now');
    expect(overview.text).toContain('Retry all now');
    expect(overview.text).toContain('1 parked');

    const runs = await page('/console/runs');
    expect(runs.text).toContain('<a class="badge parked" id="parked-count" href="/#parked-work">');
    expect(runs.text).toContain('<span class="badge parked">parked</span>');

    const timeline = await page(
      `/console/objects/${encodeURIComponent(incident.id)}?account=${ACCOUNT}`,
    );
    expect(timeline.text).toContain('id="object-parked"');
    expect(timeline.text).toContain('503');
  });

  it('retries nothing without the CSRF token, nor with a bad id or page to go back to', async () => {
    const before = await parked();
    const refusedBefore = state.refused;
    const noToken = await retry({});
    expect(noToken.status).toBe(403);
    const badId = await retry({ _csrf: csrf, id: '1; drop' });
    expect(badId.status).toBe(400);
    expect(badId.text).toContain('id must be the number of a parked object');
    expect(badId.text).toContain('nothing was retried');
    const offSite = await retry({ _csrf: csrf, back: '//evil.example/' });
    expect(offSite.status).toBe(400);
    expect(offSite.text).toContain('back must be the console page the form was on');
    // Not made due (a retry sets next_retry_at to now), and no call was tried.
    expect(await parked()).toEqual(before);
    expect(state.refused).toBe(refusedBefore);
  });

  it('makes the object due with the token, by id, and comes back with how many were retried', async () => {
    const [object] = await parked();
    expect(object.attempts).toBe(1);
    const back = `/console/objects/${encodeURIComponent(incident.id)}?account=${ACCOUNT}`;
    const answer = await retry({ _csrf: csrf, id: String(object.id), back });
    expect(answer.status, answer.text).toBe(303);
    expect(answer.headers.get('Location')).toBe(`${back}&retried=1`);
    // The endpoint is still down: the retry was tried (a second failed attempt) and it stays parked.
    await eventually(
      async () => (await parked())[0]?.attempts === 2,
      'the retry to be tried (and fail again)',
    );
    expect(state.accepted).toBe(0);
    const notice = await page(answer.headers.get('Location') ?? '');
    expect(notice.text).toContain('Retried 1 parked object now');
  });

  it('retries every parked object with "Retry all", acting once when the endpoint is back', async () => {
    state.down = false;
    const answer = await retry({ _csrf: csrf });
    expect(answer.status, answer.text).toBe(303);
    expect(answer.headers.get('Location')).toBe('/?retried=1#parked-work');
    await eventually(async () => (await parked()).length === 0, 'the object to be unparked');
    expect(state.accepted).toBe(1);
    const runs = await engine.call('GET', `/runs?object_id=${incident.id}`);
    expect(runs.json.objects.map((run: Json) => run.outcome)).toContain('done');
    expect(runs.json.objects.map((run: Json) => run.outcome)).not.toContain('parked');

    const again = await retry({ _csrf: csrf });
    expect(again.headers.get('Location')).toBe('/?retried=0#parked-work');
    const overview = await page('/?retried=0');
    expect(overview.text).toContain('Nothing was retried');
    expect(overview.text).toContain('Nothing is parked');
  });
});
