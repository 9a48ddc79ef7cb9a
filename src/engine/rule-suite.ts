// Rule test suites: files beside the rules (`*.test.yaml`, `.test.yml`, `.test.json`) that say,
// case by case, what the rules must do with a sequence of changes (objects created, updated,
// deleted, scheduled ticks, each at a time relative to the start of the case): which rules match
// or not (and why not), which calls they plan, what a correlation counts, and what the objects
// look like afterwards. This module owns the format (its zod schema and JSON Schema) and turns a
// file into a checked suite, reporting every problem with its file, line and pointer, as rule
// files are reported; and it says which rules no case expects to match (the suites' coverage).
// Running a suite is the runtime's (src/runtime/rule-suite-runner.ts); comparing what happened
// with what was expected is suite-expect.ts.
import { z } from 'zod';
import { fieldsOf, isUnifiedType, OBJECT_TYPES, type ObjectType } from '../itsm/fields.js';
import { describeIssues, WRITE_SCHEMAS } from '../itsm/schemas.js';
import { parseDuration } from './duration.js';
import { parseSource, type RuleSet, type RuleSource } from './load.js';
import {
  article,
  describeValue,
  didYouMean,
  KIND_NAMES,
  type RuleProblem,
  toPointer,
  valueAt,
  wrongTypeMessage,
} from './problem.js';
import { RULE_ID_PATTERN } from './rule-schema.js';

/** `+10m`, `-2h`, `0`: a time relative to the start of a case. */
const OFFSET_PATTERN = /^([+-]?)(0|[1-9][0-9]{0,6}[smhd])$/;

/** Milliseconds of a relative time (`+10m`, `-2h`, `0`), or null when the text is not one. */
export function parseOffset(text: string): number | null {
  const match = OFFSET_PATTERN.exec(text.trim());
  if (!match) return null;
  const amount = match[2] === '0' ? 0 : parseDuration(match[2] as string);
  if (amount === null) return null;
  return match[1] === '-' ? -amount : amount;
}

const offsetSchema = z
  .string()
  .regex(OFFSET_PATTERN, 'expected a time since the start of the case such as +10m, +2h, 1d or 0')
  .meta({ description: 'time since the start of the case: +30s, +10m, +2h, +1d (or 0)' });

const ruleIdSchema = z
  .string()
  .regex(RULE_ID_PATTERN, 'expected a rule id (kebab-case, as the rule file names it)');

const aliasSchema = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_-]{0,63}$/, 'expected a name: letters, digits, _ and -')
  .meta({ description: 'the name a step gave the object with `as`' });

const fieldsSchema = z.record(z.string(), z.unknown()).meta({
  description:
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the suite format's own placeholder syntax.
    'the fields as the API takes them; {at: -2h} is a time relative to the start of the case, and "${name}" the id of a named object',
});

const createStepSchema = z.strictObject({
  type: z.enum(OBJECT_TYPES),
  as: aliasSchema.optional().meta({ description: 'a name later steps and expectations use' }),
  raw_type: z
    .string()
    .min(1)
    .optional()
    .meta({ description: 'the upstream table of a generic object (type: object)' }),
  fields: fieldsSchema.optional(),
});

const updateStepSchema = z.strictObject({
  object: aliasSchema,
  fields: fieldsSchema,
});

const deleteStepSchema = z.strictObject({ object: aliasSchema });

const expectedCallSchema = z
  .strictObject({
    rule: ruleIdSchema.optional().meta({ description: 'the rule that planned it' }),
    method: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'POST or PATCH for the API, the http method for http' }),
    type: z
      .enum(OBJECT_TYPES)
      .optional()
      .meta({ description: 'the object type written or created' }),
    object: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'the object written: a name given with `as`, or an id' }),
    url: z.string().min(1).optional().meta({ description: 'an http call: its URL' }),
    body: z.unknown().optional().meta({ description: 'what the body holds (a subset of it)' }),
    log: z.string().optional().meta({ description: 'a log action: text its message contains' }),
  })
  .meta({ description: 'a planned call; every key given must match, bodies as a subset' });

