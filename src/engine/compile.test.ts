// The compiler operator by operator: each row is what json-logic-js 2.0.5 gives for it (the
// differential test checks that at scale), plus the refusals and the operators shared with the
// interpreter.
import { describe, expect, it } from 'vitest';
import {
  COMPILED_OPERATORS,
  compileLogic,
  compilerFootprint,
  hoursSince,
  isChanged,
  matches,
  PATH_MEMO,
  rank,
  readVar,
  truthy,
  UnknownOperatorError,
} from './compile.js';
import { OPERATORS } from './expression.js';

const ROOT = { now: '2026-03-10T12:00:00Z', changed: ['priority', 'status'] };

const DATA = {
  n: 5,
  s: 'abc',
  zero: 0,
  empty: '',
  nothing: null,
  yes: true,
  list: [1, 2, 3],
  words: ['a', 'b'],
  nested: { deep: { value: 'x' }, list: [{ id: 'i1' }, { id: 'i2' }] },
  dates: ['2026-03-10T09:00:00Z', '2026-03-10T13:30:00Z'],
  text: 'Disk FULL on db-01',
  options: [['n', 'missing']],
  groups: [{ xs: [1, 2] }, { xs: [3] }],
};

/** Evaluates with DATA as the datum and ROOT as the context, the way rules are evaluated. */
function run(expression: unknown, data: unknown = DATA, root: object = ROOT): unknown {
  return compileLogic(expression)(data, root);
}

/** Whatever `run` throws, as `Name: message`, or null. */
function thrown(expression: unknown, data: unknown = DATA): string | null {
  try {
    run(expression, data);
    return null;
  } catch (error) {
    return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  }
}

/** Every row: [expression, expected]; NaN and -0 are compared as themselves (toStrictEqual). */
type Row = [unknown, unknown];

describe('the set of operators', () => {
  it('compiles exactly the operators rules may use', () => {
    expect([...COMPILED_OPERATORS].sort()).toEqual([...OPERATORS].sort());
  });
});

describe('literals', () => {
  it.each<Row>([
    ['text', 'text'],
    [5, 5],
    [null, null],
    [false, false],
    [[], []],
    [
      [1, { var: 'n' }, [{ var: 's' }]],
      [1, 5, ['abc']],
    ],
    [{}, {}],
    [
      { a: 1, b: { var: 'n' } },
      { a: 1, b: { var: 'n' } },
    ],
  ])('evaluates the literal %j to %j', (expression, expected) => {
    expect(run(expression)).toStrictEqual(expected);
  });

  it('returns a new array on every evaluation, as json-logic-js maps every array it meets', () => {
    const evaluate = compileLogic([1, [2]]);
    const first = evaluate(DATA, ROOT) as unknown[];
    const second = evaluate(DATA, ROOT) as unknown[];
    expect(first).toEqual([1, [2]]);
    expect(first).not.toBe(second);
    expect(first[1]).not.toBe(second[1]);
  });

  it('returns an object that is not an operation as the same object every time', () => {
    const literal = { a: 1, b: 2 };
    const evaluate = compileLogic({ if: [true, literal, null] });
    expect(evaluate(DATA, ROOT)).toBe(literal);
    expect(evaluate(DATA, ROOT)).toBe(literal);
  });
});

