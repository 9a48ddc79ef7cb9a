import { describe, expect, it } from 'vitest';
import { matches, UnknownOperatorError } from './compile.js';
import { createContext, type EngineEventType } from './context.js';
import {
  compileExpression,
  type EvaluationContext,
  ExpressionError,
  evaluateExpression,
  interpretExpression,
  MATCHES_MAX_SUBJECT,
  unsupportedPatternSyntax,
} from './expression.js';
import { loadRules } from './load.js';

const NOW = new Date('2026-03-10T12:00:00Z');

function makeContext(
  object: Record<string, unknown> | null,
  previous: Record<string, unknown> | null = null,
  type: EngineEventType = 'update',
): EvaluationContext {
  return createContext({
    event: { id: 'evt-1', type, account: 7, at: '2026-03-10T11:59:00Z', user_id: 'u-1' },
    object,
    previous,
    now: NOW,
  });
}

function makeIncident(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'inc-1',
    title: 'Disk Full on DB-01',
    priority: 'high',
    impact: 'medium',
    status: 'open',
    assignee: null,
    tags: ['disk', 'network'],
    due_date: '2026-03-10T09:00:00Z',
    dates: ['2026-03-10T09:00:00Z', '2026-03-10T13:30:00Z'],
    count: 42,
    ...overrides,
  };
}

/** A context whose incident has `description` (the attacker-controlled text of issue reports). */
const context = (description: string) => makeContext(makeIncident({ description }));

const evaluate = (expression: unknown, context: EvaluationContext = makeContext(makeIncident())) =>
  compileExpression(expression)(context);

describe('rank', () => {
  it.each([
    ['low', 1],
    ['medium', 2],
    ['high', 3],
    ['critical', 4],
    // A change's risk words, on the same scale.
    ['moderate', 2],
    ['very high', 4],
    ['very_high', null],
    ['urgent', null],
    ['HIGH', null],
    ['', null],
    ['toString', null],
    ['__proto__', null],
    [null, null],
    [3, null],
    [true, null],
  ])('ranks %j as %j', (value, expected) => {
    expect(evaluate({ rank: [value] })).toBe(expected);
  });

  it.each([
    [{ rank: { var: 'object.priority' } }, 3],
    [{ rank: { var: 'object.no_such_field' } }, null],
    [{ '<': [{ rank: { var: 'object.impact' } }, { rank: 'critical' }] }, true],
    [{ '>': [{ rank: { var: 'object.priority' } }, { rank: { var: 'object.impact' } }] }, true],
  ])('evaluates %j to %j', (expression, expected) => {
    expect(evaluate(expression)).toBe(expected);
  });
});

