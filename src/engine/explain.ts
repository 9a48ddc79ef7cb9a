// `--explain` and the run records' reasons: which part of a rule's condition was false, and what
// the values read were. It re-evaluates sub-expressions of `when` against the same context,
// walking into `and`, `or`, `!` and `if` so that the answer names the innermost false comparison.
//
// Run records explain every rule whose condition is false, for every event, so the work that
// does not depend on the event (the JSON of each node, its pointer, the shape of the tree) is
// done once per condition and kept beside it; an event only evaluates the parts it walks into
// and prints the values they read.
import {
  argumentsOf,
  compileExpression,
  type EvaluationContext,
  isTruthy,
  operatorOf,
} from './expression.js';
import { toPointer } from './problem.js';

const MAX_LINES = 20;

/** Explains one node of a condition known to be false, appending its lines. */
type Explainer = (context: EvaluationContext, lines: string[]) => void;

/** The explainer of each condition explained so far (conditions are the rules' own objects). */
const explainers = new WeakMap<object, Explainer>();

/** The false parts of `when`, at most `maxLines` of them (a last line says how many more). */
export function explainFalse(
  when: unknown,
  context: EvaluationContext,
  maxLines = MAX_LINES,
): string[] {
  const lines: string[] = [];
  explainerOf(when)(context, lines);
  if (lines.length <= maxLines) return lines;
  const more = lines.length - maxLines + 1;
  return [...lines.slice(0, maxLines - 1), `(and ${more} more false part${more === 1 ? '' : 's'})`];
}

function explainerOf(when: unknown): Explainer {
  if (when === null || typeof when !== 'object') return build(when, ['when']);
  let explainer = explainers.get(when);
  if (explainer === undefined) {
    explainer = build(when, ['when']);
    explainers.set(when, explainer);
  }
  return explainer;
}

/** The JSON of a node, worked out the first time a line needs it. */
function lazyShow(node: unknown): () => string {
  let text: string | undefined;
  return () => {
    text ??= show(node);
    return text;
  };
}

function build(node: unknown, path: PropertyKey[]): Explainer {
  const pointer = toPointer(path);
  const nodeText = lazyShow(node);
  const operator = operatorOf(node);
  if (operator === null) {
    return (_context, lines) => {
      lines.push(`${pointer}: ${nodeText()} is false`);
    };
  }
  const args = argumentsOf(node as Record<string, unknown>, operator);
  const at = (i: number) =>
    Array.isArray((node as Record<string, unknown>)[operator])
      ? [...path, operator, i]
      : [...path, operator];
  // Children are built when first walked into: a large condition explained once per event
  // prepares only the branches that were ever false.
  const children: (Explainer | undefined)[] = [];
  const child = (i: number): Explainer => {
    let explainer = children[i];
    if (explainer === undefined) {
      explainer = build(args[i], at(i));
      children[i] = explainer;
    }
    return explainer;
  };

  if (operator === 'or') {
    return (context, lines) => {
      for (let i = 0; i < args.length; i++) child(i)(context, lines);
    };
  }
  if (operator === '!' && args.length === 1) {
    const argText = lazyShow(args[0]);
    const evaluate = compileExpression(args[0]);
    return (context, lines) => {
      lines.push(
        `${pointer}: ${nodeText()} is false, because ${argText()} is ${show(evaluate(context))}`,
      );
    };
  }
  // The line for the node itself, naming the value of each operand that is an expression.
  const operands = args
    .filter((arg) => operatorOf(arg) !== null)
    .map((arg) => ({ text: lazyShow(arg), evaluate: compileExpression(arg) }));
  const explainSelf: Explainer = (context, lines) => {
    const read = operands.map(({ text, evaluate }) => `${text()} is ${show(evaluate(context))}`);
    lines.push(
      `${pointer}: ${nodeText()} is false${read.length ? `, because ${read.join(' and ')}` : ''}`,
    );
  };
  if (operator === 'and') {
    const conjuncts = args.map((arg) => compileExpression(arg));
    return (context, lines) => {
      const index = conjuncts.findIndex((evaluate) => !isTruthy(evaluate(context)));
      if (index >= 0) child(index)(context, lines);
      else explainSelf(context, lines);
    };
  }
  return explainSelf;
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? 'undefined';
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
