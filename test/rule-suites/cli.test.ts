// Rule test suites as a user runs them: `itsm-rules test` (no --event) over a rules folder with
// *.test.yaml files beside the rules, each case through a fresh embedded ITSM API and the real
// drain, and `itsm-rules check` validating the suites. Fixtures: test/fixtures/rule-suites/.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, runScript } from '../helpers/run-script.js';
import { findAll, parseXml } from '../helpers/xml.js';

const BIN = join(ROOT, 'bin/itsm-rules.js');
const TIMEOUT = 60_000;
const PASSING = 'test/fixtures/rule-suites/passing';
const FAILING = 'test/fixtures/rule-suites/failing';
const BROKEN = 'test/fixtures/rule-suites/broken';
const JUNIT = 'test/fixtures/rule-suites/junit';
const LIFECYCLE = 'test/fixtures/rule-suites/lifecycle';
const UNTESTED = 'test/fixtures/rule-suites/untested';
const INVALID_VALUES = 'test/fixtures/rule-suites/invalid-values';

const run = (args: string[]) => runScript(BIN, args);

const temps: string[] = [];
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

describe.concurrent('itsm-rules test without --event', () => {
  it(
    'runs every case of every suite, prints each with ✓ and ends with the counts',
    async ({ expect }) => {
      const result = await run(['test', '--rules', PASSING]);
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe(
        [
          `${PASSING}/incident/incidents.test.yaml`,
          '  ✓ a high impact, high urgency incident is raised to critical and pages on-call',
          '  ✓ three incidents of one category within an hour open one problem',
          '  ✓ an overdue incident is escalated once at the next tick',
          '',
          `${PASSING}/problem/problem.test.json`,
          '  ✓ a problem moved to fix opens one linked change',
          '',
          '4 passed, 0 failed',
          '',
        ].join('\n'),
      );
      expect(result.code).toBe(0);
    },
    TIMEOUT,
  );

  it(
    'never counts a shadow rule as matched nor plans its calls, at an event or a tick, runs delete steps, and starts each case afresh',
    async ({ expect }) => {
      const result = await run(['test', '--rules', LIFECYCLE]);
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe(
        [
          `${LIFECYCLE}/lifecycle.test.yaml`,
          '  ✓ a shadow rule beside the live one plans nothing and says why',
          '  ✓ a scheduled rule in shadow mode ticks and acts on nothing',
          '  ✓ deleting an incident runs the rules on delete events',
          '  ✓ each case starts from an empty API and empty engine stores (1 of 2)',
          '  ✓ each case starts from an empty API and empty engine stores (2 of 2)',
          '',
          'not expected to match in any case: count-category',
          '5 passed, 0 failed',
          '',
        ].join('\n'),
      );
      expect(result.code).toBe(0);
    },
    TIMEOUT,
  );

  it(
    'exits 1 and shows, under each failed case, what was expected and what happened',
    async ({ expect }) => {
      const result = await run(['test', '--rules', FAILING]);
      expect(result.code).toBe(1);
      const out = result.stdout;
      expect(out).toContain('  ✓ passes\n');
      expect(out).toContain(
        [
          '  ✗ expects a rule that does not match',
          '      step 1 (create incident minor):',
          '        matched: expected [escalate-major-incidents], got []',
          '            escalate-major-incidents: no_match: the condition (when) is false',
          '                /when/and/0: {"==":[{"var":"object.impact"},"high"]} is false, because {"var":"object.impact"} is "low"',
        ].join('\n'),
      );
      expect(out).toMatch(
        / {2}✗ expects the wrong body\n {6}step 1 \(create incident major\):\n {8}calls\[0\]: PATCH accounts\/1\/itsm\/incidents\/\$\{major\} \{"priority":"high","escalation":1\} \[escalate-major-incidents\]\n {12}body\.priority: expected "critical", got "high"\n/,
      );
      expect(out).toContain(
        [
          '  ✗ expects the wrong correlation count',
          '      step 2 (create incident at +2h):',
          '        correlation recurring-incidents-open-problem: expected a count of 2, got 1',
        ].join('\n'),
      );
      // Coverage is information: the cases' verdict stays the last line and the exit code.
      expect(out.trimEnd().split('\n').slice(-2)).toEqual([
        'not expected to match in any case: recurring-incidents-open-problem, overdue-incident-escalation',
        '1 passed, 3 failed',
      ]);
    },
    TIMEOUT,
  );

  it(
    'fails a case that expects a rule to match when an action of the rule computes an invalid value, naming the action and the value',
    async ({ expect }) => {
      const result = await run(['test', '--rules', INVALID_VALUES]);
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe(
        [
          `${INVALID_VALUES}/priority-from-description.test.yaml`,
          '  ✓ a valid priority in the description is set',
          '  ✗ expects a rule with an invalid value to match',
          '      step 1 (create incident urgent):',
          '        matched: expected [priority-from-description], got []',
          '            priority-from-description: failed: /then/1: update: not written, the values are invalid: priority must be one of low, medium, high, critical, got "urgent"',
          '  ✓ an invalid priority in the description fails the rule and writes nothing',
          '',
          '2 passed, 1 failed',
          '',
        ].join('\n'),
      );
      expect(result.code).toBe(1);
    },
    TIMEOUT,
  );

  it(
    'names, before the counts, the live rules no case expects to match (by matched or by a call), and still exits 0',
    async ({ expect }) => {
      const result = await run(['test', '--rules', UNTESTED]);
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe(
        [
          `${UNTESTED}/untested.test.yaml`,
          '  ✓ a high impact incident is raised to high',
          '  ✓ a database incident is logged',
          '',
          'not expected to match in any case: flag-deleted, note-status',
          '2 passed, 0 failed',
          '',
        ].join('\n'),
      );
      expect(result.code).toBe(0);
    },
    TIMEOUT,
  );

  it(
    'prints the results as JSON with --json: the cases, the counts and the rules not expected to match',
    async ({ expect }) => {
      const [covered, uncovered] = await Promise.all([
        run(['test', '--rules', PASSING, '--json']),
        run(['test', '--rules', UNTESTED, '--json']),
      ]);
      expect(uncovered.stderr).toBe('');
      expect(JSON.parse(uncovered.stdout)).toEqual({
        cases: [
          {
            file: `${UNTESTED}/untested.test.yaml`,
            name: 'a high impact incident is raised to high',
            passed: true,
            failures: [],
          },
          {
            file: `${UNTESTED}/untested.test.yaml`,
            name: 'a database incident is logged',
            passed: true,
            failures: [],
          },
        ],
        passed: 2,
        failed: 0,
        notExpectedToMatch: ['flag-deleted', 'note-status'],
      });
      expect(uncovered.code).toBe(0);
      expect(covered.stderr).toBe('');
      expect(JSON.parse(covered.stdout)).toMatchObject({
        passed: 4,
        failed: 0,
        notExpectedToMatch: [],
      });
      expect(covered.code).toBe(0);
    },
    TIMEOUT,
  );

  it(
    'exits 1 with --json when a case fails, the failures in the JSON',
    async ({ expect }) => {
      const result = await run(['test', '--rules', FAILING, '--json']);
      const report = JSON.parse(result.stdout);
      expect(report).toMatchObject({
        passed: 1,
        failed: 3,
        notExpectedToMatch: ['recurring-incidents-open-problem', 'overdue-incident-escalation'],
      });
      expect(
        report.cases.find(
          (c: { name: string }) => c.name === 'expects the wrong correlation count',
        ),
      ).toEqual({
        file: `${FAILING}/wrong.test.yaml`,
        name: 'expects the wrong correlation count',
        passed: false,
        failures: [
          'step 2 (create incident at +2h):\n  correlation recurring-incidents-open-problem: expected a count of 2, got 1',
        ],
      });
      expect(result.code).toBe(1);
    },
    TIMEOUT,
  );

  it(
    'prints the JSON and writes the JUnit XML with --json --reporter junit --output FILE, and refuses --json with junit on the screen',
    async ({ expect }) => {
      const dir = mkdtempSync(join(tmpdir(), 'itsm-rules-junit-'));
      temps.push(dir);
      const file = join(dir, 'rules.xml');
      const [both, clash] = await Promise.all([
        run(['test', '--rules', UNTESTED, '--json', '--reporter', 'junit', '--output', file]),
        run(['test', '--rules', UNTESTED, '--json', '--reporter', 'junit']),
      ]);
      expect(JSON.parse(both.stdout).notExpectedToMatch).toEqual(['flag-deleted', 'note-status']);
      expect(readFileSync(file, 'utf8')).toMatch(
        /<testsuites name="itsm-rules" tests="2" failures="0"/,
      );
      expect(both.code).toBe(0);
      expect(clash.code).toBe(2);
      expect(clash.stdout).toBe('');
      expect(clash.stderr.split('\n')[0]).toBe(
        'itsm-rules test: --json and --reporter junit both print the results: add --output FILE to write the XML to a file while the JSON prints, or drop one of them',
      );
    },
    TIMEOUT,
  );

  it(
    'writes JUnit XML with --reporter junit --output FILE, one testcase per case',
    async ({ expect }) => {
      const dir = mkdtempSync(join(tmpdir(), 'itsm-rules-junit-'));
      temps.push(dir);
      const file = join(dir, 'rules.xml');
      const result = await run([
        'test',
        '--rules',
        FAILING,
        '--reporter',
        'junit',
        '--output',
        file,
      ]);
      expect(result.code).toBe(1);
      expect(result.stdout.trimEnd().split('\n').at(-1)).toBe('1 passed, 3 failed');
      const xml = readFileSync(file, 'utf8');
      expect(xml).toMatch(
        /^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites name="itsm-rules" tests="4" failures="3" errors="0"/,
      );
      expect(xml).toContain(`<testsuite name="${FAILING}/wrong.test.yaml" tests="4" failures="3"`);
      expect(xml).toMatch(/<testcase classname="[^"]+" name="passes" time="[\d.]+"\/>/);
      expect(xml).toContain(
        [
          '<testcase classname="test/fixtures/rule-suites/failing/wrong.test.yaml" name="expects the wrong correlation count"',
        ].join(''),
      );
      expect(xml).toContain(
        [
          '<failure message="step 2 (create incident at +2h): correlation recurring-incidents-open-problem: expected a count of 2, got 1">',
          'step 2 (create incident at +2h):\n  correlation recurring-incidents-open-problem: expected a count of 2, got 1</failure>',
        ].join(''),
      );
      expect(xml.match(/<failure /g)).toHaveLength(3);
    },
    TIMEOUT,
  );

  it(
    'prints JUnit XML that parses, with the counts, every case and its differences as the text shows them',
    async ({ expect }) => {
      const [junit, text] = await Promise.all([
        run(['test', '--rules', JUNIT, '--reporter', 'junit']),
        run(['test', '--rules', JUNIT]),
      ]);
      expect(junit.stderr).toBe('');
      expect(junit.code).toBe(1);
      const root = parseXml(junit.stdout);
      expect(root.name).toBe('testsuites');
      expect(root.attributes).toMatchObject({ tests: '4', failures: '3', errors: '0' });
      expect(root.children.map((suite) => [suite.name, suite.attributes])).toEqual([
        [
          'testsuite',
          expect.objectContaining({
            name: `${JUNIT}/escape.test.yaml`,
            tests: '4',
            failures: '3',
            errors: '0',
          }),
        ],
      ]);
      const cases = findAll(root, 'testcase');
      expect(cases.map((item) => item.attributes.name)).toEqual([
        'a <major> incident & its "critical" priority',
        "the reason must quote <urgency> & 'impact'",
        'a description with "quotes" & <tags>',
        'a change the API refuses stops the case',
      ]);
      for (const item of cases) expect(item.attributes.time).toMatch(/^\d+\.\d{3}$/);
      expect(cases.map((item) => findAll(item, 'failure').length)).toEqual([0, 1, 1, 1]);
      // Each failure holds, unescaped, the lines the text report prints under the case.
      const blocks: string[][] = [];
      for (const line of text.stdout.split('\n')) {
        if (/^ {2}[✓✗] /.test(line)) blocks.push([]);
        else if (line.startsWith('      ')) blocks.at(-1)?.push(line.slice(6));
      }
      for (const [index, item] of cases.entries()) {
        const [failure] = findAll(item, 'failure');
        if (!failure) continue;
        const shown = (blocks[index] ?? []).join('\n');
        // The two runs differ only in the API's request ids.
        const same = (text: string | undefined) => text?.replace(/request id [^)]+/g, 'request id');
        expect(same(failure.text)).toBe(same(shown));
        // The message is the same difference on one line (CI systems show it beside the case).
        expect(same(failure.attributes.message)).toBe(
          same(
            shown
              .split('\n')
              .map((line) => line.trim())
              .join(' '),
          ),
        );
      }
      expect(findAll(cases[2] as never, 'failure')[0]?.text).toBe(
        [
          'step 1 (create incident tagged):',
          '  objects tagged.description: expected "not <b> & \\"c\\"", got "a <b> & \\"c\\""',
        ].join('\n'),
      );
      // A change the API refuses ends its case with the API's own answer, and no later step runs.
      expect(findAll(cases[3] as never, 'failure')[0]?.text).toMatch(
        /^step 2 \(create incident odd\): the change could not be made: ITSM API POST accounts\/1\/itsm\/incidents answered 400 invalid_parameters: due_date must be an ISO 8601 date such as 2017-10-04T20:15:37Z, got "[^"]+" \(request id [^)]+\); fix the request as the message says$/,
      );
    },
    TIMEOUT,
  );

  it(
    'exits 2 when --output is given without --reporter junit, rather than write no file',
    async ({ expect }) => {
      const result = await run(['test', '--rules', LIFECYCLE, '--output', 'results.xml']);
      expect(result.code).toBe(2);
      expect(result.stderr.split('\n')[0]).toBe(
        'itsm-rules test: --output writes the JUnit XML report: add --reporter junit (the text report prints on its own)',
      );
    },
    TIMEOUT,
  );

  it(
    'prints the results, then says so and exits 1, when --output cannot be written',
    async ({ expect }) => {
      const dir = mkdtempSync(join(tmpdir(), 'itsm-rules-junit-'));
      temps.push(dir);
      const file = join(dir, 'missing-folder', 'rules.xml');
      const result = await run([
        'test',
        '--rules',
        LIFECYCLE,
        '--reporter',
        'junit',
        '--output',
        file,
      ]);
      expect(result.stdout.trimEnd().split('\n').at(-1)).toBe('5 passed, 0 failed');
      expect(result.stderr).toBe(
        `--output ${file} cannot be written (ENOENT: no such file or directory, open '${file}'); give a file in a folder that exists and can be written\n`,
      );
      expect(result.code).toBe(1);
    },
    TIMEOUT,
  );

  it(
    'refuses to run suites with problems, naming each with its file and line',
    async ({ expect }) => {
      const result = await run(['test', '--rules', BROKEN]);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toContain(
        `${BROKEN}/broken.test.yaml:6 /cases/0/steps/1/update/object: no earlier step of this case created an object named "b" (with as: b)\n`,
      );
      expect(result.stderr).toMatch(/nothing was run/);
    },
    TIMEOUT,
  );

  it(
    'says there is no suite, and how to write one or dry-run an event, when the folder has none',
    async ({ expect }) => {
      const result = await run(['test', '--rules', 'test/fixtures/example-rules']);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(
        'no rule test suites (*.test.yaml, *.test.yml, *.test.json) in test/fixtures/example-rules: write one beside the rules (docs/rules.md, "Testing rules"), or give --event FILE to dry-run one event\n',
      );
    },
    TIMEOUT,
  );

  it(
    'exits 2 when a flag of --event is given without --event',
    async ({ expect }) => {
      const result = await run(['test', '--rules', PASSING, '--explain']);
      expect(result.code).toBe(2);
      expect(result.stderr.split('\n')[0]).toBe(
        'itsm-rules test: --explain applies to --event FILE; rule test suites take --reporter, --output and --json',
      );
    },
    TIMEOUT,
  );
});