describe('var', () => {
  it.each<Row>([
    [{ var: 'n' }, 5],
    [{ var: ['n'] }, 5],
    [{ var: 'nested.deep.value' }, 'x'],
    [{ var: 'nested.list.1.id' }, 'i2'],
    [{ var: 'list.0' }, 1],
    [{ var: 'list.3' }, null],
    [{ var: 'list.length' }, 3],
    [{ var: 's.length' }, 3],
    [{ var: 's.1' }, 'b'],
    [{ var: 's.01' }, null],
    [{ var: 's.toUpperCase' }, null],
    [{ var: 'list.map' }, null],
    [{ var: 'toString' }, null],
    [{ var: 'n.toFixed' }, null],
    [{ var: 'missing' }, null],
    [{ var: ['missing', 'fallback'] }, 'fallback'],
    [{ var: ['nothing', 'fallback'] }, null],
    [{ var: ['zero', 'fallback'] }, 0],
    [{ var: ['nothing.deeper', 'fallback'] }, 'fallback'],
    [{ var: ['s.x.y', 'fallback'] }, 'fallback'],
    [{ var: ['missing', { var: 'n' }] }, 5],
    [{ var: ['missing', [1]] }, [1]],
    [{ var: { cat: ['nes', 'ted.deep.value'] } }, 'x'],
    [{ var: 1 }, null],
    [{ var: '__proto__' }, null],
    [{ var: ['__proto__', 'fallback'] }, null],
    [{ var: ['nested.constructor', 'fallback'] }, null],
    [{ var: ['missing.prototype', 'fallback'] }, 'fallback'],
    [{ var: ['nested.deep.__proto__.x', 'fallback'] }, null],
  ])('evaluates %j to %j', (expression, expected) => {
    expect(run(expression)).toStrictEqual(expected);
  });

  it.each<[unknown, unknown, unknown]>([
    [{ var: '' }, 7, 7],
    [{ var: null }, 'datum', 'datum'],
    [{ var: [] }, [1], [1]],
    [{ var: 1 }, [10, 20], 20],
    [{ var: 'a..b' }, { a: { '': { b: 1 } } }, 1],
    [{ var: 1.5 }, { 1: { 5: 'x' } }, 'x'],
    [{ var: 'a' }, null, null],
    [{ var: 'a' }, 5, null],
  ])('reads %j of the datum %j as %j', (expression, data, expected) => {
    expect(run(expression, data)).toStrictEqual(expected);
  });

  it('reads own properties named like inherited ones', () => {
    const data = JSON.parse('{"toString": "own", "constructor": "own", "length": 2}');
    expect(run({ var: 'toString' }, data)).toBe('own');
    expect(run({ var: 'length' }, data)).toBe(2);
    expect(run({ var: 'constructor' }, data)).toBe(null);
  });

  it('does not read a property added to Object.prototype after compiling', () => {
    const evaluate = compileLogic({ var: ['object.polluted', 'fallback'] });
    const proto = Object.prototype as Record<string, unknown>;
    proto.polluted = 'inherited';
    try {
      expect(evaluate({ object: {} }, ROOT)).toBe('fallback');
      expect(evaluate({ object: { polluted: 'own' } }, ROOT)).toBe('own');
    } finally {
      delete proto.polluted;
    }
  });

  it('gives the same answers as readVar, the interpreter path', () => {
    const paths = ['n', 'nested.deep', 'nested.list.0.id', 's.2', 'list.9', '', 'missing.x'];
    for (const path of paths) {
      expect(run({ var: [path, 'dflt'] })).toStrictEqual(readVar(DATA, path, 'dflt'));
    }
  });
});

describe('missing and missing_some', () => {
  it.each<Row>([
    [{ missing: ['n', 'missing', 'empty', 'nothing', 'zero'] }, ['missing', 'empty', 'nothing']],
    [{ missing: [['n', 'missing']] }, ['missing']],
    [{ missing: 'missing' }, ['missing']],
    [{ missing: [] }, []],
    [{ missing: [['missing'], 'n'] }, ['missing']],
    [{ missing: { merge: [['a'], ['n']] } }, ['a']],
    [{ missing: ['toString', '__proto__', 'nested.deep'] }, ['toString', '__proto__']],
    [{ missing: [{ var: 's' }] }, ['abc']],
    // A key that is itself logic is evaluated again, as json-logic-js applies {"var": key}.
    [{ missing: [[['missing', 'default']]] }, []],
    [{ missing: [[[['missing', 'default']]]] }, [[['missing', 'default']]]],
    [{ missing_some: [1, ['n', 'missing']] }, []],
    [{ missing_some: [2, ['n', 'missing', 'other']] }, ['missing', 'other']],
    [{ missing_some: [0, []] }, []],
    // One name as a string: its length counts as the number of names (7 - 1 >= 1).
    [{ missing_some: [1, 'missing'] }, []],
    [{ missing_some: [1, { merge: [['missing'], ['n']] }] }, []],
    // Options that are lists are evaluated again as the arguments of missing: the first is the keys.
    [{ missing_some: [1, { var: 'options' }] }, ['missing']],
  ])('evaluates %j to %j', (expression, expected) => {
    expect(run(expression)).toStrictEqual(expected);
  });

  it.each<[unknown, string]>([
    [{ missing_some: [1, null] }, "TypeError: Cannot read properties of null (reading 'length')"],
    [{ missing_some: [1] }, "TypeError: Cannot read properties of undefined (reading 'length')"],
    // The keys are the first list; the other arguments are still evaluated, and can throw.
    [{ missing: [['a'], { '*': [] }] }, 'TypeError: Reduce of empty array with no initial value'],
  ])('throws for %j as json-logic-js does: %s', (expression, message) => {
    expect(thrown(expression)).toBe(message);
  });

  it('evaluates logic found in the data, and fails on an unknown operator there only when reached', () => {
    expect(
      run({ missing: { var: 'keys' } }, { keys: [[{ if: [true, 'n', { nope: 1 }] }]], n: 1 }),
    ).toEqual([]);
    expect(thrown({ missing: { var: 'keys' } }, { keys: [[{ nope: 1 }]] })).toBe(
      'Error: Unrecognized operation nope',
    );
    // There, as in json-logic-js, the arguments are evaluated before the operator is looked up.
    expect(thrown({ missing: { var: 'keys' } }, { keys: [[{ nope: [{ '*': [] }] }]] })).toBe(
      'TypeError: Reduce of empty array with no initial value',
    );
  });
});

