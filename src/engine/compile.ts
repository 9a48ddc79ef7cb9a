// The JSON-logic compiler: turns an expression, once, into a tree of JavaScript closures that
// gives exactly what json-logic-js 2.0.5 gives (same values, same thrown errors), plus the
// implementations of the project's own operators and of the safe `var`, which the json-logic-js
// interpreter in expression.ts registers too, so both paths share one definition of each.
// No eval and no new Function: Cloudflare Workers refuse both, so specialisation is done by
// choosing among hand-written closures, never by generating source.
import { RE2JS } from 're2js';
import { PRIORITIES, RISKS } from '../itsm/fields.js';
import { normalizeIsoDate } from '../itsm/schemas.js';

/**
 * What the project's operators read from the root context (hours_since: `now`; changed:
 * `changed`), whatever the datum of `var` is inside map, filter or reduce.
 */
export interface RootContext {
  readonly now?: unknown;
  readonly changed?: unknown;
  /** The event's memo token (see PATH_MEMO), when the context carries one (createContext does). */
  readonly [PATH_MEMO]?: unknown[];
  /** The answers of the `lookup`s of the rule being planned (see LOOKUPS). */
  readonly [LOOKUPS]?: ReadonlyMap<string, string | null>;
}

/**
 * Where a context keeps the answers of its `lookup`s, by lookupKey. A lookup reads the ITSM API,
 * which a synchronous evaluation cannot wait for: the planner resolves every lookup of a rule's
 * actions first (lookup.ts) and the operator only reads the answer here.
 */
export const LOOKUPS: unique symbol = Symbol('itsm-rules.lookups');

/**
 * The token of an event's memo: the values its `object.*`, `previous.*` and `event.*` paths
 * have been read as (and the answers of shared sub-expressions) are kept for as long as the
 * contexts evaluated carry the same token, so that the rules of one event read each such path
 * once: every rule of an event sees the same object, previous state and event (json-rules-
 * engine's almanac does the same for facts). createContext puts a new empty array here, which
 * the per-rule copies of the context share; a context without one is read directly.
 * `correlation` and `rule` change between the rules of an event and are never memoised.
 *
 * The values are kept beside what reads them (a path's plan, a sub-expression's cell) with the
 * token they were read under, not in the array: a place per path in one array, numbered across
 * every rule ever compiled, put most reads of a large rule set at indices high enough for V8 to
 * turn the array into a slow dictionary on each event.
 */
export const PATH_MEMO: unique symbol = Symbol('itsm-rules.pathMemo');
const MEMO_ROOTS = new Set(['object', 'previous', 'event']);
/** A memoised "no such path". */
const ABSENT = Symbol('absent');

/** A compiled expression: `data` is the datum of `var`, `root` the context of the evaluation. */
export type Evaluator = (data: unknown, root: RootContext | null) => unknown;

// ---------------------------------------------------------------------------------------------
// Shared semantics: the compiled closures and the interpreter both call these.

/** Property names `var` never reads: they reach the prototype chain instead of the data. */
export const FORBIDDEN_SEGMENTS: ReadonlySet<string> = new Set([
  '__proto__',
  'constructor',
  'prototype',
]);

/** JSON-logic truthiness: an empty array is false, anything else as in JavaScript. */
export function truthy(value: unknown): boolean {
  return Array.isArray(value) ? value.length !== 0 : !!value;
}

const CANONICAL_INDEX = /^(0|[1-9][0-9]*)$/;

/** Whether a string has `key` of its own: its length and its indices, nothing inherited. */
function stringHasOwn(key: string): boolean {
  return key === 'length' || CANONICAL_INDEX.test(key);
}

// `Object.prototype.hasOwnProperty`, which V8's optimizing compiler inlines (Object.hasOwn it calls).
const ownProperty = Object.prototype.hasOwnProperty;

function hasOwn(value: unknown, key: string): boolean {
  if (value === null || value === undefined) return false;
  if (typeof value === 'string') return stringHasOwn(key);
  return typeof value === 'object' && Object.hasOwn(value, key);
}

/**
 * `var` as json-logic-js reads it (dotted paths, numeric indices, a default, `""` for the datum
 * itself), but only own properties, and null for the forbidden names even with a default.
 */
export function readVar(data: unknown, path: unknown, fallback?: unknown): unknown {
  const notFound = fallback === undefined ? null : fallback;
  if (path === undefined || path === '' || path === null) return data;
  let value = data;
  for (const segment of String(path).split('.')) {
    if (FORBIDDEN_SEGMENTS.has(segment)) return null;
    if (value === null || value === undefined) return notFound;
    if (!hasOwn(value, segment)) return notFound;
    value = (value as Record<string, unknown>)[segment];
    if (value === undefined) return notFound;
  }
  return value;
}

/**
 * `rank`'s scale: priorities (and impacts, urgencies) low 1, medium 2, high 3, critical 4, and a
 * change's risk on the same scale, each list lowest first (moderate 2, very high 4).
 */
const RANKS: ReadonlyMap<string, number> = new Map([
  ...PRIORITIES.map((word, index) => [word, index + 1] as const),
  ...RISKS.map((word, index) => [word, index + 1] as const),
]);

/** The words `rank` orders, priorities first and then the risk words they lack. */
export const RANKED_WORDS: readonly string[] = [...RANKS.keys()];

/** `rank`: the word's place on the scale above; anything else null. */
export function rank(value: unknown): number | null {
  return typeof value === 'string' ? (RANKS.get(value) ?? null) : null;
}

// Rules evaluate hours_since over and over on the same few strings (the context's `now`, the
// objects' dates); the normalisation below is pure, so its results are kept, within a bound.
const isoMillisCache = new Map<unknown, number | null>();

function isoMillis(text: string): number | null {
  const cached = isoMillisCache.get(text);
  if (cached !== undefined) return cached;
  const normalized = normalizeIsoDate(text);
  const millis = normalized === null ? null : Date.parse(normalized);
  if (isoMillisCache.size >= 10_000) isoMillisCache.clear();
  isoMillisCache.set(text, millis);
  return millis;
}

// Every hours_since of one evaluation reads the same `now`: it is kept apart from the dates.
let lastNow: string | null = null;
let lastNowMillis: number | null = null;

function nowMillis(text: string): number | null {
  if (text === lastNow) return lastNowMillis;
  const millis = isoMillis(text);
  lastNow = text;
  lastNowMillis = millis;
  return millis;
}

/**
 * `hours_since`: hours from an ISO 8601 time to the context's `now` (negative in the future),
 * null when either is not an ISO date. Dates are read as the ITSM API reads them (no zone means
 * UTC), not with `Date.parse`: that accepts "incident 12" as December 2001 and reads a zone-less
 * date-time in the host's time zone, so the same rule would answer differently on two machines.
 */
export function hoursSince(value: unknown, root: RootContext | null): number | null {
  if (typeof value !== 'string') return null;
  const then = isoMillis(value);
  const now = nowMillis((root?.now ?? '') as string);
  if (then === null || now === null) return null;
  return (now - then) / 3_600_000;
}

/** `changed`: whether the field is in the context's list of changed fields. */
export function isChanged(field: unknown, root: RootContext | null): boolean {
  return typeof field === 'string' && ((root?.changed ?? []) as string[]).includes(field);
}

// `matches` runs on RE2JS, a linear-time engine: a pattern such as `^(a+)+$` on a long line of
// `a`s makes a backtracking engine (JavaScript's RegExp) run for seconds to years, with the event
// loop of every account blocked; RE2 answers in time proportional to the subject. The price is
// the syntax that needs backtracking (backreferences, lookaround, atomic groups, possessive
// quantifiers), which the rule checks refuse with a sentence (see unsupportedPatternSyntax).

/**
 * The longest subject `matches` tests, in characters (UTF-16 code units): only the first this
 * many characters of a longer text are tested, so `$` then means the end of that prefix. It keeps
 * one evaluation's cost bounded whatever an outside party writes into a description.
 */