const expectSchema = z
  .strictObject({
    matched: z.array(ruleIdSchema).optional().meta({
      description: 'exactly the rules that matched in this step (any order); [] for none',
    }),
    not_matched: z.record(ruleIdSchema, z.string().nullable()).optional().meta({
      description:
        'rules that did not match; the text, when given, must appear in the reason or the false clause',
    }),
    calls: z
      .array(expectedCallSchema)
      .optional()
      .meta({ description: 'exactly the calls planned in this step, in order' }),
    correlation: z
      .record(ruleIdSchema, z.number().int().min(0))
      .optional()
      .meta({ description: 'the count a correlating rule saw in this step' }),
    objects: z
      .record(aliasSchema, z.record(z.string(), z.unknown()))
      .optional()
      .meta({ description: 'the named objects after the step (a subset of their fields)' }),
  })
  .meta({
    description: 'what must have happened once the step and every write it caused are done',
  });

export const suiteStepSchema = z
  .strictObject({
    at: offsetSchema.optional().meta({
      description:
        'when the step happens, since the start of the case; default: with the step before',
    }),
    create: createStepSchema.optional(),
    update: updateStepSchema.optional(),
    delete: deleteStepSchema.optional(),
    tick: z
      .union([ruleIdSchema, z.array(ruleIdSchema).min(1)])
      .optional()
      .meta({ description: 'run these scheduled rules at this time, over every object' }),
    expect: expectSchema.optional(),
  })
  .meta({ description: 'one change (create, update, delete or tick) and what it must do' });

const caseSchema = z.strictObject({
  name: z.string().min(1),
  rules: z
    .array(ruleIdSchema)
    .min(1)
    .optional()
    .meta({ description: "only these rules run in this case (default: the suite's)" }),
  steps: z.array(suiteStepSchema).min(1),
});

export const suiteFileSchema = z
  .strictObject({
    $schema: z.string().optional(),
    description: z.string().optional(),
    rules: z.array(ruleIdSchema).min(1).optional().meta({
      description: 'only these rules run in this suite (default: every rule of the folder)',
    }),
    account: z
      .number()
      .int()
      .min(1)
      .optional()
      .meta({ description: 'the account the changes are made in; default 1' }),
    cases: z.array(caseSchema).min(1),
  })
  .meta({ title: 'itsm-rules rule test suite', description: 'Rule test cases (docs/rules.md)' });

export type SuiteFile = z.infer<typeof suiteFileSchema>;
export type SuiteStepData = z.infer<typeof suiteStepSchema>;
export type SuiteExpect = z.infer<typeof expectSchema>;
export type ExpectedCall = z.infer<typeof expectedCallSchema>;

export type SuiteChange =
  | {
      kind: 'create';
      type: ObjectType;
      as: string | null;
      rawType: string | null;
      fields: Record<string, unknown>;
    }
  | { kind: 'update'; object: string; fields: Record<string, unknown> }
  | { kind: 'delete'; object: string }
  | { kind: 'tick'; rules: string[] };

export interface SuiteStep {
  /** 1-based, as shown in reports. */
  number: number;
  /** Milliseconds since the start of the case. */
  atMs: number;
  change: SuiteChange;
  expect: SuiteExpect | null;
  /** The line of the step in its file, for reports. */
  line: number | undefined;
}

export interface SuiteCase {
  name: string;
  /** The rules that run (null: every rule of the set). */
  rules: string[] | null;
  steps: SuiteStep[];
  line: number | undefined;
}

export interface RuleSuite {
  file: string;
  description: string | null;
  account: number;
  cases: SuiteCase[];
}

export interface SuiteLoadResult {
  /** The suites without problems. */
  suites: RuleSuite[];
  problems: RuleProblem[];
}

/** The JSON Schema of rule test suites (draft 2020-12), for editors and `itsm-rules schema --suite`. */
export function suiteJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(suiteFileSchema, { target: 'draft-2020-12', io: 'input' });
  return { ...schema, $id: 'https://itsm-rules.dev/schema/rule-test.schema.json' };
}

/**
 * Parses and checks suite files against the rule set they test (null: the rules did not load,
 * so rule ids are not checked). Every problem of every file is collected; a file with any
 * problem gives no suite.
 */
