// Differential test of the expression layer: the compiled closures (compileExpression, through
// compile.ts) must give exactly what a pristine json-logic-js 2.0.5 gives, the same value or the
// same thrown message, for every standard operator, over a seeded random workload of expressions
// and ITSM-like objects and a table of known-tricky cases. The project deliberately differs only
// in `var` on the forbidden names and on inherited properties, so the data of that comparison
// never contains them; a second workload, with the project's operators, forbidden and inherited
// names, compares the compiled closures with the project's own json-logic-js interpreter.
//
// Results are compared with Object.is at every leaf of a deep comparison: NaN equals NaN, 0 and
// -0 differ, undefined differs from null and from a missing key, an array differs from an object
// with the same keys. That is stricter than comparing JSON, which prints NaN as null, -0 as 0 and
// drops undefined, and would hide differences a rule can see ({"==": [x, null]}, {"/": [1, x]});
// object keys must also come in the same order, as they would print in a plan.
// Failures are printed with those values made visible (see `show`).
import { createRequire } from 'node:module';
import projectJsonLogic from 'json-logic-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  compileExpression,
  ENGINE_OPERATORS,
  type EvaluationContext,
  ExpressionError,
  interpretExpression,
  isTruthy,
  PATH_MEMO,
  STANDARD_OPERATORS,
} from '../../src/engine/expression.js';
import { seededRandom } from '../../src/server/faults.js';
import { sameResult } from '../helpers/same-result.js';

// expression.ts mutates the json-logic-js instance it imports; a second instance comes from
// emptying the CommonJS cache entry and requiring the module again.
const require = createRequire(import.meta.url);
delete require.cache[require.resolve('json-logic-js')];
const pristine = require('json-logic-js') as typeof projectJsonLogic;

const SEED = 0x5eed_2026;
const EXPRESSIONS = 12_000;
const PROJECT_EXPRESSIONS = 4_000;
const DATUMS = 60;
const MAX_DEPTH = 4;

// ---------------------------------------------------------------------------------------------
// Outcomes

type Outcome = { kind: 'value'; value: unknown } | { kind: 'thrown'; message: string };

function ours(expression: unknown, datum: unknown): Outcome {
  try {
    return { kind: 'value', value: compileExpression(expression)(datum as EvaluationContext) };
  } catch (error) {
    return thrownBy(error);
  }
}

function reference(expression: unknown, datum: unknown): Outcome {
  try {
    return { kind: 'value', value: pristine.apply(expression as never, datum) };
  } catch (error) {
    return { kind: 'thrown', message: messageOf(error) };
  }
}

/** The project's own interpreter: json-logic-js with the project's operators and safe `var`. */
function interpreted(expression: unknown, datum: unknown): Outcome {
  try {
    return { kind: 'value', value: interpretExpression(expression, datum as EvaluationContext) };
  } catch (error) {
    return thrownBy(error);
  }
}

function thrownBy(error: unknown): Outcome {
  if (!(error instanceof ExpressionError)) {
    return { kind: 'thrown', message: `not an ExpressionError: ${String(error)}` };
  }
  return { kind: 'thrown', message: messageOf(error.cause) };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
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
// The seeded workload: ITSM-like objects, and expressions that read them

// mulberry32, the PRNG the fault injector uses: a failure can be replayed from the seed.
const random = seededRandom(SEED);
const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
const chance = (p: number) => random() < p;
const pick = <T>(items: readonly T[]): T => items[int(0, items.length - 1)] as T;
const times = <T>(n: number, make: (index: number) => T): T[] =>
  Array.from({ length: n }, (_, index) => make(index));

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
  'high',
  'critical',
  'disk full on db-01',
  '2026-03-10T09:00:00Z',
] as const;
const NUMBERS = [0, -0, 1, 2, 3, 7, 10, 100, 104, -1, -2.5, 0.5, 1e21, 2 ** 53] as const;
const LEVELS = ['low', 'medium', 'high', 'critical'] as const;
const FIELDS = [
  'id',
  'priority',
  'impact',
  'urgency',
  'status',
  'category',
  'description',
  'escalation',
  'active',
  'due_date',
  'tags',
  'assignee',
  'watchers',
  'counts',
  'raw',
] as const;
/** Keys of the elements of `watchers` and of `assignee` (what element-scoped paths read). */
const MEMBER_KEYS = ['id', 'name', 'email', 'level', 'tags', '0', 'length'] as const;