export const MATCHES_MAX_SUBJECT = 100_000;

/** How many patterns computed at run time stay compiled (least recently used go first). */
const PATTERN_CACHE_SIZE = 500;
const patternCache = new Map<string, RE2JS | SyntaxError>();

/**
 * The compiled form of a `matches` pattern (RE2 syntax; flags: "i"), or the SyntaxError that
 * makes it invalid or unsupported. Kept in a bounded least-recently-used cache: constant patterns
 * are compiled once at load, patterns computed at run time once per distinct value.
 */
export function compilePattern(pattern: string, flags = ''): RE2JS | SyntaxError {
  const cacheKey = `${flags}/${pattern}`;
  const cached = patternCache.get(cacheKey);
  if (cached !== undefined) {
    patternCache.delete(cacheKey);
    patternCache.set(cacheKey, cached);
    return cached;
  }
  let compiled: RE2JS | SyntaxError;
  try {
    compiled = RE2JS.compile(pattern, flags === 'i' ? RE2JS.CASE_INSENSITIVE : 0);
  } catch (error) {
    compiled = new SyntaxError(error instanceof Error ? error.message : String(error));
  }
  if (patternCache.size >= PATTERN_CACHE_SIZE) {
    const oldest = patternCache.keys().next().value;
    if (oldest !== undefined) patternCache.delete(oldest);
  }
  patternCache.set(cacheKey, compiled);
  return compiled;
}

/** The construct of a pattern that RE2 cannot run in linear time, named for a person, or null. */
export function unsupportedPatternSyntax(
  pattern: string,
): { what: string; name: string; fix: string } | null {
  let inClass = false;
  for (let i = 0; i < pattern.length; i += 1) {
    const char = pattern[i];
    const rest = pattern.slice(i);
    if (char === '\\') {
      const next = pattern[i + 1] ?? '';
      if (!inClass && /[1-9]/.test(next)) {
        return {
          what: `a backreference (\\${next})`,
          name: 'backreference',
          fix: 'repeat the pattern of the group instead of referring back to it',
        };
      }
      if (!inClass && next === 'k' && pattern[i + 2] === '<') {
        return {
          what: 'a named backreference (\\k<...>)',
          name: 'backreference',
          fix: 'repeat the pattern of the group instead of referring back to it',
        };
      }
      i += 1;
      continue;
    }
    if (inClass) {
      if (char === ']') inClass = false;
      continue;
    }
    if (char === '[') {
      inClass = true;
      // A `]` first in a class is a literal, not its end.
      if (pattern[i + 1] === '^') i += 1;
      if (pattern[i + 1] === ']') i += 1;
      continue;
    }
    if (rest.startsWith('(?=') || rest.startsWith('(?!')) {
      return {
        what: `a lookahead (${rest.slice(0, 3)}...)`,
        name: 'lookahead',
        fix: 'match the following text itself, or test it with a second condition (and / !)',
      };
    }
    if (rest.startsWith('(?<=') || rest.startsWith('(?<!')) {
      return {
        what: `a lookbehind (${rest.slice(0, 4)}...)`,
        name: 'lookbehind',
        fix: 'match the preceding text itself, or test it with a second condition (and / !)',
      };
    }
    if (rest.startsWith('(?>')) {
      return {
        what: 'an atomic group ((?>...))',
        name: 'atomic group',
        fix: 'use a plain group ((?:...))',
      };
    }
    if (/^[*+?}]\+/.test(rest)) {
      return {
        what: `a possessive quantifier (${rest.slice(0, 2)})`,
        name: 'possessive quantifier',
        fix: `use the plain quantifier ${rest.slice(0, 1)}`,
      };
    }
  }
  return null;
}

function testPattern(text: unknown, regex: RE2JS | SyntaxError | null): boolean {
  if (text === null || text === undefined || regex === null || regex instanceof SyntaxError) {
    return false;
  }
  const subject = String(text);
  return regex.test(
    subject.length > MATCHES_MAX_SUBJECT ? subject.slice(0, MATCHES_MAX_SUBJECT) : subject,
  );
}

function patternOf(pattern: unknown, flags: unknown): RE2JS | SyntaxError | null {
  return typeof pattern === 'string' ? compilePattern(pattern, flags === 'i' ? 'i' : '') : null;
}

/** `matches`: a regular-expression test, case-insensitive with the flag "i". */
export function matches(text: unknown, pattern: unknown, flags?: unknown): boolean {
  if (text === null || text === undefined) return false;
  return testPattern(text, patternOf(pattern, flags));
}

/**
 * The key of a lookup's answer: the table, the column and the value sought, or null when the
 * arguments cannot name a record (no value: nothing is looked up, and the answer is null).
 */
export function lookupKey(table: unknown, field: unknown, value: unknown): string | null {
  if (typeof table !== 'string' || typeof field !== 'string') return null;
  if (value === null || value === undefined || value === '' || typeof value === 'object')
    return null;
  return JSON.stringify([table, field, String(value)]);
}

/** `lookup`: the sys_id of the record of `table` whose `field` is `value`, or null for none. */
export function lookupValue(
  root: RootContext | null,
  table: unknown,
  field: unknown,
  value: unknown,
): string | null {
  const key = lookupKey(table, field, value);
  if (key === null) return null;
  const answers = root?.[LOOKUPS];
  if (!answers?.has(key)) {
    throw new Error(
      `lookup of ${String(table)} where ${String(field)} is ${JSON.stringify(value)} was not resolved: lookups read the ITSM API before the actions are planned, so they work only in action values, with arguments that do not read the items of map, filter or reduce (and itsm-rules test, which runs offline, cannot resolve them)`,
    );
  }
  return answers.get(key) ?? null;
}

/** `lower`: the lower-case string, null for nothing. */
export function lower(text: unknown): string | null {
  if (text === null || text === undefined) return null;
  return String(text).toLowerCase();
}

// ---------------------------------------------------------------------------------------------
// The standard operators, in json-logic-js 2.0.5's own terms. Where json-logic-js can throw, the
// code is written as it is there, so that V8 words the error the same way (`b.indexOf is not a
// function` names the parameter `b`).

function inside(a: unknown, b: unknown): boolean {
  if (!b || typeof (b as { indexOf?: unknown }).indexOf === 'undefined') return false;
  return (b as { indexOf(value: unknown): number }).indexOf(a) !== -1;
}

function substr(source: unknown, start: unknown, end: unknown): string {
  if ((end as number) < 0) {
    // JavaScript's substr takes no negative length; json-logic-js emulates PHP here.
    const temp = String(source).substr(start as number);
    return temp.substr(0, temp.length + (end as number));
  }
  return String(source).substr(start as number, end as number);
}

/** `parseFloat` exactly, without the string round trip for numbers (only -0 becomes 0). */
function toFloat(value: unknown): number {
  if (typeof value === 'number') return value === 0 ? 0 : value;
  return Number.parseFloat(value as string);
}

function addAll(values: readonly unknown[]): number {
  let sum: unknown = 0;
  for (const value of values) sum = toFloat(sum) + toFloat(value);
  return sum as number;
}

function multiplyAll(values: readonly unknown[]): unknown {
  // With no argument this throws "Reduce of empty array with no initial value", as json-logic-js
  // does; with one it returns that argument untouched (not even parsed).
  return values.reduce((a, b) => toFloat(a) * toFloat(b));
}

function concatenate(values: readonly unknown[]): string {
  let text = '';
  for (const value of values) text += value === null || value === undefined ? '' : String(value);
  return text;
}

// biome-ignore lint/suspicious/noExplicitAny: JSON-logic compares and computes with JavaScript's own operators, on any values.
type Loose = any;

function lessThan(a: Loose, b: Loose, c: Loose): boolean {
  return c === undefined ? a < b : a < b && b < c;
}

function lessOrEqual(a: Loose, b: Loose, c: Loose): boolean {
  return c === undefined ? a <= b : a <= b && b <= c;
}

