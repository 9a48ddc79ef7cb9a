// Differential test of the expression layer: every standard operator must give exactly what a
// pristine json-logic-js gives (same value, same thrown message), over a seeded random workload
// and a table of known-tricky cases. The project deliberately differs only in `var` on the
// forbidden names and on inherited properties, so the data here never contains them.
import { createRequire } from 'node:module';
import projectJsonLogic from 'json-logic-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  compileExpression,
  type EvaluationContext,
  ExpressionError,
  STANDARD_OPERATORS,
} from '../../src/engine/expression.js';
import { seededRandom } from '../../src/server/faults.js';

// expression.ts mutates the json-logic-js instance it imports; a second instance comes from
// emptying the CommonJS cache entry and requiring the module again.
const require = createRequire(import.meta.url);
delete require.cache[require.resolve('json-logic-js')];
const pristine = require('json-logic-js') as typeof projectJsonLogic;

const SEED = 0x5eed_2026;
const EXPRESSIONS = 6_000;
const DATUMS = 40;
const MAX_DEPTH = 4;

// ---------------------------------------------------------------------------------------------
// Outcomes

type Outcome = { kind: 'value'; value: unknown } | { kind: 'thrown'; message: string };

function ours(expression: unknown, datum: unknown): Outcome {
  try {
    return { kind: 'value', value: compileExpression(expression)(datum as EvaluationContext) };
  } catch (error) {
    if (!(error instanceof ExpressionError)) {
      return { kind: 'thrown', message: `not an ExpressionError: ${String(error)}` };
    }
    return { kind: 'thrown', message: messageOf(error.cause) };
  }
}

function reference(expression: unknown, datum: unknown): Outcome {
  try {
    return { kind: 'value', value: pristine.apply(expression as never, datum) };
  } catch (error) {
    return { kind: 'thrown', message: messageOf(error) };
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Deep equality where every leaf is compared with Object.is (NaN equals NaN, 0 is not -0). */
function sameResult(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keysA = Object.keys(a);
  const keysB = Object.keys(b);
  if (keysA.length !== keysB.length) return false;
  return keysA.every(
    (key) =>
      Object.hasOwn(b, key) &&
      sameResult((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]),
  );
}

function sameOutcome(a: Outcome, b: Outcome): boolean {
  if (a.kind === 'thrown') return b.kind === 'thrown' && a.message === b.message;
  return b.kind === 'value' && sameResult(a.value, b.value);
}

/** JSON with the values JSON cannot spell (NaN, Infinity, -0, undefined) made visible. */
function show(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
    if (Object.is(v, -0)) return '-0';
    if (v === undefined) return 'undefined';
    return v;
  });
}

function kindOf(outcome: Outcome): string {
  if (outcome.kind === 'thrown') return 'thrown';
  const { value } = outcome;
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number' && Number.isNaN(value)) return 'NaN';
  return typeof value;
}

// ---------------------------------------------------------------------------------------------
// The seeded workload

// mulberry32, the PRNG the fault injector uses: a failure can be replayed from the seed.
const random = seededRandom(SEED);
const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
const chance = (p: number) => random() < p;
const pick = <T>(items: readonly T[]): T => items[int(0, items.length - 1)] as T;
const times = <T>(n: number, make: (index: number) => T): T[] =>
  Array.from({ length: n }, (_, index) => make(index));

// Never __proto__, constructor or prototype, and no inherited names (toString...): `length` is an
// own property of arrays and strings, so both implementations read it the same way.
const KEYS = ['a', 'b', 'c', 'n', 's', 'list', 'obj', '0', '1', 'length'] as const;
const PATH_SEGMENTS = [...KEYS, 'missing', 'x', '2', '5', '01', ''] as const;
const STRINGS = [
  '',
  'a',
  'b',
  'A',
  'abc',
  'abcabc',
  'a,b',
  '0',
  '1',
  '2',
  '10',
  '2.5',
  '-3',
  ' 4 ',
  '1e2',
  '0x10',
  'true',
  'false',
  'null',
  'NaN',
  'Infinity',
] as const;
const NUMBERS = [0, -0, 1, 2, 3, 7, 10, 100, -1, -2.5, 0.5, 1e21, 2 ** 53] as const;

