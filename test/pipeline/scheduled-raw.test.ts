// A scheduled rule reads `object.raw` as an event rule does: the sweep lists objects with their
// upstream record, so a condition on a ServiceNow column (here the impact code "1", high) holds
// for the objects it should. All-in-one on 127.0.0.1, schedules run through /admin/schedules/run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEngine, type TestEngine, writeRules } from '../helpers/serve.js';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
type Json = any;

const ACCOUNT = 31;

describe('a scheduled rule on an upstream column', () => {
  let engine: TestEngine;
  let rules: { dir: string; remove(): void };

  beforeAll(async () => {
    rules = writeRules({
      'sweep-high-impact.yaml': [
        'description: Every hour, flag incidents whose ServiceNow impact code is 1 (high).',
        'on:',
        '  type: incident',
        '  schedule: "0 * * * *"',
        'when: {"==": [{var: object.raw.impact}, "1"]}',
        'then:',
        '  - log: {message: {cat: ["high impact: ", {var: object.raw.number}]}}',
        '',
      ].join('\n'),
    });
    engine = await startTestEngine({ rulesDir: rules.dir });
  });

  afterAll(async () => {
    await engine?.close();
    rules?.remove();
  });

  it('matches the objects whose raw column holds the value, and only those', async () => {
    const created: Json[] = [];
    for (const impact of ['high', 'low']) {
      const response = await engine.call('POST', `/v1/accounts/${ACCOUNT}/itsm/incidents`, {
        body: { description: `${impact} impact`, impact },
      });
      expect(response.status, response.text).toBe(201);
      created.push(response.json);
    }
    const [high, low] = created;
    const ran = await engine.call('POST', '/admin/schedules/run', {
      body: { accounts: [ACCOUNT], at: '2026-11-28T10:00:00Z' },
    });
    expect(ran.status, ran.text).toBe(200);
    expect(ran.json).toMatchObject({
      rules: ['sweep-high-impact'],
      objects: 2,
      outcomes: { done: 1, no_match: 1, failed: 0 },
    });
    const runs = await engine.call('GET', `/runs?account=${ACCOUNT}&rule_id=sweep-high-impact`);
    const scheduled = (runs.json.objects as Json[]).filter((run) => run.event.type === 'schedule');
    expect(
      scheduled.map((run) => [run.object.id, run.outcome]).sort((a, b) => (a[1] < b[1] ? -1 : 1)),
    ).toEqual([
      [high.id, 'done'],
      [low.id, 'no_match'],
    ]);
  });
});