/** Operators whose arguments are all evaluated first, then combined: value, data, root. */
type Combine = (values: unknown[], data: unknown, root: RootContext | null) => unknown;

const COMBINE: ReadonlyMap<string, Combine> = new Map<string, Combine>([
  // biome-ignore lint/suspicious/noDoubleEquals: JSON-logic's == is JavaScript's loose equality.
  ['==', (v) => (v[0] as Loose) == v[1]],
  ['===', (v) => v[0] === v[1]],
  // biome-ignore lint/suspicious/noDoubleEquals: as above.
  ['!=', (v) => (v[0] as Loose) != v[1]],
  ['!==', (v) => v[0] !== v[1]],
  ['>', (v) => (v[0] as Loose) > (v[1] as Loose)],
  ['>=', (v) => (v[0] as Loose) >= (v[1] as Loose)],
  ['<', (v) => lessThan(v[0], v[1], v[2])],
  ['<=', (v) => lessOrEqual(v[0], v[1], v[2])],
  ['!!', (v) => truthy(v[0])],
  ['!', (v) => !truthy(v[0])],
  ['%', (v) => (v[0] as Loose) % (v[1] as Loose)],
  ['in', (v) => inside(v[0], v[1])],
  ['cat', (v) => concatenate(v)],
  ['substr', (v) => substr(v[0], v[1], v[2])],
  ['+', (v) => addAll(v)],
  ['*', (v) => multiplyAll(v)],
  ['-', (v) => (v[1] === undefined ? -(v[0] as Loose) : (v[0] as Loose) - (v[1] as Loose))],
  ['/', (v) => (v[0] as Loose) / (v[1] as Loose)],
  ['min', (v) => Math.min(...(v as number[]))],
  ['max', (v) => Math.max(...(v as number[]))],
  ['merge', (v) => v.reduce((a: unknown[], b) => a.concat(b), [])],
  ['var', (v, data) => readVar(data, v[0], v[1])],
  ['missing', (v, data, root) => missing(Array.isArray(v[0]) ? v[0] : v, data, root)],
  ['missing_some', (v, data, root) => missingSome(v[0], v[1], data, root)],
  ['rank', (v) => rank(v[0])],
  ['hours_since', (v, _data, root) => hoursSince(v[0], root)],
  ['changed', (v, _data, root) => isChanged(v[0], root)],
  ['matches', (v) => matches(v[0], v[1], v[2])],
  ['lower', (v) => lower(v[0])],
  ['lookup', (v, _data, root) => lookupValue(root, v[0], v[1], v[2])],
]);

/** Operators that decide themselves which of their arguments to evaluate, and against what. */
const CONTROL = ['if', '?:', 'and', 'or', 'map', 'filter', 'reduce', 'all', 'none', 'some'];

/** Every operator the compiler knows: the standard ones (without `log`) and the project's. */
export const COMPILED_OPERATORS: ReadonlySet<string> = new Set([...COMBINE.keys(), ...CONTROL]);

function isPrimitive(value: unknown): boolean {
  return value === null || typeof value !== 'object';
}

// json-logic-js's `missing` looks each key up by applying {"var": key}: a key that is an array or
// an operation is itself evaluated (a default, a computed path). Keys are nearly always plain
// names, read directly; anything else goes through the compiler, lazily, as json-logic-js would.
function missing(keys: ArrayLike<unknown>, data: unknown, root: RootContext | null): unknown[] {
  const absent: unknown[] = [];
  for (let i = 0; i < keys.length; i += 1) {
    const key = keys[i];
    const value = isPrimitive(key) ? readVar(data, key) : evaluateData({ var: key }, data, root);
    if (value === null || value === '') absent.push(key);
  }
  return absent;
}

function missingSome(
  needCount: unknown,
  options: unknown,
  data: unknown,
  root: RootContext | null,
): unknown[] {
  // json-logic-js applies {"missing": options} to the evaluated options, so they are evaluated a
  // second time as logic: a no-op for plain names, and done by the compiler for anything else.
  let areMissing: unknown[];
  if (Array.isArray(options) && options.every(isPrimitive))
    areMissing = missing(options, data, root);
  else if (isPrimitive(options)) areMissing = missing([options], data, root);
  else areMissing = evaluateData({ missing: options }, data, root) as unknown[];
  const length = (options as { length: number }).length;
  return length - areMissing.length >= (needCount as number) ? [] : areMissing;
}

/**
 * Logic found in the data at evaluation time (see `missing`), evaluated as json-logic-js would.
 * It is compiled afresh each time and nothing of it is kept: the data is the event's, and a table
 * fed by it would grow with every distinct value an outside party sends (see compileNode).
 */
function evaluateData(logic: unknown, data: unknown, root: RootContext | null): unknown {
  return compileNode(logic, true).run(data, root);
}

// ---------------------------------------------------------------------------------------------
// The compiler

/** A compiled node, with what the parent may exploit to pick a faster closure. */
interface Compiled {
  run: Evaluator;
  /** A literal (not an array): every evaluation returns `value`, and nothing can throw. */
  literal?: true;
  value?: unknown;
  /** An array of literals: every evaluation returns a fresh copy of `items`. */
  items?: readonly unknown[];
  /** Always a boolean: a parent `and`/`or` can test it without the truthiness rules. */
  boolean?: true;
  /** A `var` with a literal path (and default): a parent reads it in place. */
  path?: PathPlan;
  /**
   * Cheaper to evaluate than to look up in the memo (a path against constants): never memoised.
   */
  cheap?: true;
  /**
   * The structure name of a node that reads nothing but the event (see "Sub-expressions shared
   * by the rules of an event"); absent for any other node, and for logic found in data.
   */
  name?: string;
}

/** Raised at compile time for an operator json-logic-js does not know (or that the project removed). */
export class UnknownOperatorError extends Error {
  constructor(readonly operator: string) {
    super(unrecognized(operator));
    this.name = 'UnknownOperatorError';
  }
}

// Operators json-logic-js keeps in its table of functions (the others it handles inline); a
// dotted name is looked up by walking that table, and its error names where the walk stopped.
const FUNCTION_OPERATORS: ReadonlySet<string> = new Set(COMBINE.keys());

function unrecognized(operator: string): string {
  if (operator.indexOf('.') > 0) {
    const [first = '', second = ''] = operator.split('.');
    const failedAt = FUNCTION_OPERATORS.has(first) ? `${first}.${second}` : first;
    return `Unrecognized operation ${operator} (failed at ${failedAt})`;
  }
  return `Unrecognized operation ${operator}`;
}

/**
 * Compiles a JSON-logic expression into closures. An unknown operator anywhere in it is refused
 * here, with json-logic-js's message, before anything is evaluated.
 */
export function compileLogic(expression: unknown): Evaluator {
  return compileNode(expression, false).run;
}

function isLogic(node: unknown): node is Record<string, unknown> {
  return (
    node !== null &&
    typeof node === 'object' &&
    !Array.isArray(node) &&
    Object.keys(node).length === 1
  );
}

function literal(value: unknown): Compiled {
  // A primitive is pure; an object that is not an operation is data, never memoised.
  if (value !== null && typeof value === 'object')
    return { run: () => value, literal: true, value };
  return { run: () => value, literal: true, value, name: primitiveName(value) };
}

/**
 * `lazy` is for logic met in the data while evaluating: there, as in json-logic-js, an unknown
 * operator fails only if it is reached. Such logic is never given a place in a context's memo:
 * the module-level tables (memoCells, structures, sharedPlans) hold only what rules contain.
 */
function compileNode(node: unknown, lazy: boolean): Compiled {
  const compiled = compileNodeAnew(node, lazy);
  return lazy ? compiled : memoise(node, compiled);
}

