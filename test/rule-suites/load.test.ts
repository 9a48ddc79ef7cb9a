// Rule test suite files: found beside the rules but never loaded as rules (by the Node loader or
// the Worker's bundle), checked against the rule set with a problem per mistake (file, line,
// pointer, what to do), compared by subset, and described by the committed JSON Schema.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatProblem } from '../../src/engine/problem.js';
import { loadSuites, suiteJsonSchema } from '../../src/engine/rule-suite.js';
import { subsetDiff } from '../../src/engine/suite-expect.js';
import { readRuleSources, readSuiteSources } from '../../src/runtime/rule-files.js';
import { loadRuleSet } from '../helpers/engine.js';
import { ROOT } from '../helpers/run-script.js';

const PASSING = 'test/fixtures/rule-suites/passing';
const dir = mkdtempSync(join(tmpdir(), 'itsm-suite-bundle-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const RULES = loadRuleSet({
  'rules/escalate.yaml': `
on: {type: incident}
when: {"==": [{var: object.impact}, high]}
then: [{escalate: {levels: 1}}]
`,
  'rules/overdue.yaml': `
on: {type: incident, schedule: "*/15 * * * *"}
then: [{escalate: {levels: 1}}]
`,
});

describe('finding suites beside the rules', () => {
  it('reads *.test.yaml and *.test.json as suites, never as rules', () => {
    const rules = readRuleSources(PASSING).map((source) => source.path);
    const suites = readSuiteSources(PASSING).map((source) => source.path);
    expect(rules.filter((path) => /\.test\./.test(path))).toEqual([]);
    expect(rules).toHaveLength(5);
    expect(suites).toEqual([
      `${PASSING}/incident/incidents.test.yaml`,
      `${PASSING}/problem/problem.test.json`,
    ]);
  });

  it("leaves suites out of the Worker's bundled rules", async () => {
    const out = join(dir, 'worker.ts');
    const result = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'scripts/bundle-rules.ts', '--rules', PASSING, '--out', out],
      { encoding: 'utf8', cwd: ROOT },
    );
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const entry = await import(out);
    const paths = entry.ruleSources.map((source: { path: string }) => source.path);
    expect(paths).toHaveLength(5);
    expect(paths.filter((path: string) => /\.test\./.test(path))).toEqual([]);
  });
});

