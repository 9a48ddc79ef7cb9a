// Loading rule files: parse YAML (1.2 core schema, so `on:` stays a key) or JSON, validate the
// shape with the zod schema, fill in defaults, compile expressions, then run the rule checks over
// the whole set. Every problem of every file is collected; a set with any problem is refused.
// Runtime-neutral: callers pass file contents (src/runtime/rule-files.ts reads them from disk).
import type { LineCounter, Node, parseDocument } from 'yaml';
import type { z } from 'zod';
import { checkRules, warnRules } from './check.js';
import { parseDuration } from './duration.js';
import { compileExpression, OPERATORS } from './expression.js';
import { jsonOffsets } from './json-offsets.js';
import { precompileActions } from './plan.js';
import {
  describeValue,
  didYouMean,
  KIND_NAMES,
  type ProblemCode,
  type RuleProblem,
  toPointer,
  valueAt,
  wrongTypeMessage,
} from './problem.js';
import { compareRules, DEFAULT_EVENTS, DEFAULT_ORDER, type Rule } from './rule.js';
import { createRuleIndex, type RuleIndex } from './rule-index.js';
import {
  ACTION_KINDS,
  ACTION_SCHEMAS,
  type ActionKind,
  actionSchema,
  correlateSchema,
  oncePerObjectSchema,
  RULE_ID_PATTERN,
  type RuleFile,
  ruleFileSchema,
  triggerSchema,
} from './rule-schema.js';
import { yamlLibrary } from './yaml-library.js';
import { parseYamlSubset, type YamlSubsetDocument } from './yaml-subset.js';

export interface RuleSource {
  /** The path shown in problems (`rules/incident/page.yaml`). */
  path: string;
  text: string;
}

export interface LoadedRuleFile {
  path: string;
  /** The parsed content, or undefined when the file does not parse. */
  data: unknown;
  /** 1-based line of a JSON path in the file, when it can be found. */
  lineOf(path: readonly PropertyKey[]): number | undefined;
}

export interface RuleSet {
  /** Every loaded rule (disabled ones too), in run order. */
  rules: Rule[];
  index: RuleIndex;
  /** The files the rules were loaded from, for the rule set's version (rule-version.ts). */
  sources?: readonly RuleSource[];
}

export interface LoadResult {
  /** The rules, present only when there is no problem. */
  ruleSet: RuleSet | null;
  problems: RuleProblem[];
  /**
   * What is likely wrong but may be meant (check.ts `warnRules`), looked for only when there is
   * no problem: it never refuses the rules.
   */
  warnings: RuleProblem[];
  /** How many files were read. */
  files: number;
}

const RULE_EXTENSIONS = /\.(ya?ml|json)$/i;
/** Rule test suites (rule-suite.ts) sit beside the rules with these names; they are not rules. */
const SUITE_EXTENSIONS = /\.test\.(ya?ml|json)$/i;

/**
 * The deepest nesting of mappings and lists a rule file may have. A JSON-logic operator takes
 * two levels (its mapping and its argument list), so this allows expressions about 100
 * operators deep, far beyond any rule a person writes, while the validation, the checks and the
 * compiler, which all recurse, stay far from the stack limit.
 */
export const MAX_RULE_NESTING = 200;

const TOO_DEEP = `the document is nested more than ${MAX_RULE_NESTING} levels deep (mappings and lists); a rule never needs that many, so split the expression or simplify it`;

export function isRuleFile(path: string): boolean {
  return RULE_EXTENSIONS.test(path) && !SUITE_EXTENSIONS.test(path);
}

/** A rule test suite (`*.test.yaml`, `.test.yml`, `.test.json`): read by `test`, skipped as a rule. */
export function isSuiteFile(path: string): boolean {
  return SUITE_EXTENSIONS.test(path);
}

/** The rule id a file gets when it does not name one: its name without the extension. */
export function defaultRuleId(path: string): string {
  const name = path.split(/[\\/]/).pop() ?? path;
  return name.replace(RULE_EXTENSIONS, '');
}