describe('if and ?:', () => {
  it.each<Row>([
    [{ if: [] }, null],
    [{ if: ['only'] }, 'only'],
    [{ if: 'lone' }, 'lone'],
    [{ if: [true, 'yes'] }, 'yes'],
    [{ if: [false, 'yes'] }, null],
    [{ if: [[], 'yes', 'no'] }, 'no'],
    [{ if: [[0], 'yes', 'no'] }, 'yes'],
    [{ if: ['0', 'yes', 'no'] }, 'yes'],
    [{ if: [false, 1, false, 2, 3] }, 3],
    [{ if: [false, 1, true, 2, 3] }, 2],
    [{ if: [false, 1, false, 2] }, null],
    [{ if: [false, 1, false, 2, false, 3, 'else'] }, 'else'],
    [{ '?:': [{ var: 'yes' }, 'a', 'b'] }, 'a'],
    [{ if: [true, 'taken', { '*': [] }] }, 'taken'],
  ])('evaluates %j to %j', (expression, expected) => {
    expect(run(expression)).toStrictEqual(expected);
  });
});

describe('and, or, ! and !!', () => {
  it.each<Row>([
    [{ and: [] }, undefined],
    [{ or: [] }, undefined],
    [{ and: [1] }, 1],
    [{ and: 'lone' }, 'lone'],
    [{ and: [1, 'a', 0, 2] }, 0],
    [{ and: [1, 'a'] }, 'a'],
    [{ and: [[], 1] }, []],
    [{ and: [true, { '==': [1, 1] }, { '<': [1, 2] }] }, true],
    [{ and: [{ '==': [1, 1] }, { '==': [1, 2] }] }, false],
    [{ or: [0, '', []] }, []],
    [{ or: [0, 'x', { '*': [] }] }, 'x'],
    [{ or: [{ '==': [1, 2] }, { '==': [1, 2] }, { '==': [1, 1] }] }, true],
    [{ or: [null, { var: 'n' }] }, 5],
    [{ '!': [[]] }, true],
    [{ '!': [] }, true],
    [{ '!': '0' }, false],
    [{ '!': { '==': [1, 2] } }, true],
    [{ '!!': [[]] }, false],
    [{ '!!': [[0]] }, true],
    [{ '!!': { var: 'empty' } }, false],
    [{ '!!': [{ '==': [1, 1] }] }, true],
  ])('evaluates %j to %j', (expression, expected) => {
    expect(run(expression)).toStrictEqual(expected);
  });
});

