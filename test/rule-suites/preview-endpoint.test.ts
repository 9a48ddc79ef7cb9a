// POST /admin/rules/preview: the engine's impact preview of candidate rule files (the same
// report as `itsm-rules replay`), against the rules it runs, over the API's retained events;
// behind the admin key, with the candidate's problems refused, run all-in-one over real HTTP.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEngine, type TestEngine } from '../helpers/serve.js';

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
