// `--explain`: which part of a rule's condition was false, and what the values read were.
// It re-evaluates sub-expressions of `when` against the same context, walking into `and`, `or`,
// `!` and `if` so that the answer names the innermost false comparison.
import {
  argumentsOf,
  type EvaluationContext,
  evaluateExpression,
  isTruthy,
  operatorOf,
} from './expression.js';
import { toPointer } from './problem.js';

const MAX_LINES = 20;

/** The false parts of `when`, at most `maxLines` of them (a last line says how many more). */
export function explainFalse(
  when: unknown,
  context: EvaluationContext,
  maxLines = MAX_LINES,
): string[] {
  const lines: string[] = [];
  walk(when, ['when'], context, lines);
  if (lines.length <= maxLines) return lines;
  const more = lines.length - maxLines + 1;
  return [...lines.slice(0, maxLines - 1), `(and ${more} more false part${more === 1 ? '' : 's'})`];
}

function walk(
  node: unknown,
  path: PropertyKey[],
  context: EvaluationContext,
  lines: string[],
): void {
  const operator = operatorOf(node);
  if (operator === null) {
    lines.push(`${toPointer(path)}: ${show(node)} is false`);
    return;
  }
  const args = argumentsOf(node as Record<string, unknown>, operator);
  const at = (i: number) =>
    Array.isArray((node as Record<string, unknown>)[operator])
      ? [...path, operator, i]
      : [...path, operator];
  if (operator === 'and') {
    const index = args.findIndex((arg) => !isTruthy(evaluateExpression(arg, context)));
    if (index >= 0) {
      walk(args[index], at(index), context, lines);
      return;
    }
  }
  if (operator === 'or') {
    args.forEach((arg, i) => {
      walk(arg, at(i), context, lines);
    });
    return;
  }
  if (operator === '!' && args.length === 1) {
    lines.push(
      `${toPointer(path)}: ${show(node)} is false, because ${show(args[0])} is ${show(evaluateExpression(args[0], context))}`,
    );
    return;
  }
  const operands = args
    .filter((arg) => operatorOf(arg) !== null)
    .map((arg) => `${show(arg)} is ${show(evaluateExpression(arg, context))}`);
  lines.push(
    `${toPointer(path)}: ${show(node)} is false${operands.length ? `, because ${operands.join(' and ')}` : ''}`,
  );
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? 'undefined';
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