describe('comparisons', () => {
  it.each<Row>([
    [{ '==': [1, '1'] }, true],
    [{ '==': [null, 0] }, false],
    [{ '==': [null, { var: 'missing' }] }, true],
    [{ '==': [[], false] }, true],
    [{ '==': [{ var: 'n' }, '5'] }, true],
    [{ '==': ['5', { var: 'n' }] }, true],
    [{ '==': [{ var: 'n' }, { var: 'list.2' }] }, false],
    [{ '==': [1, 1, { '*': [] }] }, 'throws'],
    [{ '===': [1, '1'] }, false],
    [{ '===': [{ var: 'n' }, 5] }, true],
    [{ '!=': ['', 0] }, false],
    [{ '!=': [{ var: 's' }, 'abd'] }, true],
    [{ '!==': [{ var: 'yes' }, false] }, true],
    [{ '>': ['10', 9] }, true],
    [{ '>': ['10', '9'] }, false],
    [{ '>': [{ var: 'n' }, 4, 'ignored'] }, true],
    [{ '>=': [null, 0] }, true],
    [{ '<': [1, '2', 3] }, true],
    [{ '<': [1, 3, 2] }, false],
    [{ '<': [1, 2, { and: [] }] }, true],
    [{ '<': [{ var: 'missing' }, 1] }, true],
    [{ '<=': [3, 2, 1] }, false],
    [{ '<=': [1, 1, 1] }, true],
    [{ '<=': [{ var: 'n' }, 5] }, true],
  ])('evaluates %j to %j', (expression, expected) => {
    if (expected === 'throws') {
      expect(thrown(expression)).toBe('TypeError: Reduce of empty array with no initial value');
    } else {
      expect(run(expression)).toStrictEqual(expected);
    }
  });
});

describe('arithmetic', () => {
  it.each<Row>([
    [{ '+': [] }, 0],
    [{ '+': ['3'] }, 3],
    [{ '+': [-0] }, 0],
    [{ '+': ['1', '2'] }, 3],
    [{ '+': [' 4 ', '1e2'] }, 104],
    [{ '+': ['a', 1] }, Number.NaN],
    [{ '+': [1, 2, 3, '4'] }, 10],
    [{ '+': [{ var: 'n' }, { var: 'list.1' }] }, 7],
    [{ '*': ['3'] }, '3'],
    [{ '*': [[1]] }, [1]],
    [{ '*': ['2', '3'] }, 6],
    [{ '*': [2, 3, 4] }, 24],
    [{ '-': [5] }, -5],
    [{ '-': 0 }, -0],
    [{ '-': [[]] }, -0],
    [{ '-': ['5', '2'] }, 3],
    [{ '-': [5, { and: [] }] }, -5],
    [{ '/': [1, 0] }, Number.POSITIVE_INFINITY],
    [{ '/': ['9', 3] }, 3],
    [{ '%': [5, 0] }, Number.NaN],
    [{ '%': [7, '4'] }, 3],
    [{ max: [] }, Number.NEGATIVE_INFINITY],
    [{ min: [] }, Number.POSITIVE_INFINITY],
    [{ max: ['3', 2] }, 3],
    [{ min: [null, 2] }, 0],
    [{ max: ['a', 1] }, Number.NaN],
    [{ min: [{ var: 'list.2' }, 4, 5] }, 3],
  ])('evaluates %j to %j', (expression, expected) => {
    expect(run(expression)).toStrictEqual(expected);
  });

  it('throws as json-logic-js does for * with no argument', () => {
    expect(thrown({ '*': [] })).toBe('TypeError: Reduce of empty array with no initial value');
  });
});