export function loadRules(sources: readonly RuleSource[]): LoadResult {
  const problems: RuleProblem[] = [];
  const rules: Rule[] = [];
  // Rules rebuilt from the valid parts of files with shape problems: checked, never run.
  const salvaged: Rule[] = [];
  const files: LoadedRuleFile[] = [];
  for (const source of [...sources].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    const file = parseSource(source, problems);
    files.push(file);
    if (file.data === undefined) continue;
    const rule = validateRule(file, problems);
    if (rule) rules.push(rule);
    else {
      const partial = salvageRule(file.data, file.path);
      if (partial) salvaged.push(partial);
    }
  }
  problems.push(...checkRules([...rules, ...salvaged], files));
  // Reported file by file, top to bottom, whichever check found them.
  problems.sort(
    (a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0) || (a.line ?? 0) - (b.line ?? 0),
  );
  rules.sort(compareRules);
  const ruleSet =
    problems.length === 0 ? { rules, index: createRuleIndex(rules), sources: [...sources] } : null;
  const warnings = ruleSet === null ? [] : warnRules(rules, files);
  return { ruleSet, problems, warnings, files: sources.length };
}

/**
 * Parses one file (YAML 1.2 core, or JSON by its extension) into `data`, reporting syntax problems
 * with their line; `expected` names what the top level should be when it is not a mapping. Rule
 * test suites (rule-suite.ts) are read through it too, so both report the same way.
 */
export function parseSource(
  source: RuleSource,
  problems: RuleProblem[],
  expected = 'a rule (a mapping with on and then)',
): LoadedRuleFile {
  let lineCounter: LineCounter | undefined;
  // A JSON file is read with JSON.parse; its YAML document (JSON is YAML) only serves to find
  // the line of a problem, so it is parsed when a problem asks, not for every file.
  let parsed: ReturnType<typeof parseDocument> | undefined;
  const document = () => {
    const yaml = yamlLibrary();
    lineCounter ??= new yaml.LineCounter();
    parsed ??= yaml.parseDocument(source.text, {
      lineCounter,
      schema: 'core',
      version: '1.2',
      uniqueKeys: true,
      prettyErrors: false,
      // Warnings are reported as problems below, never printed by the library.
      logLevel: 'error',
    });
    return parsed;
  };
  /** The line counter filled by document(). */
  const lines = (): LineCounter => {
    document();
    return lineCounter as LineCounter;
  };
  // A file in the plain YAML subset is read without the library (yaml-subset.ts), which also
  // knows where each of its nodes starts; so does json-offsets.ts for a JSON file.
  const isJson = /\.json$/i.test(source.path);
  const subset: YamlSubsetDocument | null = isJson ? null : parseYamlSubset(source.text);
  let offsets: ((path: readonly PropertyKey[]) => number | undefined) | null | undefined =
    subset?.offsetOf;
  const lineOf = (path: readonly PropertyKey[]) => {
    // Asked only of a file whose data was read, so a JSON text here is valid JSON.
    if (offsets === undefined) offsets = isJson ? jsonOffsets(source.text) : null;
    if (offsets !== null) {
      const offset = offsets(path);
      return offset === undefined ? undefined : lineAt(source.text, offset);
    }
    const { contents } = document();
    const offset = yamlNodeOffset(contents, path);
    return offset === undefined ? undefined : lines().linePos(offset).line;
  };
  const file: LoadedRuleFile = { path: source.path, data: undefined, lineOf };
  const problem = (message: string, line?: number) =>
    problems.push({ file: source.path, pointer: '', line, code: 'RULE_SYNTAX', message });

  if (isJson) {
    try {
      // Editors on Windows may save a byte-order mark, which JSON.parse refuses (YAML skips it).
      file.data = JSON.parse(source.text.replace(/^\uFEFF/, ''));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      problem(`not valid JSON: ${message}`, jsonErrorLine(source.text, message));
      return file;
    }
  } else if (subset !== null) {
    file.data = subset.data;
  } else {
    const doc = document();
    if (doc.errors.length > 0) {
      // How many errors a stack overflow leaves depends on how deep the stack was when the
      // parser ran; it is one problem however often it shows.
      let tooDeep = false;
      // A mis-indented line makes the parser report it several ways ("A block sequence may not
      // be used as an implicit map key", "Implicit keys need to be on a single line", ...): one
      // problem per line, the first error's, says it once.
      const indentedLines = new Set(
        doc.errors
          .filter((error) => INDENTATION_ERRORS.has(error.code))
          .map((error) => lines().linePos(error.pos[0]).line),
      );
      const reportedLines = new Set<number>();
      for (const error of doc.errors) {
        // With prettyErrors off the error carries no linePos; its offset gives the line.
        // The library's own advice for this one (parseAllDocuments) means nothing to an author.
        const message =
          error.code === 'MULTIPLE_DOCS'
            ? 'a rule file holds one rule, but this one has more than one YAML document (---)'
            : error.message.split('\n')[0];
        if (!isStackOverflow(error.message)) {
          const line = lines().linePos(error.pos[0]).line;
          if (indentedLines.has(line) && reportedLines.has(line)) continue;
          reportedLines.add(line);
          const hint = indentedLines.has(line)
            ? ` (check the indentation of line ${line}: the keys of one mapping and the items of one list start in the same column, and what belongs under a key starts further right than the key)`
            : '';
          problem(`not valid YAML: ${message}${hint}`, line);
        } else if (!tooDeep) {
          tooDeep = true;
          problem(TOO_DEEP);
        }
      }
      return file;
    }
    // An unknown tag (`!!js/function`, `!custom`) would silently turn its value into a string:
    // rule files are plain YAML, so it is a problem, not a warning.
    const unknownTags = doc.warnings.filter((warning) => warning.code === 'TAG_RESOLVE_FAILED');
    for (const warning of unknownTags) {
      problem(
        `unknown YAML tag ${tagOf(warning.message)}: rule files are plain YAML (the 1.2 core schema) without custom tags; remove the tag`,
        lines().linePos(warning.pos[0]).line,
      );
    }
    if (unknownTags.length > 0) return file;
    try {
      file.data = doc.toJS({ maxAliasCount: 100 });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      problem(isStackOverflow(message) ? TOO_DEEP : `not valid YAML: ${message}`);
      return file;
    }
  }
  // Before anything that recurses over the data: the checks would overflow the stack.
  if (nestingExceeds(file.data, MAX_RULE_NESTING)) {
    problem(TOO_DEEP);
    file.data = undefined;
    return file;
  }
  if (file.data === null || typeof file.data !== 'object' || Array.isArray(file.data)) {
    problem(`expected ${expected}, got ${describeValue(file.data)}`);
    file.data = undefined;
  }
  return file;
}

