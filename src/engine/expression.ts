// JSON-logic expressions: json-logic-js semantics plus the project's operators (rank, hours_since,
// changed, matches, lower), behind one function. Everything else in the engine calls
// `compileExpression` once at load time and the returned function per evaluation, so a compiled
// evaluator can replace the interpreter here without touching the rest.
import jsonLogic from 'json-logic-js';
import { normalizeIsoDate } from '../itsm/schemas.js';

/** What a condition or value can read (shared/spec/rule-format.md, section 3). */
export interface EvaluationContext {
  event: {
    id: string;
    type: 'add' | 'update' | 'delete' | 'schedule';
    account: number;
    at: string;
    user_id: string | null;
  };
  object: Record<string, unknown> | null;
  previous: Record<string, unknown> | null;
  changed: string[];
  now: string;
  correlation: { key: string; count: number; ids: string[] } | null;
  rule: { id: string };
}

export type CompiledExpression = (context: EvaluationContext) => unknown;

/** The standard JSON-logic operators rules may use. `log` is left out: it writes to stdout. */
export const STANDARD_OPERATORS = [
  'var',
  'missing',
  'missing_some',
  'if',
  '?:',
  '==',
  '===',
  '!=',
  '!==',
  '!',
  '!!',
  'or',
  'and',
  '>',
  '>=',
  '<',
  '<=',
  'max',
  'min',
  '+',
  '-',
  '*',
  '/',
  '%',
  'map',
  'filter',
  'reduce',
  'all',
  'none',
  'some',
  'merge',
  'in',
  'cat',
  'substr',
] as const;

export const ENGINE_OPERATORS = ['rank', 'hours_since', 'changed', 'matches', 'lower'] as const;

export const OPERATORS: ReadonlySet<string> = new Set([...STANDARD_OPERATORS, ...ENGINE_OPERATORS]);

/** Property names `var` never reads: they reach the prototype chain instead of the data. */
export const FORBIDDEN_SEGMENTS: ReadonlySet<string> = new Set([
  '__proto__',
  'constructor',
  'prototype',
]);

const RANKS: Readonly<Record<string, number>> = { low: 1, medium: 2, high: 3, critical: 4 };

/** The flags `matches` accepts as its third argument. */
export const MATCH_FLAGS = ['i'] as const;

// The context of the evaluation in progress. json-logic-js calls operators with the current datum
// as `this`, which inside `map`/`filter`/`all` is an array element, so operators that need `now`
// or `changed` read the root from here. Evaluation is synchronous, so one slot (saved and restored
// around each call) is exact even when expressions are evaluated from inside other expressions.
let root: EvaluationContext | null = null;

const regexCache = new Map<string, RegExp>();

/** The RegExp of a `matches` pattern, or the SyntaxError that makes it invalid. */
export function compilePattern(pattern: string, flags = ''): RegExp | SyntaxError {
  const cacheKey = `${flags}/${pattern}`;
  const cached = regexCache.get(cacheKey);
  if (cached) return cached;
  try {
    const regex = new RegExp(pattern, flags);
    if (regexCache.size > 10_000) regexCache.clear();
    regexCache.set(cacheKey, regex);
    return regex;
  } catch (error) {
    return error instanceof SyntaxError ? error : new SyntaxError(String(error));
  }
}

function hasOwn(value: unknown, key: string): boolean {
  if (value === null || value === undefined) return false;
  if (typeof value === 'string') return key === 'length' || /^(0|[1-9][0-9]*)$/.test(key);
  return typeof value === 'object' && Object.hasOwn(value, key);
}

/** `var` as json-logic-js reads it, but only own properties and never the forbidden names. */
function safeVar(this: unknown, path: unknown, fallback?: unknown): unknown {
  const notFound = fallback === undefined ? null : fallback;
  let data: unknown = this;
  if (path === undefined || path === '' || path === null) return data;
  for (const segment of String(path).split('.')) {
    if (FORBIDDEN_SEGMENTS.has(segment)) return null;
    if (data === null || data === undefined) return notFound;
    if (!hasOwn(data, segment)) return notFound;
    data = (data as Record<string, unknown>)[segment];
    if (data === undefined) return notFound;
  }
  return data;
}