export function loadSuites(
  sources: readonly RuleSource[],
  ruleSet: RuleSet | null,
): SuiteLoadResult {
  const suites: RuleSuite[] = [];
  const problems: RuleProblem[] = [];
  for (const source of [...sources].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    const before = problems.length;
    const file = parseSource(source, problems, 'a rule test suite (a mapping with cases)');
    if (file.data === undefined) continue;
    const report = (path: readonly PropertyKey[], message: string) =>
      problems.push({
        file: file.path,
        pointer: toPointer(path),
        line: file.lineOf(path),
        code: 'SUITE_INVALID',
        message,
      });
    const parsed = suiteFileSchema.safeParse(file.data, { reportInput: true });
    if (!parsed.success) {
      for (const issue of parsed.error.issues) report(issue.path, issueMessage(issue, file.data));
      // The steps that have the right shape are checked too (rule ids, names, times), so that
      // one run of check lists every problem; the suite itself is refused.
      const partial = salvage(file.data);
      if (partial) toSuite(partial, file.path, file.lineOf, ruleSet, report);
      continue;
    }
    const suite = toSuite(parsed.data, file.path, file.lineOf, ruleSet, report);
    if (problems.length === before) suites.push(suite);
  }
  problems.sort(
    (a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0) || (a.line ?? 0) - (b.line ?? 0),
  );
  return { suites, problems };
}

/**
 * The ids of the rules that could match (enabled, live) but that no case of `suites` expects to
 * match, in run order: named in no step's `matched`, nor as the `rule` of an expected call
 * (a call is planned only by a rule that matched). `itsm-rules test` prints them as coverage
 * information, never as a failure: a folder's rules change more often than its suites. Disabled
 * rules never run and shadow rules never match in a suite, so neither is listed.
 */
export function rulesNotExpectedToMatch(suites: readonly RuleSuite[], ruleSet: RuleSet): string[] {
  const expected = new Set<string>();
  for (const suite of suites) {
    for (const suiteCase of suite.cases) {
      for (const step of suiteCase.steps) {
        for (const id of step.expect?.matched ?? []) expected.add(id);
        for (const call of step.expect?.calls ?? []) {
          if (call.rule !== undefined) expected.add(call.rule);
        }
      }
    }
  }
  return ruleSet.rules
    .filter((rule) => rule.enabled && rule.mode === 'live' && !expected.has(rule.id))
    .map((rule) => rule.id);
}

/**
 * The parts of a suite with shape problems that can still be checked: every step that has the
 * right shape keeps its place (a broken one becomes a step with no expectations), so pointers
 * and step numbers stay those of the file. Null when not even the list of cases is there.
 */
function salvage(data: unknown): SuiteFile | null {
  const root = data as Record<string, unknown>;
  if (!Array.isArray(root.cases)) return null;
  const rules = z.array(ruleIdSchema).safeParse(root.rules);
  return {
    ...(rules.success && { rules: rules.data }),
    cases: root.cases.map((item: unknown, index) => {
      const raw = (item ?? {}) as Record<string, unknown>;
      const caseRules = z.array(ruleIdSchema).min(1).safeParse(raw.rules);
      const steps = Array.isArray(raw.steps) ? raw.steps : [];
      return {
        name: typeof raw.name === 'string' ? raw.name : `(case ${index + 1})`,
        ...(caseRules.success && { rules: caseRules.data }),
        steps: steps.map((step: unknown) => {
          const parsed = suiteStepSchema.safeParse(step);
          if (parsed.success) return parsed.data;
          // A broken create still names its object, or every later use of it would be a problem.
          const as = (step as { create?: { as?: unknown } } | null)?.create?.as;
          return typeof as === 'string' && aliasSchema.safeParse(as).success
            ? { create: { type: 'incident' as const, as } }
            : { tick: [] as string[] };
        }),
      };
    }),
  } as SuiteFile;
}

function issueMessage(issue: z.core.$ZodIssue, root: unknown): string {
  const input = valueAt(root, issue.path);
  switch (issue.code) {
    case 'unrecognized_keys':
      return `unknown key${issue.keys.length === 1 ? '' : 's'} ${issue.keys.map((key) => `"${key}"`).join(', ')}${didYouMean(issue.keys[0] ?? '', knownKeys(issue.path))}${knownKeys(issue.path).length ? ` (expected ${knownKeys(issue.path).join(', ')})` : ''}`;
    case 'invalid_type': {
      const expected = KIND_NAMES[issue.expected] ?? issue.expected;
      return wrongTypeMessage(String(issue.path.at(-1) ?? 'the suite'), expected, input);
    }
    case 'invalid_value':
      return `expected one of ${issue.values.join(', ')}, got ${describeValue(input)}`;
    case 'too_small':
      return Array.isArray(input)
        ? 'expected at least one entry, got an empty list'
        : `${issue.message}, got ${describeValue(input)}`;
    default:
      return `${issue.message}, got ${describeValue(input)}`;
  }
}