type Scope = 'root' | 'element' | 'reduce';

function scalar(): unknown {
  const roll = random();
  if (roll < 0.35) return pick(NUMBERS);
  if (roll < 0.75) return pick(STRINGS);
  if (roll < 0.9) return chance(0.5);
  return null;
}

function value(depth: number): unknown {
  const roll = random();
  if (depth <= 0 || roll < 0.6) return scalar();
  if (roll < 0.8) return times(int(0, 4), () => value(depth - 1));
  return object(depth - 1, int(0, 4));
}

function object(depth: number, size: number): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (let i = 0; i < size; i += 1) result[pick(KEYS)] = value(depth);
  return result;
}

function datum(): Record<string, unknown> {
  const result = object(3, int(2, 6));
  // Keys that usually hold the kind their name suggests, so paths often land on something.
  if (chance(0.8)) result.list = times(int(0, 5), () => (chance(0.7) ? scalar() : value(2)));
  if (chance(0.7)) result.obj = object(2, int(1, 5));
  if (chance(0.7)) result.n = pick(NUMBERS);
  if (chance(0.7)) result.s = pick(STRINGS);
  if (chance(0.3)) result.c = null;
  return result;
}

function varPath(scope: Scope): string | number {
  if (scope === 'reduce' && chance(0.8)) {
    return pick(['current', 'accumulator', 'current.a', 'current.0', 'accumulator.length']);
  }
  if (chance(scope === 'element' ? 0.4 : 0.08)) return '';
  if (chance(0.05)) return int(0, 2);
  return times(int(1, 3), () => pick(PATH_SEGMENTS)).join('.');
}

function literalArray(): unknown[] {
  return chance(0.3) ? [] : times(int(1, 4), () => (chance(0.85) ? scalar() : [scalar()]));
}

function leaf(scope: Scope): unknown {
  const roll = random();
  if (roll < 0.5) return { var: varPath(scope) };
  if (roll < 0.9) return scalar();
  return literalArray();
}

/** An argument that is usually an array (what map, filter, all, none, some, reduce scan). */
function arrayArgument(depth: number, scope: Scope): unknown {
  const roll = random();
  if (roll < 0.3) return { var: pick(['list', 'obj.list', 'list.0', 'obj', 's', 'missing', '']) };
  if (roll < 0.6) return literalArray();
  if (roll < 0.7) return { merge: [literalArray(), { var: 'list' }] };
  if (roll < 0.8) return { map: [{ var: 'list' }, expression(depth - 1, 'element')] };
  return expression(depth, scope);
}

function args(count: number, depth: number, scope: Scope): unknown[] {
  return times(count, () => expression(depth, scope));
}

