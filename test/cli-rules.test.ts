// The rule commands as a user runs them: `node bin/itsm-rules.js check|test|schema` in a child
// process. Each spawn pays the tsx start-up (about a second), so the tests of a group run
// concurrently and each one starts as few processes as it can.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import { ROOT, type ScriptRun as Run, runScript } from './helpers/run-script.js';

const BIN = join(ROOT, 'bin/itsm-rules.js');
const TIMEOUT = 30_000;
const BROKEN = 'test/fixtures/broken-rules';
/** The example rules' copy (tests never read the shipped rules/, which users edit). */
const EXAMPLES = 'test/fixtures/example-rules';
const EVENTS = 'test/fixtures/events';
const MAJOR = `${EVENTS}/incident-raised-to-major.json`;
const INCIDENT_ID = 'FiHGI7TsuwWIsc1UW3_unpc';

/** Runs the CLI to its end, with no ITSM_* variable of the test runner's environment but `env`. */
const run = (args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) =>
  runScript(BIN, args, options);

const temps: string[] = [];
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'itsm-rules-cli-'));
  temps.push(dir);
  return dir;
}

/** Every rule file under `dir`, at any depth. */
function ruleFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((name) => /\.(ya?ml|json)$/i.test(name))
    .sort();
}

describe.concurrent('itsm-rules check', () => {
  it(
    'exits 0 on the example rules with a one-line summary',
    async ({ expect }) => {
      const result = await run(['check', '--rules', EXAMPLES]);
      expect(result.code).toBe(0);
      expect(result.stderr).toBe('');
      const count = ruleFiles(EXAMPLES).length;
      expect(result.stdout).toMatch(
        new RegExp(`^${count} rules in ${EXAMPLES}: all valid \\(1 scheduled, 0 disabled\\)\\n$`),
      );
    },
    TIMEOUT,
  );

  it(
    'exits 1 on the broken rules and names every broken file on stderr',
    async ({ expect }) => {
      const result = await run(['check', '--rules', BROKEN]);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      const files = ruleFiles(BROKEN);
      for (const name of files) expect(result.stderr).toContain(`${BROKEN}/${name}`);
      const lines = result.stderr.trimEnd().split('\n');
      const problems = lines.filter((line) => line.startsWith(`${BROKEN}/`));
      // Duplicate ids and a loop between two files are one problem each, in one of the two files.
      expect(problems).toHaveLength(files.length - 2);
      expect(
        problems.find((line) => line.startsWith(`${BROKEN}/unknown-operator.yaml:7 `)),
      ).toMatch(/^\S+ \/when\/and\/1\/contains: unknown operator "contains" \(operators: var, /);
      expect(lines.at(-1)).toBe(
        `${files.length - 2} problems in ${files.length - 2} of ${files.length} rule files`,
      );
    },
    TIMEOUT,
  );

  it(
    'prints warnings on stderr and exits 0, or 1 with --strict',
    async ({ expect }) => {
      const dir = 'test/fixtures/duplicate-create';
      const [plain, strict] = await Promise.all([
        run(['check', '--rules', dir]),
        run(['check', '--rules', dir, '--strict']),
      ]);
      const warning = `warning: ${dir}/open-problem-second.yaml:8 /then/1/create: rule "open-problem-second" creates a problem, and so does rule "open-problem-first"`;
      for (const result of [plain, strict]) {
        expect(result.stderr.startsWith(warning)).toBe(true);
        expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
        expect(result.stdout).toBe(
          `2 rules in ${dir}: all valid (0 scheduled, 0 disabled, 1 warning)\n`,
        );
      }
      expect(plain.code).toBe(0);
      expect(strict.code).toBe(1);
    },
    TIMEOUT,
  );

  it(
    'exits 1 with a clear message when the rules folder does not exist',
    async ({ expect }) => {
      const missing = join(tempDir(), 'no-such-rules');
      const result = await run(['check', '--rules', missing]);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toBe(
        `itsm-rules check: the rules path ${missing} does not exist or cannot be read; point --rules at a rule file or the folder of rule files\n`,
      );
    },
    TIMEOUT,
  );

  it(
    'exits 1 when the rules folder holds no rule file',
    async ({ expect }) => {
      const empty = tempDir();
      const result = await run(['check', '--rules', empty]);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toBe(`no rule files (.yaml, .yml, .json) in ${empty}\n`);
    },
    TIMEOUT,
  );
});

const MAJOR_RULE = 'test/fixtures/example-rules/incident/escalate-major-incidents.yaml';
const BROKEN_RULE = `${BROKEN}/unknown-operator.yaml`;
const DEPRECATED = 'ITSM_RULES is deprecated; use ITSM_RULES_DIR\n';

describe.concurrent('itsm-rules check of one rule file', () => {
  it(
    'checks the file given on its own',
    async ({ expect }) => {
      const result = await run(['check', MAJOR_RULE]);
      expect(result.code).toBe(0);
      expect(result.stdout).toBe(`1 rule in ${MAJOR_RULE}: all valid (0 scheduled, 0 disabled)\n`);
    },
    TIMEOUT,
  );

  it(
    'checks the file given as --rules and names its problem',
    async ({ expect }) => {
      const result = await run(['check', '--rules', BROKEN_RULE]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(
        `${BROKEN_RULE}:7 /when/and/1/contains: unknown operator "contains"`,
      );
      expect(result.stderr).toContain('1 problem in 1 of 1 rule file');
    },
    TIMEOUT,
  );

  it(
    'refuses a file that is not a rule file',
    async ({ expect }) => {
      const result = await run(['check', 'README.md']);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(
        'itsm-rules check: README.md is not a rule file (.yaml, .yml or .json); point --rules at a rule file or the folder of rule files\n',
      );
    },
    TIMEOUT,
  );

  it(
    'refuses a path given both as --rules and on its own (exit 2, one line pointing to --help)',
    async ({ expect }) => {
      const result = await run(['check', '--rules', EXAMPLES, MAJOR_RULE]);
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(
        `itsm-rules check: give the PATH either as --rules or on its own, not both (got --rules "${EXAMPLES}" and "${MAJOR_RULE}")\nRun 'itsm-rules check --help' for usage.\n`,
      );
    },
    TIMEOUT,
  );
});

describe.concurrent('the rules path from the environment', () => {
  it(
    'reads ITSM_RULES_DIR, as serve does',
    async ({ expect }) => {
      const result = await run(['check'], { env: { ITSM_RULES_DIR: BROKEN } });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`${BROKEN}/unknown-operator.yaml`);
      expect(result.stderr).not.toContain('deprecated');
    },
    TIMEOUT,
  );

  it(
    'still reads the old ITSM_RULES, with one warning line',
    async ({ expect }) => {
      const result = await run(['check'], { env: { ITSM_RULES: BROKEN } });
      expect(result.code).toBe(1);
      expect(result.stderr.startsWith(DEPRECATED)).toBe(true);
      expect(result.stderr.split(DEPRECATED)).toHaveLength(2);
      expect(result.stderr).toContain(`${BROKEN}/unknown-operator.yaml`);
    },
    TIMEOUT,
  );

  it(
    'prefers ITSM_RULES_DIR when both are set',
    async ({ expect }) => {
      const result = await run(['test', '--event', MAJOR], {
        env: { ITSM_RULES_DIR: EXAMPLES, ITSM_RULES: BROKEN },
      });
      expect(result.code).toBe(0);
      expect(result.stderr).toBe(DEPRECATED);
      expect(result.stdout).toContain('escalate-major-incidents');
    },
    TIMEOUT,
  );
});

describe.concurrent('itsm-rules --version and usage errors', () => {
  it.for(['--version', '-V'])(
    'prints the version of package.json for %s',
    { timeout: TIMEOUT },
    async (flag, { expect }) => {
      const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
      const result = await run([flag]);
      expect(result.code).toBe(0);
      expect(result.stdout).toBe(`itsm-rules ${version}\n`);
    },
  );

  it(
    'answers a usage error with the error and one line pointing to --help, not the whole help',
    async ({ expect }) => {
      const result = await run(['check', '--bogus']);
      expect(result.code).toBe(2);
      const lines = result.stderr.trimEnd().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(/^itsm-rules check: Unknown option '--bogus'/);
      expect(lines[1]).toBe("Run 'itsm-rules check --help' for usage.");
    },
    TIMEOUT,
  );

  it(
    'answers an unknown command with one line pointing to --help',
    async ({ expect }) => {
      const result = await run(['frobnicate']);
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(
        `itsm-rules: unknown command "frobnicate"\nRun 'itsm-rules --help' for usage.\n`,
      );
    },
    TIMEOUT,
  );
});

describe.concurrent('itsm-rules --help of the rule commands', () => {
  it.for<[string, string[]]>([
    ['check', ['--rules PATH', '--strict']],
    [
      'test',
      [
        '--rules PATH',
        '--event FILE',
        '--explain',
        '--now ISO',
        '--http-allow HOST',
        '--json',
        '--reporter FORMAT',
        '--output FILE',
      ],
    ],
    ['schema', ['--suite']],
  ])(
    'lists the flags of %s and exits 0',
    { timeout: TIMEOUT },
    async ([command, flags], { expect }) => {
      const result = await run([command, '--help']);
      expect(result.code).toBe(0);
      const lines = result.stdout.split('\n');
      expect(lines[0]).toBe(
        `usage: itsm-rules ${command} [flags]${command === 'check' ? ' [PATH]' : ''}`,
      );
      const listed = lines
        .filter((line) => line.startsWith('  --'))
        .map((line) => line.trim().split(/\s{2,}/)[0]);
      expect(listed).toEqual([...flags, '--help']);
      if (flags.includes('--rules PATH')) {
        expect(result.stdout).toContain(
          '(env ITSM_RULES_DIR; formerly ITSM_RULES; default ./rules)',
        );
      }
    },
  );
});

describe.concurrent('itsm-rules schema', () => {
  it(
    'prints the JSON Schema that is committed in schema/rule.schema.json',
    async ({ expect }) => {
      const result = await run(['schema']);
      expect(result.code).toBe(0);
      const committed = JSON.parse(readFileSync(join(ROOT, 'schema/rule.schema.json'), 'utf8'));
      expect(JSON.parse(result.stdout)).toEqual(committed);
    },
    TIMEOUT,
  );
});

// Runs shared by two tests (each states one behaviour of the same output): one process each.
const shared = new Map<string, Promise<Run>>();
function runShared(args: string[], options: { cwd?: string } = {}): Promise<Run> {
  const key = JSON.stringify([args, options]);
  let result = shared.get(key);
  if (!result) {
    result = run(args, options);
    shared.set(key, result);
  }
  return result;
}

/** The Kloudless event of a major incident, dry-run from an empty working directory. */
let majorCwd: string | undefined;
function runMajor(): Promise<Run> {
  majorCwd ??= tempDir();
  return runShared(['test', '--rules', join(ROOT, EXAMPLES), '--event', join(ROOT, MAJOR)], {
    cwd: majorCwd,
  });
}

function runShortExplained(): Promise<Run> {
  return runShared([
    'test',
    '--rules',
    EXAMPLES,
    '--event',
    `${EVENTS}/incident-impact-raised-short.yaml`,
    '--explain',
  ]);
}

describe.concurrent('itsm-rules test', () => {
  it(
    'plans the escalation of an incident whose Kloudless update event raises impact and urgency to high',
    async ({ expect }) => {
      const result = await runMajor();
      expect(result.code).toBe(0);
      expect(result.stderr).toBe('');
      const lines = result.stdout.trimEnd().split('\n');
      expect(lines[0]).toBe(`event update of incident ${INCIDENT_ID} in account 1`);
      expect(lines).toContain('rules (1 matched, 2 considered):');
      expect(lines).toContain('  matched  escalate-major-incidents');
      const patch = lines.findIndex((line) =>
        line.startsWith(`  0. PATCH accounts/1/itsm/incidents/${INCIDENT_ID}  `),
      );
      expect(patch).toBeGreaterThan(0);
      expect(lines[patch]).toContain(
        '[escalate-major-incidents /then/0, Idempotency-Key e:1:42:escalate-major-incidents:0]',
      );
      expect(lines[patch + 1]).toBe('       {"priority":"critical","escalation":1}');
      expect(lines).toContain(
        `  1. log: major incident ${INCIDENT_ID} raised to critical  [escalate-major-incidents /then/1]`,
      );
      expect(lines.at(-1)).toBe('dry run: nothing was written.');
    },
    TIMEOUT,
  );

  it(
    'shows the link to an object the plan creates as the call that creates it, not an internal reference',
    async ({ expect }) => {
      const dir = tempDir();
      const event = join(dir, 'problem-in-fix.json');
      const problem = { id: 'p1', type: 'problem', api: 'itsm', category: 'network' };
      writeFileSync(
        event,
        JSON.stringify({
          type: 'update',
          object: { ...problem, status: 104, description: 'Router flaps' },
          previous: { ...problem, status: 103, description: 'Router flaps' },
        }),
      );
      const result = await run(['test', '--rules', EXAMPLES, '--event', event]);
      expect(result.code).toBe(0);
      const lines = result.stdout.split('\n');
      const create = lines.findIndex((line) =>
        line.startsWith('  0. POST accounts/1/itsm/changes '),
      );
      const link = lines.findIndex((line) =>
        line.startsWith('  1. PATCH accounts/1/itsm/problems/p1 '),
      );
      expect(create).toBeGreaterThan(0);
      expect(lines[link + 1]).toBe('       {"change":"<the id call 0 creates>"}');
      expect(result.stdout).not.toContain('$result');
    },
    TIMEOUT,
  );

  it(
    'reads an event file that starts with a byte-order mark, as editors on Windows save it',
    async ({ expect }) => {
      const event = join(tempDir(), 'bom.json');
      writeFileSync(event, `\uFEFF${readFileSync(MAJOR, 'utf8')}`);
      const plain = await run(['test', '--rules', EXAMPLES, '--event', MAJOR]);
      const result = await run(['test', '--rules', EXAMPLES, '--event', event]);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toBe(plain.stdout);
    },
    TIMEOUT,
  );

  it(
    'touches nothing: no file appears in the working directory',
    async ({ expect }) => {
      const hadData = existsSync(join(ROOT, 'data'));
      const result = await runMajor();
      expect(result.code).toBe(0);
      expect(readdirSync(majorCwd as string)).toEqual([]);
      expect(existsSync(join(ROOT, 'data'))).toBe(hadData);
    },
    TIMEOUT,
  );

  it(
    'reads the short form {type, object, previous} of an event',
    async ({ expect }) => {
      const result = await runShortExplained();
      expect(result.code).toBe(0);
      expect(result.stderr).toBe('');
      const lines = result.stdout.trimEnd().split('\n');
      expect(lines[0]).toBe('event update of incident inc-short-1 in account 1');
      expect(lines).toContain('rules (0 matched):');
      expect(lines).toContain('planned calls: none');
    },
    TIMEOUT,
  );

  it(
    'shows with --explain the part of the condition that was false and why',
    async ({ expect }) => {
      const result = await runShortExplained();
      const lines = result.stdout.split('\n').map((line) => line.trim());
      const verdict = lines.indexOf(
        'no_match escalate-major-incidents: the condition (when) is false',
      );
      expect(verdict).toBeGreaterThan(0);
      expect(lines[verdict + 1]).toBe(
        '/when/and/1: {"==":[{"var":"object.urgency"},"high"]} is false, because {"var":"object.urgency"} is "low"',
      );
      // --explain lists every rule, with the reason each one was not considered.
      expect(lines).toContain(
        'skipped  problem-in-fix-opens-change: it watches problem, not incident',
      );
      expect(lines).toContain(
        'skipped  recurring-incidents-open-problem: it runs on add events, not update',
      );
    },
    TIMEOUT,
  );

  it(
    'says of a --rules path that is not there what check says, with its exit code (1)',
    async ({ expect }) => {
      const missing = join(tempDir(), 'no-such-rules');
      const [check, suites, dryRun] = await Promise.all([
        run(['check', '--rules', missing]),
        run(['test', '--rules', missing]),
        run(['test', '--rules', missing, '--event', MAJOR]),
      ]);
      const said = `the rules path ${missing} does not exist or cannot be read; point --rules at a rule file or the folder of rule files\n`;
      expect(check).toEqual({ code: 1, stdout: '', stderr: `itsm-rules check: ${said}` });
      for (const result of [suites, dryRun]) {
        expect(result).toEqual({ code: 1, stdout: '', stderr: `itsm-rules test: ${said}` });
      }
    },
    TIMEOUT,
  );

  it(
    'exits 2 on an --http-allow entry that names no host, with an event or running the suites',
    async ({ expect }) => {
      const event = 'test/fixtures/events/incident-became-critical.json';
      const [dryRun, suites] = await Promise.all([
        run(['test', '--rules', EXAMPLES, '--event', event, '--http-allow', 'x.com/path']),
        run(['test', '--rules', EXAMPLES], { env: { ITSM_HTTP_ALLOW: 'https://x.com' } }),
      ]);
      expect(dryRun.code).toBe(2);
      expect(dryRun.stdout).toBe('');
      expect(dryRun.stderr).toBe(
        'itsm-rules test: --http-allow: "x.com/path" is not a host: give host or host:port, such as pager.example.com or 127.0.0.1:9000, or *.domain for its sub-domains\n' +
          "Run 'itsm-rules test --help' for usage.\n",
      );
      expect(suites.code).toBe(2);
      expect(suites.stderr).toContain('--http-allow: "https://x.com" is not a host');
    },
    TIMEOUT,
  );

  it(
    'says which planned http calls --http-allow would refuse, and lists them in --json',
    async ({ expect }) => {
      const event = 'test/fixtures/events/incident-became-critical.json';
      const [refused, allowed, json] = await Promise.all([
        run(['test', '--rules', EXAMPLES, '--event', event]),
        run(['test', '--rules', EXAMPLES, '--event', event, '--http-allow', '*.example.com']),
        run(['test', '--rules', EXAMPLES, '--event', event, '--json', '--http-allow', 'other.org']),
      ]);
      const note = '(its host is not on --http-allow: the engine would record this call as failed)';
      expect(refused.code).toBe(0);
      expect(refused.stdout).toContain(
        '0. POST https://pager.example.com/v1/alerts  [page-on-call-for-critical /then/0',
      );
      expect(refused.stdout).toContain(note);
      expect(allowed.code).toBe(0);
      expect(allowed.stdout).toContain('0. POST https://pager.example.com/v1/alerts');
      expect(allowed.stdout).not.toContain(note);
      expect(JSON.parse(json.stdout).blockedHttpCalls).toEqual([0]);
    },
    TIMEOUT,
  );

  it(
    'prints the evaluation and the plan as JSON with --json',
    async ({ expect }) => {
      const result = await run(['test', '--rules', EXAMPLES, '--event', MAJOR, '--json']);
      expect(result.code).toBe(0);
      const output = JSON.parse(result.stdout);
      expect(output.evaluations).toHaveLength(1);
      const [evaluation] = output.evaluations;
      expect(evaluation.plan).toMatchObject({
        key: 'e:1:42',
        account: 1,
        event: { id: '42', type: 'update', account: 1, at: '2026-11-28T10:00:00Z', user_id: null },
        object: { type: 'incident', id: INCIDENT_ID },
        rules: ['escalate-major-incidents'],
        notes: [],
      });
      expect(evaluation.plan.calls).toHaveLength(2);
      expect(evaluation.plan.calls[0]).toMatchObject({
        kind: 'api',
        method: 'PATCH',
        path: `accounts/1/itsm/incidents/${INCIDENT_ID}`,
        body: { priority: 'critical', escalation: 1 },
        idempotencyKey: 'e:1:42:escalate-major-incidents:0',
        ruleId: 'escalate-major-incidents',
        action: 0,
      });
      expect(evaluation.plan.calls[1]).toMatchObject({
        kind: 'log',
        message: `major incident ${INCIDENT_ID} raised to critical`,
      });
      expect(
        evaluation.outcomes.map((o: { ruleId: string; verdict: string }) => [o.ruleId, o.verdict]),
      ).toEqual([
        ['escalate-major-incidents', 'matched'],
        ['page-on-call-for-critical', 'skipped'],
      ]);
    },
    TIMEOUT,
  );

  it(
    'plans the escalation of an overdue incident at a schedule tick given by --now',
    async ({ expect }) => {
      const result = await run([
        'test',
        '--rules',
        EXAMPLES,
        '--event',
        `${EVENTS}/overdue-incident-tick.json`,
        '--now',
        '2026-11-28T10:00:00Z',
        '--json',
      ]);
      expect(result.code).toBe(0);
      const { evaluations } = JSON.parse(result.stdout);
      expect(evaluations).toHaveLength(1);
      const [evaluation] = evaluations;
      expect(evaluation.plan.event).toMatchObject({
        type: 'schedule',
        at: '2026-11-28T10:00:00.000Z',
      });
      expect(evaluation.outcomes).toEqual([
        expect.objectContaining({ ruleId: 'overdue-incident-escalation', verdict: 'matched' }),
      ]);
      expect(evaluation.plan.calls).toHaveLength(2);
      expect(evaluation.plan.calls[0]).toMatchObject({
        method: 'PATCH',
        path: 'accounts/1/itsm/incidents/inc-overdue-1',
        body: { priority: 'high', escalation: 1 },
        ruleId: 'overdue-incident-escalation',
      });
      expect(evaluation.plan.calls[0].idempotencyKey).toContain('2026-11-28T10:00:00.000Z');
      // Due 2026-11-27T10:00:00Z, so overdue by a day at --now.
      expect(evaluation.plan.calls[1]).toMatchObject({
        kind: 'log',
        message: 'overdue by 24 hours',
      });
    },
    TIMEOUT,
  );

  it.for<[string, string, RegExp]>([
    [
      'is not valid JSON',
      'invalid-json.json',
      /^--event \S+invalid-json\.json: not valid JSON: .*position \d+\n$/,
    ],
    [
      'has no object',
      'missing-object.json',
      /^--event \S+missing-object\.json: object is required: the object as the ITSM API returns it\n$/,
    ],
  ])(
    'exits 1 with a clear message when the event file %s',
    { timeout: TIMEOUT },
    async ([, name, message], { expect }) => {
      const result = await run(['test', '--rules', EXAMPLES, '--event', `${EVENTS}/${name}`]);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(message);
    },
  );
});

describe.concurrent('output to a pipe', () => {
  it(
    'writes the whole of a report far larger than a pipe holds (64 KiB) before it exits',
    async ({ expect }) => {
      // 800 copies of a rule that matches the event: --json --explain prints each one's outcome
      // and its planned calls, several hundred KiB in all.
      const dir = tempDir();
      const rule = readFileSync(
        join(ROOT, EXAMPLES, 'incident/escalate-major-incidents.yaml'),
        'utf8',
      );
      for (let i = 1; i <= 800; i++) writeFileSync(join(dir, `copy-${i}.yaml`), rule);
      const result = await run(['test', '--rules', dir, '--event', MAJOR, '--json', '--explain']);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout.length).toBeGreaterThan(4 * 65_536);
      const outcomes = JSON.parse(result.stdout).evaluations[0].outcomes;
      expect(outcomes).toHaveLength(800);
      expect(outcomes.at(-1)).toMatchObject({ verdict: 'matched' });
    },
    TIMEOUT,
  );
});