// ---------------------------------------------------------------------------------------------
// Sub-expressions shared by the rules of an event. A sub-expression that reads nothing but the
// event's object, previous state and event (and `now` and `changed`, which are the event's too)
// gives the same answer for every rule of the event: its first answer is kept in the memo cell of
// its structure under the event's memo token (see PATH_MEMO), so that `{"hours_since": ...}` in
// forty rules is evaluated once per event. Conditions cheaper than that lookup (a path against
// constants, and and/or/if/! of those) are not memoised but shared as one closure. Only primitive
// answers are kept (an array is a fresh one per evaluation), and a throw is never kept.

const PURE_OPERATORS = new Set([
  '==',
  '===',
  '!=',
  '!==',
  '>',
  '>=',
  '<',
  '<=',
  '!',
  '!!',
  'and',
  'or',
  'if',
  '?:',
  'in',
  'cat',
  'substr',
  '+',
  '-',
  '*',
  '/',
  '%',
  'min',
  'max',
  'rank',
  'hours_since',
  'changed',
  'matches',
  'lower',
]);
/** A shared sub-expression's answer for the event whose memo token is `token`. */
interface MemoCell {
  token: unknown;
  value: unknown;
  /** How many times the sub-expression was compiled: kept only when more than once. */
  uses: number;
}
const memoCells = new Map<string, MemoCell>();

// The memo key of a pure sub-expression names its structure, so that two rules that share a
// condition share its place wherever each was compiled. Each node is named as it is compiled,
// from its operator and the names of its compiled arguments (an interned number per distinct
// structure), so naming a whole tree costs time in proportion to its size; serialising each node's subtree
// instead made a 1000-deep chain quadratic (seconds to compile). The table grows only with the
// distinct sub-expressions of compiled rules, never with data (logic found in data is not named).
const structures = new Map<string, number>();
/** Characters of structure descriptions built so far: the work of naming, which stays linear. */
let namingWork = 0;

/** A literal's name: its JSON, told apart where JSON is not (-0 from 0, NaN from null). */
function primitiveName(value: unknown): string {
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
  if (value === undefined) return 'undefined';
  return JSON.stringify(value);
}

/** The interned name of a description built from the names of a node's parts. */
function intern(description: string): string {
  namingWork += description.length;
  let id = structures.get(description);
  if (id === undefined) {
    id = structures.size;
    structures.set(description, id);
  }
  return `#${id}`;
}

/** `[a,b]` from the names of the parts, or undefined when one of them is not pure. */
function describeList(parts: readonly Compiled[]): string | undefined {
  let description = '[';
  for (let i = 0; i < parts.length; i += 1) {
    const name = (parts[i] as Compiled).name;
    if (name === undefined) return undefined;
    description += i === 0 ? name : `,${name}`;
  }
  return `${description}]`;
}

/** Whether `var` with these arguments reads the event only: a literal path from one of its roots. */
function readsEventOnly(raw: unknown): boolean {
  const args: readonly unknown[] = Array.isArray(raw) ? raw : [raw];
  const [path, fallback] = args;
  if (typeof path !== 'string' || args.length > 2) return false;
  if (fallback !== undefined && fallback !== null && typeof fallback === 'object') return false;
  const segments = path.split('.');
  return (
    MEMO_ROOTS.has(segments[0] as string) &&
    !segments.some((segment) => FORBIDDEN_SEGMENTS.has(segment))
  );
}

/**
 * The name of an operation from the names of its compiled arguments, or undefined when it is not
 * pure. The arguments' names are inlined ({"!": x} and {"!": [x]} are named apart, which only
 * misses a sharing); an argument list is never a name of its own, so the form is unambiguous.
 */
function operationName(
  operator: string,
  raw: unknown,
  args: readonly Compiled[],
): string | undefined {
  if (operator === 'var' ? !readsEventOnly(raw) : !PURE_OPERATORS.has(operator)) return undefined;
  const inner = Array.isArray(raw) ? describeList(args) : args[0]?.name;
  return inner === undefined ? undefined : intern(`{${JSON.stringify(operator)}:${inner}}`);
}

/**
 * What the compiler keeps between compilations, for tests: the entries of its module-level
 * tables (which must not grow with evaluated data) and the work of naming sub-expressions
 * (which must grow in proportion to what is compiled).
 */
export function compilerFootprint(): {
  memoCells: number;
  structures: number;
  paths: number;
  shared: number;
  namingWork: number;
} {
  return {
    memoCells: memoCells.size,
    structures: structures.size,
    paths: sharedPlans.size,
    shared: cheapByName.size,
    namingWork,
  };
}

function memoise(node: unknown, compiled: Compiled): Compiled {
  const structure = compiled.name;
  if (
    structure === undefined ||
    compiled.literal ||
    compiled.path ||
    compiled.cheap ||
    !isLogic(node)
  ) {
    return compiled;
  }
  let cell = memoCells.get(structure);
  if (cell === undefined) {
    cell = { token: undefined, value: undefined, uses: 0 };
    memoCells.set(structure, cell);
  }
  cell.uses += 1;
  const kept = cell;
  const run = compiled.run;
  return {
    ...compiled,
    run: (data, root) => {
      // Kept only when the sub-expression occurs more than once in what was compiled (two rules
      // share it): for one of a kind the memo would cost more than it saves.
      if (kept.uses < 2 || data !== root || root === null) return run(data, root);
      const token = root[PATH_MEMO];
      if (token === undefined) return run(data, root);
      if (kept.token === token) return kept.value;
      const value = run(data, root);
      if (value === null || typeof value !== 'object') {
        kept.token = token;
        kept.value = value;
      }
      return value;
    },
  };
}

function compileNodeAnew(node: unknown, lazy: boolean): Compiled {
  if (Array.isArray(node)) return compileArray(node, lazy);
  if (!isLogic(node)) return literal(node);
  const operator = Object.keys(node)[0] as string;
  const raw = node[operator];
  const rawArgs: readonly unknown[] = Array.isArray(raw) ? raw : [raw];
  switch (operator) {
    case 'map':
    case 'filter':
    case 'all':
    case 'none':
    case 'some':
      refuseUnknown(rawArgs.slice(2), lazy);
      return compileScan(
        operator,
        compileNode(rawArgs[0], lazy),
        compileNode(rawArgs[1], lazy).run,
      );
    case 'reduce':
      refuseUnknown(rawArgs.slice(3), lazy);
      return compileReduce(
        compileNode(rawArgs[0], lazy),
        compileNode(rawArgs[1], lazy).run,
        rawArgs[2] === undefined ? null : compileNode(rawArgs[2], lazy),
      );
  }
  const control = operator === 'if' || operator === '?:' || operator === 'and' || operator === 'or';
  const combine = COMBINE.get(operator);
  // An unknown operator is refused before its arguments are compiled, as json-logic-js names the
  // outermost one.
  if (!control && combine === undefined && !lazy) throw new UnknownOperatorError(operator);
  const args = rawArgs.map((arg) => compileNode(arg, lazy));
  const compiled = compileOperation(operator, combine, args, lazy);
  const name = lazy ? undefined : operationName(operator, raw, args);
  const cheap =
    !lazy &&
    (compiled.cheap === true ||
      (CHEAP_COMBINATIONS.has(operator) && args.every((arg) => arg.cheap || arg.literal)));
  if (name === undefined && !cheap) return compiled;
  const extra: Pick<Compiled, 'name' | 'cheap'> = cheap ? { name, cheap } : { name };
  // Some operations answer with an argument's own compiled form ({"and": [x]} is x): marked anew.
  const marked = args.includes(compiled)
    ? { ...compiled, ...extra }
    : Object.assign(compiled, extra);
  return cheap && name !== undefined ? sharedCheap(name, marked) : marked;
}

// Cheap conditions that read only the event are shared: the same condition in many rules (and
// `priority == "high"` is in many) is one closure, so a large rule set touches less memory when
// it is evaluated. They hold no state, so sharing one changes no answer. Keyed by structure name,
// this table, like `structures`, holds only what compiled rules contain.
const cheapByName = new Map<string, Compiled>();

function sharedCheap(name: string, compiled: Compiled): Compiled {
  const shared = cheapByName.get(name);
  if (shared !== undefined) return shared;
  cheapByName.set(name, compiled);
  return compiled;
}