describe('hours_since', () => {
  // now is 2026-03-10T12:00:00Z
  it.each([
    ['a past date-time', '2026-03-10T09:00:00Z', 3],
    ['a future date-time (negative)', '2026-03-10T13:30:00Z', -1.5],
    ['the present', '2026-03-10T12:00:00Z', 0],
    ['a date-only value (midnight UTC)', '2026-03-09', 36],
    ['a date-time with an offset', '2026-03-10T10:00:00+02:00', 4],
    ['a date-time without a zone (UTC)', '2026-03-10T09:00:00', 3],
    ['a date-time with a space separator', '2026-03-10 06:00:00', 6],
    ['an empty string', '', null],
    ['a word', 'yesterday', null],
    ['a string that Date.parse would take as 2001', 'incident 12', null],
    ['a number in a string', '5', null],
    ['a non-ISO date', '03/09/2026', null],
    ['a date that does not exist', '2026-02-30', null],
    ['a month that does not exist', '2026-13-01', null],
    ['null', null, null],
    ['a number', 1_773_144_000_000, null],
  ])('measures %s (%j) as %j hours', (_label, value, expected) => {
    expect(evaluate({ hours_since: [value] })).toBe(expected);
  });

  it('returns null for a missing field', () => {
    expect(evaluate({ hours_since: { var: 'object.resolved_at' } })).toBe(null);
  });

  it('reads the field through var', () => {
    expect(evaluate({ hours_since: { var: 'object.due_date' } })).toBe(3);
  });

  it('measures from the now of the context, not the clock', () => {
    const later = { ...makeContext(makeIncident()), now: '2026-03-11T09:00:00Z' };
    expect(evaluate({ hours_since: { var: 'object.due_date' } }, later)).toBe(24);
  });

  it('returns null when the context has no valid now', () => {
    const broken = { ...makeContext(makeIncident()), now: 'not a time' };
    expect(evaluate({ hours_since: { var: 'object.due_date' } }, broken)).toBe(null);
  });

  it('reads a date-time without a zone as UTC whatever the host time zone', () => {
    const saved = process.env.TZ;
    process.env.TZ = 'America/New_York';
    try {
      expect(evaluate({ hours_since: '2026-03-10T09:00:00' })).toBe(3);
      expect(evaluate({ hours_since: '2026-03-09' })).toBe(36);
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });

  it.each([
    ['map', { map: [{ var: 'object.dates' }, { hours_since: { var: '' } }] }, [3, -1.5]],
    [
      'filter',
      { filter: [{ var: 'object.dates' }, { '>': [{ hours_since: { var: '' } }, 0] }] },
      ['2026-03-10T09:00:00Z'],
    ],
    ['all', { all: [{ var: 'object.dates' }, { '>': [{ hours_since: { var: '' } }, -2] }] }, true],
    ['all', { all: [{ var: 'object.dates' }, { '>': [{ hours_since: { var: '' } }, 0] }] }, false],
    ['some', { some: [{ var: 'object.dates' }, { '<': [{ hours_since: { var: '' } }, 0] }] }, true],
    [
      'none',
      { none: [{ var: 'object.dates' }, { '>': [{ hours_since: { var: '' } }, 10] }] },
      true,
    ],
    [
      'reduce',
      {
        reduce: [
          { var: 'object.dates' },
          { '+': [{ var: 'accumulator' }, { hours_since: { var: 'current' } }] },
          0,
        ],
      },
      1.5,
    ],
  ])('uses the now of the context inside %s', (_operator, expression, expected) => {
    expect(evaluate(expression)).toEqual(expected);
  });

  it('uses the now of the context when evaluating against an element datum', () => {
    const context = makeContext(makeIncident());
    expect(evaluateExpression({ hours_since: { var: '' } }, context, '2026-03-10T11:00:00Z')).toBe(
      1,
    );
  });
});

describe('changed', () => {
  const context = makeContext(
    makeIncident({ priority: 'critical', status: 'in_progress', field_name: 'status' }),
    makeIncident({ priority: 'high', status: 'open', field_name: 'status' }),
  );

  it('sees the fields that differ between previous and object', () => {
    expect(context.changed).toEqual(['priority', 'status']);
  });

  it.each([
    [{ changed: 'priority' }, true],
    [{ changed: ['status'] }, true],
    [{ changed: { var: 'object.field_name' } }, true],
    [{ changed: 'impact' }, false],
    [{ changed: 'Priority' }, false],
    [{ changed: { var: 'object.no_such_field' } }, false],
    [{ changed: [null] }, false],
    [{ changed: 5 }, false],
    [{ changed: [true] }, false],
    [{ changed: [['priority']] }, false],
  ])('evaluates %j to %j', (expression, expected) => {
    expect(evaluate(expression, context)).toBe(expected);
  });

  it('counts every field of an added object as changed', () => {
    const added = makeContext(makeIncident(), null, 'add');
    expect(evaluate({ changed: 'impact' }, added)).toBe(true);
    expect(evaluate({ changed: 'no_such_field' }, added)).toBe(false);
  });

  it('reads the changed list of the root context inside map', () => {
    expect(evaluate({ map: [['priority', 'impact'], { changed: { var: '' } }] }, context)).toEqual([
      true,
      false,
    ]);
  });
});

describe('matches', () => {
  it.each([
    [['INC-42 disk full', 'disk\\s+full'], true],
    [['printer jam', 'disk'], false],
    [['DISK FULL', 'disk full'], false],
    [['DISK FULL', 'disk full', 'i'], true],
    [['DISK FULL', '^disk', 'i'], true],
    [['disk full', 'DISK', 'i'], true],
    [[null, '.*'], false],
    [[{ var: 'object.no_such_field' }, '.*'], false],
    [[{ var: 'object.assignee' }, '^$'], false],
    [[42, '^4\\d$'], true],
    [[42, '^4$'], false],
    [[true, '^true$'], true],
    [['', '^$'], true],
    [['abc', 5], false],
    [['abc', null], false],
    [[{ var: 'object.title' }, 'db-\\d+', 'i'], true],
    [[{ var: 'object.title' }, 'db-\\d+'], false],
  ])('evaluates matches %j to %j', (args, expected) => {
    expect(evaluate({ matches: args })).toBe(expected);
  });
});

describe('matches runs in linear time (RE2)', () => {
  // A backtracking engine takes seconds on 30 characters of this and years on 10,000: were
  // `matches` to go back to one, this test would hang to its timeout instead of passing.
  it('answers ^(a+)+$ on a 10,000-character subject that almost matches', () => {
    const text = `${'a'.repeat(10_000)}b`;
    expect(evaluate({ matches: [{ var: 'object.description' }, '^(a+)+$'] }, context(text))).toBe(
      false,
    );
    expect(matches(`${'a'.repeat(10_000)}`, '^(a+)+$')).toBe(true);
    expect(interpretExpression({ matches: [text, '^(a|aa)+$'] }, context(text))).toBe(false);
  });

  // The syntax rules commonly use, where RE2 and JavaScript's RegExp agree.
  it.each([
    ['disk\\s+full', 'DISK  full', 'i'],
    ['^INC-\\d{3,}$', 'INC-0042', ''],
    ['\\bdb-\\d+\\b', 'host db-01 down', ''],
    ['\\bdb-\\d+\\b', 'hostdb-01', ''],
    ['^(prb|chg)\\d+', 'PRB12', 'i'],
    ['^(prb|chg)\\d+', 'PRB12', ''],
    ['[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}', 'mail ops@example.org now', ''],
    ['^\\s*$', '  \t', ''],
    ['colou?r', 'color', ''],
    ['a.c', 'a\nc', ''],
    ['^b', 'a\nb', ''],
    ['a$', 'a\n', ''],
    ['[^\\w]', 'abc_1', ''],
    ['\\.(exe|dll)$', 'payload.EXE', 'i'],
    ['(?:ab){2}', 'xababx', ''],
    ['(?<word>\\w+)-', 'ab-', ''],
    ['\\x41\\t', 'A\t', ''],
    ['[\\]]', ']', ''],
    ['stra(ss|ß)e', 'STRASSE', 'i'],
  ])('agrees with RegExp on /%s/ against %j (flags %j)', (pattern, text, flags) => {
    expect(matches(text, pattern, flags || undefined)).toBe(new RegExp(pattern, flags).test(text));
  });

  // Where RE2 differs from RegExp: \s is ASCII, text is read by code point, \p{...} is a class.
  it.each([
    ['\\s', '\u00a0', false],
    ['^.$', '\u{1f600}', true],
    ['\\d', '\u0663', false],
    ['^\\p{L}$', 'é', true],
  ])('reads /%s/ on %j as RE2 does: %j', (pattern, text, expected) => {
    expect(matches(text, pattern)).toBe(expected);
  });

  it('tests only the first MATCHES_MAX_SUBJECT characters of a longer text', () => {
    const long = `${'x'.repeat(MATCHES_MAX_SUBJECT)}needle`;
    expect(matches(long, 'needle')).toBe(false);
    expect(matches(long.slice('needle'.length), 'needle')).toBe(true);
    expect(matches(long, '^x+$')).toBe(true);
  });

  it('gives false for a pattern computed at run time that RE2 refuses, as for an invalid one', () => {
    const computed = { matches: ['abab', { var: 'object.description' }] };
    expect(evaluate(computed, context('(ab)\\1'))).toBe(false);
    expect(evaluate(computed, context('(ab'))).toBe(false);
    expect(evaluate(computed, context('^(ab)+$'))).toBe(true);
  });

  it('keeps a bounded number of patterns computed at run time, and still answers after evicting', () => {
    const computed = { matches: ['n-7', { var: 'object.description' }] };
    const run = compileExpression(computed);
    for (let i = 0; i < 2_000; i += 1) run(context(`^n-${i % 10}$`.replace('0$', `${i}$`)));
    expect(run(context('^n-7$'))).toBe(true);
    expect(run(context('^n-8$'))).toBe(false);
  });

  it('names the construct RE2 cannot run', () => {
    expect(unsupportedPatternSyntax('^(\\w+) \\1$')?.what).toBe('a backreference (\\1)');
    expect(unsupportedPatternSyntax('x(?=y)')?.what).toBe('a lookahead ((?=...)');
    expect(unsupportedPatternSyntax('(?<!a)b')?.what).toBe('a lookbehind ((?<!...)');
    expect(unsupportedPatternSyntax('(?>a)')?.what).toBe('an atomic group ((?>...))');
    expect(unsupportedPatternSyntax('a++')?.what).toBe('a possessive quantifier (++)');
    expect(unsupportedPatternSyntax('(?<name>a)\\k<name>')?.what).toBe(
      'a named backreference (\\k<...>)',
    );
    // Escaped or inside a class, the same characters are literals.
    expect(unsupportedPatternSyntax('[\\1(?=]\\(?=\\\\')).toBeNull();
    expect(unsupportedPatternSyntax('\\\\1')).toBeNull();
    expect(unsupportedPatternSyntax('a+?b*?(?<x>c)')).toBeNull();
  });
});

describe('lower', () => {
  it.each([
    ['High', 'high'],
    ['ÄBC Déjà', 'äbc déjà'],
    ['already lower', 'already lower'],
    ['', ''],
    [null, null],
    [42, '42'],
    [true, 'true'],
  ])('lower-cases %j to %j', (value, expected) => {
    expect(evaluate({ lower: [value] })).toBe(expected);
  });

  it.each([
    [{ lower: { var: 'object.title' } }, 'disk full on db-01'],
    [{ lower: { var: 'object.no_such_field' } }, null],
    [{ '==': [{ lower: { var: 'object.title' } }, 'disk full on db-01'] }, true],
  ])('evaluates %j to %j', (expression, expected) => {
    expect(evaluate(expression)).toBe(expected);
  });
});

describe('var', () => {
  const incident = makeIncident({
    // Own properties with the forbidden names, as JSON.parse creates them.
    ...JSON.parse('{"__proto__": {"polluted": 1}, "constructor": "own", "prototype": "own"}'),
    custom: { nested: { deep: 'yes' } },
  });
  const context = makeContext(incident);

  it.each([
    ['__proto__'],
    ['constructor'],
    ['prototype'],
    ['object.__proto__'],
    ['object.__proto__.polluted'],
    ['object.constructor'],
    ['object.prototype'],
    ['object.constructor.name'],
    ['object.tags.constructor'],
    ['object.title.constructor'],
    ['object.custom.nested.__proto__'],
    ['object.custom.__proto__.deep'],
    ['object.no_such_field.__proto__'],
    ['event.constructor.prototype'],
  ])('yields null for the forbidden path %j', (path) => {
    expect(evaluate({ var: path }, context)).toBe(null);
  });

  it.each([['object.__proto__'], ['object.constructor'], ['object.custom.prototype']])(
    'yields null for the forbidden path %j even with a default',
    (path) => {
      expect(evaluate({ var: [path, 'fallback'] }, context)).toBe(null);
    },
  );

  it.each([
    ['toString'],
    ['hasOwnProperty'],
    ['object.toString'],
    ['object.hasOwnProperty'],
    ['object.valueOf'],
    ['object.isPrototypeOf'],
    ['object.tags.map'],
    ['object.tags.push'],
    ['object.title.toUpperCase'],
    ['object.count.toFixed'],
    ['object.custom.nested.deep.trim'],
  ])('does not read the inherited property %j', (path) => {
    expect(evaluate({ var: path }, context)).toBe(null);
  });

  it('gives the default for an inherited property, as for any absent one', () => {
    expect(evaluate({ var: ['object.toString', 'fallback'] }, context)).toBe('fallback');
  });

  it.each([
    ['object.id', 'inc-1'],
    ['object.tags.0', 'disk'],
    ['object.tags.1', 'network'],
    ['object.tags.2', null],
    ['object.tags.-1', null],
    ['object.tags.01', null],
    ['object.tags.length', 2],
    ['object.title.length', 18],
    ['object.title.0', 'D'],
    ['object.title.17', '1'],
    ['object.title.18', null],
    ['object.custom.nested.deep', 'yes'],
    ['object.custom.nested.deep.length', 3],
    ['object.assignee', null],
    ['object.assignee.name', null],
    ['object.no_such_field', null],
    ['event.account', 7],
    ['event.type', 'update'],
    ['now', '2026-03-10T12:00:00Z'],
    ['correlation', null],
    ['rule.id', ''],
  ])('reads %j as %j', (path, expected) => {
    expect(evaluate({ var: path }, context)).toEqual(expected);
  });

  it.each([
    [['object.no_such_field', 'fallback'], 'fallback'],
    [['object.assignee.name', 'nobody'], 'nobody'],
    [['object.tags.9', 0], 0],
    [['object.id', 'fallback'], 'inc-1'],
    [['object.assignee', 'fallback'], null],
  ])('reads %j with a default as %j', (args, expected) => {
    expect(evaluate({ var: args }, context)).toBe(expected);
  });

  it.each([[''], [null], [[]]])('returns the datum itself for the empty path %j', (path) => {
    expect(evaluate({ var: path }, context)).toBe(context);
  });

  it('returns the element for the empty path inside map', () => {
    expect(evaluate({ map: [{ var: 'object.tags' }, { var: '' }] }, context)).toEqual([
      'disk',
      'network',
    ]);
  });

  it('reads a numeric path as an index', () => {
    expect(evaluate({ map: [[['a', 'b']], { var: 1 }] }, context)).toEqual(['b']);
  });

  it('applies the same rules inside missing', () => {
    expect(
      evaluate({ missing: ['object.id', 'object.toString', 'object.__proto__'] }, context),
    ).toEqual(['object.toString', 'object.__proto__']);
  });
});

describe('log', () => {
  it('is rejected by the loader as an unknown operator', () => {
    const result = loadRules([
      {
        path: 'rules/incident/uses-log.yaml',
        text: 'on:\n  type: incident\nwhen: {log: {var: object.id}}\nthen:\n  - log: {message: hi}\n',
      },
    ]);
    expect(result.ruleSet).toBe(null);
    expect(result.problems.map((p) => [p.code, p.pointer, p.line])).toEqual([
      ['RULE_UNKNOWN_OPERATOR', '/when/log', 3],
    ]);
  });

  it('is rejected by the loader when nested in a value', () => {
    const result = loadRules([
      {
        path: 'rules/incident/uses-log.json',
        text: '{"on": {"type": "incident"}, "then": [{"log": {"message": {"cat": ["x", {"log": "y"}]}}}]}',
      },
    ]);
    expect(result.problems.map((p) => [p.code, p.pointer])).toEqual([
      ['RULE_UNKNOWN_OPERATOR', '/then/0/log/message/cat/1/log'],
    ]);
  });

  it('fails at runtime instead of writing to stdout', () => {
    expect(() => evaluate({ log: 'hello' })).toThrow(ExpressionError);
  });
});

describe('runtime failures', () => {
  it.each([
    [{ '*': [] }, 'Reduce of empty array with no initial value'],
    [{ missing_some: [1, null] }, "Cannot read properties of null (reading 'length')"],
    [{ in: ['a', { var: 'object.odd' }] }, 'b.indexOf is not a function'],
    [{ no_such_operator: [1] }, 'Unrecognized operation no_such_operator'],
    [{ 'Math.max': [1, 2] }, 'Unrecognized operation Math.max (failed at Math)'],
    [{ log: 'hello' }, 'Unrecognized operation log'],
  ])('throws RULE_EXPRESSION_FAILED for %j', (expression, cause) => {
    const context = makeContext(makeIncident({ odd: { indexOf: 1 } }));
    const run = compileExpression(expression);
    let thrown: unknown;
    try {
      run(context);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ExpressionError);
    const error = thrown as ExpressionError;
    expect(error.code).toBe('RULE_EXPRESSION_FAILED');
    expect(error.name).toBe('ExpressionError');
    expect(error.expression).toBe(expression);
    expect((error.cause as Error).message).toBe(cause);
    expect(error.message).toBe(`expression ${JSON.stringify(expression)} failed: ${cause}`);
  });

  it('refuses an unknown operator even in a branch that is never taken', () => {
    // json-logic-js would answer 1 here: it only fails on the operators it reaches.
    const run = compileExpression({ if: [true, 1, { typo: 2 }] });
    let thrown: unknown;
    try {
      run(makeContext(makeIncident()));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ExpressionError);
    expect((thrown as ExpressionError).message).toBe(
      'expression {"if":[true,1,{"typo":2}]} failed: Unrecognized operation typo',
    );
    expect((thrown as ExpressionError).cause).toBeInstanceOf(UnknownOperatorError);
  });

  it('throws from evaluateExpression too', () => {
    expect(() => evaluateExpression({ '*': [] }, makeContext(null))).toThrow(
      new ExpressionError(
        { '*': [] },
        new TypeError('Reduce of empty array with no initial value'),
      ),
    );
  });

  it('leaves the next evaluation unaffected after a failure', () => {
    const context = makeContext(makeIncident());
    expect(() => evaluate({ map: [[1], { '*': [] }] }, context)).toThrow(ExpressionError);
    expect(evaluate({ hours_since: { var: 'object.due_date' } }, context)).toBe(3);
  });
});

describe('literals', () => {
  it.each([
    ['text', 'text'],
    [5, 5],
    [null, null],
    [true, true],
    [
      [1, { var: 'object.count' }],
      [1, 42],
    ],
    [
      { a: 1, b: 2 },
      { a: 1, b: 2 },
    ],
  ])('evaluates the literal %j to %j', (expression, expected) => {
    expect(evaluate(expression)).toEqual(expected);
  });
});

describe('the memo of paths a context carries for its event', () => {
  it('reads object, previous and event paths once for all the per-rule copies of a context', () => {
    const base = makeContext(makeIncident({ priority: 'low' }), makeIncident());
    const first = { ...base, rule: { id: 'a' } };
    const second = { ...base, rule: { id: 'b' } };
    expect(compileExpression({ var: 'object.priority' })(first)).toBe('low');
    // The memo is the event's: a copy made for the next rule reads the value from it.
    (base.object as Record<string, unknown>).priority = 'changed after the read';
    expect(compileExpression({ var: 'object.priority' })(second)).toBe('low');
    // A default applies to a memoised absence as to a direct read.
    expect(compileExpression({ var: ['object.nothing', 'dflt'] })(first)).toBe('dflt');
    expect(compileExpression({ var: ['object.nothing', 'other'] })(second)).toBe('other');
  });

  it('never memoises correlation or rule, which change between the rules of an event', () => {
    const context = makeContext(makeIncident());
    const key = compileExpression({ var: 'correlation.key' });
    const rule = compileExpression({ var: 'rule.id' });
    expect(key(context)).toBe(null);
    expect(rule({ ...context, rule: { id: 'first' } })).toBe('first');
    context.correlation = { key: 'network', count: 3, ids: [] };
    expect(key(context)).toBe('network');
    expect(rule({ ...context, rule: { id: 'second' } })).toBe('second');
  });

  it('reads an iteration element directly, never through the memo', () => {
    const context = makeContext(makeIncident({ links: [{ object: 1 }, { object: 2 }] }));
    // Inside map the datum is each element: `object` there is the element's own field, though
    // the same path at the top (the event's object) is in the memo already.
    expect(compileExpression({ var: 'object.id' })(context)).toBe('inc-1');
    expect(compileExpression({ var: 'object' })(context)).toMatchObject({ id: 'inc-1' });
    const expression = { map: [{ var: 'object.links' }, { var: 'object' }] };
    expect(compileExpression(expression)(context)).toEqual([1, 2]);
  });
});

describe('sub-expressions the rules of an event share', () => {
  it('evaluates a sub-expression two rules share once per event', () => {
    const condition = { '==': [{ var: 'object.impact' }, 'high'] };
    const first = compileExpression(condition);
    const second = compileExpression(structuredClone(condition));
    const event = makeContext(makeIncident({ impact: 'high' }));
    expect(first({ ...event, rule: { id: 'a' } })).toBe(true);
    // The second rule gets the event's kept answer, not a new reading of the object.
    (event.object as Record<string, unknown>).impact = 'low';
    expect(second({ ...event, rule: { id: 'b' } })).toBe(true);
    // The next event is evaluated afresh.
    expect(second(makeContext(makeIncident({ impact: 'low' })))).toBe(false);
  });

  it.each([
    ['correlation', { '>=': [{ var: 'correlation.count' }, 3] }],
    ['the rule', { '==': [{ var: 'rule.id' }, 'b'] }],
  ])('never keeps a sub-expression that reads %s', (_, condition) => {
    const first = compileExpression(condition);
    const second = compileExpression(structuredClone(condition));
    const event = makeContext(makeIncident());
    expect(first({ ...event, rule: { id: 'a' } })).toBe(false);
    event.correlation = { key: 'network', count: 3, ids: [] };
    expect(second({ ...event, rule: { id: 'b' } })).toBe(true);
  });

  it('keeps -0 and 0 apart', () => {
    const negative = compileExpression({ '/': [1, -0] });
    const positive = compileExpression({ '/': [1, 0] });
    compileExpression({ '/': [1, -0] });
    compileExpression({ '/': [1, 0] });
    const event = makeContext(makeIncident());
    expect(negative(event)).toBe(Number.NEGATIVE_INFINITY);
    expect(positive(event)).toBe(Number.POSITIVE_INFINITY);
  });
});
