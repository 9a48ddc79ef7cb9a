// Rule evaluation: rule-object pairs per second for 10, 100 and 1000 generated ITSM rules over a
// few hundred generated incidents, for the compiled engine (compileExpression), json-logic-js
// interpreting the same rules, and hand-written closures (the upper bound), measured in turns
// in one process; then the rule index: events per second through evaluateEvent with 1000 rules
// of which 10 match the event, against a set of only those 10. Medians of rounds.
//   npx tsx bench/rules.ts [--rounds 5] [--objects 300] [--ms 300] [--sizes 10,100,1000] [--seed 7]
import { parseArgs } from 'node:util';
import { hoursSince, PATH_MEMO, rank } from '../src/engine/compile.js';
import { changedFields, type EngineEvent } from '../src/engine/context.js';
import { type EvaluationInput, evaluateEvent } from '../src/engine/evaluate.js';
import {
  compileExpression,
  type EvaluationContext,
  interpretExpression,
  isTruthy,
} from '../src/engine/expression.js';
import { loadRules, type RuleSource } from '../src/engine/load.js';
import { formatProblem } from '../src/engine/problem.js';
import { loadMigrations } from '../src/runtime/node.js';
import { seededRandom } from '../src/server/faults.js';
import { createSqliteEngineStore } from '../src/storage/sqlite-engine.js';
import { median } from './stats.js';

const { values: options } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    objects: { type: 'string', default: '300' },
    ms: { type: 'string', default: '300' },
    sizes: { type: 'string', default: '10,100,1000' },
    seed: { type: 'string', default: '7' },
  },
});
const ROUNDS = Number(options.rounds);
const OBJECTS = Number(options.objects);
const MIN_MS = Number(options.ms);
const SIZES = options.sizes.split(',').map(Number);
const NOW = '2026-11-28T12:00:00Z';

const random = seededRandom(Number(options.seed));
const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
const chance = (p: number) => random() < p;
const pick = <T>(items: readonly T[]): T => items[int(0, items.length - 1)] as T;
const sample = <T>(items: readonly T[], n: number): T[] =>
  [...items].sort(() => random() - 0.5).slice(0, n);

// ---------------------------------------------------------------------------------------------
// Incidents

const LEVELS = ['low', 'medium', 'high'] as const;
const PRIORITIES = ['low', 'medium', 'high', 'critical'] as const;
const STATUSES = ['new', 'in_progress', 'on_hold', 'resolved', 'closed'] as const;
const CATEGORIES = [
  'Network',
  'network',
  'Disk',
  'Database',
  'Email',
  'VPN',
  'Printer',
  'Storage',
  'Identity',
  'DNS',
  'Backup',
  'Hardware',
] as const;
const WORDS = [
  'disk',
  'full',
  'on',
  'db-01',
  'timeout',
  'users',
  'cannot',
  'reach',
  'vpn',
  'gateway',
  'latency',
  'error',
  '500',
  'printer',
  'jam',
  'floor',
  'outage',
  'login',
  'failed',
  'certificate',
  'expired',
] as const;
const DOMAINS = ['ops.example.com', 'sre.example.com', 'example.org', 'corp.example.com'];

interface Incident extends Record<string, unknown> {
  priority: string | null;
  impact: string | null;
  urgency: string | null;
  status: string;
  category: string | null;
  description: string | null;
  active: boolean;
  escalation: number;
  assignee: { type: 'user'; id: string; name: string; email: string } | null;
  due_date: string | null;
  created: string;
  problem: string | null;
  change: string | null;
}

const isoHoursFromNow = (hours: number) =>
  new Date(Date.parse(NOW) + hours * 3_600_000).toISOString().replace('.000Z', 'Z');

function makeIncident(i: number): Incident {
  const user = int(1, 40);
  return {
    id: `inc-${i}`,
    type: 'incident',
    href: `https://itsm.example.com/incidents/inc-${i}`,
    priority: chance(0.05) ? null : pick(PRIORITIES),
    impact: chance(0.05) ? null : pick(LEVELS),
    urgency: chance(0.05) ? null : pick(LEVELS),
    status: pick(STATUSES),
    category: chance(0.1) ? null : pick(CATEGORIES),
    description: chance(0.05) ? null : sample(WORDS, int(3, 9)).join(' '),
    active: chance(0.85),
    escalation: int(0, 4),
    assignee: chance(0.3)
      ? null
      : { type: 'user', id: `u-${user}`, name: `User ${user}`, email: `u${user}@${pick(DOMAINS)}` },
    due_date: chance(0.3) ? null : isoHoursFromNow(int(-72, 72)),
    created: isoHoursFromNow(-int(0, 240)),
    modified: NOW,
    problem: chance(0.2) ? `prb-${int(1, 50)}` : null,
    change: chance(0.1) ? `chg-${int(1, 50)}` : null,
  };
}

