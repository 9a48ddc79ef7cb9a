// The console's Runs, run, object and Rules pages over real HTTP, all-in-one on 127.0.0.1, against
// the runs of real incidents (the console's fixture rules, and two rules `check` warns about):
// every filter the Runs page offers narrows the list as it says and the list is newest first,
// paged; a run shows its event, field diff, calls with status and time; an object's timeline is
// in order; the Rules pages show each rule's trigger, last match, counts, `check` warnings and
// links to its runs.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatTime } from '../../src/console/format.js';
import { createIncident, listRuns, updateIncident } from '../helpers/pipeline.js';
import { eventually, startTestEngine, type TestEngine } from '../helpers/serve.js';
import { consoleSession } from './console-session.js';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
type Json = any;

let engine: TestEngine;
let rulesDir: string;
let cookie: string;
/** A: escalated in account 1 (a chain of runs); B: nothing matched, account 2; C: account 1. */
let a: Json;
let b: Json;
let c: Json;

beforeAll(async () => {
  rulesDir = mkdtempSync(join(tmpdir(), 'itsm-rules-console-pages-'));
  cpSync('test/fixtures/console-rules', rulesDir, { recursive: true });
  cpSync('test/fixtures/console-check-rules', rulesDir, { recursive: true });
  engine = await startTestEngine({ rulesDir });
  a = await createIncident(engine, 1, {
    description: 'Core switch down',
    impact: 'high',
    urgency: 'high',
    priority: 'low',
  });
  await eventually(
    async () => (await listRuns(engine, `object_id=${a.id}`)).length === 2,
    'the two runs of the escalated incident (its add, then the escalation coming back)',
  );
  b = await createIncident(engine, 2, { description: 'Mouse', impact: 'low', urgency: 'low' });
  await eventually(
    async () => (await listRuns(engine, `object_id=${b.id}`)).length === 1,
    'the run of the minor incident',
  );
  c = await createIncident(engine, 1, { description: 'Slow mail', impact: 'low', urgency: 'low' });
  await eventually(
    async () => (await listRuns(engine, `object_id=${c.id}`)).length === 1,
    'the run of the third incident',
  );
  ({ cookie } = await consoleSession(engine));
});

afterAll(async () => {
  await engine?.close();
  if (rulesDir) rmSync(rulesDir, { recursive: true, force: true });
});

async function page(path: string, status = 200): Promise<string> {
  const answer = await engine.call('GET', path, { auth: null, headers: { Cookie: cookie } });
  expect(answer.status, answer.text.slice(0, 400)).toBe(status);
  return answer.text;
}

