// The rule index: event rules by (object type, event type), scheduled rules by schedule. An event
// only ever looks at the rules that can match it, so its cost grows with the matching rules and
// not with the size of the rule set.
import type { ObjectType } from '../itsm/fields.js';
import { compareRules, type Rule, type TriggerEvent } from './rule.js';

export interface RuleIndex {
  /** Enabled event rules for this object type and event, in run order. */
  select(type: ObjectType, event: TriggerEvent): readonly Rule[];
  /** Enabled scheduled rules, in run order. */
  readonly scheduled: readonly Rule[];
}

const NONE: readonly Rule[] = Object.freeze([]);

export function createRuleIndex(rules: readonly Rule[]): RuleIndex {
  const byTrigger = new Map<string, Rule[]>();
  const scheduled: Rule[] = [];
  for (const rule of rules) {
    if (!rule.enabled) continue;
    if (rule.trigger.schedule !== null) {
      scheduled.push(rule);
      continue;
    }
    for (const type of rule.trigger.types) {
      for (const event of rule.trigger.events) {
        const key = `${type}\u0000${event}`;
        const list = byTrigger.get(key);
        if (list) list.push(rule);
        else byTrigger.set(key, [rule]);
      }
    }
  }
  for (const list of byTrigger.values()) list.sort(compareRules);
  scheduled.sort(compareRules);
  return {
    select: (type, event) => byTrigger.get(`${type}\u0000${event}`) ?? NONE,
    scheduled,
  };
}
