// Rule evaluation: rule-object pairs per second for 10, 100 and 1000 generated ITSM rules over a
// few hundred generated incidents, for the compiled engine (compileExpression), json-logic-js
// interpreting the same rules, and hand-written closures (the upper bound), measured in turns
// in one process; then the rule index: events per second through evaluateEvent with 1000 rules
// of which 10 match the event, against a set of only those 10. Medians of rounds.
//   npx tsx bench/rules.ts [--rounds 5] [--objects 300] [--ms 300] [--sizes 10,100,1000] [--seed 7]
import { createRequire } from 'node:module';
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
    parts: { type: 'string', default: 'project,plain,compile,index' },
    clock: { type: 'string', default: 'wall' },
  },
});
const PARTS = new Set(options.parts.split(','));
// `--clock cpu` times evaluation by this process's CPU time rather than the wall clock: on a
// machine shared with other work, a figure less coloured by what else runs.
const clock =
  options.clock === 'cpu'
    ? () => {
        const { user, system } = process.cpuUsage();
        return (user + system) / 1000;
      }
    : () => performance.now();
const ROUNDS = Number(options.rounds);
const OBJECTS = Number(options.objects);
const MIN_MS = Number(options.ms);
const SIZES = options.sizes.split(',').map(Number);
const NOW = '2026-11-28T12:00:00Z';
/** Passes over the incidents before timing (each rule evaluated that many times per incident). */
const WARM_PASSES = 20;

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
function pairsPerSecond(
  evaluators: readonly Evaluate[],
  over: readonly EvaluationContext[],
  minMs = MIN_MS,
): number {
  let passes = 0;
  let matched = 0;
  const started = clock();
  let elapsed = 0;
  do {
    for (const context of over) {
      // Each pass over an incident stands for a new event: its memo starts empty, as from
      // createContext (the same for the three evaluators; only the compiled one uses it).
      context[PATH_MEMO] = [];
      for (const evaluate of evaluators) if (isTruthy(evaluate(context))) matched++;
    }
    passes++;
    elapsed = clock() - started;
  } while (elapsed < minMs);
  sink += matched;
  return (passes * over.length * evaluators.length) / (elapsed / 1000);
}

const millions = (rate: number) => `${(rate / 1e6).toFixed(2)} M/s`;

type Engines = Record<'compiled' | 'interpreted' | 'hand', Evaluate[]>;

/** The three evaluators must agree on every pair before any of them is timed. */
function verify(
  whens: readonly unknown[],
  engines: Engines,
  over: readonly EvaluationContext[],
): number {
  let matches = 0;
  for (const [r, when] of whens.entries()) {
    for (const [c, context] of over.entries()) {
      context[PATH_MEMO] = [];
      const compiled = isTruthy(engines.compiled[r]?.(context));
      const interpreted = isTruthy(engines.interpreted[r]?.(context));
      const hand = isTruthy(engines.hand[r]?.(context));
      if (compiled !== interpreted || compiled !== hand) {
        throw new Error(
          `rule ${r} on incident ${c} disagrees (compiled ${compiled}, json-logic-js ${interpreted}, hand-written ${hand}): ${JSON.stringify(when)}`,
        );
      }
      if (compiled) matches++;
    }
  }
  return matches / (whens.length * over.length);
}

/** One table: for each size, the three evaluators timed in turn, round after round. */
function measure(
  title: string,
  interpreterName: string,
  makeWorkload: (size: number) => { whens: unknown[]; engines: Engines },
  over: readonly EvaluationContext[],
): void {
  console.log(
    `${title}: ${over.length} incidents, median of ${ROUNDS} rounds of >= ${MIN_MS} ms (${options.clock} clock), node ${process.version}`,
  );
  console.log(
    `${'rules'.padStart(6)}  ${'compiled'.padStart(11)}  ${interpreterName.padStart(13)}  ${'hand-written'.padStart(12)}  ${`vs ${interpreterName}`.padStart(16)}  ${'of hand-written'.padStart(15)}  matching`,
  );
  for (const size of SIZES) {
    const { whens, engines } = makeWorkload(size);
    const share = verify(whens, engines, over);
    const samples: Record<keyof Engines, number[]> = { compiled: [], interpreted: [], hand: [] };
    const order = Object.keys(engines) as (keyof Engines)[];
    // Warm-up: every closure runs often enough for V8 to optimise it (the generated hand-written
    // functions are one per rule, so at 1000 rules a single pass leaves them unoptimised).
    for (const name of order) {
      for (let pass = 0; pass < (name === 'interpreted' ? 1 : WARM_PASSES); pass++) {
        pairsPerSecond(engines[name], over, 0);
      }
    }
    for (let round = 0; round < ROUNDS; round++) {
      // Each engine in turn within a round, so that drift of the machine affects all three alike.
      for (const name of order) samples[name].push(pairsPerSecond(engines[name], over));
    }
    const compiled = median(samples.compiled);
    const interpreted = median(samples.interpreted);
    const hand = median(samples.hand);
    console.log(
      `${String(size).padStart(6)}  ${millions(compiled).padStart(11)}  ${millions(interpreted).padStart(13)}  ${millions(hand).padStart(12)}  ${`${(compiled / interpreted).toFixed(1)}x`.padStart(16)}  ${`${((compiled / hand) * 100).toFixed(0)}%`.padStart(15)}  ${(share * 100).toFixed(0)}%`,
    );
  }
}

