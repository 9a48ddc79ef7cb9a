// POST /admin/rules/preview: the engine's impact preview of candidate rule files (the same
// report as `itsm-rules replay`), against the rules it runs, over the API's retained events;
// behind the admin key, with the candidate's problems refused, run all-in-one over real HTTP.
// With the embedded API refusing every write, a preview answers, uses up no refusal, and leaves
// the engine's correlations, once_per claims, plans and runs as they were.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestEngine, type TestEngine } from '../helpers/serve.js';

type Json = Record<string, unknown>;
const ACCOUNT = 61;
const CANDIDATE = 'test/fixtures/rule-suites/replay/candidate';
const BASELINE = 'test/fixtures/rule-suites/replay/baseline';

const candidateFiles = readdirSync(CANDIDATE).map((name) => ({
  path: name,
  text: readFileSync(join(CANDIDATE, name), 'utf8'),
}));

describe('POST /admin/rules/preview', () => {
  let engine: TestEngine;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    engine = await startTestEngine({ rulesDir: BASELINE });
    const create = async (name: string, body: Json) => {
      const response = await engine.call('POST', `/v1/accounts/${ACCOUNT}/itsm/incidents`, {
        body,
      });
      expect(response.status, response.text).toBe(201);
      ids[name] = (response.json as Json).id as string;
    };
    await create('major', { impact: 'high', urgency: 'high', priority: 'medium' });
    await create('impactOnly', { impact: 'high', urgency: 'low', priority: 'low' });
    await create('printer', { category: 'printer', urgency: 'medium' });
  });

  afterAll(async () => {
    await engine?.close();
  });

  const preview = (body: unknown, auth?: string | null) =>
    engine.call('POST', '/admin/rules/preview', { body, ...(auth !== undefined && { auth }) });

  it('reports per rule what the candidate would change, against the rules in force', async () => {
    const response = await preview({ files: candidateFiles, since: '1h', accounts: [ACCOUNT] });
    expect(response.status, response.text).toBe(200);
    const report = response.json as { events: number; rules: Json[] };
    expect(report.events).toBeGreaterThanOrEqual(3);
    expect(
      report.rules.map((rule) => [
        rule.ruleId,
        rule.in,
        rule.newMatches,
        rule.lostMatches,
        rule.changedCalls,
      ]),
    ).toEqual([
      ['escalate-major', 'both', 1, 0, 1],
      ['quiet-printers', 'baseline', 0, 1, 0],
    ]);
    expect(report.rules[1]).toMatchObject({
      samples: { lostMatches: [{ objectId: ids.printer }] },
    });
  });

  it('reads an account listed twice once', async () => {
    const [once, twice] = await Promise.all([
      preview({ files: candidateFiles, since: '1h', accounts: [ACCOUNT] }),
      preview({ files: candidateFiles, since: '1h', accounts: [ACCOUNT, ACCOUNT] }),
    ]);
    expect(twice.status, twice.text).toBe(200);
    expect((once.json as Json).events).toBeGreaterThanOrEqual(3);
    expect((twice.json as Json).events).toBe((once.json as Json).events);
    expect(twice.json).toEqual(once.json);
  });

  it('refuses candidate rules with problems, listing them with file and line', async () => {
    const response = await preview({
      files: [{ path: 'broken.yaml', text: 'on: {type: incidnt}\nthen: [{log: {message: x}}]\n' }],
    });
    expect(response.status).toBe(422);
    expect(response.json).toMatchObject({
      ok: false,
      problems: [expect.stringMatching(/^broken\.yaml:1 \/on\/type: /)],
    });
  });

  it.each<[string, unknown, string]>([
    [
      'no files',
      { files: [] },
      'files must be a non-empty list of {path, text}: the candidate rule files',
    ],
    [
      'a bad since',
      { files: candidateFiles, since: 'a week' },
      'since must be a duration such as 30m, 12h or 7d, got "a week"',
    ],
    [
      'an unknown field',
      { files: candidateFiles, rules: [] },
      'unknown field "rules"; use files, since, accounts',
    ],
  ])('answers 400 for %s, saying why', async (_name, body, message) => {
    const response = await preview(body);
    expect(response.status).toBe(400);
    expect(response.json).toMatchObject({ error_code: 'invalid_parameters', message });
  });

  it('answers 401 without the admin key', async () => {
    const response = await preview({ files: candidateFiles }, null);
    expect(response.status).toBe(401);
  });
});

describe('POST /admin/rules/preview writes nothing', () => {
  const WRITES = ['POST', 'PATCH', 'PUT', 'DELETE'];
  const REFUSALS = 1_000;
  // A candidate rule that counts and claims: in the engine's own store it would leave rows.
  const CLUSTER = [
    'on: {type: incident, events: [add]}',
    'when: {"!!": {var: object.category}}',
    'correlate: {key: {var: object.category}, within: 1h, at_least: 1}',
    'once_per: {key: {var: correlation.key}, within: 1h}',
    'then: [{create: {type: problem, link: true, fields: {description: cluster}}}]',
  ].join('\n');
  let engine: TestEngine;

  beforeAll(async () => {
    engine = await startTestEngine({ rulesDir: BASELINE, faults: {} });
  });

  afterAll(async () => {
    await engine?.close();
  });

  it('with the API refusing every write, it answers, tries no write, and leaves the engine state as it was', async () => {
    const account = 62;
    for (const body of [
      { impact: 'high', urgency: 'high', priority: 'medium', category: 'network' },
      { category: 'printer', urgency: 'medium' },
    ]) {
      const response = await engine.call('POST', `/v1/accounts/${account}/itsm/incidents`, {
        body,
      });
      expect(response.status, response.text).toBe(201);
    }
    // Settled: every event (the adds and the engine's own writes) has its run record.
    const count = (sql: string) => (engine.database.prepare(sql).get() as { n: number }).n;
    await eventually(async () => {
      await engine.idle();
      const events = (await engine.call('GET', `/v1/accounts/${account}/events?page_size=1000`))
        .json as { objects: unknown[] };
      return (
        events.objects.length > 2 &&
        count(`SELECT COUNT(*) AS n FROM pipeline_runs WHERE account = ${account}`) ===
          events.objects.length
      );
    }, 'the engine to settle');
    const faults = engine.itsm?.faults;
    if (!faults) throw new Error('the embedded API was started without faults');
    for (const method of WRITES) faults.inject({ status: 500, method, times: REFUSALS });
    const state = () => ({
      tables: ['engine_correlations', 'engine_once', 'engine_plans', 'pipeline_runs'].map((table) =>
        count(`SELECT COUNT(*) AS n FROM ${table}`),
      ),
      events: engine.call('GET', `/v1/accounts/${account}/events?page_size=1000`),
    });
    const before = state();
    const eventsBefore = (await before.events).json;

    const response = await engine.call('POST', '/admin/rules/preview', {
      body: {
        files: [...candidateFiles, { path: 'cluster.yaml', text: CLUSTER }],
        accounts: [account],
      },
    });
    expect(response.status, response.text).toBe(200);
    const report = response.json as { rules: Json[] };
    expect(report.rules.find((rule) => rule.ruleId === 'cluster')).toMatchObject({
      in: 'candidate',
      newMatches: 2,
    });

    expect(faults.pending()).toBe(WRITES.length * REFUSALS);
    const after = state();
    expect(after.tables).toEqual(before.tables);
    expect((await after.events).json).toEqual(eventsBefore);
    faults.clear();
  });
});
