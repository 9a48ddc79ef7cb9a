// The rule commands: `check` (load and check every rule file and rule test suite, report every
// problem), `test` (with --event, dry-run one event against the rules: what matched, why not, and
// the planned calls, touching nothing; without it, run the rule test suites beside the rules) and
// `schema` (the JSON Schema of rule files, or of rule test suites).
import { statSync, writeFileSync } from 'node:fs';
import { schedulePlanKey } from '../engine/context.js';
import { type Evaluation, evaluateEvent, type RuleOutcome } from '../engine/evaluate.js';
import { EventInputError, toEventInput } from '../engine/event-input.js';
import { isAllowedHost } from '../engine/execute.js';
import { httpAllowListProblem } from '../engine/http-allow-entry.js';
import { type LoadResult, loadRules, type RuleSet, type RuleSource } from '../engine/load.js';
import { type Plan, type PlannedCall, showBody } from '../engine/plan.js';
import { formatProblem, formatWarning, type RuleProblem } from '../engine/problem.js';
import { ruleJsonSchema } from '../engine/rule-schema.js';
import { loadSuites, rulesNotExpectedToMatch, suiteJsonSchema } from '../engine/rule-suite.js';
import {
  maskSecrets,
  requiredSecrets,
  revealSecrets,
  type SecretMarkers,
  secretsFromEnv,
} from '../engine/secret.js';
import { yamlLibrary } from '../engine/yaml-library.js';
import { normalizeIsoDate } from '../itsm/schemas.js';
import { type Command, type FlagSpec, type FlagValues, UsageError } from './command.js';
import {
  readRulePath,
  readRuleSources,
  readSuiteSources,
  unreadableRulePath,
} from './rule-files.js';
import type { CaseResult } from './rule-suite-runner.js';
import { renderJson, renderJunit, renderText } from './suite-report.js';
import { readTextFile } from './text-file.js';

// ITSM_RULES_DIR, as for `serve`; ITSM_RULES was this flag's twin before and is still read.
const rulesFlag: FlagSpec = {
  name: 'rules',
  env: 'ITSM_RULES_DIR',
  deprecatedEnv: 'ITSM_RULES',
  type: 'string',
  default: './rules',
  placeholder: 'PATH',
  description: 'folder of rule files (.yaml, .yml, .json; any depth), or one rule file',
};

/** Hosts the `http` action may call; shared by every command that plans or runs rules. */
export const httpAllowFlag: FlagSpec = {
  name: 'http-allow',
  env: 'ITSM_HTTP_ALLOW',
  type: 'string',
  multiple: true,
  placeholder: 'HOST',
  description:
    'a host the http action may call: host, host:port or *.domain (repeatable; env: comma-separated)',
};

/**
 * The --http-allow entries (or ITSM_HTTP_ALLOW's). An entry the engine could never match (a URL,
 * a path, `*`, a bad port, an empty one) is a usage error naming it, not a start that then refuses
 * every http call.
 */
export function httpAllowFromFlag(values: FlagValues): string[] {
  const value = values['http-allow'];
  const entries = Array.isArray(value) ? value : typeof value === 'string' ? [value] : [];
  const problem = httpAllowListProblem(entries);
  if (problem !== undefined) throw new UsageError(`--http-allow: ${problem}`);
  return entries;
}

/**
 * Loads the folder (or, with `file`, a single rule file too); prints every problem and returns
 * null when the set is refused, as `check` does (scripts/bundle-rules.ts loads through this too,
 * so that a Worker build with a broken rule fails with the same lines). Throws
 * RuleDirectoryError when the path cannot be read, naming `flag` (default --rules) as the one to
 * point elsewhere.
 */
export function loadFolder(
  dir: string,
  options: { file?: boolean; flag?: string } = {},
): { ruleSet: RuleSet; files: number; sources: RuleSource[]; warnings: RuleProblem[] } | null {
  const sources = options.file
    ? readRulePath(dir, options.flag)
    : readRuleSources(dir, options.flag);
  const result = loadRules(sources);
  if (result.files === 0) {
    console.error(`no rule files (.yaml, .yml, .json) in ${dir}`);
    return null;
  }
  if (!result.ruleSet) {
    printLoadProblems(result);
    return null;
  }
  for (const warning of result.warnings) console.error(formatWarning(warning));
  return { ruleSet: result.ruleSet, files: result.files, sources, warnings: result.warnings };
}