if (PARTS.has('project')) {
  measure(
    "rule evaluation, the project's workload",
    'json-logic-js',
    (size) => {
      const rules = makeRules(size);
      return {
        whens: rules.map((rule) => rule.when),
        engines: {
          compiled: rules.map((rule) => compileExpression(rule.when)),
          interpreted: rules.map((rule) => (context) => interpretExpression(rule.when, context)),
          hand: rules.map((rule) => rule.hand),
        },
      };
    },
    contexts,
  );
}

// ---------------------------------------------------------------------------------------------
// The plain workload: standard JSON Logic only (==, !=, ===, <, >, <=, in under and, or, !, if),
// over incidents with some fields missing and some nested, against a clean json-logic-js (a
// fresh copy of the module, without the project's operators or its safe `var`) and against
// hand-written JavaScript for each rule (property reads and JavaScript's own operators). It has
// its own random stream, so the project's workload above stays the same rules as before.

// expression.ts changes the json-logic-js instance it imports (operators added, `log` removed):
// emptying the CommonJS cache entry and requiring the module again gives an untouched copy.
const require = createRequire(import.meta.url);
delete require.cache[require.resolve('json-logic-js')];
const cleanJsonLogic = require('json-logic-js') as typeof import('json-logic-js');
function isClean(instance: typeof cleanJsonLogic): boolean {
  try {
    instance.apply({ rank: 'high' } as never);
    return false;
  } catch {
    // No `rank`: the project's operators were not added to this copy. Its `var` still reads
    // inherited properties, which the project's safe `var` does not.
    return instance.apply({ var: 'toString' }, {}) === Object.prototype.toString;
  }
}
if (!isClean(cleanJsonLogic)) throw new Error('the json-logic-js baseline is not a clean copy');

const plainRandom = seededRandom(Number(options.seed) + 1);
const pInt = (min: number, max: number) => min + Math.floor(plainRandom() * (max - min + 1));
const pChance = (p: number) => plainRandom() < p;
const pPick = <T>(items: readonly T[]): T => items[pInt(0, items.length - 1)] as T;

const DEPARTMENTS = ['IT', 'Finance', 'Sales', 'HR', 'Legal'] as const;
const CI_CLASSES = ['server', 'database', 'network_gear', 'application'] as const;
const TAGS = ['vip', 'outage', 'security', 'customer', 'internal'] as const;

/**
 * An incident as the ITSM API gives it, with some fields absent (not null: absent) and some
 * nested two or three deep. Absent fields are few and at the end, so that a property read meets
 * a handful of object shapes, as with real API objects, which all have the same fields.
 */
function plainIncident(base: Incident): Record<string, unknown> {
  const caller: Record<string, unknown> = { id: `u-${pInt(1, 40)}`, vip: pChance(0.2) };
  if (pChance(0.9)) caller.department = { name: pPick(DEPARTMENTS) };
  const result: Record<string, unknown> = {
    ...base,
    escalation: pChance(0.15) ? String(base.escalation) : base.escalation,
    caller: pChance(0.9) ? caller : null,
    cmdb_ci: pChance(0.7)
      ? { class: pPick(CI_CLASSES), tier: pChance(0.9) ? pInt(1, 4) : String(pInt(1, 4)) }
      : null,
    tags: TAGS.filter(() => pChance(0.3)),
    reassignment_count: pChance(0.8) ? pInt(0, 6) : null,
  };
  if (pChance(0.1)) result.resolution_code = pPick(['fixed', 'workaround', '']);
  // As it arrives: parsed from JSON.
  return JSON.parse(JSON.stringify(result));
}