type Scope = 'root' | 'element' | 'reduce';

function scalar(): unknown {
  const roll = random();
  if (roll < 0.35) return pick(NUMBERS);
  if (roll < 0.75) return pick(STRINGS);
  if (roll < 0.9) return chance(0.5);
  return null;
}

/** Any JSON value: the shape a field has when the data is not what the rule expects. */
function value(depth: number): unknown {
  const roll = random();
  if (depth <= 0 || roll < 0.6) return scalar();
  if (roll < 0.8) return times(int(0, 4), () => value(depth - 1));
  const result: Record<string, unknown> = {};
  for (let i = int(0, 4); i > 0; i -= 1) result[pick(MEMBER_KEYS)] = value(depth - 1);
  return result;
}

function member(): Record<string, unknown> {
  const id = int(1, 9);
  const result: Record<string, unknown> = { id: `u-${id}`, name: `User ${id}` };
  if (chance(0.8)) result.email = chance(0.9) ? `u${id}@example.com` : scalar();
  if (chance(0.7)) result.level = chance(0.7) ? pick(LEVELS) : scalar();
  if (chance(0.5)) result.tags = times(int(0, 3), () => (chance(0.8) ? pick(STRINGS) : scalar()));
  return result;
}

/** The usual value of a field, in the forms ITSM data comes in (numbers as strings...). */
function typical(field: (typeof FIELDS)[number], index: number): unknown {
  switch (field) {
    case 'id':
      return `inc-${index}`;
    case 'priority':
    case 'impact':
    case 'urgency':
      return pick(LEVELS);
    case 'status':
      return pick([104, '104', 'new', 'in_progress', 1, '1']);
    case 'category':
      return pick(['network', 'Network', 'disk', 'db', '']);
    case 'description':
      return pick(['disk full on db-01', 'VPN down', '', 'abc']);
    case 'escalation':
      return pick([0, 1, 2, '2', '3', -1]);
    case 'active':
      return pick([true, false, 'true', 0, 1]);
    case 'due_date':
      return pick(['2026-03-10T09:00:00Z', '2026-03-09', 'not a date', '']);
    case 'tags':
      return times(int(0, 4), () => (chance(0.7) ? pick(STRINGS) : scalar()));
    case 'assignee':
      return member();
    case 'watchers':
      return times(int(0, 4), () => (chance(0.85) ? member() : value(1)));
    case 'counts':
      return times(int(0, 5), () => pick([...NUMBERS, '1', '2.5', ' 4 ', 'x', null]));
    default:
      return value(2);
  }
}

function incident(index: number): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const field of FIELDS) {
    const roll = random();
    // A field is usually there with its usual kind of value, sometimes null, anything, or absent.
    if (roll < 0.65) result[field] = typical(field, index);
    else if (roll < 0.75) result[field] = null;
    else if (roll < 0.9) result[field] = value(2);
  }
  return result;
}

function datum(index: number): Record<string, unknown> {
  const object = incident(index);
  const result: Record<string, unknown> = {
    object,
    previous: chance(0.8) ? incident(index) : null,
    changed: times(int(0, 4), () => pick(FIELDS)),
    now: '2026-03-10T12:00:00Z',
    event: { id: `evt-${index}`, type: pick(['add', 'update', 'delete']), account: 1 },
  };
  // Short names that hold any kind of value, so that operators meet every kind of operand.
  if (chance(0.8)) result.list = times(int(0, 5), () => (chance(0.7) ? scalar() : value(2)));
  if (chance(0.7)) result.n = pick([...NUMBERS, '3', '2.5', null]);
  if (chance(0.7)) result.s = pick(STRINGS);
  return result;
}

const ROOT_PATHS = [
  'object',
  'previous',
  'changed',
  'changed.0',
  'now',
  'event.type',
  'event.account',
  'list',
  'list.0',
  'list.1',
  'n',
  's',
  's.length',
  'missing',
  'object.missing',
  'object.tags.0',
  'object.tags.length',
  'object.watchers.0.email',
  'object.assignee.email',
  'object.assignee.level',
  'object.raw.0',
  'object.raw.id',
  'previous.priority',
  'previous.status',
  'object.description.length',
  'object.description.0',
  'object.01',
  'list.5',
  '',
] as const;

