// Shadow mode, run by the engine (all-in-one: the embedded ITSM API and the engine over real HTTP
// on 127.0.0.1): a rule with `mode: shadow` is evaluated and recorded (run outcome shadow, the
// calls it would have made) but writes nothing, never stops a live rule, never takes the once_per
// key or the correlation of a live rule, is counted in /metrics apart from the rules that acted,
// and acts once the line is removed (a hot reload).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateEvent } from '../../src/engine/evaluate.js';
import { loadRules } from '../../src/engine/load.js';
import { formatProblem } from '../../src/engine/problem.js';
import {
  loadRuleSet,
  makeEngineStore,
  makeEventInput,
  makeIncident,
  minutesLater,
} from '../helpers/rules.js';
import { ROOT, runScript } from '../helpers/run-script.js';
import { eventually, startTestEngine, type TestEngine, writeRules } from '../helpers/serve.js';

type Json = Record<string, unknown>;
const SHADOW_ONLY = 41;
const BESIDE_LIVE = 42;
const PROMOTED = 43;

const openProblem = (id: string, extra: string[]) =>
  [
    `id: ${id}`,
    ...extra,
    'on: {type: incident, events: [add]}',
    'when: {"!!": {var: object.category}}',
    'correlate: {key: {var: object.category}, within: 1h, at_least: 2}',
    'once_per: {key: {var: correlation.key}, within: 1h}',
    'then:',
    '  - create: {type: problem, link: true, fields: {description: {cat: [cluster, " ", {var: correlation.key}]}}}',
  ].join('\n');

const ESCALATE_SHADOW = [
  'mode: shadow',
  'on: {type: incident, events: [add, update], changed: [impact]}',
  'when: {"==": [{var: object.impact}, high]}',
  'once_per: {var: object.id}',
  'then: [{escalate: {levels: 1}}]',
].join('\n');

describe('rules in shadow mode', () => {
  let engine: TestEngine;
  let rules: { dir: string; remove(): void };

  beforeAll(async () => {
    rules = writeRules({
      // Runs first and has stop: true, which a live rule would use to hold back the rest.
      'a-shadow-open-problem.yaml': openProblem('a-shadow-open-problem', [
        'mode: shadow',
        'order: 1',
        'stop: true',
      ]),
      'b-live-open-problem.yaml': openProblem('b-live-open-problem', ['order: 2']),
      'shadow-escalate.yaml': ESCALATE_SHADOW,
    });
    engine = await startTestEngine({ rulesDir: rules.dir, reloadIntervalMs: 50 });
  });

  afterAll(async () => {
    await engine?.close();
    rules?.remove();
  });

  const path = (account: number, type: string, id = '') =>
    `/v1/accounts/${account}/itsm/${type}${id && `/${id}`}`;
  const create = async (account: number, type: string, body: Json) => {
    const response = await engine.call('POST', path(account, type), { body });
    expect(response.status, response.text).toBe(201);
    return (response.json as Json).id as string;
  };
  const update = async (account: number, id: string, body: Json) => {
    const response = await engine.call('PATCH', path(account, 'incidents', id), { body });
    expect(response.status, response.text).toBe(200);
  };
  const read = async (account: number, type: string, id: string) =>
    (await engine.call('GET', path(account, type, id))).json as Json;
  const problems = async (account: number) =>
    ((await engine.call('GET', path(account, 'problems'))).json as { objects: Json[] }).objects;
  const runsOf = async (account: number, id: string) => {
    const page = (await engine.call('GET', `/runs?account=${account}&object_id=${id}`)).json as {
      objects: Json[];
    };
    return page.objects;
  };
  const detailOf = async (run: Json) =>
    ((await engine.call('GET', `/runs/${String(run.id)}`)).json as Json).detail as {
      rules: { ruleId: string; verdict: string; shadowCalls?: Json[] }[];
    };

  it('records what it would have done, with outcome shadow, and writes nothing', async () => {
    const incident = await create(SHADOW_ONLY, 'incidents', { impact: 'high', priority: 'low' });
    await eventually(
      async () => (await runsOf(SHADOW_ONLY, incident)).length === 1,
      'the run of the incident',
    );
    const [run] = await runsOf(SHADOW_ONLY, incident);
    expect(run).toMatchObject({
      outcome: 'shadow',
      summary: 'shadow shadow-escalate would have made 1 call (none made)',
    });
    const detail = await detailOf(run as Json);
    expect(detail.rules.find((rule) => rule.ruleId === 'shadow-escalate')).toMatchObject({
      verdict: 'shadow',
      shadowCalls: [{ kind: 'api', method: 'PATCH', body: { priority: 'medium', escalation: 1 } }],
    });
    expect(await read(SHADOW_ONLY, 'incidents', incident)).toMatchObject({
      priority: 'low',
      escalation: 0,
    });
    const shadowRuns = (await engine.call('GET', `/runs?account=${SHADOW_ONLY}&outcome=shadow`))
      .json as { objects: Json[] };
    expect(shadowRuns.objects.map((item) => item.id)).toEqual([run?.id]);
  });

  it('neither stops nor takes the correlation or once_per key of the live rule beside it', async () => {
    const first = await create(BESIDE_LIVE, 'incidents', { category: 'database' });
    const second = await create(BESIDE_LIVE, 'incidents', { category: 'database' });
    await eventually(async () => (await problems(BESIDE_LIVE)).length === 1, 'the live problem');
    // The run of its add event (the engine's link writes have runs of their own).
    const addRun = async () =>
      (await runsOf(BESIDE_LIVE, second)).find((item) => (item.event as Json).type === 'add');
    await eventually(async () => (await addRun()) !== undefined, 'the run of the second incident');
    const run = await addRun();
    expect(run).toMatchObject({ outcome: 'done' });
    const detail = await detailOf(run as Json);
    expect(
      detail.rules
        .filter((rule) => rule.ruleId.endsWith('open-problem'))
        .map((rule) => [rule.ruleId, rule.verdict, rule.shadowCalls?.length ?? 0]),
    ).toEqual([
      ['a-shadow-open-problem', 'shadow', 3],
      ['b-live-open-problem', 'matched', 0],
    ]);
    // One problem, the live rule's, linked to both incidents.
    const [problem] = await problems(BESIDE_LIVE);
    for (const id of [first, second]) {
      expect(await read(BESIDE_LIVE, 'incidents', id)).toMatchObject({ problem: problem?.id });
    }
  });

  it('counts in /metrics what each shadow rule would have done, apart from the rules that acted', async () => {
    const metrics = (await engine.call('GET', '/metrics')).text;
    const series = (name: string) =>
      metrics
        .split('\n')
        .filter((line) => line.startsWith(`${name}{`))
        .sort();
    // The two tests above: one shadow escalation, one shadow cluster beside the live one.
    expect(series('itsm_rules_shadow_matches_total')).toEqual([
      'itsm_rules_shadow_matches_total{rule="a-shadow-open-problem"} 1',
      'itsm_rules_shadow_matches_total{rule="shadow-escalate"} 1',
    ]);
    expect(series('itsm_rules_rules_matched_total')).toEqual([
      'itsm_rules_rules_matched_total{rule="b-live-open-problem"} 1',
    ]);
    expect(series('itsm_rules_events_processed_total')).toContain(
      'itsm_rules_events_processed_total{outcome="shadow"} 1',
    );
  });

  it('acts once the mode line is removed, on a key it claimed while in shadow', async () => {
    const incident = await create(PROMOTED, 'incidents', { impact: 'high', priority: 'low' });
    await eventually(async () => (await runsOf(PROMOTED, incident)).length === 1, 'the shadow run');
    expect((await runsOf(PROMOTED, incident))[0]).toMatchObject({ outcome: 'shadow' });

    writeFileSync(
      join(rules.dir, 'shadow-escalate.yaml'),
      ESCALATE_SHADOW.replace('mode: shadow\n', ''),
    );
    await eventually(
      async () => engine.logs.some((line) => line.startsWith('rules: reloaded')),
      'the rules to be reloaded',
    );
    await update(PROMOTED, incident, { impact: 'low' });
    await update(PROMOTED, incident, { impact: 'high' });
    await eventually(
      async () => (await read(PROMOTED, 'incidents', incident)).escalation === 1,
      'the promoted rule to escalate the incident',
    );
    expect(await read(PROMOTED, 'incidents', incident)).toMatchObject({ priority: 'medium' });
  });
});

