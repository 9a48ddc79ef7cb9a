// Which version of the rules acted, through the engine (all-in-one over real HTTP on 127.0.0.1):
// each run record carries the rule set's version (SHA-256 of its files) and each matched rule's
// file hash; editing a rule (a hot reload) makes a new version, and `/runs?rule_version=` lists
// the runs of one version, by the whole hash or its start; /healthz says which version runs now.
// The version depends on the files' ids and text, not on where the folder lies.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRules } from '../../src/engine/load.js';
import { formatProblem } from '../../src/engine/problem.js';
import { ruleSetVersion } from '../../src/engine/rule-version.js';
import { eventually, startTestEngine, type TestEngine, writeRules } from '../helpers/serve.js';

type Json = Record<string, unknown>;
const ACCOUNT = 51;

const ESCALATE = [
  'description: first version',
  'on: {type: incident, events: [add]}',
  'when: {"==": [{var: object.impact}, high]}',
  'then: [{log: {message: seen}}]',
].join('\n');

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('the rule version of run records', () => {
  let engine: TestEngine;
  let rules: { dir: string; remove(): void };

  beforeAll(async () => {
    rules = writeRules({ 'log-high.yaml': ESCALATE });
    engine = await startTestEngine({ rulesDir: rules.dir, reloadIntervalMs: 50 });
  });

  afterAll(async () => {
    await engine?.close();
    rules?.remove();
  });

  const createHigh = async () => {
    const response = await engine.call('POST', `/v1/accounts/${ACCOUNT}/itsm/incidents`, {
      body: { impact: 'high' },
    });
    expect(response.status, response.text).toBe(201);
    return (response.json as Json).id as string;
  };
  const runs = async (query = '') =>
    (
      (await engine.call('GET', `/runs?account=${ACCOUNT}${query}`)).json as {
        objects: Json[];
      }
    ).objects;
  const runOf = async (id: string) => {
    await eventually(
      async () => (await runs(`&object_id=${id}`)).length === 1,
      `the run of incident ${id}`,
    );
    return (await runs(`&object_id=${id}`))[0] as Json & {
      rule_version: string;
      detail: { ruleVersion: string; rules: { ruleId: string; fileHash?: string }[] };
    };
  };

  it('records the version and the file hash of the matched rule, and filters by version', async () => {
    const healthz = async () =>
      ((await engine.call('GET', '/healthz', { auth: null })).json as Json).rule_version;
    const first = await runOf(await createHigh());
    expect(first.rule_version).toMatch(/^[0-9a-f]{64}$/);
    // /healthz says which version runs now: the one the next run records will carry.
    expect(await healthz()).toBe(first.rule_version);
    expect(first.detail.ruleVersion).toBe(first.rule_version);
    expect(first.detail.rules).toEqual([
      expect.objectContaining({
        ruleId: 'log-high',
        verdict: 'matched',
        fileHash: sha256(ESCALATE),
      }),
    ]);

    const edited = ESCALATE.replace('first version', 'second version');
    writeFileSync(join(rules.dir, 'log-high.yaml'), edited);
    await eventually(
      async () => engine.logs.some((line) => line.startsWith('rules: reloaded')),
      'the rules to be reloaded',
    );
    const second = await runOf(await createHigh());
    expect(second.rule_version).toMatch(/^[0-9a-f]{64}$/);
    expect(second.rule_version).not.toBe(first.rule_version);
    expect(second.detail.rules[0]?.fileHash).toBe(sha256(edited));
    expect(await healthz()).toBe(second.rule_version);

    expect((await runs(`&rule_version=${first.rule_version}`)).map((run) => run.id)).toEqual([
      first.id,
    ]);
    const prefix = second.rule_version.slice(0, 12);
    expect((await runs(`&rule_version=${prefix}`)).map((run) => run.id)).toEqual([second.id]);
  });

  it('refuses a rule_version that is not one, saying what it takes', async () => {
    const response = await engine.call('GET', '/runs?rule_version=Version-1');
    expect(response.status).toBe(400);
    expect(response.json).toMatchObject({
      error_code: 'invalid_parameters',
      message:
        'rule_version must be a rule set version (lower-case hex, 7 to 64 characters: a run record\'s rule_version or its start), got "Version-1"',
    });
  });
});

describe('the rule set version', () => {
  const FILES = {
    'incident/log-high.yaml': ESCALATE,
    'incident/page.yaml': 'on: {type: incident, events: [add]}\nthen: [{log: {message: page}}]\n',
  };
  const versionOf = async (folder: string, files: Record<string, string>) => {
    const loaded = loadRules(
      Object.entries(files).map(([path, text]) => ({ path: `${folder}/${path}`, text })),
    );
    if (!loaded.ruleSet) throw new Error(loaded.problems.map(formatProblem).join('\n'));
    return ruleSetVersion(loaded.ruleSet);
  };

  it('is the same for the same files wherever the folder lies, and hashes each file as written', async () => {
    const here = await versionOf('rules', FILES);
    const there = await versionOf('/etc/itsm-rules/rules', FILES);
    expect(there.version).toBe(here.version);
    expect(here.files).toEqual({
      'log-high': sha256(ESCALATE),
      page: sha256(FILES['incident/page.yaml']),
    });
  });

  it.each<[string, Record<string, string>]>([
    [
      'a file is edited',
      { ...FILES, 'incident/page.yaml': `# paged\n${FILES['incident/page.yaml']}` },
    ],
    ['a rule is added', { ...FILES, 'incident/other.yaml': FILES['incident/page.yaml'] }],
    ['a rule is removed', { 'incident/log-high.yaml': ESCALATE }],
  ])('changes when %s', async (_name, files) => {
    expect((await versionOf('rules', files)).version).not.toBe(
      (await versionOf('rules', FILES)).version,
    );
  });
});