/** The keys allowed where an unknown key was found, for "did you mean". */
function knownKeys(path: readonly PropertyKey[]): string[] {
  const names = path.filter((segment) => typeof segment === 'string');
  const last = names.at(-1);
  const step = Object.keys(suiteStepSchema.shape);
  const table: Record<string, string[]> = {
    create: Object.keys(createStepSchema.shape),
    update: Object.keys(updateStepSchema.shape),
    delete: Object.keys(deleteStepSchema.shape),
    expect: Object.keys(expectSchema.shape),
    calls: Object.keys(expectedCallSchema.shape),
    steps: step,
    cases: Object.keys(caseSchema.shape),
  };
  if (last === undefined)
    return Object.keys(suiteFileSchema.shape).filter((key) => key !== '$schema');
  return table[last] ?? [];
}

const CHANGE_KINDS = ['create', 'update', 'delete', 'tick'] as const;

function toSuite(
  data: SuiteFile,
  path: string,
  lineOf: (path: readonly PropertyKey[]) => number | undefined,
  ruleSet: RuleSet | null,
  report: (path: readonly PropertyKey[], message: string) => void,
): RuleSuite {
  const known = ruleSet ? new Map(ruleSet.rules.map((rule) => [rule.id, rule])) : null;
  const checkRuleId = (id: string, at: readonly PropertyKey[], scheduled?: boolean) => {
    if (!known) return;
    const rule = known.get(id);
    if (!rule) {
      report(
        at,
        `no rule has the id "${id}"${didYouMean(id, [...known.keys()])}; name a rule of the rules folder`,
      );
    } else if (scheduled === true && rule.trigger.schedule === null) {
      report(at, `"${id}" is not a scheduled rule (it has no on.schedule), so it cannot tick`);
    }
  };
  data.rules?.forEach((id, index) => {
    checkRuleId(id, ['rules', index]);
  });
  const names = new Map<string, number>();
  const cases = data.cases.map((raw, caseIndex): SuiteCase => {
    const casePath = ['cases', caseIndex];
    const earlier = names.get(raw.name);
    if (earlier !== undefined) {
      report(
        [...casePath, 'name'],
        `another case (number ${earlier + 1}) has this name; give each case its own`,
      );
    }
    names.set(raw.name, caseIndex);
    raw.rules?.forEach((id, index) => {
      checkRuleId(id, [...casePath, 'rules', index]);
    });
    const running = raw.rules ?? data.rules ?? null;
    const checkRunning = (id: string, at: readonly PropertyKey[]) => {
      if (running !== null && known?.has(id) && !running.includes(id)) {
        report(
          at,
          `"${id}" does not run in this case (rules: ${running.join(', ')}); add it there or remove it here`,
        );
      }
    };
    const aliases = new Map<string, ObjectType>();
    let atMs = 0;
    const steps = raw.steps.map((step, stepIndex): SuiteStep => {
      const stepPath = [...casePath, 'steps', stepIndex];
      const kinds = CHANGE_KINDS.filter((kind) => step[kind] !== undefined);
      if (kinds.length !== 1) {
        report(
          stepPath,
          kinds.length === 0
            ? 'a step makes one change: create, update, delete or tick'
            : `a step makes one change, this one has ${kinds.join(' and ')}; split it into steps`,
        );
      }
      if (step.at !== undefined) {
        const offset = parseOffset(step.at) ?? 0;
        if (offset < atMs) {
          report(
            [...stepPath, 'at'],
            `${step.at} is earlier than the step before; steps go forward in time`,
          );
        } else atMs = offset;
      }
      const useAlias = (name: string, at: readonly PropertyKey[]) => {
        if (!aliases.has(name)) {
          report(
            at,
            `no earlier step of this case created an object named "${name}" (with as: ${name})`,
          );
        }
      };
      let change: SuiteChange;
      if (step.create) {
        if (step.create.as !== undefined) {
          if (aliases.has(step.create.as)) {
            report(
              [...stepPath, 'create', 'as'],
              `"${step.create.as}" names an object already; choose another name`,
            );
          }
          aliases.set(step.create.as, step.create.type);
        }
        if (step.create.type === 'object' && step.create.raw_type === undefined) {
          report([...stepPath, 'create'], 'a generic object (type: object) needs its raw_type');
        }
        change = {
          kind: 'create',
          type: step.create.type,
          as: step.create.as ?? null,
          rawType: step.create.raw_type ?? null,
          fields: step.create.fields ?? {},
        };
        checkFields(step.create.type, change.fields, [...stepPath, 'create', 'fields'], report);
      } else if (step.update) {
        useAlias(step.update.object, [...stepPath, 'update', 'object']);
        change = { kind: 'update', object: step.update.object, fields: step.update.fields };
        const type = aliases.get(step.update.object);
        if (type) checkFields(type, change.fields, [...stepPath, 'update', 'fields'], report);
      } else if (step.delete) {
        useAlias(step.delete.object, [...stepPath, 'delete', 'object']);
        change = { kind: 'delete', object: step.delete.object };
      } else {
        const ticked =
          step.tick === undefined ? [] : Array.isArray(step.tick) ? step.tick : [step.tick];
        ticked.forEach((id, index) => {
          const at = Array.isArray(step.tick)
            ? [...stepPath, 'tick', index]
            : [...stepPath, 'tick'];
          checkRuleId(id, at, true);
          checkRunning(id, at);
        });
        change = { kind: 'tick', rules: ticked };
      }
      for (const reference of fieldReferences(change))
        useAlias(reference, [...stepPath, change.kind]);
      const expect = step.expect ?? null;
      if (expect) {
        const expectPath = [...stepPath, 'expect'];
        expect.matched?.forEach((id, index) => {
          checkRuleId(id, [...expectPath, 'matched', index]);
          checkRunning(id, [...expectPath, 'matched', index]);
        });
        for (const id of Object.keys(expect.not_matched ?? {})) {
          checkRuleId(id, [...expectPath, 'not_matched', id]);
          if (expect.matched?.includes(id)) {
            report(
              [...expectPath, 'not_matched', id],
              `"${id}" is listed under matched too; keep one`,
            );
          }
        }
        for (const id of Object.keys(expect.correlation ?? {})) {
          checkRuleId(id, [...expectPath, 'correlation', id]);
          if (known?.has(id) && known.get(id)?.correlate === null) {
            report(
              [...expectPath, 'correlation', id],
              `"${id}" has no correlate, so it counts nothing`,
            );
          }
        }
        expect.calls?.forEach((call, index) => {
          if (call.rule !== undefined)
            checkRuleId(call.rule, [...expectPath, 'calls', index, 'rule']);
        });
        for (const name of Object.keys(expect.objects ?? {})) {
          useAlias(name, [...expectPath, 'objects', name]);
        }
      }
      return { number: stepIndex + 1, atMs, change, expect, line: lineOf(stepPath) };
    });
    return { name: raw.name, rules: running, steps, line: lineOf(casePath) };
  });
  return {
    file: path,
    description: data.description ?? null,
    account: data.account ?? 1,
    cases,
  };
}

