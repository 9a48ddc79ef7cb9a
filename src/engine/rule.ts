// A loaded rule: the file's content with defaults filled in, durations in milliseconds and every
// expression compiled once. Evaluation, planning and the index read only this shape.
import type { ObjectType } from '../itsm/fields.js';
import type { CompiledExpression } from './expression.js';
import type { RuleAction, RuleFile } from './rule-schema.js';

export type TriggerEvent = 'add' | 'update' | 'delete';

export interface Rule {
  id: string;
  /** The file it came from, as given to the loader. */
  file: string;
  description: string | null;
  enabled: boolean;
  /** shadow: evaluated and recorded with the calls it would make, never acts (rule-schema.ts). */
  mode: 'live' | 'shadow';
  order: number;
  trigger: {
    types: ObjectType[];
    /** Empty for scheduled rules. */
    events: TriggerEvent[];
    changed: string[] | null;
    self: boolean;
    /** Five-field cron expression (UTC), or null for event rules. */
    schedule: string | null;
  };
  when: CompiledExpression | null;
  correlate: { key: CompiledExpression; withinMs: number; atLeast: number } | null;
  oncePer: { key: CompiledExpression; withinMs: number | null } | null;
  actions: RuleAction[];
  stop: boolean;
  /** The file's content as written (expressions uncompiled), for `--explain` and plans. */
  source: RuleFile;
}

export const DEFAULT_ORDER = 100;
export const DEFAULT_EVENTS: readonly TriggerEvent[] = ['add', 'update'];

/** Rules in the order they run: `order` ascending, ties broken by id. */
export function compareRules(a: Rule, b: Rule): number {
  return a.order - b.order || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