/** Prints every problem of a refused rule set, then the count. */
function printLoadProblems(result: LoadResult): void {
  for (const problem of result.problems) console.error(formatProblem(problem));
  const count = result.problems.length;
  const files = new Set(result.problems.map((problem) => problem.file)).size;
  console.error(
    `\n${count} problem${count === 1 ? '' : 's'} in ${files} of ${result.files} rule file${result.files === 1 ? '' : 's'}`,
  );
}

export const checkCommand: Command = {
  name: 'check',
  summary: 'check every rule file and list every problem (exit 1 when there is any)',
  flags: [
    rulesFlag,
    {
      name: 'strict',
      type: 'boolean',
      description: 'exit 1 on warnings too (printed either way; without it they do not fail)',
    },
  ],
  positional: { flag: 'rules', placeholder: 'PATH' },
  async run(values) {
    const dir = String(values.rules);
    const loaded = loadFolder(dir, { file: true });
    if (!loaded) return 1;
    const rules = loaded.ruleSet.rules;
    const disabled = rules.filter((rule) => !rule.enabled).length;
    const scheduled = rules.filter((rule) => rule.trigger.schedule !== null).length;
    const warnings = loaded.warnings.length;
    const warned = warnings === 0 ? '' : `, ${warnings} warning${warnings === 1 ? '' : 's'}`;
    console.log(
      `${rules.length} rule${rules.length === 1 ? '' : 's'} in ${dir}: all valid (${scheduled} scheduled, ${disabled} disabled${warned})`,
    );
    if (isFolder(dir)) {
      const sources = readSuiteSources(dir);
      const suites = loadSuites(sources, loaded.ruleSet);
      if (suites.problems.length > 0) {
        for (const problem of suites.problems) console.error(formatProblem(problem));
        const count = suites.problems.length;
        const files = new Set(suites.problems.map((problem) => problem.file)).size;
        console.error(
          `\n${count} problem${count === 1 ? '' : 's'} in ${files} of ${sources.length} rule test suite${sources.length === 1 ? '' : 's'} (itsm-rules test runs them once they are fixed)`,
        );
        return 1;
      }
      if (sources.length > 0) {
        const cases = suites.suites.reduce((sum, suite) => sum + suite.cases.length, 0);
        console.log(
          `${sources.length} rule test suite${sources.length === 1 ? '' : 's'} (${cases} case${cases === 1 ? '' : 's'}): all valid`,
        );
      }
    }
    // check reads no secret: it names the variables serve (or the Worker) will need.
    const secrets = requiredSecrets(rules);
    if (secrets.length > 0) {
      console.log(
        `secrets the rules use (set before serve or deploy): ${secrets.map((secret) => `${secret.variable} (${secret.rules.map((rule) => rule.split(' ')[0]).join(', ')})`).join(', ')}`,
      );
    }
    return warnings > 0 && values.strict === true ? 1 : 0;
  },
};