/** The yaml library's error codes that a mis-indented line causes. */
const INDENTATION_ERRORS: ReadonlySet<string> = new Set([
  'BAD_INDENT',
  'BLOCK_AS_IMPLICIT_KEY',
  'MULTILINE_IMPLICIT_KEY',
]);

/** The tag named in the yaml library's TAG_RESOLVE_FAILED message, as written (`!!js/function`). */
function tagOf(message: string): string {
  const tag = /Unresolved tag: (\S+)/.exec(message)?.[1] ?? 'in this file';
  return tag.replace(/^tag:yaml\.org,2002:/, '!!');
}

function isStackOverflow(message: string): boolean {
  return /maximum call stack size exceeded|too much recursion/i.test(message);
}

/** Whether `value` nests mappings and lists more than `max` levels deep (walked without recursion). */
export function nestingExceeds(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [node, depth] = item;
    if (node === null || typeof node !== 'object') continue;
    if (depth >= max) return true;
    for (const child of Object.values(node)) stack.push([child, depth + 1]);
  }
  return false;
}

/** The line of a JSON.parse error: V8 names the offset (`at position 182`), not the line. */
function jsonErrorLine(text: string, message: string): number | undefined {
  const position = /at position (\d+)/.exec(message)?.[1];
  if (position === undefined) return undefined;
  return text.slice(0, Number(position)).split('\n').length;
}

/** The 1-based line of a source offset (lines end with \n; the subset refuses \r). */
function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

/**
 * Source offset of the node at `path` (or of its key, for the last segment of a mapping) in a
 * document of the yaml library; yaml-subset.ts answers the same for the files it reads.
 */
