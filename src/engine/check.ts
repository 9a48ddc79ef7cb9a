// The rule checks: everything that can be known wrong about a rule set before it runs, each with
// its file, JSON pointer and a sentence. Unknown operators, invalid regular expressions, fields
// an object type lacks (in `var` paths, `changed` lists and action fields), enumeration literals
// out of range, invalid schedules (and schedules on generic objects, which a tick cannot list),
// actions that cannot apply, duplicate ids, and rules whose writes trigger each other in a loop.
// The upstream side too: columns of `object.raw` (and `changed: [raw.<column>]`), the columns
// `update.raw` writes, choice codes compared with raw choice columns, notes on types without
// journals, and `lookup` outside action values.
import { Cron } from 'croner';
import {
  type FieldKind,
  LEVELS,
  type ObjectType,
  PRIORITIES,
  READ_ONLY_FIELDS,
  RISKS,
  TYPE_FIELDS,
  UNIFIED_TYPES,
  type UnifiedType,
} from '../itsm/fields.js';
import { describeIssues, WRITE_SCHEMAS } from '../itsm/schemas.js';
import { hasJournals, UPSTREAM_COLUMNS } from '../servicenow/mapping.js';
import { RANKED_WORDS } from './compile.js';
import {
  argumentsOf,
  compilePattern,
  FORBIDDEN_SEGMENTS,
  MATCH_FLAGS,
  OPERATORS,
  operatorOf,
  unsupportedPatternSyntax,
} from './expression.js';
import type { LoadedRuleFile } from './load.js';
import { article, didYouMean, type ProblemCode, type RuleProblem, toPointer } from './problem.js';
import type { Rule, TriggerEvent } from './rule.js';
import { RULE_ID_PATTERN, type RuleAction } from './rule-schema.js';
import { isSecretRef, secretProblems } from './secret.js';
import {
  choiceCodesOf,
  declaredGenericTables,
  hasUpstreamColumn,
  lookupColumnsOf,
  lookupTableProblem,
  rawWriteProblem,
  upstreamColumnsOf,
} from './upstream-fields.js';

/** Fields every object has, whatever its type. */
export const COMMON_FIELDS = ['id', 'type', 'api', 'created', 'modified', 'href', 'raw'] as const;
const USER_FIELDS = ['type', 'api', 'id', 'name', 'email'];
const CONTEXT_FIELDS: Record<string, readonly string[] | null> = {
  event: ['id', 'type', 'account', 'at', 'user_id'],
  object: null,
  previous: null,
  changed: null,
  now: [],
  correlation: ['key', 'count', 'ids'],
  rule: ['id'],
};
const ESCALATABLE: readonly ObjectType[] = ['incident', 'problem', 'change'];
const LINKABLE: readonly ObjectType[] = ['incident', 'problem', 'change'];
/** Operators whose second argument is evaluated against each element of the first. */
const ELEMENT_SCOPED = new Set(['map', 'filter', 'all', 'none', 'some', 'reduce']);
const EQUALITY = new Set(['==', '===', '!=', '!==']);
const ORDERING = new Set(['<', '>', '<=', '>=']);

type Scope = 'root' | 'element';

interface RuleChecker {
  rule: Rule;
  report(path: readonly PropertyKey[], code: ProblemCode, message: string): void;
  /** True while checking action values, the only place `lookup` can be resolved. */
  actionValues?: boolean;
}

export function checkRules(
  rules: readonly Rule[],
  files: readonly LoadedRuleFile[],
): RuleProblem[] {
  const problems: RuleProblem[] = [];
  const fileByPath = new Map(files.map((file) => [file.path, file]));
  const checkerOf = (rule: Rule): RuleChecker => ({
    rule,
    report: (path, code, message) =>
      problems.push({
        file: rule.file,
        pointer: toPointer(path),
        line: fileByPath.get(rule.file)?.lineOf(path),
        code,
        message,
      }),
  });
  for (const rule of rules) checkRule(checkerOf(rule));
  for (const rule of rules) checkSecrets(checkerOf(rule));
  checkDuplicateIds(rules, checkerOf);
  checkLoops(rules, checkerOf);
  return problems;
}

/**
 * What is likely wrong but may be meant, in a rule set with no problem: printed by `check` (a
 * failure only with --strict), never a reason to refuse the rules. Today: two rules that create
 * the same type of object from the same trigger, so that one event opens two of them.
 */
export function warnRules(rules: readonly Rule[], files: readonly LoadedRuleFile[]): RuleProblem[] {
  const warnings: RuleProblem[] = [];
  const fileByPath = new Map(files.map((file) => [file.path, file]));
  const creators = rules.flatMap((rule) =>
    // A shadow rule creates nothing: beside the live rule it may replace, it is the way to try one.
    rule.enabled && rule.mode === 'live' && rule.trigger.schedule === null
      ? rule.actions.flatMap((action, index) =>
          'create' in action ? [{ rule, index, type: action.create.type }] : [],
        )
      : [],
  );
  const warned = new Set<Rule>();
  for (const [i, later] of creators.entries()) {
    if (warned.has(later.rule)) continue;
    const earlier = creators
      .slice(0, i)
      .find(
        (other) =>
          other.rule !== later.rule &&
          other.type === later.type &&
          other.rule.trigger.types.some((type) => later.rule.trigger.types.includes(type)) &&
          other.rule.trigger.events.some((event) => later.rule.trigger.events.includes(event)),
      );
    if (earlier === undefined) continue;
    warned.add(later.rule);
    const path = ['then', later.index, 'create'];
    const types = earlier.rule.trigger.types.filter((type) =>
      later.rule.trigger.types.includes(type),
    );
    const events = earlier.rule.trigger.events.filter((event) =>
      later.rule.trigger.events.includes(event),
    );
    warnings.push({
      file: later.rule.file,
      pointer: toPointer(path),
      line: fileByPath.get(later.rule.file)?.lineOf(path),
      code: 'RULE_DUPLICATE_CREATE',
      message: `rule "${later.rule.id}" creates ${article(later.type)} ${later.type}, and so does rule "${earlier.rule.id}" (${earlier.rule.file}), on the same trigger (${types.join(', ')} ${events.join(', ')}): one event can create two, linked one way each; merge them into one rule, or make their conditions exclude each other`,
    });
  }
  return warnings;
}

