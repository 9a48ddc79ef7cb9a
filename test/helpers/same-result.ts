// What the evaluator tests mean by "the same result" when they hold the compiled engine against
// json-logic-js (test/engine/differential.test.ts, test/fuzz/evaluator.test.ts).

/**
 * Deep equality where every leaf is compared with Object.is (NaN equals NaN, 0 is not -0), and
 * keys must come in the same order (a value that ends up in a plan is shown as JSON).
 */
export function sameResult(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keysA = Object.keys(a);
  const keysB = Object.keys(b);
  if (keysA.length !== keysB.length) return false;
  return keysA.every(
    (key, i) =>
      keysB[i] === key &&
      sameResult((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]),
  );
}