export function yamlNodeOffset(root: unknown, path: readonly PropertyKey[]): number | undefined {
  const { isMap, isScalar, isSeq } = yamlLibrary();
  let node = root as Node | null | undefined;
  let offset = node?.range?.[0];
  for (const [i, segment] of path.entries()) {
    if (isMap(node)) {
      const pair = node.items.find((item) => isScalar(item.key) && item.key.value === segment);
      if (!pair) return offset;
      const keyNode = pair.key as Node;
      if (i === path.length - 1) return keyNode.range?.[0] ?? offset;
      node = pair.value as Node | null;
    } else if (isSeq(node)) {
      node = node.items[Number(segment)] as Node | undefined;
    } else {
      return offset;
    }
    offset = node?.range?.[0] ?? offset;
  }
  return offset;
}

function validateRule(file: LoadedRuleFile, problems: RuleProblem[]): Rule | null {
  const report: Report = (path, code, message) => {
    problems.push({
      file: file.path,
      pointer: toPointer(path),
      line: file.lineOf(path),
      code,
      message,
    });
  };
  report.lineOf = file.lineOf;
  const before = problems.length;
  const parsed = ruleFileSchema.safeParse(file.data, { reportInput: true });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) reportIssue(issue, [], file.data, report);
  }
  const data = file.data as Record<string, unknown>;
  const oncePer = data.once_per;
  if (isOncePerObject(oncePer)) {
    const result = oncePerObjectSchema.safeParse(oncePer, { reportInput: true });
    if (!result.success) {
      for (const issue of result.error.issues) reportIssue(issue, ['once_per'], oncePer, report);
    }
  }
  protoHeaders(data.then, report);
  if (problems.length > before || !parsed.success) return null;
  return normalizeRule(parsed.data, file.path);
}

/**
 * An http action's header named `__proto__`: the schema never sees it (parsing the record would
 * drop it silently, as a JavaScript object cannot hold that key), so it is looked for here.
 */
function protoHeaders(actions: unknown, report: Report): void {
  const isRecord = (value: unknown): value is Record<string, unknown> =>
    value !== null && typeof value === 'object' && !Array.isArray(value);
  if (!Array.isArray(actions)) return;
  actions.forEach((action: unknown, index) => {
    const http = isRecord(action) ? action.http : undefined;
    const headers = isRecord(http) ? http.headers : undefined;
    if (isRecord(headers) && Object.hasOwn(headers, '__proto__')) {
      report(
        ['then', index, 'http', 'headers', '__proto__'],
        'RULE_INVALID_VALUE',
        '"__proto__" cannot be sent as a header name',
      );
    }
  });
}

/** Stands in for an action with shape problems, so that later actions keep their index. */
const PLACEHOLDER_ACTION = { log: { message: null } } as const;
/** Stands in for a `correlate` with shape problems, so that reading `correlation` is not flagged. */
const PLACEHOLDER_CORRELATE = { key: null, within: '1h', at_least: 1 } as const;

/**
 * A rule made of the parts of a file that passed the shape check, so that one run of the checks
 * also reports the problems in those parts (every problem at once). Null when the trigger itself
 * is broken: without the object type nothing else can be checked.
 */
function salvageRule(data: unknown, path: string): Rule | null {
  const file = data as Record<string, unknown>;
  // A trigger with a bad `events` or `changed` still names the object type the rest is checked
  // against: its valid keys are kept.
  const on = pruneToValid(triggerSchema, file.on, 1);
  if (on === null) return null;
  const valid = (schema: z.ZodType, value: unknown) => schema.safeParse(value).success;
  const source = {
    on,
    id: typeof file.id === 'string' && RULE_ID_PATTERN.test(file.id) ? file.id : undefined,
    enabled: typeof file.enabled === 'boolean' ? file.enabled : undefined,
    when: file.when,
    correlate:
      file.correlate === undefined
        ? undefined
        : valid(correlateSchema, file.correlate)
          ? file.correlate
          : PLACEHOLDER_CORRELATE,
    once_per:
      isOncePerObject(file.once_per) && !valid(oncePerObjectSchema, file.once_per)
        ? { key: null }
        : file.once_per,
    // biome-ignore lint/suspicious/noThenProperty: the rule format's key; a list, never a function.
    then: Array.isArray(file.then) ? file.then.map((action) => salvageAction(action)) : [],
  };
  return normalizeRule(source as RuleFile, path);
}

/**
 * An action as far as it can be checked: itself when valid; else, when it names one action, that
 * action without the entries its schema refused (an http action with a bad `method` keeps its
 * `url`, which the checks then look at); else a placeholder.
 */