describe('shadow mode in the rule commands', () => {
  it('itsm-rules test --event shows the calls a shadow rule would make, and plans none', async () => {
    const result = await runScript(join(ROOT, 'bin/itsm-rules.js'), [
      'test',
      '--rules',
      'test/fixtures/rule-suites/shadow',
      '--event',
      'test/fixtures/events/incident-raised-to-major.json',
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      [
        '  shadow   escalate-in-shadow',
        '             would make (shadow mode, never made):',
        '             0. PATCH accounts/1/itsm/incidents/FiHGI7TsuwWIsc1UW3_unpc  [escalate-in-shadow /then/0, Idempotency-Key e:1:42:escalate-in-shadow:0]',
      ].join('\n'),
    );
    expect(result.stdout).toContain('\nplanned calls: none\n');
  }, 30_000);

  it('refuses a mode that is neither live nor shadow, naming the file and line', () => {
    const result = loadRules([
      {
        path: 'rules/x.yaml',
        text: 'mode: dry-run\non: {type: incident}\nthen: [{log: {message: x}}]\n',
      },
    ]);
    expect(result.problems.map(formatProblem)).toEqual([
      'rules/x.yaml:1 /mode: expected one of live, shadow, got "dry-run"',
    ]);
  });
});

describe('what a rule counted in shadow mode, once promoted', () => {
  const CLUSTER = [
    'on: {type: incident, events: [add]}',
    'when: {"!!": {var: object.category}}',
    'correlate: {key: {var: object.category}, within: 1h, at_least: 2}',
    'then: [{create: {type: problem, fields: {description: cluster}}}]',
  ].join('\n');

  it('starts again from nothing: its correlation counts only what came after the promotion', async () => {
    const store = makeEngineStore();
    try {
      const incident = (id: string, minutes: number) =>
        makeEventInput({
          object: makeIncident({ id, category: 'database' }),
          now: minutesLater(minutes),
        });
      const shadow = loadRuleSet({ cluster: `mode: shadow\n${CLUSTER}` });
      const live = loadRuleSet({ cluster: CLUSTER });
      const inShadow = await evaluateEvent(shadow, incident('inc-1', 0), store);
      expect(inShadow.outcomes.map((outcome) => outcome.correlation?.count)).toEqual([1]);
      // Promoted: the next incident of the cluster is the live rule's first, not its second.
      const promoted = await evaluateEvent(live, incident('inc-2', 5), store);
      expect(promoted.outcomes.map((o) => [o.verdict, o.correlation?.count])).toEqual([
        ['skipped', 1],
      ]);
      expect(promoted.plan.calls).toEqual([]);
      const third = await evaluateEvent(live, incident('inc-3', 10), store);
      expect(third.outcomes.map((o) => [o.verdict, o.correlation?.count])).toEqual([
        ['matched', 2],
      ]);
    } finally {
      await store.close();
    }
  });
});