describe('in, cat, substr and merge', () => {
  it.each<Row>([
    [{ in: ['a', 'abc'] }, true],
    [{ in: ['', 'abc'] }, true],
    [{ in: ['a', ''] }, false],
    [{ in: ['', ''] }, false],
    [{ in: [1, '123'] }, true],
    [{ in: ['b', ['a', 'b']] }, true],
    [{ in: [1, ['1']] }, false],
    [{ in: [{ var: 'n' }, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]] }, true],
    [{ in: ['5', [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]] }, false],
    [{ in: [{ '/': [0, 0] }, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]] }, false],
    [{ in: [0, [-0]] }, true],
    // YAML can write NaN (.nan); indexOf never finds it, so neither does the Set of a long list.
    [{ in: [{ '/': [0, 0] }, [Number.NaN, 1, 2, 3, 4, 5, 6, 7, 8, 9]] }, false],
    [{ in: ['1', 123] }, false],
    [{ in: ['a', null] }, false],
    [{ in: ['b', { var: 'words' }] }, true],
    [{ in: ['b', { var: 's' }] }, true],
    [{ in: [[1], [[1]]] }, false],
    [{ cat: [] }, ''],
    [{ cat: 'lone' }, 'lone'],
    [{ cat: ['a', null, 1, [1, 2], true, { and: [] }] }, 'a11,2true'],
    [{ cat: [{ var: 's' }, { var: 'n' }] }, 'abc5'],
    [{ cat: [null, [null]] }, ''],
    [{ substr: ['jsonlogic', 4] }, 'logic'],
    [{ substr: ['jsonlogic', -5] }, 'logic'],
    [{ substr: ['jsonlogic', 1, 3] }, 'son'],
    [{ substr: ['jsonlogic', 1, -1] }, 'sonlogi'],
    [{ substr: ['jsonlogic', 0, -20] }, ''],
    [{ substr: [null, 0, 2] }, 'nu'],
    [{ substr: [12345, '1', '2'] }, '23'],
    [{ merge: [] }, []],
    [{ merge: [1, [2, [3]], null] }, [1, 2, [3], null]],
    [{ merge: [{ var: 'words' }, 'c'] }, ['a', 'b', 'c']],
  ])('evaluates %j to %j', (expression, expected) => {
    expect(run(expression)).toStrictEqual(expected);
  });

  it('throws as json-logic-js does for in over an object whose indexOf is not a function', () => {
    expect(thrown({ in: ['a', { var: 'o' }] }, { o: { indexOf: 1 } })).toBe(
      'TypeError: b.indexOf is not a function',
    );
  });
});

describe('map, filter, reduce, all, none and some', () => {
  it.each<Row>([
    [{ map: [{ var: 'list' }, { '*': [{ var: '' }, 2] }] }, [2, 4, 6]],
    [{ map: ['abc', { var: '' }] }, []],
    [{ map: [{ var: 'missing' }, { var: '' }] }, []],
    [{ map: { var: 'list' } }, [undefined, undefined, undefined]],
    [{ map: [{ var: 'nested.list' }, { var: 'id' }] }, ['i1', 'i2']],
    [{ filter: [[0, 1, '', 'a', [], [0]], { var: '' }] }, [1, 'a', [0]]],
    [{ filter: [{ var: 'list' }, { '>': [{ var: '' }, 1] }] }, [2, 3]],
    [{ filter: { var: 'list' } }, []],
    [{ reduce: [{ var: 'list' }, { '+': [{ var: 'current' }, { var: 'accumulator' }] }, 0] }, 6],
    [{ reduce: [[], { var: 'current' }, 7] }, 7],
    [{ reduce: ['abc', { var: 'current' }, 5] }, 5],
    [{ reduce: [[1, 2], { var: 'accumulator' }] }, null],
    [{ reduce: [[1, 2, 3], { '+': [{ var: 'current' }, { var: 'accumulator' }] }] }, Number.NaN],
    [{ reduce: [[1], { var: '' }, 0] }, { current: 1, accumulator: 0 }],
    [
      {
        reduce: [
          { var: 'words' },
          { cat: [{ var: 'accumulator' }, { var: 'current' }] },
          { var: 's' },
        ],
      },
      'abcab',
    ],
    [{ all: [[], { var: '' }] }, false],
    [{ all: ['abc', { var: '' }] }, false],
    [{ all: [[1, 2], { var: '' }] }, true],
    [{ all: [[1, 0], { var: '' }] }, false],
    [{ all: [[1]] }, false],
    [{ none: [[], { var: '' }] }, true],
    [{ none: [[0, ''], { var: '' }] }, true],
    [{ none: [[0, 1], { var: '' }] }, false],
    [{ some: [[], { var: '' }] }, false],
    [{ some: [[0, [1]], { var: '' }] }, true],
    [{ some: [{ var: 'nested.list' }, { '==': [{ var: 'id' }, 'i2'] }] }, true],
    // Nested scopes: the inner datum is the inner element, the outer one is out of reach.
    [{ map: [[[1, 2], [3]], { map: [{ var: '' }, { '+': [{ var: '' }, 1] }] }] }, [[2, 3], [4]]],
    [{ some: [[[0], [0, 1]], { all: [{ var: '' }, { var: '' }] }] }, false],
    [
      {
        map: [
          { var: 'groups' },
          { reduce: [{ var: 'xs' }, { '+': [{ var: 'current' }, { var: 'accumulator' }] }, 0] },
        ],
      },
      [3, 3],
    ],
  ])('evaluates %j to %j', (expression, expected) => {
    expect(run(expression)).toStrictEqual(expected);
  });

  it('gives reduce the scope {current, accumulator}, in that order, as json-logic-js does', () => {
    expect(Object.keys(run({ reduce: [[1], { var: '' }, 0] }) as object)).toEqual([
      'current',
      'accumulator',
    ]);
  });
});

