// The cost of a large rule set whose rules mostly do not match, as the pipeline pays it per
// event: evaluateEvent, then the run record as stored (evaluatedRun and its detail's JSON). A
// set of 1000 rules that all watch incident updates, of which 10 match each event, beside those
// 10 rules alone (the target: at least 0.85x of their throughput). The same run also measures
// the record as it was stored before explanations were deferred (every false condition's lines
// worked out and written at once), so that the ratio of before and after is a same-run figure.
//   npx tsx bench/run-records.ts [--rules 1000] [--rounds 5] [--ms 400]
import { parseArgs } from 'node:util';
import type { EngineEvent } from '../src/engine/context.js';
import { type EvaluationInput, evaluateEvent } from '../src/engine/evaluate.js';
import { loadRules, type RuleSource } from '../src/engine/load.js';
import { formatProblem } from '../src/engine/problem.js';
import { evaluatedRun } from '../src/engine/run-record.js';
import { loadMigrations } from '../src/runtime/node.js';
import { createSqliteEngineStore } from '../src/storage/sqlite-engine.js';
import { median } from './stats.js';

const { values } = parseArgs({
  options: {
    rules: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '5' },
    ms: { type: 'string', default: '400' },
  },
});
const ruleCount = Number(values.rules);
const rounds = Number(values.rounds);
const minMs = Number(values.ms);

// Conditions false for every incident below, of the shapes rules take (an equality, a
// conjunction whose second part is false, a list membership, a comparison of a number).
const FALSE_CONDITIONS = [
  (i: number) => ({ '==': [{ var: 'object.category' }, `category-${i}`] }),
  (i: number) => ({
    and: [
      { '==': [{ var: 'object.impact' }, 'high'] },
      { '==': [{ var: 'object.description' }, `outage ${i}`] },
    ],
  }),
  (i: number) => ({
    and: [
      { in: [{ var: 'object.priority' }, ['critical', 'low']] },
      { '!=': [{ var: 'object.category' }, `c${i}`] },
    ],
  }),
  (i: number) => ({ '>': [{ var: 'object.escalation' }, 1 + (i % 2)] }),
];

function ruleSource(id: string, when: unknown): RuleSource {
  const text = JSON.stringify({
    id,
    on: { type: 'incident', events: ['update'] },
    when,
    // biome-ignore lint/suspicious/noThenProperty: the rule format's key; a list, never a function.
    then: [{ log: { message: { cat: ['matched ', { var: 'object.id' }] } } }],
  });
  return { path: `rules/bench/${id}.json`, text };
}

function load(sources: readonly RuleSource[]) {
  const result = loadRules(sources);
  if (!result.ruleSet) throw new Error(result.problems.map(formatProblem).join('\n'));
  return result.ruleSet;
}

const matching = Array.from({ length: 10 }, (_, i) =>
  ruleSource(`match-${i}`, { '==': [{ var: 'object.impact' }, 'high'] }),
);
const falseOnes = Array.from({ length: ruleCount - 10 }, (_, i) =>
  ruleSource(
    `miss-${i}`,
    (FALSE_CONDITIONS[i % FALSE_CONDITIONS.length] as (i: number) => unknown)(i),
  ),
);
const small = load(matching);
const large = load([...matching, ...falseOnes]);

const store = createSqliteEngineStore({ path: ':memory:', migrations: loadMigrations() });
const inputs: EvaluationInput[] = Array.from({ length: 100 }, (_, i) => {
  const event: EngineEvent = {
    id: `evt-${i}`,
    type: 'update',
    account: 1,
    at: '2026-03-02T10:00:00Z',
    user_id: null,
  };
  const object = {
    id: `inc-${i}`,
    type: 'incident',
    impact: 'high',
    urgency: 'low',
    priority: 'medium',
    category: 'network',
    escalation: 0,
    description: `incident ${i}`,
  };
  return {
    key: `e:1:evt-${i}`,
    event,
    objectType: 'incident',
    object,
    previous: { ...object, urgency: 'medium' },
    now: new Date('2026-03-02T10:00:00Z'),
  };
});

let sink = 0;
/** Events per second: evaluation and the stored record's detail; `eager` explains at once. */
async function eventsPerSecond(set: ReturnType<typeof load>, eager: boolean): Promise<number> {
  let events = 0;
  const started = performance.now();
  let elapsed = 0;
  do {
    for (const input of inputs) {
      const evaluation = await evaluateEvent(set, input, store);
      // Before: the lines of every false condition were worked out and stored with the record.
      if (eager) for (const outcome of evaluation.outcomes) sink += outcome.details?.length ?? 0;
      const record = evaluatedRun(
        {
          key: input.key,
          event: input.event,
          objectType: 'incident',
          objectId: null,
          selfHops: 0,
          at: 0,
        },
        evaluation,
        null,
      );
      sink += record.detail.length;
      events++;
    }
    elapsed = performance.now() - started;
  } while (elapsed < minMs);
  return events / (elapsed / 1000);
}

const samples = { small: [] as number[], eager: [] as number[], deferred: [] as number[] };
await eventsPerSecond(small, false);
await eventsPerSecond(large, true);
await eventsPerSecond(large, false);
for (let round = 0; round < rounds; round++) {
  samples.small.push(await eventsPerSecond(small, false));
  samples.eager.push(await eventsPerSecond(large, true));
  samples.deferred.push(await eventsPerSecond(large, false));
}
const base = median(samples.small);
const row = (name: string, rate: number) =>
  `${name.padEnd(58)} ${rate.toFixed(0).padStart(8)} events/s   ${(rate / base).toFixed(2)}x`;
console.log(
  `run records: evaluateEvent + the stored record, 100 incident updates, median of ${rounds} rounds of >= ${minMs} ms`,
);
console.log(
  `${'10 rules, all matching (baseline)'.padEnd(58)} ${base.toFixed(0).padStart(8)} events/s`,
);
console.log(
  row(
    `${ruleCount} rules, 10 matching, explanations written at once (before)`,
    median(samples.eager),
  ),
);
console.log(
  row(
    `${ruleCount} rules, 10 matching, explanations deferred (target >= 0.85x)`,
    median(samples.deferred),
  ),
);
await store.close();
if (sink < 0) console.log(sink);