function expression(depth: number, scope: Scope): unknown {
  if (depth <= 0 || chance(0.2)) return leaf(scope);
  const operator = pick(STANDARD_OPERATORS);
  const d = depth - 1;
  switch (operator) {
    case 'var': {
      const roll = random();
      if (roll < 0.55) return { var: varPath(scope) };
      if (roll < 0.75) return { var: [varPath(scope), chance(0.5) ? scalar() : leaf(scope)] };
      if (roll < 0.85) return { var: [varPath(scope)] };
      return { var: expression(d, scope) };
    }
    case 'missing': {
      const paths = () => times(int(0, 3), () => String(varPath('root')));
      const roll = random();
      if (roll < 0.4) return { missing: paths() };
      if (roll < 0.65) return { missing: [paths()] };
      if (roll < 0.8) return { missing: String(varPath('root')) };
      if (roll < 0.9) return { missing: { merge: [paths(), paths()] } };
      return { missing: { if: [expression(d, scope), paths(), paths()] } };
    }
    case 'missing_some': {
      const need = chance(0.8) ? int(0, 3) : expression(d, scope);
      const paths = times(int(0, 4), () => String(varPath('root')));
      return { missing_some: [need, chance(0.9) ? paths : { merge: [paths] }] };
    }
    case 'if':
    case '?:':
      return { [operator]: args(int(0, 7), d, scope) };
    case '!':
    case '!!':
      return { [operator]: chance(0.5) ? expression(d, scope) : [expression(d, scope)] };
    case 'or':
    case 'and':
      return { [operator]: args(int(0, 4), d, scope) };
    case '<':
    case '<=':
      return { [operator]: args(int(2, 3), d, scope) };
    case 'max':
    case 'min':
    case 'cat':
      return { [operator]: args(int(0, 4), d, scope) };
    case '+':
    case '*':
      return { [operator]: args(int(0, 3), d, scope) };
    case '-':
      return { [operator]: chance(0.3) ? expression(d, scope) : args(int(1, 2), d, scope) };
    case 'map':
    case 'filter':
    case 'all':
    case 'none':
    case 'some':
      return {
        [operator]: chance(0.95)
          ? [arrayArgument(d, scope), expression(d, 'element')]
          : [arrayArgument(d, scope)],
      };
    case 'reduce': {
      const body = expression(d, 'reduce');
      const list = arrayArgument(d, scope);
      return { reduce: chance(0.7) ? [list, body, expression(d, scope)] : [list, body] };
    }
    case 'merge':
      return {
        merge: times(int(0, 3), () => (chance(0.4) ? literalArray() : expression(d, scope))),
      };
    case 'in': {
      const roll = random();
      const haystack =
        roll < 0.35
          ? pick(STRINGS)
          : roll < 0.6
            ? literalArray()
            : roll < 0.8
              ? { var: pick(['s', 'list', 'obj', 'n', 'obj.s', 'missing']) }
              : expression(d, scope);
      return { in: [chance(0.6) ? scalar() : expression(d, scope), haystack] };
    }
    case 'substr': {
      const start = chance(0.8) ? int(-4, 4) : expression(d, scope);
      const source = expression(d, scope);
      return { substr: chance(0.5) ? [source, start] : [source, start, int(-4, 4)] };
    }
    default:
      // ==, ===, !=, !==, >, >=, /, %: two arguments.
      return { [operator]: args(2, d, scope) };
  }
}

/** How many times each operator occurs in an expression tree. */
function countOperators(node: unknown, counts: Map<string, number>): void {
  if (Array.isArray(node)) {
    for (const item of node) countOperators(item, counts);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const keys = Object.keys(node);
  if (keys.length !== 1) return;
  const operator = keys[0] as string;
  counts.set(operator, (counts.get(operator) ?? 0) + 1);
  countOperators((node as Record<string, unknown>)[operator], counts);
}

// The workload is built when the file loads, so the test names can report its size.
const datums = times(DATUMS, datum);
const workload = times(EXPRESSIONS, (i) => ({
  expression: expression(MAX_DEPTH, 'root'),
  datum: datums[i % DATUMS],
}));

// ---------------------------------------------------------------------------------------------

describe('the pristine json-logic-js instance', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('is a different instance from the one the project mutates', () => {
    expect(pristine).not.toBe(projectJsonLogic);
    expect(projectJsonLogic.apply({ rank: 'high' } as never)).toBe(3);
    expect(() => pristine.apply({ rank: 'high' } as never)).toThrow('Unrecognized operation rank');
  });

  it('still has log, which the project removed', () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    expect(pristine.apply({ log: 'probe' } as never)).toBe('probe');
    expect(log).toHaveBeenCalledWith('probe');
    expect(() => projectJsonLogic.apply({ log: 'probe' } as never)).toThrow(
      'Unrecognized operation log',
    );
    expect(log).toHaveBeenCalledTimes(1);
  });

  it('still reads inherited properties through var, which the project does not', () => {
    expect(pristine.apply({ var: 'toString' }, {})).toBe(Object.prototype.toString);
    expect(projectJsonLogic.apply({ var: 'toString' }, {})).toBe(null);
  });
});