export const testCommand: Command = {
  name: 'test',
  summary:
    'run the rule test suites (*.test.yaml beside the rules); with --event, dry-run one event',
  flags: [
    {
      ...rulesFlag,
      description:
        'folder of rule files and their rule test suites (*.test.yaml; any depth); with --event, also one rule file',
    },
    {
      name: 'event',
      type: 'string',
      placeholder: 'FILE',
      description:
        'a Kloudless event (as GET .../events returns it), or {type, action?, object, previous?} (JSON or YAML)',
    },
    {
      name: 'explain',
      type: 'boolean',
      description: 'show every rule, and for each one that did not match, the part that was false',
    },
    {
      name: 'now',
      type: 'string',
      placeholder: 'ISO',
      description: 'evaluate as if it were this time (hours_since, windows); default: now',
    },
    httpAllowFlag,
    {
      name: 'json',
      type: 'boolean',
      description:
        'print as JSON: the evaluation and plan (--event), or the suite results and untested rules',
    },
    {
      name: 'reporter',
      type: 'string',
      default: 'text',
      placeholder: 'FORMAT',
      description:
        'rule test suites: text (each case, then N passed, N failed) or junit (XML for CI)',
    },
    {
      name: 'output',
      type: 'string',
      placeholder: 'FILE',
      description:
        'rule test suites: write the --reporter junit XML to FILE (the text or --json still prints)',
    },
  ],
  async run(values) {
    const file = values.event as string | undefined;
    const allowHosts = httpAllowFromFlag(values);
    if (!file) return runSuites(values, allowHosts);
    for (const name of ['reporter', 'output'] as const) {
      if (values[name] !== undefined && !(name === 'reporter' && values[name] === 'text')) {
        throw new UsageError(`--${name} applies to rule test suites (test without --event)`);
      }
    }
    const now = parseNow(values.now as string | undefined);
    const loaded = loadFolder(String(values.rules), { file: true });
    if (!loaded) return 1;

    let data: unknown;
    try {
      const text = readTextFile(file);
      // A .json file is read as JSON, so a syntax error reads as a JSON one, not a YAML one.
      data = /\.json$/i.test(file)
        ? parseJson(text)
        : yamlLibrary().parse(text, { schema: 'core', version: '1.2' });
    } catch (error) {
      console.error(`--event ${file}: ${error instanceof Error ? error.message : String(error)}`);
      return 1;
    }
    let input: ReturnType<typeof toEventInput>;
    try {
      input = toEventInput(data, now);
    } catch (error) {
      if (!(error instanceof EventInputError)) throw error;
      console.error(`--event ${file}: ${error.message}`);
      return 1;
    }

    // A dry run keeps correlation counts and once-only claims in a throw-away store. SQLite is
    // loaded here, not at the top, so that `check` and `schema` start without it.
    const [{ createSqliteEngineStore }, { loadMigrations }] = await Promise.all([
      import('../storage/sqlite-engine.js'),
      import('./node.js'),
    ]);
    const store = createSqliteEngineStore({ path: ':memory:', migrations: loadMigrations() });
    try {
      const explain = values.explain === true;
      const evaluations: Evaluation[] = [];
      if (input.event.type === 'schedule') {
        const scheduled = loaded.ruleSet.index.scheduled.filter((rule) =>
          rule.trigger.types.includes(input.objectType),
        );
        const objectId = String(input.object?.id ?? 'object');
        for (const rule of scheduled) {
          evaluations.push(
            await evaluateEvent(
              loaded.ruleSet,
              {
                ...input,
                key: schedulePlanKey(input.event.account, rule.id, input.event.id, objectId),
                now,
                rules: [rule],
              },
              store,
              { explain },
            ),
          );
        }
        if (scheduled.length === 0) {
          evaluations.push({ plan: emptyPlan(input), outcomes: [] });
        }
      } else {
        evaluations.push(
          await evaluateEvent(loaded.ruleSet, { ...input, now }, store, { explain }),
        );
      }
      const calls = evaluations.flatMap((evaluation) => evaluation.plan.calls);
      // The allow-list is checked on the URL as it would be called: with the secret's value
      // when it is set here, else a placeholder. The value itself is never printed.
      const env = secretsFromEnv(process.env);
      const lookup = (name: string) => env(name) ?? `secret-${name.toLowerCase()}`;
      const blocked = calls
        .filter(
          (call) =>
            call.kind === 'http' &&
            !httpCallAllowed(revealSecrets(call.url, call.secrets, lookup).value, allowHosts),
        )
        .map((call) => call.index);
      const markers: SecretMarkers = Object.assign(
        {},
        ...calls.map((call) => (call.kind === 'http' ? (call.secrets ?? {}) : {})),
      );
      const output =
        values.json === true
          ? JSON.stringify({ evaluations, blockedHttpCalls: blocked }, null, 2)
          : renderEvaluations(input, evaluations, explain, new Set(blocked), markers, env);
      console.log(maskSecrets(output, markers));
      return 0;
    } finally {
      await store.close();
    }
  },
};