function salvageAction(action: unknown): unknown {
  if (actionSchema.safeParse(action).success) return action;
  const kinds =
    action !== null && typeof action === 'object' && !Array.isArray(action)
      ? Object.keys(action).filter((key) => ACTION_KINDS.includes(key as ActionKind))
      : [];
  if (kinds.length !== 1) return PLACEHOLDER_ACTION;
  return pruneToValid(ACTION_SCHEMAS[kinds[0] as ActionKind], action, 2) ?? PLACEHOLDER_ACTION;
}

/**
 * `value` parsed by `schema` after removing every entry, down to `depth` keys deep, that an issue
 * points into (or that is an unknown key); null when what is left still does not parse. The
 * entries removed were reported already; what is left can still be checked.
 */
function pruneToValid<T extends z.ZodType>(
  schema: T,
  value: unknown,
  depth: number,
): z.infer<T> | null {
  const first = schema.safeParse(value);
  if (first.success) return first.data;
  if (value === null || typeof value !== 'object') return null;
  const copy = structuredClone(value) as Record<PropertyKey, unknown>;
  for (const issue of first.error.issues) {
    const targets =
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((key) => [...issue.path, key])
        : [issue.path];
    for (const target of targets) removeAt(copy, target.slice(0, depth));
  }
  const second = schema.safeParse(copy);
  return second.success ? second.data : null;
}

function removeAt(root: Record<PropertyKey, unknown>, path: readonly PropertyKey[]): void {
  if (path.length === 0) return;
  const parent = valueAt(root, path.slice(0, -1));
  if (parent !== null && typeof parent === 'object' && !Array.isArray(parent)) {
    delete (parent as Record<PropertyKey, unknown>)[path.at(-1) as PropertyKey];
  }
}

/** `once_per: {key: ...}` is the long form; anything else is the key expression itself. */
function isOncePerObject(value: unknown): value is Record<string, unknown> {
  return (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    Object.hasOwn(value, 'key')
  );
}

interface Report {
  (path: readonly PropertyKey[], code: ProblemCode, message: string): void;
  /** The line of a path in the file, for messages that name another line than their own. */
  lineOf?(path: readonly PropertyKey[]): number | undefined;
}

function reportIssue(
  issue: z.core.$ZodIssue,
  base: readonly PropertyKey[],
  root: unknown,
  report: Report,
): void {
  const path = [...base, ...issue.path];
  const input = valueAt(root, issue.path);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const shape = knownKeysAt(path);
      for (const key of issue.keys) {
        const isAction = path.length === 2 && path[0] === 'then';
        const misplaced = misplacedKey(path, valueAt(root, issue.path), key, report);
        if (misplaced !== null) {
          report([...path, key], isAction ? 'RULE_UNKNOWN_ACTION' : 'RULE_UNKNOWN_KEY', misplaced);
          continue;
        }
        report(
          [...path, key],
          isAction ? 'RULE_UNKNOWN_ACTION' : 'RULE_UNKNOWN_KEY',
          `unknown key "${key}"${didYouMean(key, shape)}${shape.length ? ` (expected ${shape.join(', ')})` : ''}`,
        );
      }
      return;
    }
    case 'invalid_union': {
      reportUnion(issue, path, input, report);
      return;
    }
    case 'invalid_type': {
      const field = String(path.at(-1));
      const expected = NUMBER_RANGES[field] ?? KIND_NAMES[issue.expected] ?? issue.expected;
      report(path, 'RULE_INVALID_VALUE', wrongTypeMessage(field, expected, input));
      return;
    }
    case 'invalid_value': {
      const field = String(path.at(-1));
      const code =
        field === 'type' || path.includes('type') ? 'RULE_UNKNOWN_TYPE' : 'RULE_OUT_OF_RANGE';
      const word = typeof input === 'string' ? input : '';
      report(
        path,
        code,
        `expected one of ${issue.values.join(', ')}, got ${describeValue(input)}${didYouMean(word, issue.values.map(String))}`,
      );
      return;
    }
    case 'invalid_key': {
      report(path, 'RULE_INVALID_VALUE', issue.issues.map((inner) => inner.message).join('; '));
      return;
    }
    case 'too_small':
    case 'too_big': {
      report(path, 'RULE_OUT_OF_RANGE', rangeMessage(path, input));
      return;
    }
    default:
      report(path, 'RULE_INVALID_VALUE', `${issue.message}, got ${describeValue(input)}`);
  }
}