function checkRule(checker: RuleChecker): void {
  const { rule, report } = checker;
  const source = rule.source;
  const trigger = rule.trigger;

  if (trigger.schedule !== null) {
    if (source.on.events) {
      report(['on', 'events'], 'RULE_INVALID_VALUE', 'a scheduled rule takes no events');
    }
    if (source.on.changed) {
      report(['on', 'changed'], 'RULE_INVALID_VALUE', 'a scheduled rule takes no changed list');
    }
    const problem = scheduleProblem(trigger.schedule);
    if (problem) report(['on', 'schedule'], 'RULE_INVALID_SCHEDULE', problem);
    if (trigger.types.includes('object')) {
      const listed = Array.isArray(source.on.type);
      const at = listed
        ? ['on', 'type', (source.on.type as string[]).indexOf('object')]
        : ['on', 'type'];
      report(at, 'RULE_INVALID_SCHEDULE', genericScheduleProblem(listed));
    }
  }
  for (const [i, field] of (trigger.changed ?? []).entries()) {
    const message = fieldProblem(trigger.types, field);
    if (message) report(['on', 'changed', i], 'RULE_UNKNOWN_FIELD', message);
  }

  if (source.when !== undefined) checkExpression(checker, source.when, ['when']);
  if (source.correlate) checkExpression(checker, source.correlate.key, ['correlate', 'key']);
  const oncePer = source.once_per;
  if (oncePer !== undefined) {
    const long = oncePer !== null && typeof oncePer === 'object' && Object.hasOwn(oncePer, 'key');
    if (long) checkExpression(checker, (oncePer as { key: unknown }).key, ['once_per', 'key']);
    else checkExpression(checker, oncePer, ['once_per']);
  }
  for (const [i, action] of source.then.entries()) checkAction(checker, action, ['then', i]);
}

/** `{secret: NAME}`: only in an http action's url, headers and body, with a valid name. */
function checkSecrets(checker: RuleChecker): void {
  for (const problem of secretProblems(checker.rule.source)) {
    checker.report(problem.path, 'RULE_INVALID_VALUE', problem.message);
  }
}

/**
 * A tick lists the objects of each type to sweep them, and generic objects have no list without
 * the raw_type a rule cannot name: such a rule would run at every tick and never see an object.
 */
function genericScheduleProblem(listed: boolean): string {
  const fix = listed
    ? 'drop object from on.type, and give generic objects a rule of their own triggered on events'
    : `schedule it on ${UNIFIED_TYPES.slice(0, -1).join(', ')} or ${UNIFIED_TYPES.at(-1)}, or drop schedule and trigger it on events`;
  return `a scheduled rule cannot sweep generic objects (type object has no list without a raw_type): ${fix}`;
}

