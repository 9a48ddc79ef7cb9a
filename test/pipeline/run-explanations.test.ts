// Run records keep a false condition's context and a fingerprint of the condition, and GET /runs
// writes the explanation when read. End to end on an all-in-one engine over real HTTP: the lines
// read are those of the condition as it was when the rule ran, a rule edited or removed since
// says so instead of explaining another condition, and a record stored with its lines (before
// explanations were deferred) is shown as stored.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestEngine, type TestEngine, writeRules } from '../helpers/serve.js';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
type Json = any;

const PAGE_CRITICAL = `on: {type: incident, events: [add]}
when: {"==": [{var: object.priority}, critical]}
then:
  - log: {message: {cat: ["critical incident ", {var: object.id}]}}
`;
const URGENT = `on: {type: incident, events: [add]}
when: {"and": [{"==": [{var: object.impact}, high]}, {"==": [{var: object.urgency}, high]}]}
then:
  - log: {message: {cat: ["urgent ", {var: object.id}]}}
`;
const EXPLAINED = [
  {
    ruleId: 'page-critical',
    file: expect.stringMatching(/page-critical\.yaml$/),
    verdict: 'no_match',
    reason: 'the condition (when) is false',
    details: [
      '/when: {"==":[{"var":"object.priority"},"critical"]} is false, because {"var":"object.priority"} is "high"',
    ],
  },
  {
    ruleId: 'urgent',
    file: expect.stringMatching(/urgent\.yaml$/),
    verdict: 'no_match',
    reason: 'the condition (when) is false',
    details: [
      '/when/and/1: {"==":[{"var":"object.urgency"},"high"]} is false, because {"var":"object.urgency"} is "low"',
    ],
  },
];

describe('explanations of false conditions in run records', () => {
  let engine: TestEngine;
  let rules: { dir: string; remove(): void };
  const account = 71;

  beforeAll(async () => {
    rules = writeRules({
      'incident/page-critical.yaml': PAGE_CRITICAL,
      'incident/urgent.yaml': URGENT,
    });
    engine = await startTestEngine({ rulesDir: rules.dir });
  });

  afterAll(async () => {
    await engine?.close();
    rules?.remove();
  });

  async function runOf(objectId: string): Promise<Json> {
    let run: Json;
    await eventually(async () => {
      [run] = (await engine.call('GET', `/runs?object_id=${objectId}`)).json.objects;
      return run !== undefined;
    }, 'the run of the add');
    return run;
  }

  it('stores the context once and no lines, and explains each false rule when read', async () => {
    const incident = (
      await engine.call('POST', `/v1/accounts/${account}/itsm/incidents`, {
        body: { priority: 'high', impact: 'high', urgency: 'low' },
      })
    ).json;
    const run = await runOf(incident.id);
    expect(run.outcome).toBe('no_match');
    expect(run.detail.rules).toEqual(EXPLAINED);
    expect(Object.keys(run.detail).sort()).toEqual([
      'calls',
      'changes',
      'event',
      'notes',
      'ruleVersion',
      'rules',
    ]);

    const stored = await engine.pipelineStore.getRunById(run.id);
    const detail = JSON.parse(stored?.detail ?? '{}');
    expect(stored?.detail).not.toContain('is false, because');
    expect(detail.context.object.id).toBe(incident.id);
    expect(detail.rules.map((rule: Json) => typeof rule.when)).toEqual(['string', 'string']);
    expect(detail.rules.some((rule: Json) => 'details' in rule)).toBe(false);
  });

  it('says a rule changed or removed since the run instead of explaining another condition', async () => {
    const incident = (
      await engine.call('POST', `/v1/accounts/${account}/itsm/incidents`, {
        body: { priority: 'high', impact: 'high', urgency: 'low' },
      })
    ).json;
    const run = await runOf(incident.id);

    // Same file, other condition; and the second rule is gone.
    writeFileSync(
      join(rules.dir, 'incident/page-critical.yaml'),
      PAGE_CRITICAL.replace('critical]}', 'high]}'),
    );
    rmSync(join(rules.dir, 'incident/urgent.yaml'));
    expect((await engine.reloadRules()).ok).toBe(true);

    const read = (await engine.call('GET', `/runs/${run.id}`)).json;
    expect(read.detail.rules.map((rule: Json) => [rule.ruleId, rule.details])).toEqual([
      ['page-critical', ["(not shown: the rule's condition has changed since this run)"]],
      ['urgent', ['(not shown: the rule is no longer loaded)']],
    ]);

    // Put back as it was: the same condition explains the same run again.
    writeFileSync(join(rules.dir, 'incident/page-critical.yaml'), PAGE_CRITICAL);
    writeFileSync(join(rules.dir, 'incident/urgent.yaml'), URGENT);
    expect((await engine.reloadRules()).ok).toBe(true);
    expect((await engine.call('GET', `/runs/${run.id}`)).json.detail.rules).toEqual(EXPLAINED);
  });

  it('shows a record stored with its lines as stored', async () => {
    const rulesStored = [
      {
        ruleId: 'page-critical',
        file: 'rules/incident/page-critical.yaml',
        verdict: 'no_match',
        reason: 'the condition (when) is false',
        details: ['/when: stored before explanations were deferred'],
      },
    ];
    const saved = await engine.pipelineStore.saveRun({
      key: 'e:71:stored-with-lines',
      account,
      eventId: 'stored-with-lines',
      eventType: 'add',
      objectType: 'incident',
      objectId: 'stored-with-lines',
      selfHops: 0,
      at: Date.now(),
      outcome: 'no_match',
      rules: [],
      verdicts: { 'page-critical': 'no_match' },
      summary: 'no rule matched (1 looked at)',
      detail: JSON.stringify({
        event: { id: 'stored-with-lines', type: 'add', account, at: '', user_id: null },
        rules: rulesStored,
        calls: [],
        notes: [],
      }),
    });
    const read = (await engine.call('GET', `/runs/${saved.id}`)).json;
    expect(read.detail.rules).toEqual(rulesStored);
  });
});