const plainContexts: EvaluationContext[] = contexts.map((context) => ({
  ...context,
  object: plainIncident(context.object as Incident),
  [PATH_MEMO]: [],
}));

/** A path a plain rule reads, and the constants it is compared with (of the field's kind and not). */
interface PlainField {
  path: string;
  values: readonly unknown[];
  ordered: boolean;
}

const PLAIN_FIELDS: readonly PlainField[] = [
  { path: 'object.priority', values: PRIORITIES, ordered: false },
  { path: 'object.impact', values: LEVELS, ordered: false },
  { path: 'object.urgency', values: LEVELS, ordered: false },
  { path: 'object.status', values: STATUSES, ordered: false },
  { path: 'object.category', values: CATEGORIES, ordered: false },
  { path: 'object.active', values: [true, false, 1, 0], ordered: false },
  { path: 'object.escalation', values: [0, 1, 2, 3, '2', 4], ordered: true },
  { path: 'object.reassignment_count', values: [0, 1, 3, 5, null], ordered: true },
  {
    path: 'object.assignee.email',
    values: ['u1@ops.example.com', 'u2@example.org'],
    ordered: false,
  },
  { path: 'object.assignee.id', values: ['u-1', 'u-2', 'u-3'], ordered: false },
  { path: 'object.caller.vip', values: [true, false], ordered: false },
  { path: 'object.caller.department.name', values: DEPARTMENTS, ordered: false },
  { path: 'object.cmdb_ci.tier', values: [1, 2, 3, '2', 4], ordered: true },
  { path: 'object.cmdb_ci.class', values: CI_CLASSES, ordered: false },
  { path: 'object.resolution_code', values: ['fixed', null, ''], ordered: false },
  { path: 'previous.priority', values: PRIORITIES, ordered: false },
  { path: 'previous.status', values: STATUSES, ordered: false },
  { path: 'event.type', values: ['add', 'update', 'delete'], ordered: false },
  { path: 'object.due_date', values: ['2026-11-28T00:00:00Z', null], ordered: true },
];

/** JavaScript that reads a path as `var` does for these incidents: null when absent. */
function jsRead(path: string): string {
  const [root, ...rest] = path.split('.');
  return `(c.${root}${rest.map((segment) => `?.${segment}`).join('')} ?? null)`;
}

const js = (value: unknown) => JSON.stringify(value);

interface PlainRule {
  when: unknown;
  /** JavaScript for the same condition, as a person would write it. */
  source: string;
}

function plainLeaf(lists: unknown[][]): PlainRule {
  const field = pPick(PLAIN_FIELDS);
  const read = jsRead(field.path);
  const operator = pPick(['==', '!=', '===', '<', '>', '<=', 'in', 'in']);
  if (operator === 'in') {
    if (pChance(0.3)) {
      // A word in the description, or a tag in the list of tags.
      if (pChance(0.5)) {
        const word = pPick(WORDS);
        return {
          when: { in: [word, { var: 'object.description' }] },
          source: `(typeof c.object.description === 'string' && c.object.description.includes(${js(word)}))`,
        };
      }
      const tag = pPick(TAGS);
      return {
        when: { in: [tag, { var: 'object.tags' }] },
        source: `(Array.isArray(c.object.tags) && c.object.tags.includes(${js(tag)}))`,
      };
    }
    const list = field.values.filter(() => pChance(0.5));
    if (list.length === 0) list.push(field.values[0]);
    lists.push(list);
    return {
      when: { in: [{ var: field.path }, list] },
      source: `L[${lists.length - 1}].includes(${read})`,
    };
  }
  const ordered = operator === '<' || operator === '>' || operator === '<=';
  const pool = ordered && !field.ordered ? [...field.values, 1, '2'] : field.values;
  const constant = pPick(pool);
  return {
    when: { [operator]: [{ var: field.path }, constant] },
    source: `(${read} ${operator} ${js(constant)})`,
  };
}