/** The incident before the update: a few of its fields had other values. */
function makePrevious(object: Incident): Incident {
  const previous = { ...object };
  if (chance(0.4)) previous.priority = pick(PRIORITIES);
  if (chance(0.3)) previous.impact = pick(LEVELS);
  if (chance(0.3)) previous.urgency = pick(LEVELS);
  if (chance(0.4)) previous.status = pick(STATUSES);
  if (chance(0.2)) previous.assignee = null;
  return previous;
}

function makeEvent(i: number): EngineEvent {
  return { id: `evt-${i}`, type: 'update', account: 1, at: NOW, user_id: 'u-1' };
}

const incidents = Array.from({ length: OBJECTS }, (_, i) => makeIncident(i));
const previousOf = incidents.map(makePrevious);
const contexts: EvaluationContext[] = incidents.map((object, i) => ({
  event: makeEvent(i),
  object,
  previous: previousOf[i] ?? null,
  changed: changedFields('update', object, previousOf[i] ?? null),
  now: NOW,
  correlation: null,
  rule: { id: 'bench' },
  // As createContext gives every context: the memo of the event's paths.
  [PATH_MEMO]: [],
}));

// ---------------------------------------------------------------------------------------------
// Rules: each template gives a condition shaped like those in rules/*.yaml, with random values,
// and the closure a person would write for it by hand (the same domain helpers, rank and
// hours_since, but plain property reads and JavaScript operators).

interface GeneratedRule {
  when: unknown;
  hand: (c: EvaluationContext) => unknown;
}

const objectOf = (c: EvaluationContext) => c.object as Incident;
const previousIn = (c: EvaluationContext) => c.previous as Incident | null;
const v = (path: string) => ({ var: path });
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const TEMPLATES: (() => GeneratedRule)[] = [
  // escalate-major-incidents
  () => {
    const impact = pick(LEVELS);
    const urgency = pick(LEVELS);
    const priority = pick(PRIORITIES);
    return {
      when: {
        and: [
          { '==': [v('object.impact'), impact] },
          { '==': [v('object.urgency'), urgency] },
          { '!=': [v('object.priority'), priority] },
          { '!==': [v('object.active'), false] },
        ],
      },
      hand: (c) => {
        const o = objectOf(c);
        return (
          o.impact === impact &&
          o.urgency === urgency &&
          o.priority !== priority &&
          o.active !== false
        );
      },
    };
  },
  // overdue-incident-escalation
  () => {
    const hours = int(-12, 24);
    const below = pick(PRIORITIES);
    const belowRank = rank(below) ?? 0;
    return {
      when: {
        and: [
          { '!!': v('object.due_date') },
          { '>': [{ hours_since: v('object.due_date') }, hours] },
          { '<': [{ rank: v('object.priority') }, { rank: below }] },
        ],
      },
      hand: (c) => {
        const o = objectOf(c);
        return (
          !!o.due_date &&
          (hoursSince(o.due_date, c) ?? 0) > hours &&
          (rank(o.priority) ?? 0) < belowRank
        );
      },
    };
  },
  // priority and category lists
  () => {
    const priorities = sample(PRIORITIES, int(1, 3));
    const categories = sample(CATEGORIES, int(2, 10));
    const prioritySet = new Set<unknown>(priorities);
    const categorySet = new Set<unknown>(categories);
    return {
      when: {
        and: [
          { in: [v('object.priority'), priorities] },
          { in: [v('object.category'), categories] },
        ],
      },
      hand: (c) => {
        const o = objectOf(c);
        return prioritySet.has(o.priority) && categorySet.has(o.category);
      },
    };
  },
  // a field changed, at some rank or above
  () => {
    const field = pick(['priority', 'impact', 'urgency', 'status', 'assignee']);
    const least = int(1, 4);
    return {
      when: { and: [{ changed: field }, { '>=': [{ rank: v('object.priority') }, least] }] },
      hand: (c) => c.changed.includes(field) && (rank(objectOf(c).priority) ?? 0) >= least,
    };
  },
  // description matches, not yet tied to a problem
  () => {
    const words = sample(WORDS, int(1, 3));
    const pattern = `\\b(${words.map(escapeRegExp).join('|')})\\b`;
    const regex = new RegExp(pattern, 'i');
    return {
      when: {
        and: [{ matches: [v('object.description'), pattern, 'i'] }, { '!': v('object.problem') }],
      },
      hand: (c) => {
        const o = objectOf(c);
        return o.description !== null && regex.test(o.description) && !o.problem;
      },
    };
  },
  // or of ands
  () => {
    const priority = pick(PRIORITIES);
    const escalations = int(1, 4);
    return {
      when: {
        or: [
          {
            and: [
              { '==': [v('object.impact'), 'high'] },
              { in: [v('object.urgency'), ['high', 'medium']] },
            ],
          },
          { and: [{ '==': [v('object.priority'), priority] }, { '!': v('object.assignee') }] },
          { '>': [v('object.escalation'), escalations] },
        ],
      },
      hand: (c) => {
        const o = objectOf(c);
        return (
          (o.impact === 'high' && (o.urgency === 'high' || o.urgency === 'medium')) ||
          (o.priority === priority && !o.assignee) ||
          o.escalation > escalations
        );
      },
    };
  },
  // a status transition (problem-in-fix-opens-change)
  () => {
    const status = pick(STATUSES);
    return {
      when: {
        and: [
          { '==': [v('object.status'), status] },
          { '!=': [v('previous.status'), status] },
          { '!': v('object.change') },
        ],
      },
      hand: (c) => {
        const o = objectOf(c);
        return o.status === status && (previousIn(c)?.status ?? null) !== status && !o.change;
      },
    };
  },
  // impact went up
  () => ({
    when: {
      and: [
        { changed: 'impact' },
        { '>': [{ rank: v('object.impact') }, { rank: v('previous.impact') }] },
      ],
    },
    hand: (c) =>
      c.changed.includes('impact') &&
      (rank(objectOf(c).impact) ?? 0) > (rank(previousIn(c)?.impact) ?? 0),
  }),
  // assigned to a team, not escalated much
  () => {
    const domains = sample(DOMAINS, int(1, 2));
    const pattern = `@(${domains.map(escapeRegExp).join('|')})$`;
    const regex = new RegExp(pattern);
    const below = int(1, 4);
    return {
      when: {
        and: [
          { '!!': v('object.assignee') },
          { matches: [v('object.assignee.email'), pattern] },
          { '<': [v('object.escalation'), below] },
        ],
      },
      hand: (c) => {
        const o = objectOf(c);
        return !!o.assignee && regex.test(o.assignee.email) && o.escalation < below;
      },
    };
  },
  // a category whatever its case, impact, age
  () => {
    const category = pick(CATEGORIES).toLowerCase();
    const hours = int(0, 120);
    return {
      when: {
        and: [
          { '==': [{ lower: v('object.category') }, category] },
          { in: [v('object.impact'), ['medium', 'high']] },
          { '>=': [{ hours_since: v('object.created') }, hours] },
        ],
      },
      hand: (c) => {
        const o = objectOf(c);
        return (
          o.category !== null &&
          o.category.toLowerCase() === category &&
          (o.impact === 'medium' || o.impact === 'high') &&
          (hoursSince(o.created, c) ?? 0) >= hours
        );
      },
    };
  },
];

