// The operator console on the Worker (workerd, D1): the same pages and sign-in as on Node, from
// the Worker's own fetch handler, with its rules shown as bundled (no reload action); and its
// Retry of parked work, which queues a drain message as POST /admin/parked/retry does.
import { afterEach, describe, expect, it } from 'vitest';
import { CSS_PATH, JS_PATH } from '../../src/console/assets.js';
import {
  clearFaults,
  createIncident,
  deliver,
  eventually,
  injectFault,
  newWorker,
  pipelineStore,
  request,
  runsOf,
  workerEnv,
} from './helpers.js';
import { delivered, mainWorker } from './main.js';

afterEach(async () => {
  await clearFaults();
});

const FORM = { 'Content-Type': 'application/x-www-form-urlencoded', Origin: 'http://worker.test' };

/** A session cookie on `worker` and its CSRF token (from the overview's forms). */
async function session(worker: Parameters<typeof request>[0]) {
  const signIn = await request(worker, 'POST', '/console/sign-in', {
    headers: FORM,
    body: new URLSearchParams({ key: workerEnv.ITSM_API_KEY }).toString(),
  });
  const cookie = (signIn.headers.get('Set-Cookie') ?? '').split(';')[0] as string;
  const overview = await (
    await request(worker, 'GET', '/', { headers: { Cookie: cookie } })
  ).text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(overview)?.[1] ?? '';
  return { cookie, csrf, overview };
}

describe('the console on the Worker', () => {
  it('signs in with the API key and serves the overview, the runs and its script', async () => {
    const worker = newWorker();
    const first = await request(worker, 'GET', '/');
    expect(first.status).toBe(303);
    expect(first.headers.get('Location')).toBe('/console/sign-in');

    const signIn = await request(worker, 'POST', '/console/sign-in', {
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded',
        Origin: 'http://worker.test',
      },
      body: new URLSearchParams({ key: workerEnv.ITSM_API_KEY }).toString(),
    });
    expect(signIn.status).toBe(303);
    const cookie = (signIn.headers.get('Set-Cookie') ?? '').split(';')[0] as string;
    expect(cookie).toMatch(/^itsm_console=v1\./);

    const overview = await request(worker, 'GET', '/', { headers: { Cookie: cookie } });
    expect(overview.status).toBe(200);
    const html = await overview.text();
    expect(html).toContain('<h1>Overview</h1>');
    expect(html).toContain('bundled with this deployment');
    expect(html).not.toContain('/console/actions/reload-rules');
    expect(html).not.toContain(workerEnv.ITSM_API_KEY);

    const runs = await request(worker, 'GET', '/console/runs', { headers: { Cookie: cookie } });
    expect(runs.status).toBe(200);
    const script = await request(worker, 'GET', JS_PATH);
    expect(script.status).toBe(200);
    expect(script.headers.get('Content-Type')).toContain('text/javascript');
  });

  it('serves the Runs filtered by INC number, a run with its false clauses and calls, the timeline, the Rules pages and the style sheet, from D1', async () => {
    const account = 662;
    await createIncident(account, {
      description: 'Printer on fire',
      impact: 'high',
      urgency: 'high',
      priority: 'low',
    });
    const worker = newWorker();
    await deliver(worker, [{ account }]);
    const [run] = (await runsOf(account)).filter((r) => r.eventType === 'add');
    expect(run?.outcome).toBe('done');
    const number = run?.objectNumber as string;
    expect(number).toMatch(/^INC\d{7}$/);
    const { cookie } = await session(worker);
    const page = async (path: string) => {
      const answer = await request(worker, 'GET', path, { headers: { Cookie: cookie } });
      expect(answer.status, path).toBe(200);
      return answer.text();
    };

    const runs = await page(`/console/runs?object=${number}&account=${account}`);
    expect(runs).toContain(`<tr class="" data-run="${run?.id}">`);
    expect(runs).toContain(`>${number}</a>`);

    const one = await page(`/console/runs/${run?.id}`);
    expect(one).toContain('<tr data-rule="escalate-major-incidents">');
    // The recurring-incidents rule looked at it and did not match: the clause that was false.
    expect(one).toMatch(/<tr data-rule="recurring-incidents-open-problem">.*is false, because/s);
    expect(one).toMatch(/<table class="calls">.*escalate incident.*<td>200<\/td><td>\d+ ms<\/td>/s);
    expect(one).toContain('<td class="mono ins">Printer on fire</td>');

    const timeline = await page(
      `/console/objects/${encodeURIComponent(run?.objectId as string)}?account=${account}`,
    );
    expect(timeline).toContain(`<li class="card" data-run="${run?.id}">`);

    const rules = await page('/console/rules');
    expect(rules).toContain('<tr data-rule="escalate-major-incidents">');
    expect(rules).toContain('bundled with this deployment');
    const rule = await page('/console/rules/escalate-major-incidents');
    expect(rule).toContain('<h2>Source</h2>');
    // The bundled file as written, its comments included.
    expect(rule).toContain('# A major incident: high impact and high urgency.');
    expect(rule).toContain(`data-run="${run?.id}"`);

    const css = await request(worker, 'GET', CSS_PATH);
    expect(css.status).toBe(200);
    expect(css.headers.get('Content-Type')).toContain('text/css');
  });

  it('refuses a wrong key', async () => {
    const answer = await request(newWorker(), 'POST', '/console/sign-in', {
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded',
        Origin: 'http://worker.test',
      },
      body: 'key=wrong',
    });
    expect(answer.status).toBe(401);
    expect(answer.headers.get('Set-Cookie')).toBeNull();
  });

  it('retries a parked object from the console: due at once, and a drain message queued', async () => {
    const account = 661;
    await createIncident(account, {
      description: 'core switch down',
      category: 'network',
      impact: 'high',
      urgency: 'high',
      priority: 'medium',
    });
    // The escalation's PATCH answers 500 on every try of this drain: the incident is parked.
    await injectFault({
      status: 500,
      times: 2,
      method: 'PATCH',
      path: { regex: `^/v1/accounts/${account}/itsm/incidents/` },
    });
    await deliver(newWorker([], { random: () => 0.5 }), [{ account }]);
    const [parked] = await pipelineStore.listParked({ account, limit: 10 });
    expect(parked?.nextAt).toBeGreaterThan(Date.now());

    const { cookie, csrf, overview } = await session(mainWorker);
    expect(overview).toContain(`<tr data-parked="${parked?.id}">`);
    const answer = await request(mainWorker, 'POST', '/console/actions/retry-parked', {
      headers: { ...FORM, Cookie: cookie },
      body: new URLSearchParams({ _csrf: csrf, id: String(parked?.id) }).toString(),
    });
    expect(answer.status).toBe(303);
    expect(answer.headers.get('Location')).toBe('/?retried=1#parked-work');
    // The drain message reaches the Queue's consumer, whose drain finishes and unparks it.
    await eventually(
      () => delivered.some((m) => (m.body as { account?: number }).account === account),
      `a drain message for account ${account}`,
    );
    await eventually(
      async () => (await pipelineStore.listParked({ account, limit: 10 })).length === 0,
      'the incident to be unparked',
    );
  });
});