/** `test` without --event: every rule test suite under the rules folder, through the engine. */
async function runSuites(values: FlagValues, allowHosts: string[]): Promise<number> {
  for (const name of ['explain', 'now'] as const) {
    if (values[name] !== undefined && values[name] !== false) {
      throw new UsageError(
        `--${name} applies to --event FILE; rule test suites take --reporter, --output and --json`,
      );
    }
  }
  const json = values.json === true;
  const reporter = String(values.reporter ?? 'text');
  if (reporter !== 'text' && reporter !== 'junit') {
    throw new UsageError(`--reporter must be text or junit, got ${JSON.stringify(reporter)}`);
  }
  const output = values.output as string | undefined;
  if (output !== undefined && reporter !== 'junit') {
    throw new UsageError(
      `--output writes the JUnit XML report: add --reporter junit (the text report prints on its own)`,
    );
  }
  if (json && reporter === 'junit' && output === undefined) {
    throw new UsageError(
      '--json and --reporter junit both print the results: add --output FILE to write the XML to a file while the JSON prints, or drop one of them',
    );
  }
  const dir = String(values.rules);
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(dir);
  } catch (error) {
    // Said as `check` says it, with its exit code (1): the path is not there, whatever the mode.
    throw unreadableRulePath(dir, 'rules', error);
  }
  if (!stat.isDirectory()) {
    throw new UsageError(
      `--rules ${dir} is not a folder: rule test suites are found beside the rules, so point --rules at the rules folder (or give --event FILE to dry-run one event)`,
    );
  }
  const loaded = loadFolder(dir);
  if (!loaded) return 1;
  const sources = readSuiteSources(dir);
  if (sources.length === 0) {
    console.error(
      `no rule test suites (*.test.yaml, *.test.yml, *.test.json) in ${dir}: write one beside the rules (docs/rules.md, "Testing rules"), or give --event FILE to dry-run one event`,
    );
    return 1;
  }
  const { suites, problems } = loadSuites(sources, loaded.ruleSet);
  if (problems.length > 0) {
    for (const problem of problems) console.error(formatProblem(problem));
    console.error(
      `\n${problems.length} problem${problems.length === 1 ? '' : 's'} in the rule test suites: nothing was run (fix them; itsm-rules check lists them too)`,
    );
    return 1;
  }
  // Nothing is sent: secrets only need a value to stand in the URL or headers.
  const env = secretsFromEnv(process.env);
  const secrets = (name: string) => env(name) ?? `secret-${name.toLowerCase()}`;
  // The runner starts an embedded API and SQLite stores: loaded here, not for `check`.
  const { runSuite } = await import('./rule-suite-runner.js');
  const results: CaseResult[] = [];
  for (const suite of suites) {
    results.push(
      ...(await runSuite(suite, {
        ruleSet: loaded.ruleSet,
        httpAllow: allowHosts,
        secrets,
      })),
    );
  }
  const junit = reporter === 'junit' ? renderJunit(results) : null;
  // Coverage is information, never a failure: the exit code is the cases' alone.
  const uncovered = rulesNotExpectedToMatch(suites, loaded.ruleSet);
  console.log(
    json
      ? renderJson(results, uncovered)
      : junit !== null && output === undefined
        ? junit.trimEnd()
        : renderText(results, uncovered),
  );
  if (junit !== null && output !== undefined) {
    try {
      writeFileSync(output, junit);
    } catch (error) {
      // The cases ran and their results are printed above: only the file is missing.
      console.error(
        `--output ${output} cannot be written (${(error as Error).message}); give a file in a folder that exists and can be written`,
      );
      return 1;
    }
  }
  return results.every((result) => result.passed) ? 0 : 1;
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export const schemaCommand: Command = {
  name: 'schema',
  summary:
    'print the JSON Schema of rule files, or with --suite of rule test suites (also in schema/)',
  flags: [
    {
      name: 'suite',
      type: 'boolean',
      description: 'the schema of rule test suites (*.test.yaml) instead of rule files',
    },
  ],
  async run(values) {
    const schema = values.suite === true ? suiteJsonSchema() : ruleJsonSchema();
    console.log(JSON.stringify(schema, null, 2));
    return 0;
  },
};

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function parseNow(text: string | undefined): Date {
  if (text === undefined) return new Date();
  const normalized = normalizeIsoDate(text);
  if (normalized === null) {
    throw new UsageError(
      `--now must be an ISO 8601 time such as 2026-11-28T10:00:00Z, got ${JSON.stringify(text)}`,
    );
  }
  return new Date(normalized);
}