function makeRules(count: number): GeneratedRule[] {
  return Array.from({ length: count }, () => (pick(TEMPLATES) as () => GeneratedRule)());
}

// ---------------------------------------------------------------------------------------------
// Measuring

type Evaluate = (context: EvaluationContext) => unknown;

let sink = 0;

/** Rule-object pairs per second: every rule on every object, repeated for at least MIN_MS. */
function pairsPerSecond(evaluators: readonly Evaluate[]): number {
  let passes = 0;
  let matched = 0;
  const started = performance.now();
  let elapsed = 0;
  do {
    for (const context of contexts) {
      // Each pass over an incident stands for a new event: its memo starts empty, as from
      // createContext (the same for the three evaluators; only the compiled one uses it).
      context[PATH_MEMO] = [];
      for (const evaluate of evaluators) if (isTruthy(evaluate(context))) matched++;
    }
    passes++;
    elapsed = performance.now() - started;
  } while (elapsed < MIN_MS);
  sink += matched;
  return (passes * contexts.length * evaluators.length) / (elapsed / 1000);
}

const millions = (rate: number) => `${(rate / 1e6).toFixed(2)} M/s`;

/** The three evaluators must agree on every pair before any of them is timed. */
function verify(rules: readonly GeneratedRule[], engines: Record<string, Evaluate[]>): number {
  let matches = 0;
  for (const [r, rule] of rules.entries()) {
    for (const [c, context] of contexts.entries()) {
      const compiled = isTruthy(engines.compiled?.[r]?.(context));
      const interpreted = isTruthy(engines.interpreted?.[r]?.(context));
      const hand = isTruthy(engines.hand?.[r]?.(context));
      if (compiled !== interpreted || compiled !== hand) {
        throw new Error(
          `rule ${r} on incident ${c} disagrees (compiled ${compiled}, json-logic-js ${interpreted}, hand-written ${hand}): ${JSON.stringify(rule.when)}`,
        );
      }
      if (compiled) matches++;
    }
  }
  return matches / (rules.length * contexts.length);
}

