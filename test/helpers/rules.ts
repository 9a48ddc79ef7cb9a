// Test factories for the rules engine: objects as the ITSM API returns them, rule sets loaded
// from YAML text (a load problem fails the test with every problem formatted), a real SQLite
// engine store on :memory:, and evaluation inputs for one event or one schedule tick.

import {
  type EngineEvent,
  type EngineEventType,
  eventPlanKey,
  schedulePlanKey,
} from '../../src/engine/context.js';
import type { EvaluationInput } from '../../src/engine/evaluate.js';
import { loadRules, type RuleSet } from '../../src/engine/load.js';
import { formatProblem } from '../../src/engine/problem.js';
import type { Rule } from '../../src/engine/rule.js';
import type { ObjectType } from '../../src/itsm/fields.js';
import { loadMigrations } from '../../src/runtime/node.js';
import type { EngineStore } from '../../src/storage/engine-port.js';
import { createSqliteEngineStore } from '../../src/storage/sqlite-engine.js';

/**
 * A copy of the example rules, for tests: the shipped rules/ folder is the users' to edit, so no
 * test but test/examples.test.ts (which only checks it) reads it.
 */
export const EXAMPLE_RULES_DIR = 'test/fixtures/example-rules';

export const ACCOUNT = 1;
export const BASE_URL = 'http://127.0.0.1:8787';
export const CREATED = '2026-03-02T08:00:00Z';

/** A user as the API renders user fields (written back as its id). */
export function makeUser(id: string, name = 'Vinod Chandru'): Record<string, unknown> {
  return {
    type: 'user',
    api: 'team',
    id,
    name,
    email: `${name.split(' ')[0]?.toLowerCase()}@example.com`,
  };
}

function makeTask(
  type: 'incident' | 'problem' | 'change',
  plural: string,
  overrides: Record<string, unknown>,
): Record<string, unknown> {
  const id = typeof overrides.id === 'string' ? overrides.id : `${type}-1`;
  return {
    id,
    type,
    api: 'itsm',
    created: CREATED,
    modified: CREATED,
    href: `${BASE_URL}/v1/accounts/${ACCOUNT}/itsm/${plural}/${id}`,
    active: true,
    category: 'network',
    description: `${type} ${id}`,
    impact: 'medium',
    urgency: 'medium',
    priority: 'medium',
    status: 1,
    escalation: 0,
    assignee: null,
    requester: null,
    responder: null,
    ...overrides,
  };
}

export function makeIncident(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return makeTask('incident', 'incidents', {
    due_date: null,
    problem: null,
    change: null,
    ...overrides,
  });
}

export function makeProblem(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return makeTask('problem', 'problems', {
    id: 'problem-1',
    due_date: null,
    incident: null,
    change: null,
    ...overrides,
  });
}

export function makeChange(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return makeTask('change', 'changes', {
    id: 'change-1',
    incident: null,
    problem: null,
    risk: 'low',
    ...overrides,
  });
}

/** A generic object: its fields live in the upstream record under `raw.object`. */
export function makeGenericObject(
  rawType: string,
  record: Record<string, unknown>,
  id = 'object-1',
): Record<string, unknown> {
  return {
    id,
    type: 'object',
    api: 'itsm',
    raw: { type: rawType, id: `sys-${id}`, object: { sys_id: `sys-${id}`, ...record } },
    href: `${BASE_URL}/v1/accounts/${ACCOUNT}/itsm/objects/${id}?raw_type=${rawType}`,
  };
}

/** `rules/<name>.yaml` unless the name already ends with .yaml, .yml or .json. */
function rulePath(name: string): string {
  return /\.(ya?ml|json)$/.test(name) ? `rules/${name}` : `rules/${name}.yaml`;
}

/** Loads rule files given as text by name; any load problem fails with every problem listed. */
export function loadRuleSet(textsByName: Record<string, string>): RuleSet {
  const result = loadRules(
    Object.entries(textsByName).map(([name, text]) => ({ path: rulePath(name), text })),
  );
  if (!result.ruleSet) {
    throw new Error(
      `the test rules do not load:\n${result.problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`,
    );
  }
  return result.ruleSet;
}

/** The rule of a set by id (a missing id fails the test). */
export function ruleOf(ruleSet: RuleSet, id: string): Rule {
  const rule = ruleSet.rules.find((candidate) => candidate.id === id);
  if (!rule) throw new Error(`no rule "${id}" in the set`);
  return rule;
}

/** A real engine store: SQLite on :memory: with every migration applied. */
export function makeEngineStore(): EngineStore {
  return createSqliteEngineStore({ path: ':memory:', migrations: loadMigrations() });
}

export const NOW = new Date('2026-03-02T10:00:00Z');

/** `NOW` moved by a number of minutes. */
export function minutesLater(minutes: number, from: Date = NOW): Date {
  return new Date(from.getTime() + minutes * 60_000);
}

export interface EventOptions {
  /** The Kloudless event id; default `evt-<object id>-<type>`. */
  eventId?: string;
  type?: Exclude<EngineEventType, 'schedule'>;
  objectType?: ObjectType;
  object: Record<string, unknown> | null;
  previous?: Record<string, unknown> | null;
  account?: number;
  now?: Date;
  selfHops?: number;
  userId?: string | null;
}

/** The evaluation input of one Kloudless event. */
export function makeEventInput(options: EventOptions): EvaluationInput {
  const type = options.type ?? 'add';
  const account = options.account ?? ACCOUNT;
  const now = options.now ?? NOW;
  const objectId = typeof options.object?.id === 'string' ? options.object.id : 'none';
  const id = options.eventId ?? `evt-${objectId}-${type}`;
  const objectType =
    options.objectType ??
    ((typeof options.object?.type === 'string' ? options.object.type : 'incident') as ObjectType);
  const event: EngineEvent = {
    id,
    type,
    account,
    at: now.toISOString(),
    user_id: options.userId ?? null,
  };
  return {
    key: eventPlanKey(account, id),
    event,
    objectType,
    object: options.object,
    previous: options.previous ?? null,
    now,
    ...(options.selfHops === undefined ? {} : { selfHops: options.selfHops }),
  };
}

/** The evaluation input of a scheduled rule for one object at one tick. */
export function makeScheduleInput(options: {
  rule: Rule;
  object: Record<string, unknown>;
  tick: Date;
  account?: number;
  now?: Date;
}): EvaluationInput {
  const account = options.account ?? ACCOUNT;
  const tick = `${options.tick.toISOString().slice(0, 19)}Z`;
  const objectId = String(options.object.id);
  return {
    key: schedulePlanKey(account, options.rule.id, tick, objectId),
    event: { id: tick, type: 'schedule', account, at: tick, user_id: null },
    objectType: options.object.type as ObjectType,
    object: options.object,
    previous: null,
    now: options.now ?? options.tick,
    rules: [options.rule],
  };
}
