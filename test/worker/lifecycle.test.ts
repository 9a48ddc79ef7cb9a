// The rule lifecycle on Workers, as on Node: POST /admin/rules/preview replays the API's retained
// events against candidate rule files, counting correlations and once_per keys in memory (D1, the
// live state, gains no row) and writing nothing; a rule in shadow mode is recorded with outcome
// shadow and the calls it would have made, counted in /metrics, and acts on nothing; run records
// carry the version /healthz shows, the same as the same files give on Node, and /runs filters
// by it. Against the embedded ITSM API over real HTTP, state in the local D1 database.
import { describe, expect, it } from 'vitest';
import { loadRules, type RuleSource } from '../../src/engine/load.js';
import { ruleSetVersion } from '../../src/engine/rule-version.js';
import {
  allEvents,
  createIncident,
  deliver,
  engineEvents,
  type Json,
  listObjects,
  newWorker,
  request,
  runsOf,
  workerEnv,
} from './helpers.js';

const fixtures = import.meta.glob<string>('../fixtures/rule-suites/replay/**/*.yaml', {
  query: '?raw',
  import: 'default',
  eager: true,
});
/** The replay fixture's rule set `side` (baseline or candidate) as rule files. */
const replayRules = (side: string): RuleSource[] =>
  Object.entries(fixtures)
    .filter(([path]) => path.includes(`/replay/${side}/`))
    .map(([path, text]) => ({ path: path.replace(/^.*\/replay\//, 'rules/'), text }));

// A candidate rule that counts and claims: were the preview to use D1, it would leave rows there.
const PRINTER_CLUSTER = [
  'on: {type: incident, events: [add]}',
  'when: {"==": [{var: object.category}, printer]}',
  'correlate: {key: {var: object.category}, within: 1h, at_least: 1}',
  'once_per: {key: {var: correlation.key}, within: 1h}',
  'then: [{log: {message: printers}}]',
].join('\n');

const SHADOW_RULES: RuleSource[] = [
  {
    path: 'rules/escalate-in-shadow.yaml',
    text: [
      'mode: shadow',
      'on: {type: incident, events: [add]}',
      'when: {"==": [{var: object.impact}, high]}',
      'once_per: {var: object.id}',
      'then: [{escalate: {levels: 1}}]',
    ].join('\n'),
  },
];

const rowsOf = async (table: string, account: number) =>
  (
    await workerEnv.DB.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE account = ?`)
      .bind(account)
      .first<{ n: number }>()
  )?.n;

describe('the rule lifecycle on Workers', () => {
  it('previews candidate rules over the retained events, counting in memory and writing nothing', async () => {
    const account = 781;
    const major = await createIncident(account, {
      impact: 'high',
      urgency: 'high',
      priority: 'medium',
    });
    const impactOnly = await createIncident(account, {
      impact: 'high',
      urgency: 'low',
      priority: 'low',
    });
    const printer = await createIncident(account, { category: 'printer', urgency: 'medium' });
    const before = await allEvents(account);
    const worker = newWorker([], { rules: replayRules('baseline') });

    const response = await request(worker, 'POST', '/admin/rules/preview', {
      auth: true,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        files: [
          ...replayRules('candidate'),
          { path: 'rules/printer-cluster.yaml', text: PRINTER_CLUSTER },
        ],
        since: '1h',
        accounts: [account],
      }),
    });
    const report = (await response.json()) as Json;
    expect(response.status, JSON.stringify(report)).toBe(200);
    expect(report).toMatchObject({ events: 3, evaluated: 3, errors: [] });
    expect(
      report.rules.map((rule: Json) => [
        rule.ruleId,
        rule.in,
        rule.newMatches,
        rule.lostMatches,
        rule.changedCalls,
      ]),
    ).toEqual([
      ['escalate-major', 'both', 1, 0, 1],
      ['printer-cluster', 'candidate', 1, 0, 0],
      ['quiet-printers', 'baseline', 0, 1, 0],
    ]);
    expect(report.rules[0].samples).toMatchObject({
      newMatches: [{ objectId: impactOnly.id }],
      changedCalls: [{ objectId: major.id }],
    });
    expect(report.rules[2].samples.lostMatches).toMatchObject([{ objectId: printer.id }]);
    // Nothing written to the API, nothing counted or claimed in D1.
    expect(await allEvents(account)).toEqual(before);
    expect(await rowsOf('engine_correlations', account)).toBe(0);
    expect(await rowsOf('engine_once', account)).toBe(0);
  });

  it('refuses candidate rules with problems, as on Node', async () => {
    const worker = newWorker([], { rules: replayRules('baseline') });
    const response = await request(worker, 'POST', '/admin/rules/preview', {
      auth: true,
      body: JSON.stringify({
        files: [
          { path: 'broken.yaml', text: 'on: {type: incidnt}\nthen: [{log: {message: x}}]\n' },
        ],
      }),
    });
    expect(response.status).toBe(422);
    expect(await response.json()).toMatchObject({
      ok: false,
      problems: [expect.stringMatching(/^broken\.yaml:1 \/on\/type: /)],
    });
  });

  it('records a shadow rule with outcome shadow and its would-be calls, counts it, and writes nothing', async () => {
    const account = 782;
    const worker = newWorker([], { rules: SHADOW_RULES });
    const incident = await createIncident(account, { impact: 'high', priority: 'low' });
    await deliver(worker, [{ account }]);

    const runs = await runsOf(account);
    expect(runs.map((run) => run.outcome)).toEqual(['shadow']);
    const [run] = runs as [(typeof runs)[number]];
    expect(JSON.parse(run.detail).rules).toEqual([
      expect.objectContaining({
        ruleId: 'escalate-in-shadow',
        verdict: 'shadow',
        shadowCalls: [
          expect.objectContaining({
            method: 'PATCH',
            body: { priority: 'medium', escalation: 1 },
          }),
        ],
      }),
    ]);
    expect(await engineEvents(account)).toEqual([]);
    const [stored] = await listObjects(account, 'incidents');
    expect(stored).toMatchObject({ id: incident.id, priority: 'low', escalation: 0 });
    // The once_per key it took is its own, not the live rule's it becomes once promoted.
    expect(
      (
        await workerEnv.DB.prepare('SELECT rule_id FROM engine_once WHERE account = ?')
          .bind(account)
          .all<{ rule_id: string }>()
      ).results.map((row) => row.rule_id),
    ).toEqual(['escalate-in-shadow@shadow']);

    const metrics = await (await request(worker, 'GET', '/metrics', { auth: true })).text();
    expect(metrics).toContain('itsm_rules_shadow_matches_total{rule="escalate-in-shadow"} 1');
    expect(metrics).not.toContain('itsm_rules_rules_matched_total{rule="escalate-in-shadow"}');
  });

  it('records the version /healthz shows, the one the same files give anywhere, and filters by it', async () => {
    const account = 783;
    const worker = newWorker([], { rules: SHADOW_RULES });
    await createIncident(account, { impact: 'high', priority: 'low' });
    await deliver(worker, [{ account }]);
    const [run] = await runsOf(account);

    const health = (await (await request(worker, 'GET', '/healthz')).json()) as Json;
    expect(health.rule_version).toMatch(/^[0-9a-f]{64}$/);
    expect(run?.ruleVersion).toBe(health.rule_version);
    // The same files read from another folder (as `serve` would on Node) have the same version.
    const elsewhere = loadRules(
      SHADOW_RULES.map((source) => ({ ...source, path: `/srv/itsm/${source.path}` })),
    );
    expect((await ruleSetVersion(elsewhere.ruleSet as never)).version).toBe(health.rule_version);

    const listed = (await (
      await request(
        worker,
        'GET',
        `/runs?account=${account}&rule_version=${health.rule_version.slice(0, 12)}`,
        { auth: true },
      )
    ).json()) as Json;
    expect(listed.objects.map((item: Json) => item.id)).toEqual([run?.id]);
  });
});