describe("the project's operators", () => {
  it.each<Row>([
    [{ rank: 'low' }, 1],
    [{ rank: ['critical'] }, 4],
    [{ rank: 'HIGH' }, null],
    [{ rank: 'toString' }, null],
    [{ rank: 3 }, null],
    [{ '<': [{ rank: { var: 'missing' } }, { rank: 'low' }] }, true],
    [{ hours_since: '2026-03-10T09:00:00Z' }, 3],
    [{ hours_since: '2026-03-10T13:30:00Z' }, -1.5],
    [{ hours_since: '2026-03-09' }, 36],
    [{ hours_since: 'incident 12' }, null],
    [{ hours_since: { var: 'missing' } }, null],
    [{ map: [{ var: 'dates' }, { hours_since: { var: '' } }] }, [3, -1.5]],
    [{ changed: 'priority' }, true],
    [{ changed: ['impact'] }, false],
    [{ changed: { var: 's' } }, false],
    [{ map: [['status', 'impact'], { changed: { var: '' } }] }, [true, false]],
    [{ matches: [{ var: 'text' }, 'disk\\s+full', 'i'] }, true],
    [{ matches: [{ var: 'text' }, 'disk\\s+full'] }, false],
    [{ matches: [{ var: 'text' }, { var: 's' }] }, false],
    [{ matches: [42, '^4\\d$'] }, true],
    [{ matches: [null, '.*'] }, false],
    [{ matches: ['abc', '('] }, false],
    [{ lower: { var: 'text' } }, 'disk full on db-01'],
    [{ lower: null }, null],
    [{ lower: 42 }, '42'],
  ])('evaluates %j to %j', (expression, expected) => {
    expect(run(expression)).toStrictEqual(expected);
  });

  it('measures hours_since from the now of the root, whatever the datum', () => {
    const later = { now: '2026-03-11T09:00:00Z', changed: [] };
    expect(run({ hours_since: { var: 'due' } }, { due: '2026-03-10T09:00:00Z' }, later)).toBe(24);
    expect(run({ hours_since: '2026-03-10T09:00:00Z' }, DATA, { now: 'not a time' })).toBe(null);
  });

  it.each<[string, unknown, unknown]>([
    ['rank', rank('medium'), 2],
    ['hoursSince', hoursSince('2026-03-10T11:00:00Z', ROOT), 1],
    ['isChanged', isChanged('status', ROOT), true],
    ['matches', matches('DB-01', 'db-\\d+', 'i'), true],
    ['truthy of []', truthy([]), false],
    ['truthy of [0]', truthy([0]), true],
    ['truthy of "0"', truthy('0'), true],
  ])('shares %s with the interpreter (%j)', (_name, actual, expected) => {
    expect(actual).toBe(expected);
  });
});