function rank(value: unknown): number | null {
  return typeof value === 'string' && Object.hasOwn(RANKS, value) ? (RANKS[value] ?? null) : null;
}

// Dates are read as the ITSM API reads them (ISO 8601 only, no zone means UTC), not with
// `Date.parse`: that accepts "incident 12" as December 2001 and reads a zone-less date-time in the
// host's time zone, so the same rule would give different answers on different machines.
function hoursSince(value: unknown): number | null {
  if (typeof value !== 'string') return null;
  const then = normalizeIsoDate(value);
  const now = normalizeIsoDate(root?.now ?? '');
  if (then === null || now === null) return null;
  return (Date.parse(now) - Date.parse(then)) / 3_600_000;
}

function changed(field: unknown): boolean {
  return typeof field === 'string' && (root?.changed ?? []).includes(field);
}

function matches(text: unknown, pattern: unknown, flags?: unknown): boolean {
  if (text === null || text === undefined || typeof pattern !== 'string') return false;
  const regex = compilePattern(pattern, flags === 'i' ? 'i' : '');
  return regex instanceof RegExp && regex.test(String(text));
}

function lower(text: unknown): string | null {
  if (text === null || text === undefined) return null;
  return String(text).toLowerCase();
}

jsonLogic.rm_operation('log');
jsonLogic.add_operation('var', safeVar);
jsonLogic.add_operation('rank', rank);
jsonLogic.add_operation('hours_since', hoursSince);
jsonLogic.add_operation('changed', changed);
jsonLogic.add_operation('matches', matches);
jsonLogic.add_operation('lower', lower);

/** JSON-logic truthiness (an empty array is false), as conditions use it. */
export function isTruthy(value: unknown): boolean {
  return jsonLogic.truthy(value);
}

/** Evaluates `expression` with `data` as the datum of `var` (the root context, or an element). */
function apply(expression: unknown, data: unknown, context: EvaluationContext): unknown {
  const saved = root;
  root = context;
  try {
    return jsonLogic.apply(expression as jsonLogic.RulesLogic, data);
  } finally {
    root = saved;
  }
}

/**
 * Prepares an expression for repeated evaluation. The expression must have passed the rule
 * checks (known operators only); a runtime failure (such as `reduce` over a non-array) throws
 * an `ExpressionError` that the caller records against the rule.
 */
export function compileExpression(expression: unknown): CompiledExpression {
  if (expression === null || typeof expression !== 'object') return () => expression;
  return (context) => {
    try {
      return apply(expression, context, context);
    } catch (error) {
      throw new ExpressionError(expression, error);
    }
  };
}

/** Evaluates an expression once, against an arbitrary datum (used by `--explain`). */
export function evaluateExpression(
  expression: unknown,
  context: EvaluationContext,
  data: unknown = context,
): unknown {
  try {
    return apply(expression, data, context);
  } catch (error) {
    throw new ExpressionError(expression, error);
  }
}

export class ExpressionError extends Error {
  readonly code = 'RULE_EXPRESSION_FAILED';
  constructor(
    readonly expression: unknown,
    cause: unknown,
  ) {
    super(
      `expression ${JSON.stringify(expression)} failed: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
    this.name = 'ExpressionError';
  }
}

/** The operator of a JSON-logic node (an object with exactly one key), or null for a literal. */
export function operatorOf(node: unknown): string | null {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return null;
  const keys = Object.keys(node);
  return keys.length === 1 ? (keys[0] ?? null) : null;
}

/** The arguments of a JSON-logic node as json-logic-js sees them (a lone value is one argument). */
export function argumentsOf(node: Record<string, unknown>, operator: string): unknown[] {
  const value = node[operator];
  return Array.isArray(value) ? value : [value];
}