describe('checking a suite', () => {
  const check = (text: string, path = 'rules/x.test.yaml') =>
    loadSuites([{ path, text }], RULES).problems.map(formatProblem);

  it.each<[string, string, string[]]>([
    [
      'a rule id that no rule has',
      'cases: [{name: a, steps: [{tick: overdue, expect: {matched: [escalat]}}]}]',
      [
        'rules/x.test.yaml:1 /cases/0/steps/0/expect/matched/0: no rule has the id "escalat"; did you mean "escalate"?; name a rule of the rules folder',
      ],
    ],
    [
      'a name given twice',
      'cases:\n  - name: a\n    steps:\n      - create: {type: incident, as: x}\n      - create: {type: incident, as: x}\n',
      [
        'rules/x.test.yaml:5 /cases/0/steps/1/create/as: "x" names an object already; choose another name',
      ],
    ],
    [
      'a rule expected that does not run in the case',
      'rules: [overdue]\ncases:\n  - name: a\n    steps:\n      - tick: overdue\n        expect: {matched: [escalate]}\n',
      [
        'rules/x.test.yaml:6 /cases/0/steps/0/expect/matched/0: "escalate" does not run in this case (rules: overdue); add it there or remove it here',
      ],
    ],
    [
      'a time that is not one',
      'cases:\n  - name: a\n    steps:\n      - at: 10 minutes\n        tick: overdue\n',
      [
        'rules/x.test.yaml:4 /cases/0/steps/0/at: expected a time since the start of the case such as +10m, +2h, 1d or 0, got "10 minutes"',
      ],
    ],
    [
      'a name used in fields before any step created it',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the suite format's placeholder.
      'cases:\n  - name: a\n    steps:\n      - create: {type: problem, fields: {incident: "${inc}"}}\n',
      [
        'rules/x.test.yaml:4 /cases/0/steps/0/create: no earlier step of this case created an object named "inc" (with as: inc)',
      ],
    ],
    [
      'a generic object without its table',
      'cases:\n  - name: a\n    steps:\n      - create: {type: object}\n',
      [
        'rules/x.test.yaml:4 /cases/0/steps/0/create: a generic object (type: object) needs its raw_type',
      ],
    ],
    [
      'a value the API refuses for a field',
      'cases:\n  - name: a\n    steps:\n      - create: {type: incident, as: i, fields: {priority: urgent}}\n',
      [
        'rules/x.test.yaml:4 /cases/0/steps/0/create/fields/priority: priority must be one of low, medium, high, critical, got "urgent"',
      ],
    ],
    [
      'a field the type lacks, in an update of a named object',
      'cases:\n  - name: a\n    steps:\n      - create: {type: incident, as: i}\n      - update: {object: i, fields: {priorty: high}}\n',
      [
        'rules/x.test.yaml:5 /cases/0/steps/1/update/fields/priorty: an incident has no field "priorty"; did you mean "priority"?',
      ],
    ],
    [
      'a count given as a word',
      'cases:\n  - name: a\n    steps:\n      - create: {type: problem, fields: {escalation: two}}\n',
      [
        'rules/x.test.yaml:4 /cases/0/steps/0/create/fields/escalation: escalation must be a whole number >= 0, got "two"',
      ],
    ],
    [
      'a file that is not a mapping',
      '- cases\n',
      ['rules/x.test.yaml /: expected a rule test suite (a mapping with cases), got a list'],
    ],
    [
      'a suite without cases',
      'description: nothing\n',
      ['rules/x.test.yaml:1 /cases: cases is required: expected a list'],
    ],
  ])('reports %s', (_name, text, problems) => {
    expect(check(text)).toEqual(problems);
  });

  it("leaves relative times, named objects and a generic object's fields to the run", () => {
    const text = [
      'cases:',
      '  - name: a',
      '    steps:',
      '      - create: {type: incident, as: i, fields: {due_date: {at: -2h}, priority: high}}',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the suite format's placeholder.
      '      - create: {type: problem, fields: {incident: "${i}"}}',
      '      - create: {type: object, raw_type: u_thing, fields: {anything: [1, 2]}}',
      '',
    ].join('\n');
    expect(check(text)).toEqual([]);
  });

  it('accepts a valid suite and keeps its times and changes', () => {
    const result = loadSuites(
      [
        {
          path: 'rules/x.test.yaml',
          text: 'cases:\n  - name: a\n    steps:\n      - create: {type: incident, as: x}\n      - at: +90m\n        update: {object: x, fields: {impact: high}}\n        expect: {matched: [escalate]}\n',
        },
      ],
      RULES,
    );
    expect(result.problems).toEqual([]);
    const steps = result.suites[0]?.cases[0]?.steps;
    expect(steps?.map((step) => [step.atMs, step.change.kind])).toEqual([
      [0, 'create'],
      [90 * 60_000, 'update'],
    ]);
  });
});

describe('comparing by subset', () => {
  it.each<[string, unknown, unknown, string[]]>([
    ['extra keys of the actual body', { a: 1 }, { a: 1, b: 2 }, []],
    ['a missing key', { a: 1 }, { b: 2 }, ['.a: expected 1, got null']],
    ['a number written as a string', { state: '-1' }, { state: -1 }, []],
    ['lists of another length', { ids: [1] }, { ids: [1, 2] }, ['.ids: expected [1], got [1,2]']],
    [
      'nested mappings',
      { a: { b: 'x' } },
      { a: { b: 'y', c: 1 } },
      ['.a.b: expected "x", got "y"'],
    ],
    ['null against a missing key', { a: null }, {}, []],
  ])('%s', (_name, expected, actual, lines) => {
    expect(subsetDiff(expected, actual, '')).toEqual(lines);
  });
});

describe('the JSON Schema of rule test suites', () => {
  it('is exactly the committed schema/rule-test.schema.json', () => {
    const committed = JSON.parse(readFileSync(join(ROOT, 'schema/rule-test.schema.json'), 'utf8'));
    expect(suiteJsonSchema()).toEqual(committed);
  });
});
