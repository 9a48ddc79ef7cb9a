// Fuzzing the evaluator: random JSON-logic (known and unknown operators, `__proto__` /
// `constructor` paths, deep nesting, large arrays, odd types) compiled with compileExpression and
// evaluated against ITSM-like contexts, and rules that load run through evaluateEvent. Invariants:
// nothing throws but an ExpressionError (a rule failing at runtime is recorded, not a crash), the
// built-in prototypes are untouched, and where json-logic-js (the project's interpreter) gives a
// value the compiled path gives the same. test/engine/differential.test.ts compares the two paths
// value by value on realistic expressions; this file aims at robustness on hostile ones.
// Seed and size: FUZZ_SEED, FUZZ_CASES (see random.ts).
import { afterAll, describe, expect, it } from 'vitest';
import { createContext } from '../../src/engine/context.js';
import { evaluateEvent } from '../../src/engine/evaluate.js';
import {
  compileExpression,
  ENGINE_OPERATORS,
  type EvaluationContext,
  ExpressionError,
  interpretExpression,
  STANDARD_OPERATORS,
} from '../../src/engine/expression.js';
import { loadRules } from '../../src/engine/load.js';
import { makeEngineStore } from '../helpers/rules.js';
import { sameResult } from '../helpers/same-result.js';
import {
  DANGEROUS_KEYS,
  fuzzCases,
  fuzzSeed,
  Random,
  replayHint,
  watchPrototypes,
} from './random.js';

const SEED = fuzzSeed();
const CASES = fuzzCases();
const HINT = replayHint('evaluator', SEED, CASES);
console.log(HINT);

const OPERATORS = [...STANDARD_OPERATORS, ...ENGINE_OPERATORS];
const UNKNOWN_OPERATORS = ['log', 'eval', 'nope', '__proto__', 'constructor', 'toString', ''];
const PATHS = [
  'object.priority',
  'object.assignee.id',
  'object.tags.0',
  'previous.priority',
  'event.type',
  'changed',
  'now',
  '__proto__',
  'object.__proto__',
  'object.__proto__.polluted',
  'constructor.prototype',
  'object.constructor.prototype.polluted',
  'object.toString',
  'object.hasOwnProperty',
  'rule.id',
  'correlation.count',
  '',
  '.',
  '..',
  'object..priority',
  '0',
  'length',
];