const NUMBER_RANGES: Record<string, string> = {
  levels: 'a whole number from 1 to 3',
  at_least: 'a whole number from 1 to 10000',
};

function rangeMessage(path: readonly PropertyKey[], input: unknown): string {
  const field = String(path.at(-1));
  if (Array.isArray(input)) return `expected at least one entry, got an empty list`;
  if (typeof input === 'string') return `expected a non-empty string`;
  return `expected ${NUMBER_RANGES[field] ?? 'a number in range'}, got ${describeValue(input)}`;
}

function reportUnion(
  issue: z.core.$ZodIssueInvalidUnion,
  path: readonly PropertyKey[],
  input: unknown,
  report: Report,
): void {
  // An action: report the issues of the action that was written (its one key), not of every
  // alternative the union tried.
  if (path.length === 2 && path[0] === 'then') {
    const keys = input !== null && typeof input === 'object' ? Object.keys(input) : [];
    const known = keys.filter((key): key is ActionKind => ACTION_KINDS.includes(key as ActionKind));
    if (keys.length !== 1 || known.length !== 1) {
      const unknown = keys.find((key) => !ACTION_KINDS.includes(key as ActionKind));
      const misplaced =
        unknown === undefined || known.length !== 1
          ? null
          : misplacedKey(path, input, unknown, report);
      const message =
        misplaced ??
        (keys.length === 0 || typeof input !== 'object' || input === null || Array.isArray(input)
          ? `expected an action (one of ${ACTION_KINDS.join(', ')}), got ${describeValue(input)}`
          : unknown !== undefined
            ? `unknown action "${unknown}"${didYouMean(unknown, ACTION_KINDS)} (actions: ${ACTION_KINDS.join(', ')})`
            : `an action has exactly one key, got ${keys.join(', ')}`);
      report(unknown !== undefined ? [...path, unknown] : path, 'RULE_UNKNOWN_ACTION', message);
      return;
    }
    const kind = known[0] as ActionKind;
    const result = ACTION_SCHEMAS[kind].safeParse(input, { reportInput: true });
    if (!result.success) {
      for (const inner of result.error.issues) reportIssue(inner, path, input, report);
    }
    return;
  }
  if (path.length === 2 && path[0] === 'on' && path[1] === 'type') {
    report(
      path,
      'RULE_UNKNOWN_TYPE',
      `expected an object type (incident, problem, change, article, asset, object) or a list of them, got ${describeValue(input)}${typeof input === 'string' ? didYouMean(input, ['incident', 'problem', 'change', 'article', 'asset', 'object']) : ''}`,
    );
    return;
  }
  // Otherwise, the alternative with the fewest issues is the one the author meant.
  const best = [...issue.errors].sort((a, b) => a.length - b.length)[0] ?? [];
  for (const inner of best) reportIssue(inner, path, input, report);
}

/** The sections of a rule whose keys, written one level too far left, land at the top. */
const SECTIONS: readonly (readonly [string, readonly string[]])[] = [
  ['on', Object.keys(triggerSchema.shape)],
  ['correlate', Object.keys(correlateSchema.shape)],
];

/**
 * The message for `key`, unknown in the mapping `container` at `path`, when it most likely
 * belongs one level deeper, under a sibling, but was indented as far as that sibling (YAML then
 * reads it as the sibling's neighbour): `- escalate:` with `levels: 2` under it in the same
 * column, `on:` with `type: incident` under it at the margin. Null when nothing says so.
 */