console.log(
  `rule evaluation: ${OBJECTS} incidents, median of ${ROUNDS} rounds of >= ${MIN_MS} ms, node ${process.version}`,
);
console.log(
  `${'rules'.padStart(6)}  ${'compiled'.padStart(11)}  ${'json-logic-js'.padStart(13)}  ${'hand-written'.padStart(12)}  ${'vs json-logic-js'.padStart(16)}  ${'of hand-written'.padStart(15)}  matching`,
);
for (const size of SIZES) {
  const rules = makeRules(size);
  const engines: Record<'compiled' | 'interpreted' | 'hand', Evaluate[]> = {
    compiled: rules.map((rule) => compileExpression(rule.when)),
    interpreted: rules.map((rule) => (context) => interpretExpression(rule.when, context)),
    hand: rules.map((rule) => rule.hand),
  };
  const share = verify(rules, engines);
  const samples: Record<keyof typeof engines, number[]> = {
    compiled: [],
    interpreted: [],
    hand: [],
  };
  const order = Object.keys(engines) as (keyof typeof engines)[];
  for (const name of order) pairsPerSecond(engines[name]);
  for (let round = 0; round < ROUNDS; round++) {
    // Each engine in turn within a round, so that drift of the machine affects all three alike.
    for (const name of order) samples[name].push(pairsPerSecond(engines[name]));
  }
  const compiled = median(samples.compiled);
  const interpreted = median(samples.interpreted);
  const hand = median(samples.hand);
  console.log(
    `${String(size).padStart(6)}  ${millions(compiled).padStart(11)}  ${millions(interpreted).padStart(13)}  ${millions(hand).padStart(12)}  ${`${(compiled / interpreted).toFixed(1)}x`.padStart(16)}  ${`${((compiled / hand) * 100).toFixed(0)}%`.padStart(15)}  ${(share * 100).toFixed(0)}%`,
  );
}

// ---------------------------------------------------------------------------------------------
// The rule index: events per second through evaluateEvent, with 1000 rules of which 10 watch
// incident updates (the others watch incident adds and deletes), against those 10 rules alone.

function ruleSource(index: number, on: Record<string, unknown>): RuleSource {
  const rule = pick(TEMPLATES)();
  const id = `bench-${String(index).padStart(4, '0')}`;
  const text = JSON.stringify({
    id,
    on,
    when: rule.when,
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

// The same 10 rules watch incident updates in both sets; the large one adds 990 that watch
// incident adds and deletes, which the index never hands to an update.
const matchingSources = Array.from({ length: 10 }, (_, i) =>
  ruleSource(i, { type: 'incident', events: ['update'] }),
);
const otherSources = Array.from({ length: 990 }, (_, i) =>
  ruleSource(
    10 + i,
    pick([
      { type: 'incident', events: ['add'] },
      { type: 'incident', events: ['delete'] },
      { type: 'incident', events: ['add', 'delete'] },
    ]),
  ),
);

const store = createSqliteEngineStore({ path: ':memory:', migrations: loadMigrations() });
const inputs: EvaluationInput[] = incidents.map((object, i) => ({
  key: `e:1:evt-${i}`,
  event: makeEvent(i),
  objectType: 'incident',
  object,
  previous: previousOf[i] ?? null,
  now: new Date(NOW),
}));

async function eventsPerSecond(set: ReturnType<typeof load>): Promise<number> {
  let events = 0;
  let planned = 0;
  const started = performance.now();
  let elapsed = 0;
  do {
    for (const input of inputs) {
      const { plan } = await evaluateEvent(set, input, store);
      planned += plan.calls.length;
      events++;
    }
    elapsed = performance.now() - started;
  } while (elapsed < MIN_MS);
  sink += planned;
  return events / (elapsed / 1000);
}

const matchingOnly = load(matchingSources);
const large = load([...matchingSources, ...otherSources]);
const indexSamples: { small: number[]; large: number[] } = { small: [], large: [] };
await eventsPerSecond(matchingOnly);
await eventsPerSecond(large);
for (let round = 0; round < ROUNDS; round++) {
  indexSamples.small.push(await eventsPerSecond(matchingOnly));
  indexSamples.large.push(await eventsPerSecond(large));
}
const small = median(indexSamples.small);
const big = median(indexSamples.large);
console.log('');
console.log('rule index: evaluateEvent on incident updates (10 rules match each event)');
console.log(`${'10 rules, all 10 matching'.padEnd(36)} ${small.toFixed(0).padStart(8)} events/s`);
console.log(
  `${'1000 rules, 10 matching'.padEnd(36)} ${big.toFixed(0).padStart(8)} events/s   ${((big / small) * 100).toFixed(0)}% of the 10-rule set`,
);
await store.close();
if (sink < 0) console.log(sink);