function makeContext(random: Random): EvaluationContext {
  const object: Record<string, unknown> = {
    id: `F${random.int(1, 99)}`,
    priority: random.pick(['low', 'medium', 'high', 'critical', null, 3]),
    impact: random.pick(['low', 'high', '']),
    tags: Array.from({ length: random.int(0, 3) }, () => random.string(5)),
    assignee: random.chance(0.5) ? { id: random.string(4), type: 'user' } : null,
    modified: random.pick(['2026-01-01T00:00:00Z', 'yesterday', '2026-13-45', null]),
  };
  // An own key that reads like a prototype path, as JSON.parse would produce it.
  if (random.chance(0.3)) {
    Object.defineProperty(object, random.pick(DANGEROUS_KEYS), {
      value: { polluted: true },
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  const context = createContext({
    event: {
      id: `e${random.int(1, 1000)}`,
      type: random.pick(['add', 'update', 'delete'] as const),
      account: random.int(1, 3),
      at: '2026-01-01T00:00:00Z',
      user_id: null,
    },
    object,
    previous: random.chance(0.5) ? { ...object, priority: 'low' } : null,
    now: new Date(Date.UTC(2026, 0, 2)),
  });
  return context;
}

/** A random JSON-logic expression. */
function expression(random: Random, depth: number): unknown {
  const roll = random.float();
  if (depth <= 0 || roll < 0.2) return leaf(random);
  if (roll < 0.25) return { var: random.chance(0.5) ? random.pick(PATHS) : random.json(1) };
  if (roll < 0.3) {
    // A large array, as a literal or an argument list.
    const size = random.pick([10, 100, 1_000, 5_000]);
    return {
      [random.pick(['merge', 'in', 'cat', 'max', '+', 'some', 'all'])]: Array.from(
        { length: size },
        (_, i) => (random.chance(0.5) ? i : random.string(2)),
      ),
    };
  }
  const operator = random.chance(0.08) ? random.pick(UNKNOWN_OPERATORS) : random.pick(OPERATORS);
  const arity = random.int(0, 4);
  const args = Array.from({ length: arity }, () => expression(random, depth - 1));
  const node: Record<string, unknown> = {};
  Object.defineProperty(node, operator, {
    value: random.chance(0.15) && args.length > 0 ? args[0] : args,
    enumerable: true,
    writable: true,
    configurable: true,
  });
  // Now and then a second key: not a JSON-logic node any more, a literal object.
  if (random.chance(0.05)) node[random.key()] = leaf(random);
  return node;
}

function leaf(random: Random): unknown {
  return random.pick<() => unknown>([
    () => random.json(2),
    () => ({ var: random.pick(PATHS) }),
    () => ({ var: [random.pick(PATHS), random.json(1)] }),
    () => random.pick(['critical', 'high', 'low', '2026-01-01T00:00:00Z', '^h', 'i']),
    () => random.number(),
  ])();
}

/** The JSON text of a chain of `depth` nested nodes (JSON.stringify overflows on deep ones). */
function deepText(random: Random, depth: number): string {
  const operators = Array.from({ length: depth }, () =>
    random.pick(['!', '!!', 'if', 'and', 'or', 'cat', '+']),
  );
  return `${operators.map((op) => `{"${op}": [`).join('')}{"var": "object.priority"}${']}'.repeat(depth)}`;
}

/** A chain of `depth` nested nodes around a var. */
function deep(random: Random, depth: number): unknown {
  let node: unknown = { var: 'object.priority' };
  for (let i = 0; i < depth; i++)
    node = { [random.pick(['!', '!!', 'if', 'and', 'or', 'cat', '+'])]: [node] };
  return node;
}

function show(value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value, (_key, v: unknown) =>
      typeof v === 'number' && !Number.isFinite(v) ? String(v) : v === undefined ? 'undefined' : v,
    );
  } catch (error) {
    return `(not printable: ${String(error)})`;
  }
  return text === undefined ? String(value) : text.length > 300 ? `${text.slice(0, 300)}...` : text;
}

type Outcome = { value: unknown } | { error: unknown };

function run(evaluate: () => unknown): Outcome {
  try {
    return { value: evaluate() };
  } catch (error) {
    return { error };
  }
}

const figures: string[] = [];
afterAll(() => {
  for (const line of figures) console.log(line);
});

describe(`evaluator fuzz (seed ${SEED}, ${CASES} cases)`, () => {
  it(
    'evaluates random JSON-logic without crashing, polluting a prototype or disagreeing with json-logic-js',
    () => {
      const random = new Random(SEED);
      const prototypesChanged = watchPrototypes();
      const started = performance.now();
      let compared = 0;
      let failed = 0;
      for (let index = 0; index < CASES; index++) {
        const caseRandom = random.fork();
        const expr = caseRandom.chance(0.03)
          ? deep(caseRandom, caseRandom.pick([50, 500, 5_000, 20_000]))
          : expression(caseRandom, caseRandom.int(1, 5));
        const context = makeContext(caseRandom);
        const where = () =>
          `${replayHint('evaluator', SEED, CASES, index)}\nexpression: ${show(expr)}`;

        let compiled: ReturnType<typeof compileExpression>;
        try {
          compiled = compileExpression(expr);
        } catch (error) {
          throw new Error(`compileExpression threw ${String(error)}\n${where()}`);
        }
        const ours = run(() => compiled(context));
        if ('error' in ours && !(ours.error instanceof ExpressionError)) {
          throw new Error(
            `evaluation threw something other than an ExpressionError: ${String(ours.error)}\n${where()}`,
          );
        }
        if ('error' in ours) failed++;
        const changes = prototypesChanged();
        if (changes.length > 0)
          throw new Error(`prototype pollution: ${changes.join(', ')}\n${where()}`);

        const reference = run(() => interpretExpression(expr, context));
        if ('value' in reference && 'value' in ours) {
          compared++;
          if (!sameResult(ours.value, reference.value)) {
            throw new Error(
              `compiled ${show(ours.value)} but json-logic-js ${show(reference.value)}\n${where()}`,
            );
          }
        }
      }
      expect(prototypesChanged()).toEqual([]);
      const plain: Record<string, unknown> = {};
      expect(plain.polluted).toBeUndefined();
      figures.push(
        `evaluator fuzz: ${CASES} expressions in ${Math.round(performance.now() - started)} ms (seed ${SEED}); ${compared} compared with json-logic-js, ${failed} runtime failures (ExpressionError)`,
      );
    },
    Math.max(20_000, CASES * 20),
  );

  it(
    'records a rule that fails at runtime as failed, and refuses a too-deep one at load',
    async () => {
      const random = new Random(SEED ^ 0x9e3779b9);
      const store = makeEngineStore();
      const prototypesChanged = watchPrototypes();
      const verdicts = { matched: 0, no_match: 0, skipped: 0, failed: 0, shadow: 0, refused: 0 };
      try {
        const rounds = Math.max(50, Math.floor(CASES / 20));
        for (let index = 0; index < rounds; index++) {
          const when = random.chance(0.1)
            ? deepText(random, random.pick([20, 2_000, 20_000]))
            : JSON.stringify(expression(random, random.int(1, 4)));
          const text = `{"on": {"type": "incident"}, "then": [{"log": {"message": "matched"}}], "when": ${when}}`;
          const where = `${replayHint('evaluator', SEED, CASES, index)}\nwhen: ${when.slice(0, 300)}`;
          let loaded: ReturnType<typeof loadRules>;
          try {
            loaded = loadRules([{ path: 'rules/incident/fuzz.json', text }]);
          } catch (error) {
            throw new Error(`loadRules threw ${String(error)}\n${where}`);
          }
          if (!loaded.ruleSet) {
            verdicts.refused++;
            continue;
          }
          const context = makeContext(random);
          const evaluation = await evaluateEvent(
            loaded.ruleSet,
            {
              key: `fuzz-${index}`,
              event: {
                id: `e${index}`,
                type: 'update',
                account: 1,
                at: '2026-01-01T00:00:00Z',
                user_id: null,
              },
              objectType: 'incident',
              object: context.object,
              previous: context.previous,
              now: new Date(Date.UTC(2026, 0, 2)),
            },
            store,
          );
          for (const outcome of evaluation.outcomes) verdicts[outcome.verdict]++;
          expect(prototypesChanged(), where).toEqual([]);
        }
      } finally {
        await store.close();
      }
      figures.push(`evaluator fuzz (rules through evaluateEvent): ${JSON.stringify(verdicts)}`);
      expect(
        verdicts.matched +
          verdicts.no_match +
          verdicts.skipped +
          verdicts.failed +
          verdicts.refused,
      ).toBeGreaterThan(0);
    },
    Math.max(20_000, CASES * 20),
  );
});