/**
 * Operations that are cheap when their arguments are (see Compiled.cheap): a condition made of
 * comparisons of paths with constants costs little more than looking its answer up would.
 */
const CHEAP_COMBINATIONS: ReadonlySet<string> = new Set(['and', 'or', 'if', '?:', '!', '!!']);

function compileOperation(
  operator: string,
  combine: Combine | undefined,
  args: readonly Compiled[],
  lazy: boolean,
): Compiled {
  switch (operator) {
    case 'if':
    case '?:':
      return compileIf(args);
    case 'and':
      return compileAnd(args);
    case 'or':
      return compileOr(args);
  }
  if (combine === undefined) {
    // json-logic-js evaluates the arguments before it looks the operator up.
    const message = unrecognized(operator);
    const fail: Combine = () => {
      throw new Error(message);
    };
    return compileCombine(fail, args);
  }
  if (operator === 'var') {
    const [path, fallback] = args;
    // The usual `var`: a literal path, perhaps a literal default.
    if (path?.literal && args.length <= 2 && (fallback === undefined || fallback.literal)) {
      const plan = planPath(
        path.value,
        fallback?.value === undefined ? null : fallback.value,
        !lazy,
      );
      return { run: (data, root) => readPathMemo(data, root, plan), path: plan };
    }
  }
  return specialize(operator, args) ?? compileCombine(combine, args);
}

/** Arguments json-logic-js never evaluates are still compiled, only so that typos are refused. */
function refuseUnknown(ignored: readonly unknown[], lazy: boolean): void {
  if (!lazy) for (const arg of ignored) compileNode(arg, lazy);
}

function compileArray(node: readonly unknown[], lazy: boolean): Compiled {
  const elements = node.map((element) => compileNode(element, lazy));
  const list = lazy ? undefined : describeList(elements);
  const name = list === undefined ? undefined : intern(list);
  // json-logic-js maps every array it meets, so each evaluation returns a new one: a result that
  // a caller changes never changes the expression, and two evaluations are never the same array.
  if (elements.every((element) => element.literal)) {
    const items = elements.map((element) => element.value);
    return name === undefined
      ? { run: () => items.slice(), items }
      : { run: () => items.slice(), items, name };
  }
  const runs = elements.map((element) => element.run);
  const count = runs.length;
  return {
    ...(name === undefined ? {} : { name }),
    run: (data, root) => {
      const out = new Array<unknown>(count);
      for (let i = 0; i < count; i += 1) out[i] = (runs[i] as Evaluator)(data, root);
      return out;
    },
  };
}