/** The run ids of a Runs page (or of live rows), in the order shown. */
function runIds(html: string): number[] {
  return [...html.matchAll(/<tr class="[^"]*" data-run="(\d+)">/g)].map((m) => Number(m[1]));
}

const ids = (runs: Json[]) => runs.map((run: Json) => run.id as number);

describe('the Runs page', () => {
  it('lists every run newest first, and offers each filter in its form', async () => {
    const html = await page('/console/runs');
    const all = ids(await listRuns(engine, ''));
    expect(all.length).toBe(4);
    expect(runIds(html)).toEqual(all);
    expect(runIds(html)).toEqual([...runIds(html)].sort((x, y) => y - x));
    for (const name of ['object', 'account', 'since', 'until']) {
      expect(html).toContain(`<input name="${name}"`);
    }
    for (const rule of [
      'escalate-major-incidents',
      'note-critical',
      'open-outage-problem',
      'open-outage-problem-too',
    ]) {
      expect(html).toContain(`<option value="${rule}">${rule}</option>`);
    }
    for (const outcome of ['done', 'failed', 'no_match', 'skipped', 'parked']) {
      expect(html).toContain(`<option value="${outcome}">${outcome}</option>`);
    }
  });

  it.each([
    [
      'a rule (every run that looked at it)',
      'rule=escalate-major-incidents',
      'rule_id=escalate-major-incidents',
    ],
    [
      'a rule that matched',
      'rule=escalate-major-incidents&matched=yes',
      'rule_id=escalate-major-incidents&matched=true',
    ],
    [
      'a rule that did not match',
      'rule=escalate-major-incidents&matched=no',
      'rule_id=escalate-major-incidents&matched=false',
    ],
    ['an outcome', 'outcome=no_match', 'outcome=no_match'],
    ['an account', 'account=2', 'account=2'],
    ['an outcome and an account', 'outcome=done&account=1', 'outcome=done&account=1'],
  ])('filters by %s, as /runs does', async (_name, filter, api) => {
    const expected = ids(await listRuns(engine, api));
    expect(expected.length).toBeGreaterThan(0);
    const html = await page(`/console/runs?${filter}`);
    expect(runIds(html)).toEqual(expected);
    // The form is filled again with the filter.
    const [name, value] = (filter.split('&')[0] as string).split('=') as [string, string];
    expect(html).toMatch(
      new RegExp(`name="${name}"[^>]*value="${value}"|value="${value}" selected`),
    );
    // The live rows ask with the same filters: the runs after 0 are the same runs.
    expect(html).toContain(`data-live="/console/runs/rows?${filter.replace('&', '&amp;')}"`);
    expect(runIds(await page(`/console/runs/rows?${filter}&after=0`))).toEqual(expected);
  });

  it.each([
    ['matched=yes', 'matched: choose a rule too'],
    ['until=soon', 'until: type a time such as 2026-12-04T16:20 (UTC), not &quot;soon&quot;'],
    ['before=yesterday', 'before: a run number such as 120, not &quot;yesterday&quot;'],
    ['account=0', 'account'],
    [
      'rule=note-critical&matched=maybe',
      'matched: choose yes or no (did the rule match), not &quot;maybe&quot;',
    ],
  ])('names a bad filter %s, and lists nothing', async (filter, message) => {
    const html = await page(`/console/runs?${filter}`, 400);
    expect(html).toContain(message);
    expect(runIds(html)).toEqual([]);
    expect(html).not.toContain('data-live=');
  });

  it('filters by time: since is inclusive, until is not', async () => {
    const runs = await listRuns(engine, '');
    const [newest] = runs;
    const at = new Date(newest.at).getTime();
    const sameTime = ids(runs.filter((run: Json) => new Date(run.at).getTime() >= at));
    const since = encodeURIComponent(new Date(at).toISOString());
    expect(runIds(await page(`/console/runs?since=${since}`))).toEqual(sameTime);
    expect(runIds(await page(`/console/runs?until=${since}`))).toEqual(
      ids(runs.filter((run: Json) => new Date(run.at).getTime() < at)),
    );
    // As the form's datetime-local field sends it: minutes, UTC.
    const minute = new Date(at + 60_000).toISOString().slice(0, 16);
    expect(runIds(await page(`/console/runs?since=${minute}`))).toEqual([]);
    expect(runIds(await page(`/console/runs?until=${minute}`))).toEqual(ids(runs));
  });

  it('pages back with "Older runs", 50 a page, without losing the filters', async () => {
    const created: Json[] = [];
    for (let i = 0; i < 52; i++) {
      created.push(await createIncident(engine, 9, { description: `bulk ${i}`, impact: 'low' }));
    }
    await eventually(
      async () => (await listRuns(engine, 'account=9')).length === 52,
      'the runs of the 52 incidents',
    );
    const first = await page('/console/runs?account=9');
    const shown = runIds(first);
    expect(shown).toHaveLength(50);
    const next = /<a href="\/console\/runs\?([^"]+)">Older runs<\/a>/.exec(first)?.[1];
    expect(next).toBe(`account=9&amp;before=${shown.at(-1)}`);
    const second = await page(`/console/runs?${(next as string).replace('&amp;', '&')}`);
    const older = runIds(second);
    expect(older).toHaveLength(2);
    expect(Math.max(...older)).toBeLessThan(Math.min(...shown));
    expect(second).not.toContain('Older runs');
    // An older page is not live: it stays as it is.
    expect(second).not.toContain('data-live=');
  });
});

describe('a run', () => {
  it('shows its event, what it changed, every rule looked at and every call with status and time', async () => {
    const [add] = await listRuns(
      engine,
      `object_id=${a.id}&rule_id=escalate-major-incidents&matched=true`,
    );
    const html = await page(`/console/runs/${add.id}`);
    expect(html).toContain(`Event <span class="mono">${add.event.id}</span> (add) of account 1`);
    expect(html).toContain('<td class="mono">description</td>');
    expect(html).toContain('<td class="mono ins">Core switch down</td>');
    expect(html).toContain('<tr data-rule="escalate-major-incidents">');
    expect(html).toContain('<tr data-rule="open-outage-problem">');
    const calls = html.slice(
      html.indexOf('<table class="calls">'),
      html.indexOf('</table>', html.indexOf('<table class="calls">')),
    );
    // The incident is named by its number; its id is in the title.
    expect(calls).toContain(
      `escalate incident <abbr class="object" title="${a.id}">${add.object.number}</abbr>: `,
    );
    expect(calls).not.toContain(`escalate incident ${a.id}`);
    expect(calls).toContain('<span class="badge done">done</span>');
    expect(calls).toMatch(/<td>200<\/td><td>\d+ ms<\/td>/);
  });
});

describe("an object's timeline", () => {
  it('lists its runs oldest first, each with what its event changed', async () => {
    await updateIncident(engine, 1, c.id, { urgency: 'medium' });
    await eventually(
      async () => (await listRuns(engine, `object_id=${c.id}`)).length === 2,
      'the run of the update',
    );
    const html = await page(`/console/objects/${encodeURIComponent(c.id)}?account=1`);
    const runs = ids(await listRuns(engine, `object_id=${c.id}`));
    const shown = [...html.matchAll(/<li class="card" data-run="(\d+)">/g)].map((m) =>
      Number(m[1]),
    );
    expect(shown).toEqual([...runs].reverse());
    const update = html.slice(html.indexOf(`data-run="${runs[0]}"`));
    expect(update).toMatch(
      /<span class="mono">urgency<\/span> <span class="del mono">low<\/span> -&gt; <span class="ins mono">medium<\/span>/,
    );
  });

  it("shows only the account's runs when one is named", async () => {
    const html = await page(`/console/objects/${encodeURIComponent(b.id)}?account=1`);
    expect(html).toContain('The engine has no run for this object');
  });
});