describe.concurrent('itsm-rules check with rule test suites', () => {
  it(
    'points at the rules folder when given a suite file instead of a rule',
    async ({ expect }) => {
      const result = await run(['check', `${PASSING}/incident/incidents.test.yaml`]);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain(
        `${PASSING}/incident/incidents.test.yaml is a rule test suite, not a rule: suites are checked and run with their rules, so point --rules at the folder that holds it`,
      );
    },
    TIMEOUT,
  );

  it(
    'counts the suites and their cases, and does not load them as rules',
    async ({ expect }) => {
      const result = await run(['check', '--rules', PASSING]);
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe(
        `5 rules in ${PASSING}: all valid (1 scheduled, 0 disabled)\n2 rule test suites (4 cases): all valid\n`,
      );
      expect(result.code).toBe(0);
    },
    TIMEOUT,
  );

  it(
    'lists every problem of every suite with its file, line and what to do',
    async ({ expect }) => {
      const result = await run(['check', '--rules', BROKEN]);
      expect(result.code).toBe(1);
      expect(result.stderr.split('\n')).toEqual([
        `${BROKEN}/broken.test.yaml:6 /cases/0/steps/1/update/object: no earlier step of this case created an object named "b" (with as: b)`,
        `${BROKEN}/broken.test.yaml:7 /cases/0/steps/2/at: +5m is earlier than the step before; steps go forward in time`,
        `${BROKEN}/broken.test.yaml:8 /cases/0/steps/2/tick: "escalate-major-incidents" is not a scheduled rule (it has no on.schedule), so it cannot tick`,
        `${BROKEN}/broken.test.yaml:9 /cases/0/steps/3: a step makes one change, this one has create and delete; split it into steps`,
        `${BROKEN}/broken.test.yaml:12 /cases/0/steps/4/expect: unknown key "mached"; did you mean "matched"? (expected matched, not_matched, calls, correlation, objects)`,
        `${BROKEN}/broken.test.yaml:15 /cases/1/name: another case (number 1) has this name; give each case its own`,
        `${BROKEN}/broken.test.yaml:19 /cases/1/steps/0/expect/correlation/overdue-incident-escalation: "overdue-incident-escalation" has no correlate, so it counts nothing`,
        `${BROKEN}/syntax.test.json:3 /: not valid JSON: Expected double-quoted property name in JSON at position 28`,
        '',
        '8 problems in 2 of 2 rule test suites (itsm-rules test runs them once they are fixed)',
        '',
      ]);
    },
    TIMEOUT,
  );
});

describe('the XML reader these tests read JUnit reports with', () => {
  it.each<[string, string]>([
    ['a bare &', '<a>x & y</a>'],
    ['a bare < in an attribute', '<a b="x<y"/>'],
    ['a mismatched tag', '<a><b></a></b>'],
    ['an unclosed element', '<a><b/>'],
    ['a repeated attribute', '<a b="1" b="2"/>'],
    ['content after the root', '<a/><b/>'],
  ])('refuses %s', (_name, source) => {
    expect(() => parseXml(source)).toThrow(/^not well-formed XML/);
  });
});