/** Evaluates every argument, in order, then combines the values: the general case. */
function compileCombine(combine: Combine, args: readonly Compiled[]): Compiled {
  const runs = args.map((arg) => arg.run);
  const count = runs.length;
  if (count === 0) return { run: (data, root) => combine([], data, root) };
  if (count === 1) {
    const [a] = runs as [Evaluator];
    return { run: (data, root) => combine([a(data, root)], data, root) };
  }
  if (count === 2) {
    const [a, b] = runs as [Evaluator, Evaluator];
    return { run: (data, root) => combine([a(data, root), b(data, root)], data, root) };
  }
  return {
    run: (data, root) => {
      const values = new Array<unknown>(count);
      for (let i = 0; i < count; i += 1) values[i] = (runs[i] as Evaluator)(data, root);
      return combine(values, data, root);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Control operators: they evaluate only what they need, in json-logic-js's order.

function compileIf(args: readonly Compiled[]): Compiled {
  const runs = args.map((arg) => arg.run);
  const [a, b, c] = runs;
  if (runs.length === 0) return literal(null);
  if (runs.length === 1 && a) return args[0] as Compiled;
  if (runs.length === 2 && a && b) return { run: (d, r) => (truthy(a(d, r)) ? b(d, r) : null) };
  if (runs.length === 3 && a && b && c) {
    // A boolean condition needs no truthiness rules; two boolean branches make a boolean.
    const boolean = args[1]?.boolean && args[2]?.boolean ? true : undefined;
    if (args[0]?.boolean) {
      return boolean
        ? { run: (d, r) => (a(d, r) ? b(d, r) : c(d, r)), boolean }
        : { run: (d, r) => (a(d, r) ? b(d, r) : c(d, r)) };
    }
    return boolean
      ? { run: (d, r) => (truthy(a(d, r)) ? b(d, r) : c(d, r)), boolean }
      : { run: (d, r) => (truthy(a(d, r)) ? b(d, r) : c(d, r)) };
  }
  const count = runs.length;
  return {
    run: (data, root) => {
      let i = 0;
      for (; i < count - 1; i += 2) {
        if (truthy((runs[i] as Evaluator)(data, root))) {
          return (runs[i + 1] as Evaluator)(data, root);
        }
      }
      return i === count - 1 ? (runs[i] as Evaluator)(data, root) : null;
    },
  };
}

/** `and` returns the first falsy value, or the last one (undefined when there is none). */
function compileAnd(args: readonly Compiled[]): Compiled {
  const boolean = args.length > 0 && args.every((arg) => arg.boolean) ? true : undefined;
  const runs = args.map((arg) => arg.run);
  const [a, b, c] = runs;
  if (runs.length === 0) return { run: () => undefined };
  if (runs.length === 1 && a) return args[0] as Compiled;
  if (boolean && runs.length === 2 && a && b) {
    return { run: (d, r) => (a(d, r) as boolean) && (b(d, r) as boolean), boolean };
  }
  if (boolean && runs.length === 3 && a && b && c) {
    return {
      run: (d, r) => (a(d, r) as boolean) && (b(d, r) as boolean) && (c(d, r) as boolean),
      boolean,
    };
  }
  if (runs.length === 2 && a && b) {
    return {
      run: (d, r) => {
        const first = a(d, r);
        return truthy(first) ? b(d, r) : first;
      },
    };
  }
  const count = runs.length;
  if (boolean) {
    // Booleans need no truthiness rules: the first false one is the answer.
    return {
      run: (data, root) => {
        for (let i = 0; i < count - 1; i += 1) {
          if (!(runs[i] as Evaluator)(data, root)) return false;
        }
        return (runs[count - 1] as Evaluator)(data, root);
      },
      boolean,
    };
  }
  return {
    run: (data, root) => {
      let current: unknown;
      for (let i = 0; i < count; i += 1) {
        current = (runs[i] as Evaluator)(data, root);
        if (!truthy(current)) return current;
      }
      return current;
    },
  };
}

/** `or` returns the first truthy value, or the last one (undefined when there is none). */
function compileOr(args: readonly Compiled[]): Compiled {
  const boolean = args.length > 0 && args.every((arg) => arg.boolean) ? true : undefined;
  const runs = args.map((arg) => arg.run);
  const [a, b, c] = runs;
  if (runs.length === 0) return { run: () => undefined };
  if (runs.length === 1 && a) return args[0] as Compiled;
  if (boolean && runs.length === 2 && a && b) {
    return { run: (d, r) => (a(d, r) as boolean) || (b(d, r) as boolean), boolean };
  }
  if (boolean && runs.length === 3 && a && b && c) {
    return {
      run: (d, r) => (a(d, r) as boolean) || (b(d, r) as boolean) || (c(d, r) as boolean),
      boolean,
    };
  }
  const count = runs.length;
  if (boolean) {
    return {
      run: (data, root) => {
        for (let i = 0; i < count - 1; i += 1) {
          if ((runs[i] as Evaluator)(data, root)) return true;
        }
        return (runs[count - 1] as Evaluator)(data, root);
      },
      boolean,
    };
  }
  return {
    run: (data, root) => {
      let current: unknown;
      for (let i = 0; i < count; i += 1) {
        current = (runs[i] as Evaluator)(data, root);
        if (truthy(current)) return current;
      }
      return current;
    },
  };
}

/** map, filter, all, none, some: the second argument is evaluated with each element as datum. */
function compileScan(operator: string, list: Compiled, scoped: Evaluator): Compiled {
  const source = list.run;
  switch (operator) {
    // Loops rather than items.map(callback): a callback would be a new closure per evaluation.
    case 'map':
      return {
        run: (data, root) => {
          const items = source(data, root);
          if (!Array.isArray(items)) return [];
          const out = new Array<unknown>(items.length);
          for (let i = 0; i < items.length; i += 1) out[i] = scoped(items[i], root);
          return out;
        },
      };
    case 'filter':
      return {
        run: (data, root) => {
          const items = source(data, root);
          if (!Array.isArray(items)) return [];
          const out: unknown[] = [];
          for (let i = 0; i < items.length; i += 1) {
            if (truthy(scoped(items[i], root))) out.push(items[i]);
          }
          return out;
        },
      };
    case 'all':
      return {
        run: (data, root) => {
          const items = source(data, root);
          // All of an empty list is false in json-logic-js.
          if (!Array.isArray(items) || !items.length) return false;
          for (let i = 0; i < items.length; i += 1) {
            if (!truthy(scoped(items[i], root))) return false;
          }
          return true;
        },
        boolean: true,
      };
    case 'none':
      return {
        run: (data, root) => {
          const items = source(data, root);
          if (!Array.isArray(items) || !items.length) return true;
          for (let i = 0; i < items.length; i += 1) {
            if (truthy(scoped(items[i], root))) return false;
          }
          return true;
        },
        boolean: true,
      };
    default:
      return {
        run: (data, root) => {
          const items = source(data, root);
          if (!Array.isArray(items) || !items.length) return false;
          for (let i = 0; i < items.length; i += 1) {
            if (truthy(scoped(items[i], root))) return true;
          }
          return false;
        },
        boolean: true,
      };
  }
}

/** reduce: the body sees `{current, accumulator}`; the initial value is read from the outer datum. */
function compileReduce(list: Compiled, body: Evaluator, initial: Compiled | null): Compiled {
  const source = list.run;
  const start = initial?.run ?? null;
  return {
    run: (data, root) => {
      const items = source(data, root);
      const first = start === null ? null : start(data, root);
      if (!Array.isArray(items)) return first;
      let accumulator = first;
      for (let i = 0; i < items.length; i += 1) {
        accumulator = body({ current: items[i], accumulator }, root);
      }
      return accumulator;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Specialised closures for the shapes rules are made of. Each gives exactly what the general
// case gives; it only skips work (the array of values, a truthiness test, a repeated lookup).

/**
 * One segment of a `var` path, as readVar takes it: undefined for anything readVar answers with
 * its default (`inString`: whether a string has the segment, decided once per path).
 */
function step(value: unknown, segment: string, inString: boolean): unknown {
  if (typeof value === 'object') {
    if (value === null || !ownProperty.call(value, segment)) return undefined;
    return (value as Record<string, unknown>)[segment];
  }
  if (typeof value === 'string' && inString) {
    return (value as unknown as Record<string, unknown>)[segment];
  }
  return undefined;
}

/** A literal `var` path, split and checked once. */
interface PathPlan {
  /** 0: the datum itself (empty path); 1 and 2: that many segments; 3: any other path. */
  readonly kind: 0 | 1 | 2 | 3;
  readonly s0: string;
  readonly s1: string;
  /** Whether a string has s0 (s1) of its own: its length or an index. */
  readonly i0: boolean;
  readonly i1: boolean;
  /** The segments walked: those before the first forbidden name, if any. */
  readonly segments: readonly string[];
  readonly inString: readonly boolean[];
  /** A forbidden name follows the walked segments: reaching it yields null. */
  readonly forbidden: boolean;
  readonly notFound: unknown;
  /** Whether the path is read through the event's memo (a literal path from object, previous or event). */
  readonly memo: boolean;
  /** The memo token of the event `value` was read for (see PATH_MEMO). */
  token: unknown;
  /** The value read (ABSENT for no such path) for the event of `token`. */
  value: unknown;
}

// The plans of the paths rules read, shared by every `var` of the same path: a rule set reads a
// few dozen paths in thousands of places, and one plan each keeps what evaluation touches small.
// Like memoCells, it holds only what compiled rules contain (logic found in data plans afresh).
const sharedPlans = new Map<string, PathPlan>();

/** `memo`: whether the path may be read through a context's memo (see compileNode's `lazy`). */
function planPath(path: unknown, notFound: unknown, memo: boolean): PathPlan {
  if (!memo || notFound !== null || typeof path !== 'string') {
    return planPathAnew(path, notFound, memo);
  }
  let plan = sharedPlans.get(path);
  if (plan === undefined) {
    plan = planPathAnew(path, null, true);
    sharedPlans.set(path, plan);
  }
  return plan;
}

function planPathAnew(path: unknown, notFound: unknown, memo: boolean): PathPlan {
  const whole = path === undefined || path === '' || path === null;
  const all = whole ? [] : String(path).split('.');
  const stop = all.findIndex((segment) => FORBIDDEN_SEGMENTS.has(segment));
  const segments = stop === -1 ? all : all.slice(0, stop);
  const forbidden = stop !== -1;
  const inString = segments.map(stringHasOwn);
  const kind = whole ? 0 : forbidden || segments.length > 2 ? 3 : segments.length === 1 ? 1 : 2;
  return {
    memo: memo && !forbidden && segments.length > 0 && MEMO_ROOTS.has(segments[0] as string),
    token: undefined,
    value: undefined,
    kind,
    s0: segments[0] ?? '',
    s1: segments[1] ?? '',
    i0: inString[0] ?? false,
    i1: inString[1] ?? false,
    segments,
    inString,
    forbidden,
    notFound,
  };
}

/**
 * readPath through the context's memo: at the top of an expression (the datum is the context
 * itself) a memoised path is read once per event; anywhere else (an iteration's element) as is.
 */
function readPathMemo(data: unknown, root: RootContext | null, plan: PathPlan): unknown {
  if (plan.memo && data === root && root !== null) {
    const token = root[PATH_MEMO];
    if (token !== undefined) {
      if (plan.token !== token) {
        plan.value = readPath(data, plan, ABSENT);
        plan.token = token;
      }
      const value = plan.value;
      return value === ABSENT ? plan.notFound : value;
    }
  }
  return readPath(data, plan);
}

/** readVar with a planned path: the same answer, without splitting or checking per call. */
function readPath(data: unknown, plan: PathPlan, absent: unknown = plan.notFound): unknown {
  switch (plan.kind) {
    case 0:
      return data;
    case 1: {
      const value = step(data, plan.s0, plan.i0);
      return value === undefined ? absent : value;
    }
    case 2: {
      const first = step(data, plan.s0, plan.i0);
      if (first === undefined) return absent;
      const value = step(first, plan.s1, plan.i1);
      return value === undefined ? absent : value;
    }
    default: {
      const { segments, inString } = plan;
      let value = data;
      for (let i = 0; i < segments.length; i += 1) {
        value = step(value, segments[i] as string, inString[i] as boolean);
        if (value === undefined) return absent;
      }
      return plan.forbidden ? null : value;
    }
  }
}

/**
 * An argument as its parent reads it: a planned path is read in place (the commonest argument
 * of all, `{"var": "object.priority"}`), anything else through its closure.
 */
interface Operand {
  readonly plan: PathPlan | null;
  readonly run: Evaluator;
}

function operand(compiled: Compiled): Operand {
  return { plan: compiled.path ?? null, run: compiled.run };
}

function get(operand: Operand, data: unknown, root: RootContext | null): unknown {
  return operand.plan !== null ? readPathMemo(data, root, operand.plan) : operand.run(data, root);
}

const BOOLEAN_RESULTS = new Set(['==', '===', '!=', '!==', '>', '>=', '<', '<=', '!', '!!', 'in']);

function specialize(operator: string, args: readonly Compiled[]): Compiled | null {
  const leaf = specializeLeaf(operator, args);
  if (leaf !== null) return { run: leaf, boolean: true, cheap: true };
  const result = specializeRun(operator, args);
  if (result === null) return null;
  const boolean = BOOLEAN_RESULTS.has(operator) || operator === 'changed' || operator === 'matches';
  return boolean ? { run: result, boolean: true } : { run: result };
}

function specializeRun(operator: string, args: readonly Compiled[]): Evaluator | null {
  const [x, y, z] = args;
  const count = args.length;
  switch (operator) {
    case '==':
    case '===':
    case '!=':
    case '!==':
    case '>':
    case '>=':
    case '<':
    case '<=':
      return count === 2 && x && y ? compareTwo(operator, x, y) : null;
    case '!':
    case '!!': {
      if (count !== 1 || !x) return null;
      const a = operand(x);
      if (x.boolean) return operator === '!' ? (d, r) => !get(a, d, r) : x.run;
      return operator === '!' ? (d, r) => !truthy(get(a, d, r)) : (d, r) => truthy(get(a, d, r));
    }
    case 'in':
      return count === 2 && x && y ? compileIn(operand(x), y) : null;
    case 'rank': {
      if (count !== 1 || !x) return null;
      const a = operand(x);
      return (d, r) => rank(get(a, d, r));
    }
    case 'hours_since': {
      if (count !== 1 || !x) return null;
      const a = operand(x);
      return (d, r) => hoursSince(get(a, d, r), r);
    }
    case 'changed': {
      if (count !== 1 || !x) return null;
      if (x.literal) {
        const field = x.value;
        return (_d, r) => isChanged(field, r);
      }
      const a = operand(x);
      return (d, r) => isChanged(get(a, d, r), r);
    }
    case 'lower': {
      if (count !== 1 || !x) return null;
      const a = operand(x);
      return (d, r) => lower(get(a, d, r));
    }
    case 'matches': {
      if (!x || !y?.literal || (count === 3 && !z?.literal) || count > 3) return null;
      const regex = patternOf(y.value, z?.value);
      const a = operand(x);
      return (d, r) => testPattern(get(a, d, r), regex);
    }
    case '+':
    case '-':
    case '*':
    case '/':
    case '%':
      return count === 2 && x && y ? arithmeticTwo(operator, operand(x), operand(y)) : null;
    case 'cat':
      return count === 2 && x && y ? catTwo(operand(x), operand(y)) : null;
    case 'missing': {
      // Literal keys (the usual case): each key's path is planned once.
      const keys =
        x?.items ?? (args.every((arg) => arg.literal) ? args.map((arg) => arg.value) : null);
      if (keys === null || !keys.every(isPrimitive)) return null;
      if (!args.every((arg) => arg.literal || arg.items)) return null;
      // Read without the memo (readPath), so the keys take no place in it.
      const plans = keys.map((key) => planPath(key, null, false));
      const total = plans.length;
      return (data) => {
        const absent: unknown[] = [];
        for (let i = 0; i < total; i += 1) {
          const value = readPath(data, plans[i] as PathPlan);
          if (value === null || value === '') absent.push(keys[i]);
        }
        return absent;
      };
    }
    default:
      return null;
  }
}

function compareTwo(operator: string, x: Compiled, y: Compiled): Evaluator {
  const a = operand(x);
  const b = operand(y);
  // A literal side is read once, at compile time, instead of through a closure on every call.
  if (y.literal) {
    const v = y.value as Loose;
    switch (operator) {
      case '==':
        // biome-ignore lint/suspicious/noDoubleEquals: JSON-logic's loose equality.
        return (d, r) => (get(a, d, r) as Loose) == v;
      case '===':
        return (d, r) => get(a, d, r) === v;
      case '!=':
        // biome-ignore lint/suspicious/noDoubleEquals: JSON-logic's loose inequality.
        return (d, r) => (get(a, d, r) as Loose) != v;
      case '!==':
        return (d, r) => get(a, d, r) !== v;
      case '>':
        return (d, r) => (get(a, d, r) as Loose) > v;
      case '>=':
        return (d, r) => (get(a, d, r) as Loose) >= v;
      case '<':
        return (d, r) => (get(a, d, r) as Loose) < v;
      default:
        return (d, r) => (get(a, d, r) as Loose) <= v;
    }
  }
  if (x.literal) {
    const v = x.value as Loose;
    switch (operator) {
      case '==':
        // biome-ignore lint/suspicious/noDoubleEquals: JSON-logic's loose equality.
        return (d, r) => v == get(b, d, r);
      case '===':
        return (d, r) => v === get(b, d, r);
      case '!=':
        // biome-ignore lint/suspicious/noDoubleEquals: JSON-logic's loose inequality.
        return (d, r) => v != get(b, d, r);
      case '!==':
        return (d, r) => v !== get(b, d, r);
      case '>':
        return (d, r) => v > (get(b, d, r) as Loose);
      case '>=':
        return (d, r) => v >= (get(b, d, r) as Loose);
      case '<':
        return (d, r) => v < (get(b, d, r) as Loose);
      default:
        return (d, r) => v <= (get(b, d, r) as Loose);
    }
  }
  // Both sides are evaluated before they are compared, left first, as json-logic-js does.
  switch (operator) {
    case '==':
      return (d, r) => {
        const first = get(a, d, r) as Loose;
        // biome-ignore lint/suspicious/noDoubleEquals: JSON-logic's loose equality.
        return first == get(b, d, r);
      };
    case '===':
      return (d, r) => {
        const first = get(a, d, r);
        return first === get(b, d, r);
      };
    case '!=':
      return (d, r) => {
        const first = get(a, d, r) as Loose;
        // biome-ignore lint/suspicious/noDoubleEquals: JSON-logic's loose inequality.
        return first != get(b, d, r);
      };
    case '!==':
      return (d, r) => {
        const first = get(a, d, r);
        return first !== get(b, d, r);
      };
    case '>':
      return (d, r) => {
        const first = get(a, d, r) as Loose;
        return first > (get(b, d, r) as Loose);
      };
    case '>=':
      return (d, r) => {
        const first = get(a, d, r) as Loose;
        return first >= (get(b, d, r) as Loose);
      };
    case '<':
      return (d, r) => {
        const first = get(a, d, r) as Loose;
        return first < (get(b, d, r) as Loose);
      };
    default:
      return (d, r) => {
        const first = get(a, d, r) as Loose;
        return first <= (get(b, d, r) as Loose);
      };
  }
}

function compileIn(needle: Operand, haystack: Compiled): Evaluator {
  const items = haystack.items;
  if (items) {
    // A literal list never escapes this closure, so one copy serves every evaluation. A Set
    // answers as indexOf does (===) once NaN is left out: indexOf never finds NaN, Set.has would.
    if (items.length > 8 && items.every(isPrimitive)) {
      const set = new Set(items.filter((item) => !Number.isNaN(item)));
      return (d, r) => set.has(get(needle, d, r));
    }
    return (d, r) => items.indexOf(get(needle, d, r)) !== -1;
  }
  if (haystack.literal && typeof haystack.value === 'string') {
    const text = haystack.value;
    if (text === '') {
      return (d, r) => {
        get(needle, d, r);
        return false;
      };
    }
    return (d, r) => text.indexOf(get(needle, d, r) as string) !== -1;
  }
  const b = operand(haystack);
  return (d, r) => {
    const a = get(needle, d, r);
    return inside(a, get(b, d, r));
  };
}

function arithmeticTwo(operator: string, a: Operand, b: Operand): Evaluator {
  switch (operator) {
    case '+':
      return (d, r) => {
        const first = get(a, d, r);
        const second = get(b, d, r);
        return toFloat(toFloat(0) + toFloat(first)) + toFloat(second);
      };
    case '*':
      return (d, r) => {
        const first = get(a, d, r);
        const second = get(b, d, r);
        return toFloat(first) * toFloat(second);
      };
    case '-':
      return (d, r) => {
        const first = get(a, d, r) as Loose;
        const second = get(b, d, r) as Loose;
        return second === undefined ? -first : first - second;
      };
    case '/':
      return (d, r) => {
        const first = get(a, d, r) as Loose;
        return first / (get(b, d, r) as Loose);
      };
    default:
      return (d, r) => {
        const first = get(a, d, r) as Loose;
        return first % (get(b, d, r) as Loose);
      };
  }
}

function catTwo(a: Operand, b: Operand): Evaluator {
  return (d, r) => {
    const first = get(a, d, r);
    const second = get(b, d, r);
    return (
      (first === null || first === undefined ? '' : String(first)) +
      (second === null || second === undefined ? '' : String(second))
    );
  };
}

// ---------------------------------------------------------------------------------------------
// Leaves: a comparison or `in` between a literal `var` path and constants, and `!`/`!!` of a
// path, the shapes most conditions are made of. Each is one closure that reads the path (through
// the event's memo) and compares with the constant directly: no operand closures, no argument
// array, no memo of its own answer (it costs as much as evaluating it). Where the constant's type
// is known, the common case (a value of the same type) is tested first with a strict operator,
// and everything else goes to JavaScript's loose operator, exactly as json-logic-js applies it:
// the strict test only answers where the loose one would give the same answer (a string is ==
// to a string exactly when it is ===; likewise numbers, NaN included). Each closure literal
// serves one constant type, so V8's type feedback at each comparison stays narrow.

/** The operator that gives the same answer with the operands swapped (`1 < x` is `x > 1`). */
const SWAPPED: Readonly<Record<string, string>> = {
  '==': '==',
  '===': '===',
  '!=': '!=',
  '!==': '!==',
  '<': '>',
  '<=': '>=',
  '>': '<',
  '>=': '<=',
};

function specializeLeaf(operator: string, args: readonly Compiled[]): Evaluator | null {
  const [x, y] = args;
  if (args.length === 1 && x?.path && (operator === '!' || operator === '!!')) {
    const plan = x.path;
    return operator === '!'
      ? (d, r) => !truthy(readPathMemo(d, r, plan))
      : (d, r) => truthy(readPathMemo(d, r, plan));
  }
  if (args.length !== 2 || !x || !y) return null;
  if (operator === 'in') {
    if (x.path && y.items) return pathInList(x.path, y.items);
    if (x.literal && isPrimitive(x.value) && y.path) return constantInPath(x.value, y.path);
    return null;
  }
  const swapped = SWAPPED[operator];
  if (swapped === undefined) return null;
  if (x.path && y.literal && isPrimitive(y.value)) return pathCompare(operator, x.path, y.value);
  if (y.path && x.literal && isPrimitive(x.value)) return pathCompare(swapped, y.path, x.value);
  return null;
}

/** `{"<op>": [{"var": path}, v]}` for a primitive constant v. */
function pathCompare(operator: string, plan: PathPlan, v: unknown): Evaluator {
  const c = v as Loose;
  if (typeof v === 'string') {
    switch (operator) {
      case '==':
        return (d, r) => {
          const x = readPathMemo(d, r, plan) as Loose;
          // biome-ignore lint/suspicious/noDoubleEquals: JSON-logic's loose equality.
          return typeof x === 'string' ? x === c : x == c;
        };
      case '!=':
        return (d, r) => {
          const x = readPathMemo(d, r, plan) as Loose;
          // biome-ignore lint/suspicious/noDoubleEquals: JSON-logic's loose inequality.
          return typeof x === 'string' ? x !== c : x != c;
        };
      case '<':
        return (d, r) => {
          const x = readPathMemo(d, r, plan) as Loose;
          return typeof x === 'string' ? x < c : x < c;
        };
      case '<=':
        return (d, r) => {
          const x = readPathMemo(d, r, plan) as Loose;
          return typeof x === 'string' ? x <= c : x <= c;
        };
      case '>':
        return (d, r) => {
          const x = readPathMemo(d, r, plan) as Loose;
          return typeof x === 'string' ? x > c : x > c;
        };
      case '>=':
        return (d, r) => {
          const x = readPathMemo(d, r, plan) as Loose;
          return typeof x === 'string' ? x >= c : x >= c;
        };
    }
  } else if (typeof v === 'number') {
    switch (operator) {
      case '==':
        return (d, r) => {
          const x = readPathMemo(d, r, plan) as Loose;
          // biome-ignore lint/suspicious/noDoubleEquals: JSON-logic's loose equality.
          return typeof x === 'number' ? x === c : x == c;
        };
      case '!=':
        return (d, r) => {
          const x = readPathMemo(d, r, plan) as Loose;
          // biome-ignore lint/suspicious/noDoubleEquals: JSON-logic's loose inequality.
          return typeof x === 'number' ? x !== c : x != c;
        };
      case '<':
        return (d, r) => {
          const x = readPathMemo(d, r, plan) as Loose;
          return typeof x === 'number' ? x < c : x < c;
        };
      case '<=':
        return (d, r) => {
          const x = readPathMemo(d, r, plan) as Loose;
          return typeof x === 'number' ? x <= c : x <= c;
        };
      case '>':
        return (d, r) => {
          const x = readPathMemo(d, r, plan) as Loose;
          return typeof x === 'number' ? x > c : x > c;
        };
      case '>=':
        return (d, r) => {
          const x = readPathMemo(d, r, plan) as Loose;
          return typeof x === 'number' ? x >= c : x >= c;
        };
    }
  }
  // Strict (in)equality with any constant, and null, booleans and undefined with any operator.
  switch (operator) {
    case '===':
      return (d, r) => readPathMemo(d, r, plan) === c;
    case '!==':
      return (d, r) => readPathMemo(d, r, plan) !== c;
    case '==':
      // biome-ignore lint/suspicious/noDoubleEquals: JSON-logic's loose equality.
      return (d, r) => (readPathMemo(d, r, plan) as Loose) == c;
    case '!=':
      // biome-ignore lint/suspicious/noDoubleEquals: JSON-logic's loose inequality.
      return (d, r) => (readPathMemo(d, r, plan) as Loose) != c;
    case '<':
      return (d, r) => (readPathMemo(d, r, plan) as Loose) < c;
    case '<=':
      return (d, r) => (readPathMemo(d, r, plan) as Loose) <= c;
    case '>':
      return (d, r) => (readPathMemo(d, r, plan) as Loose) > c;
    default:
      return (d, r) => (readPathMemo(d, r, plan) as Loose) >= c;
  }
}

/** `{"in": [{"var": path}, [constants]]}`: indexOf, which is ===, on a list of literals. */
function pathInList(plan: PathPlan, items: readonly unknown[]): Evaluator {
  // A literal list never escapes this closure, so one copy serves every evaluation. A Set
  // answers as indexOf does (===) once NaN is left out: indexOf never finds NaN, Set.has would.
  if (items.length > 8 && items.every(isPrimitive)) {
    const set = new Set(items.filter((item) => !Number.isNaN(item)));
    return (d, r) => set.has(readPathMemo(d, r, plan));
  }
  return (d, r) => items.indexOf(readPathMemo(d, r, plan)) !== -1;
}

/**
 * `{"in": [v, {"var": path}]}`: v in a string (a substring) or in a list (an element), as
 * json-logic-js answers it: false for anything falsy ("" included: "" is in no string there)
 * or without indexOf; anything else with an indexOf (an object from data) goes the general way.
 */
function constantInPath(v: unknown, plan: PathPlan): Evaluator {
  if (typeof v === 'string') {
    return (d, r) => {
      const haystack = readPathMemo(d, r, plan);
      if (typeof haystack === 'string') return haystack !== '' && haystack.indexOf(v) !== -1;
      if (Array.isArray(haystack)) return haystack.indexOf(v) !== -1;
      return inside(v, haystack);
    };
  }
  return (d, r) => {
    const haystack = readPathMemo(d, r, plan);
    if (Array.isArray(haystack)) return haystack.indexOf(v) !== -1;
    return inside(v, haystack);
  };
}