describe('the Rules pages', () => {
  it('show each rule with its trigger, last match, 24-hour counts linking to its runs, and check warnings', async () => {
    const html = await page('/console/rules');
    const row = (id: string) => {
      const at = html.indexOf(`<tr data-rule="${id}">`);
      expect(at).toBeGreaterThanOrEqual(0);
      return html.slice(at, html.indexOf('</tr>', at));
    };
    const escalate = row('escalate-major-incidents');
    expect(escalate).toContain('High impact and high urgency means critical priority, at once.');
    expect(escalate).toContain('incident: add, update; when impact, urgency changed');
    const [lastMatch] = await listRuns(engine, 'rule_id=escalate-major-incidents&matched=true');
    expect(escalate).toContain(`>${formatTime(new Date(lastMatch.at).getTime())}</time>`);
    expect(escalate).toContain(
      '<a href="/console/runs?rule=escalate-major-incidents&amp;matched=yes">1</a> / <a href="/console/runs?rule=escalate-major-incidents&amp;outcome=failed">0</a>',
    );
    expect(escalate).toContain('<span class="badge ok">ok</span>');
    expect(row('note-critical')).toContain('the engine&#39;s own writes too');
    const never = row('open-outage-problem');
    expect(never).toContain('<span class="muted">never</span>');
    expect(never).toContain('<span class="badge ok">ok</span>');
    const warned = row('open-outage-problem-too');
    expect(warned).toContain('<ul class="warnings">');
    expect(warned).toContain(
      '/then/0/create: rule &quot;open-outage-problem-too&quot; creates a problem, and so does rule &quot;open-outage-problem&quot;',
    );
    expect(warned).not.toContain('badge ok');
  });

  it('show one rule with its source, file, warnings and its latest runs', async () => {
    const html = await page('/console/rules/open-outage-problem-too');
    expect(html).toContain('open-outage-problem-too.yaml</span>, order 50');
    expect(html).toContain('<ul class="warnings">');
    // The file as written, its comments included.
    expect(html).toContain(
      '# The same trigger opens a second problem: what `itsm-rules check` warns about (one event can',
    );
    expect(html).toContain('Outage again: ');
    const runs = ids(await listRuns(engine, 'rule_id=open-outage-problem-too')).slice(0, 20);
    expect(runs.length).toBeGreaterThan(0);
    expect(runIds(html)).toEqual(runs);
    expect(html).toContain('<a href="/console/runs?rule=open-outage-problem-too">(all)</a>');
  });

  it('answer an unknown rule with a 404 page naming it', async () => {
    expect(await page('/console/rules/no-such-rule', 404)).toContain(
      'The running rule set has no rule &quot;no-such-rule&quot;.',
    );
  });
});

describe('the chain of engine writes', () => {
  it("lists every run a run's writes set off, and is the same from each of them", async () => {
    // Both outage rules create a problem and link the incident to it: two writes on the
    // incident, so two runs at hop 1 follow the add.
    const outage = await createIncident(engine, 3, {
      description: 'Core router down',
      category: 'outage',
    });
    await eventually(
      async () => (await listRuns(engine, `object_id=${outage.id}`)).length === 3,
      'the add and the two runs of the links coming back',
    );
    const runs = (await listRuns(engine, `object_id=${outage.id}`)).reverse();
    expect(runs.map((run: Json) => run.self_hops)).toEqual([0, 1, 1]);
    for (const run of runs) {
      const html = await page(`/console/runs/${run.id}`);
      const chain = html.slice(html.indexOf('<ol class="chain">'), html.indexOf('</ol>'));
      const shown = [
        ...chain.matchAll(/<li>(?:<a href="\/console\/runs\/(\d+)">|<strong>#(\d+))/g),
      ].map((m) => Number(m[1] ?? m[2]));
      expect(shown, `the chain on run #${run.id}`).toEqual(ids(runs));
      expect(chain).toContain(`<strong>#${run.id} (this run)</strong>`);
    }
  });
});

describe('values from the API in a page', () => {
  it('are shown as text, never as HTML: a description with markup is escaped everywhere', async () => {
    const markup = '<script>alert(1)</script><img src=x onerror=alert(2)>';
    const hostile = await createIncident(engine, 4, { description: markup, impact: 'low' });
    await eventually(
      async () => (await listRuns(engine, `object_id=${hostile.id}`)).length === 1,
      'the run of the incident with markup',
    );
    const [run] = await listRuns(engine, `object_id=${hostile.id}`);
    for (const path of [
      `/console/runs/${run.id}`,
      `/console/objects/${encodeURIComponent(hostile.id)}?account=4`,
    ]) {
      const html = await page(path);
      expect(html, path).toContain(
        '&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;',
      );
      expect(html, path).not.toContain('<script>alert');
      expect(html, path).not.toContain('<img src=x');
    }
  });
});