/** and, or, !, if over `leaves` leaves. */
function plainTree(leaves: number, lists: unknown[][]): PlainRule {
  let node: PlainRule;
  if (leaves === 1) {
    node = plainLeaf(lists);
  } else {
    const roll = plainRandom();
    const parts = roll < 0.8 || leaves < 3 ? pInt(2, Math.min(leaves, 3)) : 3;
    const sizes = Array.from({ length: parts }, () => 1);
    for (let extra = leaves - parts; extra > 0; extra--) {
      const at = pInt(0, parts - 1);
      sizes[at] = (sizes[at] ?? 0) + 1;
    }
    const children = sizes.map((size) => plainTree(size, lists));
    if (roll >= 0.8 && parts === 3) {
      const [a, b, c] = children as [PlainRule, PlainRule, PlainRule];
      node = {
        when: { if: [a.when, b.when, c.when] },
        source: `(${a.source} ? ${b.source} : ${c.source})`,
      };
    } else {
      const operator = roll < 0.4 ? 'and' : 'or';
      node = {
        when: { [operator]: children.map((child) => child.when) },
        source: `(${children.map((child) => child.source).join(operator === 'and' ? ' && ' : ' || ')})`,
      };
    }
  }
  if (pChance(0.15)) node = { when: { '!': node.when }, source: `!${node.source}` };
  return node;
}

function makePlainRules(count: number): { when: unknown; hand: Evaluate }[] {
  return Array.from({ length: count }, () => {
    const lists: unknown[][] = [];
    const rule = plainTree(pInt(2, 6), lists);
    // The bench runs on Node only: the hand-written closure is made from its source text.
    const make = new Function('L', `return (c) => ${rule.source};`) as (
      lists: unknown[][],
    ) => Evaluate;
    return { when: rule.when, hand: make(lists) };
  });
}

if (PARTS.has('plain')) {
  if (PARTS.has('project')) console.log('');
  measure(
    'rule evaluation, plain JSON Logic',
    'json-logic-js',
    (size) => {
      const rules = makePlainRules(size);
      return {
        whens: rules.map((rule) => rule.when),
        engines: {
          compiled: rules.map((rule) => compileExpression(rule.when)),
          interpreted: rules.map(
            (rule) => (context) => cleanJsonLogic.apply(rule.when as never, context),
          ),
          hand: rules.map((rule) => rule.hand),
        },
      };
    },
    plainContexts,
  );
}

// ---------------------------------------------------------------------------------------------
// Compile time: a chain of and/or 1000 deep, and an expression of 1 MiB of JSON (an `or` of
// plain rules), each compiled from a fresh copy; beside them, JSON.parse of the same text.

function deepChain(depth: number): unknown {
  let node: unknown = plainLeaf([]).when;
  for (let level = 0; level < depth; level++) {
    node = { [level % 2 ? 'and' : 'or']: [plainLeaf([]).when, node] };
  }
  return node;
}

function wideExpression(bytes: number): unknown {
  const rules: unknown[] = [];
  let size = 0;
  while (size < bytes) {
    const when = plainTree(pInt(2, 6), []).when;
    rules.push(when);
    size += JSON.stringify(when).length + 1;
  }
  return { or: rules };
}

/** Wall and CPU milliseconds (medians) to compile `text`, and to JSON.parse it. */
function compileMilliseconds(text: string): { compile: number; cpu: number; parse: number } {
  const compile: number[] = [];
  const cpu: number[] = [];
  const parse: number[] = [];
  for (let round = 0; round < ROUNDS + 1; round++) {
    let started = performance.now();
    const expression = JSON.parse(text);
    parse.push(performance.now() - started);
    const cpuStarted = process.cpuUsage();
    started = performance.now();
    compileExpression(expression);
    compile.push(performance.now() - started);
    const used = process.cpuUsage(cpuStarted);
    cpu.push((used.user + used.system) / 1000);
  }
  // The first round warms the compiler up and is left out.
  return {
    compile: median(compile.slice(1)),
    cpu: median(cpu.slice(1)),
    parse: median(parse.slice(1)),
  };
}

if (PARTS.has('compile')) {
  console.log('');
  console.log(`compile time: compileExpression, median of ${ROUNDS} rounds after one more`);
  const chain = JSON.stringify(deepChain(1000));
  const wide = JSON.stringify(wideExpression(1024 * 1024));
  for (const [name, text, target] of [
    ['and/or chain 1000 deep', chain, 50],
    [`or of plain rules, ${(wide.length / 1024).toFixed(0)} KiB`, wide, 300],
  ] as const) {
    const { compile, cpu, parse } = compileMilliseconds(text);
    console.log(
      `${name.padEnd(36)} ${compile.toFixed(1).padStart(8)} ms (CPU ${cpu.toFixed(1)} ms)   JSON.parse of it ${parse.toFixed(1)} ms; target < ${target} ms`,
    );
  }
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

if (PARTS.has('index')) {
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
}
await store.close();
if (sink < 0) console.log(sink);