function emptyPlan(input: ReturnType<typeof toEventInput>): Plan {
  return {
    key: input.key,
    account: input.event.account,
    event: input.event,
    object: null,
    selfHops: 0,
    rules: [],
    calls: [],
    notes: [],
  };
}

function renderOutcome(outcome: RuleOutcome): string[] {
  const head = `  ${outcome.verdict.padEnd(8)} ${outcome.ruleId}${outcome.reason ? `: ${outcome.reason}` : ''}`;
  // A rule in shadow mode: the calls it would make, which the engine records and never makes.
  const shadow = outcome.shadowCalls?.length
    ? [
        '             would make (shadow mode, never made):',
        ...outcome.shadowCalls.flatMap((call) =>
          renderCall(call, false).map((line) => `           ${line}`),
        ),
      ]
    : [];
  return [head, ...(outcome.details ?? []).map((line) => `             ${line}`), ...shadow];
}

function httpCallAllowed(url: string, allowHosts: readonly string[]): boolean {
  try {
    return isAllowedHost(new URL(url), allowHosts);
  } catch {
    return false;
  }
}

function renderCall(call: PlannedCall, blocked: boolean): string[] {
  const origin = `[${call.ruleId} /then/${call.action}, Idempotency-Key ${call.idempotencyKey}]`;
  if (call.kind === 'api') {
    const query = call.query ? `?${new URLSearchParams(call.query).toString()}` : '';
    return [
      `  ${call.index}. ${call.method} ${call.path}${query}  ${origin}`,
      `       ${showBody(call.body)}`,
    ];
  }
  if (call.kind === 'http') {
    return [
      `  ${call.index}. ${call.method} ${call.url}  ${origin}`,
      ...(Object.keys(call.headers).length === 0
        ? []
        : [`       headers ${JSON.stringify(call.headers)}`]),
      ...(call.body === null ? [] : [`       ${showBody(call.body)}`]),
      ...(blocked
        ? ['       (its host is not on --http-allow: the engine would record this call as failed)']
        : []),
    ];
  }
  return [`  ${call.index}. log: ${call.message}  [${call.ruleId} /then/${call.action}]`];
}

function renderEvaluations(
  input: ReturnType<typeof toEventInput>,
  evaluations: readonly Evaluation[],
  explain: boolean,
  blocked: ReadonlySet<number>,
  markers: SecretMarkers,
  secrets: (name: string) => string | undefined,
): string {
  const objectId = typeof input.object?.id === 'string' ? input.object.id : '(no id)';
  const lines = [
    `event ${input.event.type} of ${input.objectType} ${objectId} in account ${input.event.account}`,
  ];
  const outcomes = evaluations.flatMap((evaluation) => evaluation.outcomes);
  const matched = outcomes.filter((outcome) => outcome.verdict === 'matched');
  lines.push(
    '',
    `rules (${matched.length} matched${explain ? '' : `, ${outcomes.length} considered`}):`,
  );
  if (outcomes.length === 0) lines.push('  (no rule watches this object type and event)');
  for (const outcome of outcomes) lines.push(...renderOutcome(outcome));
  const calls = evaluations.flatMap((evaluation) => evaluation.plan.calls);
  const notes = evaluations.flatMap((evaluation) => evaluation.plan.notes);
  lines.push('', calls.length === 0 ? 'planned calls: none' : 'planned calls:');
  for (const evaluation of evaluations) {
    for (const call of evaluation.plan.calls) {
      lines.push(...renderCall(call, call.kind === 'http' && blocked.has(call.index)));
    }
  }
  if (notes.length > 0) {
    lines.push('', 'notes:');
    for (const note of notes) lines.push(`  ${note.ruleId} /then/${note.action}: ${note.message}`);
  }
  const names = [...new Set(Object.values(markers))].sort();
  if (names.length > 0) {
    lines.push('', 'secrets (shown as [secret NAME], never their values):');
    for (const name of names) {
      lines.push(
        `  ${name}: ${secrets(name) === undefined ? `ITSM_SECRET_${name} is not set here (serve refuses to start without it)` : `set (ITSM_SECRET_${name})`}`,
      );
    }
  }
  lines.push('', 'dry run: nothing was written.');
  return lines.join('\n');
}
