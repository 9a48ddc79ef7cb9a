// JSON-logic expressions: json-logic-js semantics plus the project's operators (rank, hours_since,
// changed, matches, lower, lookup), behind one function. Everything else in the engine calls
// `compileExpression` once at load time and the returned function per evaluation; compile.ts
// turns the expression into closures, and json-logic-js itself stays here only as the reference
// interpreter (`interpretExpression`) that the compiled path is tested and measured against.
import jsonLogic from 'json-logic-js';
import {
  compileLogic,
  type Evaluator,
  hoursSince,
  isChanged,
  LOOKUPS,
  lookupValue,
  lower,
  matches,
  PATH_MEMO,
  rank,
  readVar,
  truthy,
} from './compile.js';

/** What a condition or value can read (docs/rules.md, "What a rule can read"). */
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
  /** The event's memo token: a new array per event, shared by its per-rule copies (see compile.ts). */
  [PATH_MEMO]?: unknown[];
  /** Answers of the rule's `lookup`s, resolved before its actions are planned (lookup.ts). */
  [LOOKUPS]?: Map<string, string | null>;
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

export const ENGINE_OPERATORS = [
  'rank',
  'hours_since',
  'changed',
  'matches',
  'lower',
  'lookup',
] as const;

export const OPERATORS: ReadonlySet<string> = new Set([...STANDARD_OPERATORS, ...ENGINE_OPERATORS]);

export {
  compilePattern,
  FORBIDDEN_SEGMENTS,
  LOOKUPS,
  lookupKey,
  MATCHES_MAX_SUBJECT,
  PATH_MEMO,
  unsupportedPatternSyntax,
} from './compile.js';

/** The flags `matches` accepts as its third argument. */
export const MATCH_FLAGS = ['i'] as const;

// ---------------------------------------------------------------------------------------------
// The interpreter: json-logic-js itself, with the project's operators and safe `var` registered.
// The engine never evaluates through it; it is the reference the compiler is measured against
// (test/engine/differential.test.ts, bench/rules.ts), and shares every operator with it.

// The root context of the interpretation in progress. json-logic-js calls operators with the
// current datum as `this`, which inside `map`/`filter`/`all` is an array element, so operators
// that need `now` or `changed` read the root from here. Interpretation is synchronous, so one
// slot (saved and restored around each call) is exact even when interpretations nest.
let root: EvaluationContext | null = null;

jsonLogic.rm_operation('log');
jsonLogic.add_operation('var', function (this: unknown, path: unknown, fallback?: unknown) {
  return readVar(this, path, fallback);
});
jsonLogic.add_operation('rank', rank);
jsonLogic.add_operation('hours_since', (value: unknown) => hoursSince(value, root));
jsonLogic.add_operation('changed', (field: unknown) => isChanged(field, root));
jsonLogic.add_operation('matches', matches);
jsonLogic.add_operation('lower', lower);
jsonLogic.add_operation('lookup', (table: unknown, field: unknown, value: unknown) =>
  lookupValue(root, table, field, value),
);

/**
 * Evaluates `expression` by interpretation with json-logic-js (`data` is the datum of `var`):
 * what `compileExpression` must always agree with. Not for the engine: it is many times slower.
 */
export function interpretExpression(
  expression: unknown,
  context: EvaluationContext,
  data: unknown = context,
): unknown {
  const saved = root;
  root = context;
  try {
    return jsonLogic.apply(expression as jsonLogic.RulesLogic, data);
  } catch (error) {
    throw new ExpressionError(expression, error);
  } finally {
    root = saved;
  }
}

// ---------------------------------------------------------------------------------------------
// The compiled path, which the engine uses.

/** JSON-logic truthiness (an empty array is false), as conditions use it. */
export function isTruthy(value: unknown): boolean {
  return truthy(value);
}

/** The compiled closures of an expression, or the error that refuses it (an unknown operator). */
function compileOrRefuse(expression: unknown): Evaluator | ExpressionError {
  try {
    return compileLogic(expression);
  } catch (error) {
    return new ExpressionError(expression, error);
  }
}

/**
 * Prepares an expression for repeated evaluation: it is compiled here, once, into closures.
 * The expression should have passed the rule checks. An unknown operator is refused here, but
 * the refusal is thrown (an `ExpressionError`) by each evaluation rather than by this call, so
 * that the loader, which compiles before it checks, goes on to report it as a load problem. A
 * runtime failure (such as `*` with no argument) throws an `ExpressionError` too, which the
 * caller records against the rule.
 */
export function compileExpression(expression: unknown): CompiledExpression {
  if (expression === null || typeof expression !== 'object') return () => expression;
  const compiled = compileOrRefuse(expression);
  if (compiled instanceof ExpressionError) {
    return () => {
      throw new ExpressionError(expression, compiled.cause);
    };
  }
  return (context) => {
    try {
      return compiled(context, context);
    } catch (error) {
      throw new ExpressionError(expression, error);
    }
  };
}

// `--explain` evaluates the same sub-expressions of a rule again for every event it explains.
const explained = new WeakMap<object, Evaluator | ExpressionError>();

/** Evaluates an expression once, against an arbitrary datum (used by `--explain`). */
export function evaluateExpression(
  expression: unknown,
  context: EvaluationContext,
  data: unknown = context,
): unknown {
  if (expression === null || typeof expression !== 'object') return expression;
  let compiled = explained.get(expression);
  if (compiled === undefined) {
    compiled = compileOrRefuse(expression);
    explained.set(expression, compiled);
  }
  if (compiled instanceof ExpressionError) throw new ExpressionError(expression, compiled.cause);
  try {
    return compiled(data, context);
  } catch (error) {
    throw new ExpressionError(expression, error);
  }
}

// Long enough for any expression a person writes; an error about a generated one stays readable.
const MAX_DESCRIBED_LENGTH = 2_000;

/**
 * The expression as JSON for an error message. Never throws: an expression nested too deeply
 * for JSON.stringify (the very reason it failed, often) is named as such rather than turning the
 * report of its failure into a second, unexplained stack overflow.
 */
function describeExpression(expression: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(expression);
  } catch {
    return '(an expression nested too deeply to print)';
  }
  if (text === undefined) return String(expression);
  return text.length > MAX_DESCRIBED_LENGTH ? `${text.slice(0, MAX_DESCRIBED_LENGTH)}...` : text;
}

export class ExpressionError extends Error {
  readonly code = 'RULE_EXPRESSION_FAILED';
  constructor(
    readonly expression: unknown,
    cause: unknown,
  ) {
    super(
      `expression ${describeExpression(expression)} failed: ${cause instanceof Error ? cause.message : String(cause)}`,
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