describe('compileExpression against a pristine json-logic-js', () => {
  const operatorCounts = new Map<string, number>();
  for (const { expression } of workload) countOperators(expression, operatorCounts);

  it(`agrees on ${workload.length} random expressions over ${DATUMS} data objects (seed 0x${SEED.toString(16)})`, () => {
    const mismatches: string[] = [];
    const kinds = new Map<string, number>();
    for (const { expression, datum } of workload) {
      const expected = reference(expression, datum);
      const actual = ours(expression, datum);
      kinds.set(kindOf(expected), (kinds.get(kindOf(expected)) ?? 0) + 1);
      if (!sameOutcome(actual, expected)) {
        mismatches.push(
          `${show(expression)} on ${show(datum)}: ours ${show(actual)}, json-logic-js ${show(expected)}`,
        );
      }
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
    expect(mismatches.length).toBe(0);
    // The workload is not degenerate: every kind of outcome occurs often enough to mean something.
    for (const kind of ['thrown', 'null', 'boolean', 'number', 'NaN', 'string', 'array']) {
      expect(kinds.get(kind) ?? 0, kind).toBeGreaterThanOrEqual(30);
    }
  });

  it.each(STANDARD_OPERATORS.map((operator) => [operator]))(
    'exercises %s at least 200 times in the workload',
    (operator) => {
      expect(operatorCounts.get(operator) ?? 0).toBeGreaterThanOrEqual(200);
    },
  );

  it('exercises all, none and some on empty arrays', () => {
    const empty = workload.filter(({ expression }) => {
      if (expression === null || typeof expression !== 'object') return false;
      const operator = Object.keys(expression)[0] ?? '';
      const operands = (expression as Record<string, unknown>)[operator];
      return (
        ['all', 'none', 'some'].includes(operator) &&
        Array.isArray(operands) &&
        sameResult(operands[0], [])
      );
    });
    expect(empty.length).toBeGreaterThanOrEqual(20);
  });
});

/** [expression, data, expected value or {thrown: message}] */
const TRICKY: [unknown, unknown, unknown][] = [
  [{ '==': [1, '1'] }, {}, true],
  [{ '===': [1, '1'] }, {}, false],
  [{ '==': [null, 0] }, {}, false],
  [{ '==': [[], false] }, {}, true],
  [{ '==': [[1], 1] }, {}, true],
  [{ '!=': ['', 0] }, {}, false],
  [{ '+': ['1', '2'] }, {}, 3],
  [{ '+': [] }, {}, 0],
  [{ '+': ['a'] }, {}, Number.NaN],
  [{ '+': [' 4 ', '1e2'] }, {}, 104],
  [{ '*': ['2', '3'] }, {}, 6],
  [{ '-': ['5', '2'] }, {}, 3],
  [{ '-': [5] }, {}, -5],
  [{ '-': 0 }, {}, -0],
  [{ '/': [1, 0] }, {}, Number.POSITIVE_INFINITY],
  [{ '%': [5, 0] }, {}, Number.NaN],
  [{ max: [] }, {}, Number.NEGATIVE_INFINITY],
  [{ min: [] }, {}, Number.POSITIVE_INFINITY],
  [{ max: ['3', 2] }, {}, 3],
  [{ max: ['a', 1] }, {}, Number.NaN],
  [{ '<': [1, '2', 3] }, {}, true],
  [{ '<=': [3, 2, 1] }, {}, false],
  [{ in: ['a', 'abc'] }, {}, true],
  [{ in: ['b', ['a', 'b']] }, {}, true],
  [{ in: [1, ['1']] }, {}, false],
  [{ in: ['1', 123] }, {}, false],
  [{ in: ['a', null] }, {}, false],
  [{ cat: ['a', null, 1, [1, 2], true] }, {}, 'a11,2true'],
  [{ cat: [] }, {}, ''],
  [{ substr: ['jsonlogic', -5] }, {}, 'logic'],
  [{ substr: ['jsonlogic', 1, -1] }, {}, 'sonlogi'],
  [{ substr: [null, 0, 2] }, {}, 'nu'],
  [{ all: [[], { var: '' }] }, {}, false],
  [{ none: [[], { var: '' }] }, {}, true],
  [{ some: [[], { var: '' }] }, {}, false],
  [{ all: ['abc', { var: '' }] }, {}, false],
  [{ all: [[1, 0], { var: '' }] }, {}, false],
  [{ map: ['abc', { var: '' }] }, {}, []],
  [{ filter: [[0, 1, '', 'a', [], [0]], { var: '' }] }, {}, [1, 'a', [0]]],
  [{ '!!': [[]] }, {}, false],
  [{ '!!': ['0'] }, {}, true],
  [{ '!': [[]] }, {}, true],
  [{ '!': [] }, {}, true],
  [{ and: [] }, {}, undefined],
  [{ or: [0, '', []] }, {}, []],
  [{ and: [1, 'a', 0, 2] }, {}, 0],
  [{ if: [] }, {}, null],
  [{ if: [false, 1] }, {}, null],
  [{ if: [[], 'a', 0, 'b', 'c'] }, {}, 'c'],
  [{ '?:': [true, 'yes', 'no'] }, {}, 'yes'],
  [{ var: ['a.b', 'default'] }, { a: {} }, 'default'],
  [{ var: ['a.b', 'default'] }, { a: { b: 0 } }, 0],
  [{ var: ['a.b', 'default'] }, { a: { b: null } }, null],
  [{ var: ['a.b', 'default'] }, { a: null }, 'default'],
  [{ var: ['a.b.c', 'default'] }, { a: 'text' }, 'default'],
  [{ var: 'a.1' }, { a: 'xyz' }, 'y'],
  [{ var: 1 }, [10, 20], 20],
  [{ var: 'length' }, 'abc', 3],
  [{ var: '' }, 5, 5],
  [{ var: 'a..b' }, { a: { '': { b: 1 } } }, 1],
  [{ missing: ['a', 'b'] }, { a: '' }, ['a', 'b']],
  [{ missing: [['a', 'b']] }, { a: 0, b: false }, []],
  [{ missing_some: [1, ['a', 'b']] }, { a: 1 }, []],
  [{ missing_some: [1, ['a', 'b']] }, {}, ['a', 'b']],
  [{ missing_some: [2, ['a', 'b', 'c']] }, { a: 1 }, ['b', 'c']],
  [{ missing_some: [0, []] }, {}, []],
  [{ merge: [1, [2, [3]], null] }, {}, [1, 2, [3], null]],
  [{ merge: [] }, {}, []],
  [{ reduce: [[], { '+': [{ var: 'current' }, { var: 'accumulator' }] }, 0] }, {}, 0],
  [{ reduce: ['abc', { var: 'current' }, 5] }, {}, 5],
  [{ reduce: [[1, 2, 3], { '+': [{ var: 'current' }, { var: 'accumulator' }] }] }, {}, NaN],
  [
    { reduce: [{ var: 'xs' }, { cat: [{ var: 'accumulator' }, { var: 'current' }] }, ''] },
    { xs: ['a', 'b'] },
    'ab',
  ],
  [{ '*': [] }, {}, { thrown: 'TypeError: Reduce of empty array with no initial value' }],
  [
    { missing_some: [1, null] },
    {},
    { thrown: "TypeError: Cannot read properties of null (reading 'length')" },
  ],
  [
    { in: ['a', { var: 'o' }] },
    { o: { indexOf: 1 } },
    { thrown: 'TypeError: b.indexOf is not a function' },
  ],
];

describe('known-tricky expressions', () => {
  it.each(
    TRICKY.map(([expression, data, expected]) => [
      show(expression),
      show(data),
      show(expected),
      expression,
      data,
      expected,
    ]),
  )('evaluates %s on %s to %s, as json-logic-js does', (_e, _d, _x, expression, data, expected) => {
    const expectedOutcome: Outcome =
      expected !== null && typeof expected === 'object' && 'thrown' in expected
        ? { kind: 'thrown', message: String(expected.thrown) }
        : { kind: 'value', value: expected };
    const fromReference = reference(expression, data);
    const fromOurs = ours(expression, data);
    expect(show(fromReference)).toBe(show(expectedOutcome));
    expect(sameOutcome(fromReference, expectedOutcome)).toBe(true);
    expect(show(fromOurs)).toBe(show(fromReference));
    expect(sameOutcome(fromOurs, fromReference)).toBe(true);
  });
});