function misplacedKey(
  path: readonly PropertyKey[],
  container: unknown,
  key: string,
  report: Report,
): string | null {
  if (container === null || typeof container !== 'object' || Array.isArray(container)) return null;
  const data = container as Record<string, unknown>;
  let owner: string | undefined;
  if (path.length === 2 && path[0] === 'then') {
    const kinds = Object.keys(data).filter((name) => ACTION_KINDS.includes(name as ActionKind));
    const kind = kinds[0] as ActionKind | undefined;
    if (kinds.length !== 1 || kind === undefined) return null;
    // `update` takes any field name; the other actions their own keys.
    const inner = knownKeysAt([...path, kind]);
    if (data[kind] === null || kind === 'update' || inner.includes(key)) owner = kind;
  } else if (path.length === 0) {
    // `when:` (or `once_per:`) left empty with its operator at the margin below it; else a key
    // of `on` or `correlate` at the margin.
    owner = OPERATORS.has(key)
      ? ['when', 'once_per'].find(
          (section) => Object.hasOwn(data, section) && data[section] === null,
        )
      : undefined;
    owner ??= SECTIONS.find(
      ([section, keys]) =>
        keys.includes(key) &&
        Object.hasOwn(data, section) &&
        (data[section] === null ||
          (typeof data[section] === 'object' && !Object.hasOwn(data[section] as object, key))),
    )?.[0];
  } else if (
    path.length === 1 &&
    SECTIONS.some(([section]) => section === path[0]) &&
    Object.hasOwn(ruleFileSchema.shape, key)
  ) {
    const line = report.lineOf?.([...path, key]);
    return `"${key}" is under "${String(path[0])}" instead of beside it (check the indentation${line === undefined ? '' : ` of line ${line}`}: "${key}" starts in the same column as "${String(path[0])}")`;
  }
  if (owner === undefined) return null;
  const keyLine = report.lineOf?.([...path, key]);
  const ownerLine = report.lineOf?.([...path, owner]);
  const where = keyLine === undefined ? '' : ` of line ${keyLine}`;
  const under = ownerLine === undefined ? `"${owner}"` : `"${owner}" (line ${ownerLine})`;
  return `"${key}" is beside "${owner}" instead of under it (check the indentation${where}: indent "${key}" further right than ${under})`;
}

/** The keys the schema allows at `path`, for "did you mean" suggestions. */
function knownKeysAt(path: readonly PropertyKey[]): string[] {
  if (path.length === 0) return Object.keys(ruleFileSchema.shape);
  if (path[0] === 'on' && path.length === 1) return Object.keys(triggerSchema.shape);
  if (path[0] === 'correlate') return Object.keys(correlateSchema.shape);
  if (path[0] === 'once_per') return Object.keys(oncePerObjectSchema.shape);
  if (path[0] === 'then' && path.length === 3) {
    const kind = String(path[2]) as ActionKind;
    const schema = ACTION_SCHEMAS[kind]?.shape as Record<string, { shape?: object }> | undefined;
    const inner = schema?.[kind]?.shape;
    return inner ? Object.keys(inner) : [];
  }
  if (path[0] === 'then' && path.length === 2) return [...ACTION_KINDS];
  return [];
}

function normalizeRule(file: RuleFile, path: string): Rule {
  const types = Array.isArray(file.on.type) ? [...new Set(file.on.type)] : [file.on.type];
  const schedule = file.on.schedule ?? null;
  const oncePer = file.once_per;
  return {
    id: file.id ?? defaultRuleId(path),
    file: path,
    description: file.description ?? null,
    enabled: file.enabled ?? true,
    mode: file.mode ?? 'live',
    order: file.order ?? DEFAULT_ORDER,
    trigger: {
      types,
      events: schedule === null ? [...(file.on.events ?? DEFAULT_EVENTS)] : [],
      changed: file.on.changed ?? null,
      self: file.on.self ?? false,
      schedule,
    },
    when: file.when === undefined ? null : compileExpression(file.when),
    correlate: file.correlate
      ? {
          key: compileExpression(file.correlate.key),
          withinMs: parseDuration(file.correlate.within) ?? 0,
          atLeast: file.correlate.at_least,
        }
      : null,
    oncePer:
      oncePer === undefined
        ? null
        : isOncePerObject(oncePer)
          ? {
              key: compileExpression(oncePer.key),
              withinMs: typeof oncePer.within === 'string' ? parseDuration(oncePer.within) : null,
            }
          : { key: compileExpression(oncePer), withinMs: null },
    actions: precompiled(file.then),
    stop: file.stop ?? false,
    source: file,
  };
}

function precompiled<T extends Rule['actions']>(actions: T): T {
  precompileActions(actions);
  return actions;
}