/** Why a cron expression is not a valid five-field UTC schedule, or null when it is. */
export function scheduleProblem(expression: string): string | null {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5) {
    return `expected a five-field cron expression (minute hour day month weekday), got ${fields.length} field${fields.length === 1 ? '' : 's'} in "${expression}"`;
  }
  let cron: Cron;
  try {
    cron = new Cron(expression, { paused: true, timezone: 'UTC' });
  } catch (error) {
    return `invalid cron expression "${expression}": ${error instanceof Error ? error.message : String(error)}`;
  }
  // Valid field by field yet never due (the 30th of February): the rule would never run.
  const next = cron.nextRun();
  cron.stop();
  if (next === null) {
    return `the cron expression "${expression}" never fires (no date matches its day and month fields): check the day of month against the month`;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Fields

function typeFields(type: UnifiedType): Record<string, FieldKind> {
  return TYPE_FIELDS[type];
}

/** Why `field` cannot be read on every one of `types`, or null when it can. */
function fieldProblem(types: readonly ObjectType[], field: string): string | null {
  if ((COMMON_FIELDS as readonly string[]).includes(field)) return null;
  if (field.startsWith('raw.')) return rawColumnProblem(types, field.slice('raw.'.length));
  const unified = unifiedTypes(types);
  const lacking = unified.filter((type) => !(field in typeFields(type)));
  if (lacking.length === 0) return null;
  const generic = types.includes('object')
    ? ' (generic objects keep their fields under raw.object)'
    : '';
  const having = unified.filter((type) => field in typeFields(type));
  const lacks = `the object type${lacking.length === 1 ? '' : 's'} ${lacking.join(', ')} ha${lacking.length === 1 ? 's' : 've'} no field "${field}"`;
  // Another type of the rule has the field: no typo to suggest, the rule reads it on a type
  // that lacks it.
  if (having.length > 0) return `${lacks} (${hasIt(having)})${severalTypesFix(lacking)}${generic}`;
  const known = new Set<string>(COMMON_FIELDS);
  for (const type of unified) for (const name of Object.keys(typeFields(type))) known.add(name);
  return `${lacks}${suggestOrList(field, known, 'fields')}${generic}`;
}

/** `incident has it`, `incident, problem have it`. */
function hasIt(types: readonly string[]): string {
  return `${types.join(', ')} ha${types.length === 1 ? 's' : 've'} it`;
}

/** What to do when a rule on several types reads what only some of them have. */
function severalTypesFix(lacking: readonly string[]): string {
  return `: a rule on several types reads only what all of them have, so drop ${lacking.join(', ')} from on.type or write one rule per type`;
}

/**
 * "; did you mean ..." when a candidate is close to `word`; else the candidates themselves, so
 * that an author who guessed a name from another tool (assignment_group) sees what there is.
 * `word` itself is never suggested: it is what the author wrote.
 */
function suggestOrList(word: string, candidates: Iterable<string>, what: string): string {
  const others = [...candidates].filter((candidate) => candidate !== word);
  const hint = didYouMean(word, others);
  return hint !== '' ? hint : ` (${what}: ${others.join(', ')})`;
}

function writableFields(type: UnifiedType): string[] {
  return Object.keys(typeFields(type));
}

/** The unified types among `types` (a generic object's raw record has no fixed columns). */
function unifiedTypes(types: readonly ObjectType[]): UnifiedType[] {
  return types.filter((type): type is UnifiedType => type !== 'object');
}

/** Why `column` is not in the upstream record of every one of `types`, or null when it is. */
function rawColumnProblem(types: readonly ObjectType[], column: string): string | null {
  const unified = unifiedTypes(types);
  const lacking = unified.filter((type) => !hasUpstreamColumn(type, column));
  if (lacking.length === 0) return null;
  const tables = lacking.map((type) => UPSTREAM_TABLE_NAMES[type]).join(', ');
  const lacks = `the ServiceNow table${lacking.length === 1 ? '' : 's'} ${tables} ha${lacking.length === 1 ? 's' : 've'} no column "${column}"`;
  const having = unified.filter((type) => hasUpstreamColumn(type, column));
  if (having.length > 0) {
    return `${lacks} (raw.${column}; ${hasIt(having.map((type) => UPSTREAM_TABLE_NAMES[type]))})${severalTypesFix(lacking)}`;
  }
  const known = new Set(unified.flatMap((type) => upstreamColumnsOf(type)));
  return `${lacks} (raw.${column})${didYouMean(column, known)}`;
}

const UPSTREAM_TABLE_NAMES: Record<UnifiedType, string> = {
  incident: 'incident',
  problem: 'problem',
  change: 'change_request',
  article: 'kb_knowledge',
  asset: 'alm_asset',
};

/** The kind of a field when every type that has it agrees, else null. */
function fieldKind(types: readonly ObjectType[], field: string): FieldKind | null {
  let kind: FieldKind | null = null;
  for (const type of types) {
    if (type === 'object') continue;
    const found = typeFields(type)[field];
    if (found === undefined) continue;
    if (kind !== null && kind !== found) return null;
    kind = found;
  }
  return kind;
}

function enumerationOf(kind: FieldKind | null): readonly string[] | null {
  if (kind === 'level') return LEVELS;
  if (kind === 'priority') return PRIORITIES;
  if (kind === 'risk') return RISKS;
  return null;
}

// ---------------------------------------------------------------------------------------------
// Expressions

function isExpressionObject(node: unknown): node is Record<string, unknown> {
  return node !== null && typeof node === 'object' && !Array.isArray(node);
}

export function checkExpression(
  checker: RuleChecker,
  node: unknown,
  path: readonly PropertyKey[],
  scope: Scope = 'root',
): void {
  if (Array.isArray(node)) {
    for (const [i, item] of node.entries()) checkExpression(checker, item, [...path, i], scope);
    return;
  }
  if (!isExpressionObject(node)) return;
  const keys = Object.keys(node);
  if (keys.length !== 1) {
    checker.report(
      path,
      'RULE_UNKNOWN_OPERATOR',
      keys.length === 0
        ? 'an expression object needs one operator key, got an empty mapping'
        : `an expression object has exactly one key (its operator), got ${keys.map((key) => `"${key}"`).join(', ')}`,
    );
    return;
  }
  const operator = keys[0] as string;
  const opPath = [...path, operator];
  // A secret reference is no operator: checkSecrets says whether it may stand here.
  if (isSecretRef(node)) return;
  if (!OPERATORS.has(operator)) {
    const hint =
      operator === 'log'
        ? '; use the log action to write to the run record'
        : suggestOrList(operator, OPERATORS, 'operators');
    checker.report(opPath, 'RULE_UNKNOWN_OPERATOR', `unknown operator "${operator}"${hint}`);
    return;
  }
  const args = argumentsOf(node, operator);
  const argPath = (i: number) => (Array.isArray(node[operator]) ? [...opPath, i] : opPath);

  switch (operator) {
    case 'var': {
      const [varPath, fallback] = args;
      if (typeof varPath === 'string' || typeof varPath === 'number') {
        if (scope === 'root') checkVarPath(checker, String(varPath), argPath(0));
        else checkForbidden(checker, String(varPath), argPath(0));
      } else {
        checkExpression(checker, varPath, argPath(0), scope);
      }
      if (args.length > 1) checkExpression(checker, fallback, argPath(1), scope);
      return;
    }
    case 'missing':
    case 'missing_some': {
      const keys = operator === 'missing_some' ? args[1] : Array.isArray(args[0]) ? args[0] : args;
      const keysPath =
        operator === 'missing_some' ? argPath(1) : Array.isArray(args[0]) ? argPath(0) : opPath;
      if (Array.isArray(keys)) {
        for (const [i, key] of keys.entries()) {
          if (typeof key === 'string' && scope === 'root') {
            checkVarPath(checker, key, Array.isArray(keys) ? [...keysPath, i] : keysPath);
          } else checkExpression(checker, key, [...keysPath, i], scope);
        }
      }
      if (operator === 'missing_some') checkExpression(checker, args[0], argPath(0), scope);
      return;
    }
    case 'matches': {
      const [text, pattern, flags] = args;
      checkExpression(checker, text, argPath(0), scope);
      if (typeof pattern !== 'string') {
        checker.report(
          argPath(1),
          'RULE_INVALID_REGEX',
          `matches needs a literal pattern string (checked at load time), got ${describe(pattern)}`,
        );
      } else {
        const unsupported = unsupportedPatternSyntax(pattern);
        const regex = compilePattern(pattern, flags === 'i' ? 'i' : '');
        if (unsupported !== null) {
          checker.report(
            argPath(1),
            'RULE_INVALID_REGEX',
            `the pattern ${JSON.stringify(pattern)} uses ${unsupported.what}, which matches cannot run in linear time (it runs patterns with RE2, so that no text can stall the engine); rewrite it without the ${unsupported.name}: ${unsupported.fix}`,
          );
        } else if (regex instanceof SyntaxError) {
          checker.report(
            argPath(1),
            'RULE_INVALID_REGEX',
            `invalid regular expression /${pattern}/: ${regex.message.replace(/^error parsing regexp: /, '')}`,
          );
        }
      }
      if (args.length > 2 && !(MATCH_FLAGS as readonly unknown[]).includes(flags)) {
        checker.report(
          argPath(2),
          'RULE_INVALID_REGEX',
          `the third argument of matches can only be "i" (case-insensitive), got ${describe(flags)}`,
        );
      }
      if (args.length < 2 || args.length > 3) {
        checker.report(
          opPath,
          'RULE_INVALID_VALUE',
          'matches takes [text, pattern] or [text, pattern, "i"]',
        );
      }
      return;
    }
    case 'changed': {
      const [field] = args;
      if (typeof field === 'string') {
        const message = fieldProblem(checker.rule.trigger.types, field);
        if (message) checker.report(argPath(0), 'RULE_UNKNOWN_FIELD', message);
      } else checkExpression(checker, field, argPath(0), scope);
      return;
    }
    case 'lookup': {
      checkLookup(checker, args, opPath, argPath, scope);
      return;
    }
    case 'rank': {
      const [value] = args;
      if (typeof value === 'string' && !RANKED_WORDS.includes(value)) {
        checker.report(
          argPath(0),
          'RULE_OUT_OF_RANGE',
          `rank knows ${RANKED_WORDS.join(', ')}, got ${describe(value)}${didYouMean(value, RANKED_WORDS)}`,
        );
      } else checkExpression(checker, value, argPath(0), scope);
      return;
    }
  }

  if (scope === 'root') checkTypes(checker, operator, args, opPath, argPath);
  if (EQUALITY.has(operator) && args.length === 2 && scope === 'root') {
    const strict = operator === '===' || operator === '!==';
    checkEnumComparison(checker, args[0], args[1], argPath(1), strict);
    checkEnumComparison(checker, args[1], args[0], argPath(0), strict);
  }
  if (operator === 'in' && scope === 'root' && Array.isArray(args[1])) {
    // A list's `in` finds its needle by strict equality.
    for (const [i, value] of args[1].entries()) {
      checkEnumComparison(checker, args[0], value, [...argPath(1), i], true);
    }
  }
  for (const [i, arg] of args.entries()) {
    const inner = ELEMENT_SCOPED.has(operator) && i === 1 ? 'element' : scope;
    checkExpression(checker, arg, argPath(i), inner);
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  return JSON.stringify(value);
}

/**
 * `{var: object.priority}` compared with a string that priority can never hold; an upstream
 * column (`object.raw.state`, always text) compared strictly with a number it never equals.
 */
function checkEnumComparison(
  checker: RuleChecker,
  varSide: unknown,
  literal: unknown,
  literalPath: readonly PropertyKey[],
  strict: boolean,
): void {
  if (isExpressionObject(varSide) && operatorOf(varSide) === 'var') {
    const [path] = argumentsOf(varSide, 'var');
    const [root, field, ...rest] = typeof path === 'string' ? path.split('.') : [];
    if (
      (root === 'object' || root === 'previous') &&
      field === 'raw' &&
      rest.length === 1 &&
      (typeof literal === 'string' || typeof literal === 'number')
    ) {
      if (strict && typeof literal === 'number') {
        checker.report(
          literalPath,
          'RULE_TYPE_MISMATCH',
          `raw.${rest[0]} holds text (ServiceNow sends every column as a string), so it never strictly equals the number ${literal}; compare it with ${JSON.stringify(String(literal))}`,
        );
        return;
      }
      checkChoiceLiteral(
        checker,
        checker.rule.trigger.types,
        rest[0] as string,
        literal,
        literalPath,
      );
      return;
    }
  }
  const read = fieldRead(checker, varSide);
  if (typeof literal !== 'string' || read === null) return;
  const values = enumerationOf(read.kind);
  if (values && !values.includes(literal)) {
    checker.report(
      literalPath,
      'RULE_OUT_OF_RANGE',
      `${read.field} is one of ${values.join(', ')}, so it is never ${JSON.stringify(literal)}${didYouMean(literal, values)}`,
    );
  }
}

/** `object.F` or `previous.F` read by a `var` node, with the kind of F when the types agree. */
function fieldRead(
  checker: RuleChecker,
  node: unknown,
): { field: string; kind: FieldKind | null } | null {
  if (!isExpressionObject(node) || operatorOf(node) !== 'var') return null;
  const [path] = argumentsOf(node, 'var');
  if (typeof path !== 'string') return null;
  const [root, field, ...rest] = path.split('.');
  if ((root !== 'object' && root !== 'previous') || field === undefined || rest.length > 0) {
    return null;
  }
  return { field, kind: fieldKind(checker.rule.trigger.types, field) };
}

const NUMERIC_KINDS: ReadonlySet<FieldKind> = new Set(['count', 'number']);

/** Whether JSON-logic's loose comparison reads `text` as a number ("3" == 3, " " == 0 aside). */
function isNumericText(text: string): boolean {
  return text.trim() !== '' && !Number.isNaN(Number(text));
}

/**
 * Comparisons whose sides cannot hold the same kind of value: an ordering between an ordered
 * enumeration (priority, impact, urgency) and text compares the names alphabetically; a count
 * or a number against non-numeric text, or a boolean against text, is never equal.
 */
function checkTypes(
  checker: RuleChecker,
  operator: string,
  args: readonly unknown[],
  opPath: readonly PropertyKey[],
  argPath: (i: number) => readonly PropertyKey[],
): void {
  const ordering = ORDERING.has(operator) && (args.length === 2 || args.length === 3);
  if (ordering) {
    const enumRead = args
      .map((arg) => fieldRead(checker, arg))
      .find((read) => read !== null && enumerationOf(read.kind) !== null);
    const textual = args.some(
      (arg) => typeof arg === 'string' || enumerationOf(fieldRead(checker, arg)?.kind ?? null),
    );
    if (enumRead && textual) {
      const ranks = args.map((arg) => `{"rank": ${JSON.stringify(arg)}}`).join(', ');
      checker.report(
        opPath,
        'RULE_TYPE_MISMATCH',
        `"${operator}" compares ${enumRead.field} as text, alphabetically ("high" < "low" < "medium"), not by level; compare ranks: {"${operator}": [${ranks}]}`,
      );
    }
  }
  if (!ordering && !EQUALITY.has(operator) && operator !== 'in') return;
  const reads = args.map((arg) => fieldRead(checker, arg));
  const pairs: [NonNullable<(typeof reads)[number]>, unknown, readonly PropertyKey[]][] = [];
  if (operator === 'in') {
    const [needle] = reads;
    if (needle && Array.isArray(args[1])) {
      for (const [i, item] of args[1].entries()) pairs.push([needle, item, [...argPath(1), i]]);
    }
  } else if (args.length === 2) {
    const [left, right] = reads;
    if (left) pairs.push([left, args[1], argPath(1)]);
    if (right) pairs.push([right, args[0], argPath(0)]);
  }
  for (const [read, literal, at] of pairs) {
    if (typeof literal !== 'string' || read.kind === null) continue;
    if (NUMERIC_KINDS.has(read.kind) && !isNumericText(literal)) {
      checker.report(
        at,
        'RULE_TYPE_MISMATCH',
        `${read.field} is ${read.kind === 'count' ? 'a count (a whole number)' : 'a number'}, so it is never ${JSON.stringify(literal)}; compare it with a number`,
      );
    } else if (read.kind === 'boolean') {
      checker.report(
        at,
        'RULE_TYPE_MISMATCH',
        `${read.field} is true or false, so it is never ${JSON.stringify(literal)}; compare it with true or false (no quotes)`,
      );
    }
  }
}

/** A literal compared with a raw choice column (`raw.state` of a change) that never holds it. */
function checkChoiceLiteral(
  checker: RuleChecker,
  types: readonly ObjectType[],
  column: string,
  literal: string | number,
  literalPath: readonly PropertyKey[],
): void {
  for (const type of unifiedTypes(types)) {
    const codes = choiceCodesOf(type, column);
    if (codes === null || codes.includes(String(literal))) continue;
    checker.report(
      literalPath,
      'RULE_OUT_OF_RANGE',
      `raw.${column} of ${article(type)} ${type} is one of ${codes.map((code) => JSON.stringify(code)).join(', ')}, so it is never ${JSON.stringify(literal)}${didYouMean(String(literal), codes)}`,
    );
    return;
  }
}

/**
 * `{lookup: [table, column, value]}`: only in action values (it reads the API before the actions
 * are planned), with a table it can read and, for a declared table, one of its columns.
 */
function checkLookup(
  checker: RuleChecker,
  args: unknown[],
  opPath: readonly PropertyKey[],
  argPath: (i: number) => readonly PropertyKey[],
  scope: Scope,
): void {
  if (!checker.actionValues) {
    checker.report(
      opPath,
      'RULE_INVALID_VALUE',
      'lookup reads the ITSM API, so it can only be used in action values (update, create, note, object, http, log), not in when, correlate or once_per',
    );
    return;
  }
  if (scope === 'element') {
    checker.report(
      opPath,
      'RULE_INVALID_VALUE',
      'lookup is resolved before the actions run, so it cannot be used inside map, filter, reduce, all, none or some',
    );
    return;
  }
  if (args.length !== 3) {
    checker.report(
      opPath,
      'RULE_INVALID_VALUE',
      `lookup takes [table, column, value] (e.g. [sys_user_group, name, Network Operations]), got ${args.length} argument${args.length === 1 ? '' : 's'}`,
    );
    return;
  }
  const [table, column, value] = args;
  if (typeof table !== 'string' || typeof column !== 'string') {
    checker.report(
      typeof table !== 'string' ? argPath(0) : argPath(1),
      'RULE_INVALID_VALUE',
      'the table and column of a lookup are literal names (such as sys_user_group and name)',
    );
    return;
  }
  const tableProblem = lookupTableProblem(table);
  if (tableProblem) {
    checker.report(argPath(0), 'RULE_INVALID_VALUE', tableProblem);
    return;
  }
  const columns = lookupColumnsOf(table);
  if (columns === null) {
    const near = didYouMean(table, declaredGenericTables());
    if (near !== '') {
      checker.report(argPath(0), 'RULE_UNKNOWN_FIELD', `unknown table "${table}"${near}`);
      return;
    }
  } else if (!columns.includes(column) && !/^u_[a-z0-9_]+$/.test(column)) {
    checker.report(
      argPath(1),
      'RULE_UNKNOWN_FIELD',
      `the table ${table} has no column "${column}"${didYouMean(column, columns)}`,
    );
    return;
  }
  checkExpression(checker, value, argPath(2), scope);
}

function checkForbidden(checker: RuleChecker, path: string, at: readonly PropertyKey[]): boolean {
  const forbidden = path.split('.').find((segment) => FORBIDDEN_SEGMENTS.has(segment));
  if (forbidden === undefined) return false;
  checker.report(
    at,
    'RULE_UNKNOWN_FIELD',
    `"${path}" reads ${forbidden}, which var never reads (it always yields null)`,
  );
  return true;
}

function checkVarPath(checker: RuleChecker, path: string, at: readonly PropertyKey[]): void {
  if (path === '' || checkForbidden(checker, path, at)) return;
  const [root = '', field, sub] = path.split('.');
  const types = checker.rule.trigger.types;
  if (!Object.hasOwn(CONTEXT_FIELDS, root)) {
    const asField = types.some((type) => type !== 'object' && root in typeFields(type));
    checker.report(
      at,
      'RULE_UNKNOWN_FIELD',
      `the context has no "${root}" (it has ${Object.keys(CONTEXT_FIELDS).join(', ')})${asField ? `; did you mean "object.${path}"?` : didYouMean(root, Object.keys(CONTEXT_FIELDS))}`,
    );
    return;
  }
  if (root === 'correlation' && checker.rule.correlate === null) {
    checker.report(at, 'RULE_UNKNOWN_FIELD', `"${path}" is always null: the rule has no correlate`);
    return;
  }
  if (field === undefined) return;
  if (root === 'object' || root === 'previous') {
    if (field === 'raw') {
      const message = sub === undefined ? null : rawColumnProblem(types, sub);
      if (message) checker.report(at, 'RULE_UNKNOWN_FIELD', message);
      return;
    }
    const message = fieldProblem(types, field);
    if (message) {
      checker.report(at, 'RULE_UNKNOWN_FIELD', message);
      return;
    }
    if (sub !== undefined && fieldKind(types, field) === 'user' && !USER_FIELDS.includes(sub)) {
      checker.report(
        at,
        'RULE_UNKNOWN_FIELD',
        `${field} is a user (${USER_FIELDS.join(', ')}) and has no "${sub}"${didYouMean(sub, USER_FIELDS)}`,
      );
    }
    return;
  }
  const known = CONTEXT_FIELDS[root];
  if (root === 'changed' || (root === 'correlation' && field === 'ids')) return;
  if (known && !known.includes(field)) {
    checker.report(
      at,
      'RULE_UNKNOWN_FIELD',
      known.length === 0
        ? `${root} is a plain value with no "${field}"`
        : `${root} has no "${field}" (it has ${known.join(', ')})${didYouMean(field, known)}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Actions

function checkFieldMap(
  checker: RuleChecker,
  type: ObjectType,
  fields: Record<string, unknown>,
  path: readonly PropertyKey[],
  writesRaw = false,
): void {
  for (const [field, value] of Object.entries(fields)) {
    const at = [...path, field];
    if (type !== 'object' && field === 'raw') {
      if (writesRaw) checkRawFields(checker, type, value, at);
      else {
        checker.report(
          at,
          'RULE_UNKNOWN_FIELD',
          'upstream columns (raw) are written by the update action only; add an update with raw: {...}',
        );
      }
      continue;
    }
    checkExpression(checker, value, at);
    if (type === 'object' || isSecretRef(value)) continue;
    if ((READ_ONLY_FIELDS as readonly string[]).includes(field)) {
      checker.report(at, 'RULE_READ_ONLY_FIELD', `${field} is read-only: the ITSM API sets it`);
      continue;
    }
    if (!(field in typeFields(type))) {
      checker.report(
        at,
        'RULE_UNKNOWN_FIELD',
        `${article(type)} ${type} has no field "${field}"${suggestOrList(field, writableFields(type), 'writable fields')}`,
      );
      continue;
    }
    if (operatorOf(value) !== null && OPERATORS.has(operatorOf(value) as string)) continue;
    const result = WRITE_SCHEMAS[type].safeParse({ [field]: value });
    if (!result.success) {
      const values = enumerationOf(typeFields(type)[field] ?? null);
      const message = values
        ? `${field} is one of ${values.join(', ')}, got ${JSON.stringify(value)}${typeof value === 'string' ? didYouMean(value, values) : ''}`
        : describeIssues(result.error).join('; ');
      checker.report(at, values ? 'RULE_OUT_OF_RANGE' : 'RULE_INVALID_VALUE', message);
    }
  }
}

/** `update.raw`: upstream columns the unified model lacks, each with a value it can hold. */
function checkRawFields(
  checker: RuleChecker,
  type: UnifiedType,
  columns: unknown,
  path: readonly PropertyKey[],
): void {
  if (!isExpressionObject(columns) || operatorOf(columns) === 'var') {
    checker.report(
      path,
      'RULE_INVALID_VALUE',
      `raw is a mapping of ServiceNow column to value (raw: {assignment_group: ...}), got ${describe(columns)}`,
    );
    return;
  }
  for (const [column, value] of Object.entries(columns)) {
    const at = [...path, column];
    checkExpression(checker, value, at);
    const unknown = rawColumnProblem([type], column);
    if (unknown) {
      checker.report(at, 'RULE_UNKNOWN_FIELD', unknown);
      continue;
    }
    const problem = rawWriteProblem(type, column);
    if (problem) {
      checker.report(at, 'RULE_READ_ONLY_FIELD', problem);
      continue;
    }
    if (typeof value === 'string' || typeof value === 'number') {
      checkChoiceLiteral(checker, [type], column, value, at);
    }
  }
}

function checkAction(
  ruleChecker: RuleChecker,
  action: RuleAction,
  path: readonly PropertyKey[],
): void {
  // Action values are evaluated when the actions are planned, after lookups are resolved.
  const checker: RuleChecker = { ...ruleChecker, actionValues: true };
  const { rule, report } = checker;
  const types = rule.trigger.types;
  const deleteOnly =
    rule.trigger.events.length > 0 && rule.trigger.events.every((event) => event === 'delete');
  const cannotWriteDeleted = (kind: string) =>
    deleteOnly &&
    report(
      [...path, kind],
      'RULE_INVALID_ACTION',
      `${kind} writes the triggering object, which a delete event has already removed`,
    );

  if ('update' in action) {
    cannotWriteDeleted('update');
    for (const type of types) {
      checkFieldMap(checker, type, action.update, [...path, 'update'], true);
    }
    return;
  }
  if ('escalate' in action) {
    cannotWriteDeleted('escalate');
    const lacking = types.filter((type) => !ESCALATABLE.includes(type));
    if (lacking.length > 0) {
      report(
        [...path, 'escalate'],
        'RULE_INVALID_ACTION',
        `escalate raises priority, which ${lacking.join(', ')} do${lacking.length === 1 ? 'es' : ''} not have (only incident, problem and change)`,
      );
    }
    const { assignee, fields } = action.escalate;
    if (assignee !== undefined)
      checkExpression(checker, assignee, [...path, 'escalate', 'assignee']);
    if (fields) {
      for (const field of ['priority', 'escalation', 'assignee']) {
        if (field in fields) {
          report(
            [...path, 'escalate', 'fields', field],
            'RULE_INVALID_ACTION',
            `escalate sets ${field} itself; ${field === 'assignee' ? 'use escalate.assignee' : 'remove it from fields'}`,
          );
        }
      }
      for (const type of types.filter((t) => ESCALATABLE.includes(t))) {
        checkFieldMap(checker, type, fields, [...path, 'escalate', 'fields']);
      }
    }
    return;
  }
  if ('create' in action) {
    const { type, fields, link } = action.create;
    checkFieldMap(checker, type, fields ?? {}, [...path, 'create', 'fields']);
    if (link) {
      for (const source of types) {
        if (!LINKABLE.includes(source) || !LINKABLE.includes(type) || source === type) {
          report(
            [...path, 'create', 'link'],
            'RULE_INVALID_ACTION',
            `link joins an incident, a problem and a change to each other; ${article(source)} ${source} cannot be linked to a new ${type}`,
          );
        }
      }
      if (deleteOnly) {
        report(
          [...path, 'create', 'link'],
          'RULE_INVALID_ACTION',
          'link points the new object at the triggering object, which a delete event has already removed',
        );
      }
    }
    return;
  }
  if ('object' in action) {
    checkFieldMap(checker, 'object', action.object.fields, [...path, 'object', 'fields']);
    if (action.object.id !== undefined) {
      checkExpression(checker, action.object.id, [...path, 'object', 'id']);
    }
    return;
  }
  if ('http' in action) {
    const { url, headers, body } = action.http;
    if (typeof url === 'string') {
      if (!isHttpUrl(url)) {
        report(
          [...path, 'http', 'url'],
          'RULE_INVALID_VALUE',
          `expected an http or https URL, got ${JSON.stringify(url)}`,
        );
      } else if (hasCredentials(url)) {
        // The URL is not repeated: it holds a password, and problems are printed and logged.
        report(
          [...path, 'http', 'url'],
          'RULE_INVALID_VALUE',
          'the URL carries a user name or password, which would show wherever the URL does and cannot be sent by fetch; put the credential in a header (headers: {Authorization: ...}) instead',
        );
      }
    } else checkExpression(checker, url, [...path, 'http', 'url']);
    for (const [name, value] of Object.entries(headers ?? {})) {
      checkExpression(checker, value, [...path, 'http', 'headers', name]);
    }
    if (body !== undefined) checkTemplate(checker, body, [...path, 'http', 'body']);
    return;
  }
  if ('log' in action) {
    checkExpression(checker, action.log.message, [...path, 'log', 'message']);
    return;
  }
  if ('note' in action) {
    cannotWriteDeleted('note');
    const column = action.note.visible === true ? 'comments' : 'work_notes';
    const lacking = types.filter((type) => type === 'object' || !hasJournals(type));
    if (lacking.length > 0) {
      report(
        [...path, 'note'],
        'RULE_INVALID_ACTION',
        `note appends to the ${column} journal, which ${lacking.join(', ')} do${lacking.length === 1 ? 'es' : ''} not keep (only incident, problem and change)`,
      );
    }
    checkExpression(checker, action.note.text, [...path, 'note', 'text']);
  }
}

function hasCredentials(text: string): boolean {
  const url = new URL(text);
  return url.username !== '' || url.password !== '';
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

/** An http body: objects and arrays are walked; an object whose only key is an operator is evaluated. */
function checkTemplate(checker: RuleChecker, node: unknown, path: readonly PropertyKey[]): void {
  if (Array.isArray(node)) {
    for (const [i, item] of node.entries()) checkTemplate(checker, item, [...path, i]);
    return;
  }
  if (!isExpressionObject(node)) return;
  const operator = operatorOf(node);
  if ((operator !== null && OPERATORS.has(operator)) || isSecretRef(node)) {
    checkExpression(checker, node, path);
    return;
  }
  for (const [key, value] of Object.entries(node)) checkTemplate(checker, value, [...path, key]);
}

// ---------------------------------------------------------------------------------------------
// Across rules

function checkDuplicateIds(rules: readonly Rule[], checkerOf: (rule: Rule) => RuleChecker): void {
  const first = new Map<string, Rule>();
  for (const rule of rules) {
    if (rule.source.id === undefined && !RULE_ID_PATTERN.test(rule.id)) {
      checkerOf(rule).report(
        [],
        'RULE_INVALID_VALUE',
        `the rule id comes from the file name, "${rule.id}", which is not kebab-case (a-z, 0-9 and -, at most 64 characters); rename the file or give the rule an id`,
      );
    }
    const earlier = first.get(rule.id);
    if (earlier) {
      checkerOf(rule).report(
        rule.source.id === undefined ? [] : ['id'],
        'RULE_DUPLICATE_ID',
        `rule id "${rule.id}" is also the id of ${earlier.file}; rule ids must be unique`,
      );
    } else first.set(rule.id, rule);
  }
}

interface Write {
  type: ObjectType;
  event: TriggerEvent;
  /** Fields written, or null for all (a create). */
  fields: string[] | null;
}

/** What a rule's actions write, as events other rules could see. */
export function writesOf(rule: Rule): Write[] {
  const writes: Write[] = [];
  for (const action of rule.actions) {
    if ('update' in action) {
      for (const type of rule.trigger.types) {
        writes.push({ type, event: 'update', fields: updatedFields(type, action.update) });
      }
    } else if ('note' in action) {
      const column = action.note.visible === true ? 'comments' : 'work_notes';
      for (const type of rule.trigger.types) {
        writes.push({ type, event: 'update', fields: ['raw', `raw.${column}`] });
      }
    } else if ('escalate' in action) {
      const fields = ['priority', 'escalation', ...Object.keys(action.escalate.fields ?? {})];
      if (action.escalate.assignee !== undefined) fields.push('assignee');
      for (const type of rule.trigger.types) {
        writes.push({ type, event: 'update', fields: withUpstream(type, fields) });
      }
    } else if ('create' in action) {
      writes.push({ type: action.create.type, event: 'add', fields: null });
      if (action.create.link) {
        for (const type of rule.trigger.types) {
          writes.push({ type, event: 'update', fields: [action.create.type] });
        }
      }
    } else if ('object' in action) {
      writes.push({
        type: 'object',
        event: action.object.id === undefined ? 'add' : 'update',
        fields: null,
      });
    }
  }
  return writes;
}

/** The fields an update writes, as `changed` names them: unified fields and `raw.<column>`s. */
function updatedFields(type: ObjectType, update: Record<string, unknown>): string[] {
  if (type === 'object') return Object.keys(update);
  const fields = withUpstream(
    type,
    Object.keys(update).filter((field) => field !== 'raw'),
  );
  const raw = update.raw;
  if (isExpressionObject(raw)) {
    fields.push('raw', ...Object.keys(raw).map((column) => `raw.${column}`));
  }
  return fields;
}

/** Unified fields and the upstream columns that change with them (`status` -> `raw.state`). */
function withUpstream(type: ObjectType, fields: readonly string[]): string[] {
  if (type === 'object') return [...fields];
  const columns = UPSTREAM_COLUMNS[type] as Record<string, string>;
  const upstream = fields.flatMap((field) =>
    Object.hasOwn(columns, field) ? [`raw.${columns[field]}`] : [],
  );
  return upstream.length === 0 ? [...fields] : [...fields, 'raw', ...upstream];
}

/** Whether `write`, made by the engine, would trigger `rule`. */
function triggers(write: Write, rule: Rule): boolean {
  const trigger = rule.trigger;
  if (!rule.enabled || !trigger.self || trigger.schedule !== null) return false;
  if (!trigger.types.includes(write.type) || !trigger.events.includes(write.event)) return false;
  if (trigger.changed === null || write.event === 'add' || write.fields === null) return true;
  return write.fields.some((field) => trigger.changed?.includes(field));
}

// ---------------------------------------------------------------------------------------------
// A rule that triggers itself, but whose own write makes its condition false

/** A write that adds 1 (escalate's escalation) rather than setting a value. */
const INCREMENT = Symbol('increment');
/** A write whose value is computed at run time. */
const COMPUTED = Symbol('computed');
type Written = unknown | typeof INCREMENT | typeof COMPUTED;

/** Every field the rule's actions write on the triggering object, with each value written. */
function ownWrites(rule: Rule): Map<string, Written[]> {
  const written = new Map<string, Written[]>();
  const push = (field: string, value: Written) =>
    written.set(field, [...(written.get(field) ?? []), value]);
  const literal = (value: unknown): Written =>
    value === null || typeof value !== 'object' ? value : COMPUTED;
  for (const action of rule.actions) {
    if ('update' in action) {
      for (const [field, value] of Object.entries(action.update)) push(field, literal(value));
    } else if ('escalate' in action) {
      push('priority', COMPUTED);
      push('escalation', INCREMENT);
      if (action.escalate.assignee !== undefined) push('assignee', COMPUTED);
      for (const [field, value] of Object.entries(action.escalate.fields ?? {})) {
        push(field, literal(value));
      }
    } else if ('create' in action && action.create.link) {
      push(action.create.type, COMPUTED);
    }
  }
  return written;
}

/** The top-level conjuncts of a condition: each must hold for the rule to run. */
function conjuncts(node: unknown): unknown[] {
  if (operatorOf(node) !== 'and') return [node];
  return argumentsOf(node as Record<string, unknown>, 'and').flatMap(conjuncts);
}

/** `object.F` read by a `var` node (never `previous.F`: the write does not change that). */
function objectField(node: unknown): string | null {
  if (operatorOf(node) !== 'var') return null;
  const [path] = argumentsOf(node as Record<string, unknown>, 'var');
  if (typeof path !== 'string') return null;
  const [root, field, ...rest] = path.split('.');
  return root === 'object' && field !== undefined && rest.length === 0 ? field : null;
}

/** `[field, literal]` of a two-argument comparison between `object.F` and a literal, either way. */
function fieldAndLiteral(
  node: Record<string, unknown>,
  operator: string,
): [string, unknown] | null {
  const args = argumentsOf(node, operator);
  if (args.length !== 2) return null;
  const [a, b] = args;
  const isLiteral = (value: unknown) => value === null || typeof value !== 'object';
  if (objectField(a) !== null && isLiteral(b)) return [objectField(a) as string, b];
  if (objectField(b) !== null && isLiteral(a)) return [objectField(b) as string, a];
  return null;
}

/**
 * Whether the rule's own write provably makes `conjunct` false on the event that write causes
 * (or, for escalate's count, after a bounded number of them). Sound, not complete: anything not
 * recognised here is not proved, and the loop stays refused.
 */
function falsifiedByOwnWrite(conjunct: unknown, written: ReadonlyMap<string, Written[]>): boolean {
  const operator = operatorOf(conjunct);
  if (operator === null) return false;
  const node = conjunct as Record<string, unknown>;
  // Every write of the field sets this one literal (the field ends up holding it).
  const finalValue = (field: string): { value: unknown } | null => {
    const values = written.get(field) ?? [];
    const [first] = values;
    if (values.length === 0 || first === INCREMENT || first === COMPUTED) return null;
    return values.every((value) => value === first) ? { value: first } : null;
  };
  switch (operator) {
    case '<':
    case '<=':
    case '>':
    case '>=': {
      // escalation < K (or K > escalation): escalate adds 1 per run, so it fails within K runs.
      const args = argumentsOf(node, operator);
      if (args.length !== 2) return false;
      const [a, b] = args;
      const bounded =
        operator === '<' || operator === '<='
          ? objectField(a) === 'escalation' && typeof b === 'number' && Number.isFinite(b)
          : objectField(b) === 'escalation' && typeof a === 'number' && Number.isFinite(a);
      const writes = written.get('escalation') ?? [];
      return bounded && writes.length > 0 && writes.every((value) => value === INCREMENT);
    }
    case '!=':
    case '!==': {
      const pair = fieldAndLiteral(node, operator);
      const after = pair && finalValue(pair[0]);
      return pair !== null && after !== null && after.value === pair[1];
    }
    case '==':
    case '===': {
      const pair = fieldAndLiteral(node, operator);
      const after = pair && finalValue(pair[0]);
      if (pair === null || after === null) return false;
      // biome-ignore lint/suspicious/noDoubleEquals: JSON-logic's loose equality, as == runs it.
      return operator === '==' ? (after.value as Loose) != pair[1] : after.value !== pair[1];
    }
    case '!': {
      const [inner] = argumentsOf(node, '!');
      const innerOperator = operatorOf(inner);
      if (innerOperator !== '==' && innerOperator !== '===') return false;
      const pair = fieldAndLiteral(inner as Record<string, unknown>, innerOperator);
      const after = pair && finalValue(pair[0]);
      return pair !== null && after !== null && after.value === pair[1];
    }
    case 'in': {
      const [needle, list] = argumentsOf(node, 'in');
      const field = objectField(needle);
      const after = field === null ? null : finalValue(field);
      return after !== null && Array.isArray(list) && !list.includes(after.value);
    }
    case 'changed': {
      // The event of the rule's own write changes the fields it writes (and the ones the server
      // stamps, such as modified), never another field.
      const [field] = argumentsOf(node, 'changed');
      return (
        typeof field === 'string' &&
        !written.has(field) &&
        !(COMMON_FIELDS as readonly string[]).includes(field)
      );
    }
    default:
      return false;
  }
}
type Loose = string | number | boolean | null;

/**
 * Whether a rule that triggers itself stops by itself: every write of its that triggers it is an
 * update of the triggering object, and one top-level conjunct of its condition is false after it.
 */
function stopsItself(rule: Rule): boolean {
  if (rule.source.when === undefined) return false;
  const own = writesOf(rule).filter((write) => triggers(write, rule));
  if (own.some((write) => write.event !== 'update' || write.fields === null)) return false;
  const written = ownWrites(rule);
  return conjuncts(rule.source.when).some((conjunct) => falsifiedByOwnWrite(conjunct, written));
}

/** Rules that only run on the engine's own writes (`on.self`) can form loops; report each cycle. */
function checkLoops(rules: readonly Rule[], checkerOf: (rule: Rule) => RuleChecker): void {
  const edges = new Map<Rule, Rule[]>();
  // Only enabled event rules with on.self can be triggered (see `triggers`): looking at those
  // alone makes this rules x self-rules instead of every rule against every rule.
  const triggerable = rules.filter(
    (rule) => rule.enabled && rule.trigger.self && rule.trigger.schedule === null,
  );
  for (const rule of rules) {
    if (!rule.enabled) continue;
    const writes = writesOf(rule);
    const next =
      writes.length === 0
        ? []
        : triggerable.filter((other) => writes.some((write) => triggers(write, other)));
    // A rule whose own write makes its condition false runs once more at most (bounded, for
    // escalate's count), so its edge to itself is no loop. Loops through other rules are.
    edges.set(
      rule,
      next.includes(rule) && stopsItself(rule) ? next.filter((other) => other !== rule) : next,
    );
  }
  const reported = new Set<string>();
  for (const start of rules) {
    const cycle = findCycle(start, edges);
    if (!cycle) continue;
    const key = cycle
      .map((rule) => rule.id)
      .sort()
      .join(' ');
    if (reported.has(key)) continue;
    reported.add(key);
    // The problem sits in the first file; the others of the loop are named with their files.
    const names = [...cycle, start]
      .map((rule, i) => (i === 0 || rule === start ? rule.id : `${rule.id} (${rule.file})`))
      .join(' -> ');
    checkerOf(start).report(
      ['on', 'self'],
      'RULE_LOOP',
      cycle.length === 1
        ? `rule "${start.id}" triggers itself through its own writes (on.self: true); a loop runs until the 5-hop limit on every event. Narrow on.changed, drop self, or add to when (at its top level, under and) a condition that its own write makes false, such as {"!=": [{"var": "object.F"}, V]} for an update setting F to V, or {"<": [{"var": "object.escalation"}, 3]} for escalate`
        : `rules ${names} trigger each other in a loop through their own writes (on.self: true); narrow on.changed or drop self on one of them`,
    );
  }
}

/** A cycle through `start`, as rules from `start`, or null. */
function findCycle(start: Rule, edges: ReadonlyMap<Rule, Rule[]>): Rule[] | null {
  const path: Rule[] = [];
  const visited = new Set<Rule>();
  const visit = (rule: Rule): boolean => {
    for (const next of edges.get(rule) ?? []) {
      if (next === start) {
        path.push(rule);
        return true;
      }
      if (visited.has(next)) continue;
      visited.add(next);
      if (visit(next)) {
        path.push(rule);
        return true;
      }
    }
    return false;
  };
  if (!visit(start)) return null;
  return path.reverse();
}