/** The names a change's fields refer to with "${name}". */
/**
 * The fields of a create or update, as the API would judge them: a field the type lacks (with
 * "did you mean") or a value it refuses (`priority: urgent`), found by `check` rather than at the
 * run. A relative time (`{at: -2h}`) or a value naming an object (`"${name}"`) is judged at the
 * run, once it is a date or an id; a generic object's fields are its own.
 */
function checkFields(
  type: ObjectType,
  fields: Record<string, unknown>,
  at: readonly PropertyKey[],
  report: (path: readonly PropertyKey[], message: string) => void,
): void {
  if (!isUnifiedType(type)) return;
  const known = fieldsOf(type);
  for (const [field, value] of Object.entries(fields)) {
    if (field === 'raw') continue;
    if (!Object.hasOwn(known, field)) {
      report(
        [...at, field],
        `${article(type)} ${type} has no field "${field}"${didYouMean(field, Object.keys(known))}`,
      );
      continue;
    }
    if (isRelativeTime(value) || (typeof value === 'string' && value.includes('${'))) continue;
    const parsed = WRITE_SCHEMAS[type].safeParse({ [field]: value });
    if (!parsed.success) report([...at, field], describeIssues(parsed.error).join('; '));
  }
}

const isRelativeTime = (value: unknown): boolean =>
  value !== null &&
  typeof value === 'object' &&
  !Array.isArray(value) &&
  Object.keys(value).length === 1 &&
  typeof (value as { at?: unknown }).at === 'string';

function fieldReferences(change: SuiteChange): string[] {
  if (change.kind !== 'create' && change.kind !== 'update') return [];
  const names: string[] = [];
  const visit = (value: unknown) => {
    if (typeof value === 'string') {
      for (const match of value.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_-]*)\}/g)) {
        names.push(match[1] as string);
      }
    } else if (value !== null && typeof value === 'object') {
      for (const child of Object.values(value)) visit(child);
    }
  };
  visit(change.fields);
  return names;
}