function varPath(scope: Scope): string | number {
  if (scope === 'reduce' && chance(0.8)) {
    return pick(['current', 'accumulator', 'current.id', 'current.0', 'accumulator.length']);
  }
  if (scope === 'element') {
    if (chance(0.4)) return '';
    if (chance(0.05)) return int(0, 2);
    return pick(MEMBER_KEYS);
  }
  if (chance(0.05)) return int(0, 2);
  if (chance(0.55)) return `object.${pick(FIELDS)}`;
  return pick(ROOT_PATHS);
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
  if (roll < 0.3) {
    return {
      var:
        scope === 'element'
          ? pick(['tags', '', 'email', 'missing'])
          : pick([
              'object.tags',
              'object.watchers',
              'object.counts',
              'changed',
              'list',
              'object.raw',
              'object.assignee',
              's',
              'missing',
              '',
            ]),
    };
  }
  if (roll < 0.6) return literalArray();
  if (roll < 0.7)
    return { merge: [literalArray(), { var: scope === 'element' ? 'tags' : 'list' }] };
  if (roll < 0.8) {
    return {
      map: [
        { var: scope === 'element' ? 'tags' : 'object.watchers' },
        expression(depth - 1, 'element'),
      ],
    };
  }
  return expression(depth, scope);
}

function args(count: number, depth: number, scope: Scope): unknown[] {
  return times(count, () => expression(depth, scope));
}

let operators: readonly string[] = STANDARD_OPERATORS;

function expression(depth: number, scope: Scope): unknown {
  if (depth <= 0 || chance(0.2)) return leaf(scope);
  const operator = pick(operators);
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
        roll < 0.3
          ? pick(STRINGS)
          : roll < 0.5
            ? literalArray()
            : roll < 0.6
              ? times(int(9, 12), () => scalar())
              : roll < 0.8
                ? { var: pick(['s', 'list', 'object.tags', 'n', 'object.description', 'missing']) }
                : expression(d, scope);
      return { in: [chance(0.6) ? scalar() : expression(d, scope), haystack] };
    }
    case 'substr': {
      const start = chance(0.8) ? int(-4, 4) : expression(d, scope);
      const source = expression(d, scope);
      return { substr: chance(0.5) ? [source, start] : [source, start, int(-4, 4)] };
    }
    case 'rank':
    case 'lower':
    case 'hours_since':
      return { [operator]: chance(0.5) ? expression(d, scope) : [leaf(scope)] };
    case 'changed':
      return { changed: chance(0.6) ? pick(FIELDS) : expression(d, scope) };
    case 'matches':
      return {
        matches: [
          expression(d, scope),
          // The common syntax (RE2 runs it as RegExp would; src/engine/expression.test.ts
          // compares the two), and one pattern RE2 refuses, which matches answers false.
          pick([
            '^a',
            'disk',
            '\\d+',
            '^$',
            'HIGH',
            'e.*1',
            '\\bdb-\\d{2}\\b',
            '^(inc|prb)',
            '[a-z]+\\s',
            '(?:ab)+$',
            '(a)\\1',
          ]),
          ...(chance(0.4) ? ['i'] : []),
        ],
      };
    default:
      // ==, ===, !=, !==, >, >=, /, %: two arguments.
      return { [operator]: args(2, d, scope) };
  }
}