describe('refusals', () => {
  it.each([
    [{ no_such_operator: [1] }, 'Unrecognized operation no_such_operator'],
    [{ log: 'hello' }, 'Unrecognized operation log'],
    [{ 'Math.max': [1, 2] }, 'Unrecognized operation Math.max (failed at Math)'],
    [{ if: [true, 1, { typo: 2 }] }, 'Unrecognized operation typo'],
    [{ map: [[1], { var: '' }, { typo: 2 }] }, 'Unrecognized operation typo'],
    // An object with one key is an operation wherever it stands, even in a list of data.
    [{ map: [[{ xs: [1] }], { var: 'xs' }] }, 'Unrecognized operation xs'],
    [{ and: [{ or: [[{ hasOwnProperty: 1 }]] }] }, 'Unrecognized operation hasOwnProperty'],
  ])('refuses %j at compile time, before anything runs', (expression, message) => {
    let error: unknown;
    try {
      compileLogic(expression);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(UnknownOperatorError);
    expect((error as Error).message).toBe(message);
  });
});

describe('what compiling costs and keeps', () => {
  /** An and/or chain `depth` deep, with a different comparison at each level. */
  function chain(depth: number): unknown {
    let node: unknown = { '==': [{ var: 'object.priority' }, 'high'] };
    for (let level = 0; level < depth; level += 1) {
      node = { [level % 2 ? 'and' : 'or']: [{ '>': [{ var: 'object.escalation' }, level] }, node] };
    }
    return node;
  }

  function namingWorkOf(expression: unknown): number {
    const before = compilerFootprint().namingWork;
    compileLogic(expression);
    return compilerFootprint().namingWork - before;
  }

  it('names the sub-expressions of a deep chain with work in proportion to its size', () => {
    // Serialising each node's subtree made this quadratic: doubling the depth quadrupled it.
    const shallow = namingWorkOf(chain(400));
    const deep = namingWorkOf(chain(800));
    expect(shallow).toBeGreaterThan(0);
    expect(deep / shallow).toBeLessThan(2.2);
    // About 50 characters of description per level (its node, its comparison and their lists).
    expect(deep).toBeLessThan(800 * 100);
  });

  it('gives a compiled-again expression the places it had, without new entries', () => {
    const expression = chain(50);
    compileLogic(expression);
    const before = compilerFootprint();
    compileLogic(structuredClone(expression));
    const after = compilerFootprint();
    expect(after.structures).toBe(before.structures);
    expect(after.memoCells).toBe(before.memoCells);
    expect(after.paths).toBe(before.paths);
    expect(after.shared).toBe(before.shared);
  });

  it('keeps apart in the memo sub-expressions that differ only where JSON would not tell', () => {
    // Each is compiled twice (two rules), which is when the memo keeps its answer.
    const pairs: [unknown, unknown][] = [
      [{ '/': [1, { '+': [{ var: 'object.zero' }, 0] }] }, Number.POSITIVE_INFINITY],
      [{ '/': [1, { '*': [{ var: 'object.zero' }, -1] }] }, Number.NEGATIVE_INFINITY],
      [{ cat: [{ var: 'object.s' }, 'b'] }, 'xb'],
      [{ cat: [[{ var: 'object.s' }, 'b']] }, 'x,b'],
      [{ cat: [{ var: 'object.s' }, '#0'] }, 'x#0'],
      [{ '===': [{ var: 'object.one' }, 1] }, true],
      [{ '===': [{ var: 'object.one' }, '1'] }, false],
    ];
    const context = { object: { zero: 0, s: 'x', one: 1 }, [PATH_MEMO]: [] as unknown[] };
    const rules = pairs.flatMap(([expression]) => [
      compileLogic(expression),
      compileLogic(structuredClone(expression)),
    ]);
    const answers = rules.map((evaluate) => evaluate(context, context));
    expect(answers).toStrictEqual(pairs.flatMap(([, expected]) => [expected, expected]));
  });

  it('keeps nothing of logic found in event data, however many distinct keys events bring', () => {
    // `missing` evaluates a key that is not a plain name as {"var": key}: here a path with a
    // default, and a computed path. Such logic used to take a memo place per distinct key.
    const evaluate = compileLogic({ missing: { var: 'object.keys' } });
    evaluate({ object: { keys: [[['object.warm', 0]]] }, [PATH_MEMO]: [] }, null);
    const before = compilerFootprint();
    for (let i = 0; i < 2000; i += 1) {
      const keys = [[`object.field${i}`, null], { cat: ['object.other', i] }];
      const context = { object: { keys, [`field${i}`]: 'set' }, [PATH_MEMO]: [] };
      expect(evaluate(context, context)).toStrictEqual([keys[1]]);
    }
    expect(compilerFootprint()).toStrictEqual(before);
  });
});