/** How many times each operator occurs in an expression tree (`nested`: inside an iteration). */
function countOperators(node: unknown, counts: Map<string, number>, insideIteration = false): void {
  if (Array.isArray(node)) {
    for (const item of node) countOperators(item, counts, insideIteration);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const keys = Object.keys(node);
  if (keys.length !== 1) return;
  const operator = keys[0] as string;
  const iteration = ITERATIONS.includes(operator);
  counts.set(operator, (counts.get(operator) ?? 0) + 1);
  if (iteration && insideIteration) counts.set('nested', (counts.get('nested') ?? 0) + 1);
  countOperators((node as Record<string, unknown>)[operator], counts, insideIteration || iteration);
}

const ITERATIONS = ['map', 'filter', 'reduce', 'all', 'none', 'some'];

// The workloads are built when the file loads, so the test names can report their size.
const datums = times(DATUMS, datum);
const workload = times(EXPRESSIONS, (i) => ({
  expression: expression(MAX_DEPTH, 'root'),
  datum: datums[i % DATUMS],
}));

// The second workload adds the project's operators, and data with own properties named like
// the forbidden and the inherited ones, as JSON.parse creates them.
operators = [...STANDARD_OPERATORS, ...ENGINE_OPERATORS];
const hostile = JSON.parse(
  '{"__proto__": {"x": 1}, "constructor": "own", "prototype": [1], "toString": "own", "valueOf": 2}',
);
const projectDatums = datums.map((d, i) =>
  i % 3 === 0 ? { ...d, object: { ...(d.object as object), ...hostile } } : d,
);
const HOSTILE_PATHS = [
  '__proto__',
  'constructor',
  'object.__proto__',
  'object.__proto__.x',
  'object.constructor',
  'object.prototype.0',
  'object.toString',
  'object.valueOf',
  'object.tags.map',
  'object.description.trim',
  'toString',
  'hasOwnProperty',
];
const projectWorkload = times(PROJECT_EXPRESSIONS, (i) => ({
  expression: chance(0.15)
    ? { var: [pick(HOSTILE_PATHS), chance(0.5) ? 'fallback' : null] }
    : expression(MAX_DEPTH, 'root'),
  datum: projectDatums[i % DATUMS],
}));
operators = STANDARD_OPERATORS;

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

  it(`agrees on ${workload.length} random expressions over ${DATUMS} ITSM-like objects (seed 0x${SEED.toString(16)})`, () => {
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
      expect(kinds.get(kind) ?? 0, kind).toBeGreaterThanOrEqual(60);
    }
  });

  it('agrees when the expressions on one datum share its memo of paths, as the rules of an event do', () => {
    // One context per datum, carrying a memo (as createContext gives) that every expression on
    // that datum fills and reads: the 2nd expression reading object.priority gets the memo's value.
    const withMemo = new Map<unknown, unknown>();
    const mismatches: string[] = [];
    for (const { expression, datum } of workload) {
      let context = withMemo.get(datum);
      if (context === undefined) {
        context =
          datum !== null && typeof datum === 'object' && !Array.isArray(datum)
            ? { ...datum, [PATH_MEMO]: [] }
            : datum;
        withMemo.set(datum, context);
      }
      const expected = reference(expression, datum);
      const actual = ours(expression, context);
      if (!sameOutcome(actual, expected)) {
        mismatches.push(
          `${show(expression)} on ${show(datum)}: ours with the memo ${show(actual)}, json-logic-js ${show(expected)}`,
        );
      }
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
    expect(mismatches.length).toBe(0);
    // The memo was really used: under the same memo, a path already read answers from it even
    // after the object is swapped (which never happens within an event, and shows where the
    // answer came from); under a new memo it is read again.
    const read = compileExpression({ var: 'object.priority' });
    for (const context of withMemo.values()) {
      const first = read(context as EvaluationContext);
      const swapped = { ...(context as object), object: { priority: 'swapped' } };
      expect(read(swapped as unknown as EvaluationContext)).toBe(first);
      expect(read({ ...swapped, [PATH_MEMO]: [] } as unknown as EvaluationContext)).toBe('swapped');
    }
  });

  it.each(STANDARD_OPERATORS.map((operator) => [operator]))(
    'exercises %s at least 400 times in the workload',
    (operator) => {
      expect(operatorCounts.get(operator) ?? 0).toBeGreaterThanOrEqual(400);
    },
  );

  it('exercises iteration operators inside iteration operators at least 300 times', () => {
    expect(operatorCounts.get('nested') ?? 0).toBeGreaterThanOrEqual(300);
  });

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
    expect(empty.length).toBeGreaterThanOrEqual(40);
  });
});

describe("compileExpression against the project's json-logic-js interpreter", () => {
  it(`agrees on ${projectWorkload.length} random expressions with the project's operators and forbidden or inherited names`, () => {
    const mismatches: string[] = [];
    const counts = new Map<string, number>();
    for (const { expression, datum } of projectWorkload) {
      countOperators(expression, counts);
      const expected = interpreted(expression, datum);
      const actual = ours(expression, datum);
      if (!sameOutcome(actual, expected)) {
        mismatches.push(
          `${show(expression)} on ${show(datum)}: compiled ${show(actual)}, interpreted ${show(expected)}`,
        );
      }
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
    expect(mismatches.length).toBe(0);
    for (const operator of ENGINE_OPERATORS) {
      expect(counts.get(operator) ?? 0, operator).toBeGreaterThanOrEqual(100);
    }
  });
});

describe('the compiled path', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('never calls json-logic-js while evaluating', () => {
    const compiled = [...workload, ...projectWorkload].map(({ expression, datum }) => ({
      evaluate: compileExpression(expression),
      datum: datum as EvaluationContext,
    }));
    const apply = vi.spyOn(projectJsonLogic, 'apply');
    const truthy = vi.spyOn(projectJsonLogic, 'truthy');
    let evaluated = 0;
    for (const { evaluate, datum } of compiled) {
      try {
        isTruthy(evaluate(datum));
        evaluated += 1;
      } catch (error) {
        if (!(error instanceof ExpressionError)) throw error;
      }
    }
    expect(evaluated).toBeGreaterThan(10_000);
    expect(apply).not.toHaveBeenCalled();
    expect(truthy).not.toHaveBeenCalled();
    // The spies do see the interpreter: had evaluation gone through it, they would have caught it.
    interpretExpression({ '==': [{ var: 'n' }, 1] }, { n: 1 } as never);
    expect(apply).toHaveBeenCalled();
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

// ---------------------------------------------------------------------------------------------
// The specialised leaves: a comparison or `in` between a `var` path and a constant, and `!`/`!!`
// of a path, are compiled to one closure each that compares directly (typed by the constant).
// Every operator, with the path on either side, meets every kind of value a field can hold and
// every kind of constant, where JavaScript's loose rules differ from the strict ones.

const EDGE_VALUES: unknown[] = [
  '1',
  1,
  '',
  0,
  -0,
  null,
  true,
  false,
  '10',
  '9',
  10,
  9,
  'abc',
  'a',
  [],
  [1],
  ['a'],
  [1, 2],
  {},
  { a: 1 },
  Number.NaN,
  Number.POSITIVE_INFINITY,
  ' 1 ',
  '1e1',
];
const EDGE_CONSTANTS: unknown[] = [
  '1',
  1,
  '',
  0,
  -0,
  null,
  true,
  false,
  '10',
  '9',
  10,
  9,
  'abc',
  'a',
  'high',
  2.5,
  '1,2',
];
const EDGE_PATHS: unknown[] = [
  'object.v',
  'object.nested.v',
  'object.list.0',
  'object.missing',
  'object.v.x',
  'object.nested.missing.deeper',
  'object.s.length',
  ['object.missing', '1'],
  ['object.v', 0],
  'v',
];
const COMPARISONS = ['==', '!=', '===', '!==', '<', '<=', '>', '>='] as const;
const EDGE_LISTS: unknown[][] = [
  [],
  ['1', 1],
  [null],
  ['', 0],
  [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
  ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'abc', '1'],
  ['a', 'abc'],
  [true, false],
];
const NEEDLES: unknown[] = ['a', '', 1, null, '1', 'b', true, 0];

const edgeDatums = EDGE_VALUES.map((value) => ({
  object: { v: value, nested: { v: value }, list: [value], s: 'abc' },
  v: value,
}));

function edgeExpressions(): unknown[] {
  const expressions: unknown[] = [];
  for (const path of EDGE_PATHS) {
    const read = { var: path };
    for (const operator of COMPARISONS) {
      for (const constant of EDGE_CONSTANTS) {
        expressions.push({ [operator]: [read, constant] }, { [operator]: [constant, read] });
      }
    }
    for (const list of EDGE_LISTS) expressions.push({ in: [read, list] });
    for (const needle of NEEDLES) expressions.push({ in: [needle, read] });
    expressions.push({ '!': read }, { '!!': [read] });
  }
  return expressions;
}

describe('the specialised leaves against a pristine json-logic-js', () => {
  const expressions = edgeExpressions();

  it(`agree on ${expressions.length} leaves over ${edgeDatums.length} kinds of value, with and without the memo`, () => {
    const compiled = expressions.map((expression) => compileExpression(expression));
    const mismatches: string[] = [];
    for (const datum of edgeDatums) {
      // One context per datum, its memo shared by every leaf, as the rules of an event share it.
      const context = { ...datum, [PATH_MEMO]: [] } as unknown as EvaluationContext;
      for (const [i, expression] of expressions.entries()) {
        const expected = reference(expression, datum);
        for (const [how, actual] of [
          ['without the memo', outcomeOf(() => compiled[i]?.(datum as never))],
          ['with the memo', outcomeOf(() => compiled[i]?.(context))],
        ] as const) {
          if (!sameOutcome(actual, expected)) {
            mismatches.push(
              `${show(expression)} on ${show(datum.v)} ${how}: ours ${show(actual)}, json-logic-js ${show(expected)}`,
            );
          }
        }
      }
    }
    expect(mismatches.slice(0, 10)).toEqual([]);
    expect(mismatches.length).toBe(0);
  });

  it('meet both answers of every operator often (the table is not one-sided)', () => {
    const answers = new Map<string, Set<unknown>>();
    for (const datum of edgeDatums) {
      for (const expression of expressions) {
        const outcome = reference(expression, datum);
        const operator = Object.keys(expression as object)[0] as string;
        if (outcome.kind === 'value') {
          answers.set(operator, (answers.get(operator) ?? new Set()).add(outcome.value));
        }
      }
    }
    for (const operator of [...COMPARISONS, 'in', '!', '!!']) {
      expect([...(answers.get(operator) ?? [])].sort(), operator).toEqual([false, true]);
    }
  });
});

function outcomeOf(evaluate: () => unknown): Outcome {
  try {
    return { kind: 'value', value: evaluate() };
  } catch (error) {
    return thrownBy(error);
  }
}

// Plain JSON Logic as rules are mostly written: and, or, ! and if over 2 to 6 such leaves, over
// the ITSM-like objects of the random workload (fields absent, null, nested or of another kind).
const plainRandom = seededRandom(SEED + 17);
const plainPick = <T>(items: readonly T[]): T =>
  items[Math.floor(plainRandom() * items.length)] as T;
const PLAIN_PATHS = [
  ...FIELDS.map((field) => `object.${field}`),
  'object.assignee.email',
  'object.assignee.level',
  'object.watchers.0.email',
  'object.tags.0',
  'object.missing',
  'previous.priority',
  'previous.status',
  'event.type',
  'n',
  's',
];

function plainLeaf(): unknown {
  const read = { var: plainPick(PLAIN_PATHS) };
  const roll = plainRandom();
  if (roll < 0.2) return { in: [read, plainPick(EDGE_LISTS)] };
  if (roll < 0.3) return { in: [plainPick([...NEEDLES, ...LEVELS]), read] };
  if (roll < 0.35) return { [plainPick(['!', '!!'])]: read };
  const constant = plainRandom() < 0.5 ? plainPick([...LEVELS, 104, '104', 2, '2']) : scalar();
  const operator = plainPick(COMPARISONS);
  return plainRandom() < 0.8 ? { [operator]: [read, constant] } : { [operator]: [constant, read] };
}

function plainTree(leaves: number): unknown {
  let node: unknown;
  if (leaves === 1) {
    node = plainLeaf();
  } else if (leaves >= 3 && plainRandom() < 0.2) {
    const first = 1 + Math.floor(plainRandom() * (leaves - 2));
    const second = 1 + Math.floor(plainRandom() * (leaves - first - 1));
    node = { if: [plainTree(first), plainTree(second), plainTree(leaves - first - second)] };
  } else {
    const first = 1 + Math.floor(plainRandom() * (leaves - 1));
    node = { [plainPick(['and', 'or'])]: [plainTree(first), plainTree(leaves - first)] };
  }
  return plainRandom() < 0.15 ? { '!': node } : node;
}

describe('plain JSON Logic conditions against a pristine json-logic-js', () => {
  const conditions = times(3_000, () => plainTree(2 + Math.floor(plainRandom() * 5)));

  it(`agree on ${conditions.length} random and/or/!/if conditions of 2 to 6 leaves over ${DATUMS} ITSM-like objects, sharing each object's memo`, () => {
    const compiled = conditions.map((condition) => compileExpression(condition));
    const contexts = datums.map((d) => ({ ...d, [PATH_MEMO]: [] }) as unknown as EvaluationContext);
    const mismatches: string[] = [];
    let truthful = 0;
    for (const [i, condition] of conditions.entries()) {
      for (const [j, datum] of datums.entries()) {
        const expected = reference(condition, datum);
        const actual = outcomeOf(() => compiled[i]?.(contexts[j] as EvaluationContext));
        if (!sameOutcome(actual, expected)) {
          mismatches.push(
            `${show(condition)} on ${show(datum)}: ours ${show(actual)}, json-logic-js ${show(expected)}`,
          );
        }
        if (expected.kind === 'value' && isTruthy(expected.value)) truthful++;
      }
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
    expect(mismatches.length).toBe(0);
    // Neither answer dominates: the conditions test the data, not a constant.
    const share = truthful / (conditions.length * datums.length);
    expect(share).toBeGreaterThan(0.2);
    expect(share).toBeLessThan(0.8);
  });
});
