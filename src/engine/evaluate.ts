// Evaluation of one event (or one object at a schedule tick) against the rule set: select the
// rules through the index, apply the trigger filters, `when`, `correlate` and `once_per`, honour
// `order` and `stop`, and plan the actions of every rule that matched. Correlation counts and
// once-only claims live in the engine store; everything else is pure.
import type { ObjectType } from '../itsm/fields.js';
import type { EngineStore } from '../storage/engine-port.js';
import type { RuleVerdict } from '../storage/pipeline-port.js';
import { createContext, type EngineEvent } from './context.js';
import { explainFalse } from './explain.js';
import { type EvaluationContext, ExpressionError, isTruthy } from './expression.js';
import type { RuleSet } from './load.js';
import { type LookupResolver, resolveLookups } from './lookup.js';
import {
  InvalidActionError,
  type Plan,
  type PlanNote,
  type PlannedCall,
  planRule,
} from './plan.js';
import type { Rule } from './rule.js';
import { type RuleSetVersion, ruleSetVersion } from './rule-version.js';

/** Engine writes start chains of events; rules with `on.self` follow them this many hops. */
export const MAX_SELF_HOPS = 5;

export interface EvaluationInput {
  /** The plan key (context.ts: eventPlanKey, schedulePlanKey). */
  key: string;
  event: EngineEvent;
  objectType: ObjectType;
  object: Record<string, unknown> | null;
  previous: Record<string, unknown> | null;
  now: Date;
  /**
   * The fields the event changed, when the caller knows them better than a comparison of
   * `previous` and `object` would (the drain reads the object after the event, so it may already
   * hold later changes: those belong to later events).
   */
  changed?: readonly string[];
  /** 0 for a change made by someone else; n when the change is the n-th hop of engine writes. */
  selfHops?: number;
  /** Evaluate exactly these rules (a scheduled rule at its tick) instead of the index's choice. */
  rules?: readonly Rule[];
  /**
   * Answers the `lookup`s of matched rules' actions (through the ITSM API). Without one, a rule
   * whose actions use lookup fails with a message saying it could not be resolved.
   */
  lookup?: LookupResolver;
}

export interface EvaluationOptions {
  /** Report every rule of the set, with the reason each one did not match. */
  explain?: boolean;
}

// The verdicts are the store's (pipeline-port.ts): run records index every rule by its verdict.
export type { RuleVerdict } from '../storage/pipeline-port.js';

/**
 * Lines of clause-level reason kept for a rule whose condition is false: all of them for
 * `--explain`, the first few in run records, which are kept for every rule looked at.
 */
const EXPLAIN_LINES = 20;
const RECORDED_LINES = 5;
/** Each kept line is cut at this length (a comparison of long values, an `in` of a long list). */
const RECORDED_LINE_LENGTH = 400;

export interface RuleOutcome {
  ruleId: string;
  file: string;
  verdict: RuleVerdict;
  /** Why the rule did not match (or failed); absent when it matched. */
  reason?: string;
  /**
   * For no_match: the parts of `when` that were false, and the values they read. Worked out when
   * first read (see noMatch).
   */
  details?: string[];
  correlation?: { key: string; count: number; ids: string[] };
  /** For a rule in shadow mode that would have matched: the calls it would have made (never made). */
  shadowCalls?: PlannedCall[];
  /** For a rule in shadow mode: the notes of its actions that would have planned nothing. */
  shadowNotes?: PlanNote[];
}

export interface Evaluation {
  plan: Plan;
  /** The rules looked at (with `explain`: every rule), in run order. */
  outcomes: RuleOutcome[];
  /** The version of the rule set that evaluated (absent for a plan resumed after a crash). */
  version?: RuleSetVersion;
}

export async function evaluateEvent(
  ruleSet: RuleSet,
  input: EvaluationInput,
  store: EngineStore,
  options: EvaluationOptions = {},
): Promise<Evaluation> {
  const base = createContext(input);
  const objectId = typeof input.object?.id === 'string' ? input.object.id : null;
  const plan: Plan = {
    key: input.key,
    account: input.event.account,
    event: input.event,
    object: objectId === null ? null : { type: input.objectType, id: objectId },
    selfHops: input.selfHops ?? 0,
    rules: [],
    calls: [],
    notes: [],
  };
  const outcomes: RuleOutcome[] = [];
  const selected =
    input.rules ??
    (input.event.type === 'schedule'
      ? []
      : ruleSet.index.select(input.objectType, input.event.type));
  // With explain, every rule is reported, and those the index left out say why.
  const unselected =
    options.explain && !input.rules
      ? new Set(ruleSet.rules.filter((rule) => !selected.includes(rule)))
      : null;
  const candidates = unselected ? ruleSet.rules : selected;
  let stoppedBy: string | null = null;
  let explanations: DeferredExplanations | null = null;

  for (const rule of candidates) {
    const outcome = (verdict: RuleVerdict, reason?: string, extra?: Partial<RuleOutcome>) =>
      outcomes.push({ ruleId: rule.id, file: rule.file, verdict, reason, ...extra });
    if (unselected?.has(rule)) {
      outcome('skipped', triggerMismatch(rule, input));
      continue;
    }
    if (stoppedBy !== null) {
      outcome('skipped', `an earlier rule (${stoppedBy}) matched with stop: true`);
      continue;
    }
    const skip = triggerFilter(rule, input, base.changed);
    if (skip !== null) {
      outcome('skipped', skip);
      continue;
    }
    const context: EvaluationContext = { ...base, rule: { id: rule.id } };
    // A rule in shadow mode counts and claims under its own name: the live rule it becomes once
    // promoted (same id) starts with none of its correlations or once_per keys taken.
    const shadow = rule.mode === 'shadow';
    const stateId = shadow ? `${rule.id}@shadow` : rule.id;
    try {
      if (rule.when && !isTruthy(rule.when(context))) {
        // The clause, not just "false": the run record answers "why didn't my rule act?" as
        // `test --explain` does, within a bounded number of lines.
        const when = rule.source.when;
        const missed = noMatch(rule, when, base, options.explain ? EXPLAIN_LINES : RECORDED_LINES);
        outcomes.push(missed);
        explanations ??= { context: base, whens: new Map() };
        explanations.whens.set(missed, when);
        continue;
      }
      let correlated: { id: string; type: string }[] = [];
      if (rule.correlate) {
        const keyValue = rule.correlate.key(context);
        if (objectId === null) {
          outcome('skipped', 'the object has no id, so it cannot be counted for correlate');
          continue;
        }
        if (keyValue === null || keyValue === undefined || keyValue === '') {
          outcome('skipped', 'the correlation key is empty, so the object is not counted');
          continue;
        }
        const correlationKey = typeof keyValue === 'string' ? keyValue : JSON.stringify(keyValue);
        correlated = await store.correlate({
          account: input.event.account,
          ruleId: stateId,
          key: correlationKey,
          objectId,
          objectType: input.objectType,
          at: input.now.getTime(),
          windowMs: rule.correlate.withinMs,
        });
        context.correlation = {
          key: correlationKey,
          count: correlated.length,
          ids: correlated.map((member) => member.id),
        };
        if (correlated.length < rule.correlate.atLeast) {
          outcome(
            'skipped',
            `correlation ${JSON.stringify(correlationKey)} counts ${correlated.length} of the ${rule.correlate.atLeast} needed`,
            { correlation: context.correlation },
          );
          continue;
        }
      }
      // Plan into a draft first: an action failing at runtime must leave no partial calls in the
      // plan, and must not use up the once_per key (the claim is taken only for a complete plan).
      const draft: Plan = { ...plan, calls: [...plan.calls], notes: [...plan.notes] };
      // Lookups read the API, which planning (synchronous, pure) cannot: their answers are read
      // first, and the plan then holds the sys_ids themselves.
      await resolveLookups(rule.actions, context, input.event.account, input.lookup);
      planRule({ rule, context, objectType: input.objectType, correlated, plan: draft });
      if (rule.oncePer) {
        const keyValue = rule.oncePer.key(context);
        // An empty key would make every object without the value share one claim, so the first
        // of them would silence the rest: such an object is not acted on, and says why.
        if (keyValue === null || keyValue === undefined || keyValue === '') {
          outcome(
            'skipped',
            'the once_per key is empty, so the rule cannot tell whether it already ran',
          );
          continue;
        }
        const onceKey = typeof keyValue === 'string' ? keyValue : JSON.stringify(keyValue);
        const claimed = await store.claimOnce({
          account: input.event.account,
          ruleId: stateId,
          key: onceKey,
          claimant: `${input.key}:${rule.id}`,
          at: input.now.getTime(),
          windowMs: rule.oncePer.withinMs,
        });
        if (!claimed) {
          outcome(
            'skipped',
            `once_per: already done for ${JSON.stringify(onceKey)}${rule.oncePer.withinMs === null ? '' : ' within the window'}`,
            context.correlation ? { correlation: context.correlation } : {},
          );
          continue;
        }
      }
      if (shadow) {
        // Recorded, never acted on: its calls stay out of the plan, and it never stops later
        // rules (which a live rule with stop would).
        outcome('shadow', undefined, {
          ...(context.correlation ? { correlation: context.correlation } : {}),
          shadowCalls: draft.calls.slice(plan.calls.length),
          shadowNotes: draft.notes.slice(plan.notes.length),
        });
        continue;
      }
      plan.calls = draft.calls;
      plan.notes = draft.notes;
      plan.rules.push(rule.id);
      outcome(
        'matched',
        undefined,
        context.correlation ? { correlation: context.correlation } : {},
      );
      if (rule.stop) stoppedBy = rule.id;
    } catch (error) {
      // Both are the rule's own failure on this event (the same event fails it the same way):
      // the rule is failed, its draft dropped, and the other rules go on.
      if (!(error instanceof ExpressionError || error instanceof InvalidActionError)) throw error;
      outcome('failed', error.message);
    }
  }
  if (explanations) deferred.set(outcomes, explanations);
  return { plan, outcomes, version: await ruleSetVersion(ruleSet) };
}

/**
 * What the deferred explanations of one evaluation need: the event's context (before any rule's
 * id is set in it) and the condition of each `no_match` outcome. Run records keep these (the
 * context once per run) instead of the lines, and render the lines when read (run-record.ts):
 * explaining every false rule of every event cost more than evaluating them.
 */
export interface DeferredExplanations {
  context: EvaluationContext;
  whens: Map<RuleOutcome, unknown>;
}

/** Per evaluation (its outcomes list), once one of its rules did not match. */
const deferred = new WeakMap<readonly RuleOutcome[], DeferredExplanations>();

/** The deferred explanations of an evaluation's outcomes; null when none was deferred. */
export function deferredExplanationsOf(
  outcomes: readonly RuleOutcome[],
): DeferredExplanations | null {
  return deferred.get(outcomes) ?? null;
}

/**
 * A `no_match` outcome whose `details` are worked out when first read (by `--explain`, a test,
 * or JSON.stringify): an accessor of the object itself, so it is listed and compared like the
 * plain property it stands for. It keeps the event's context, not the rule's copy of it, which
 * it makes again when asked.
 */
function noMatch(
  rule: Rule,
  when: unknown,
  base: EvaluationContext,
  maxLines: number,
): RuleOutcome {
  let lines: string[] | undefined;
  return {
    ruleId: rule.id,
    file: rule.file,
    verdict: 'no_match',
    reason: 'the condition (when) is false',
    get details(): string[] {
      lines ??= explainSafely(when, { ...base, rule: { id: rule.id } }, maxLines);
      return lines;
    },
    set details(value: string[]) {
      lines = value;
    },
  };
}

/** The lines a run record shows for a false condition (the first few, each cut to a length). */
export function recordedExplanation(when: unknown, context: EvaluationContext): string[] {
  return explainSafely(when, context, RECORDED_LINES);
}

/**
 * The explanation of a false condition. Explaining evaluates parts of `when` on their own, which
 * can fail where the whole did not (an `and` stops before a failing part): the rule did not
 * match either way, so such a failure is only named, never taken for the rule's.
 */
function explainSafely(when: unknown, context: EvaluationContext, maxLines: number): string[] {
  try {
    const lines = explainFalse(when, context, maxLines);
    if (maxLines > RECORDED_LINES) return lines;
    return lines.map((line) =>
      line.length > RECORDED_LINE_LENGTH ? `${line.slice(0, RECORDED_LINE_LENGTH - 3)}...` : line,
    );
  } catch (error) {
    if (!(error instanceof ExpressionError)) throw error;
    return [`(the false part cannot be named: ${error.message})`];
  }
}

/** Why the index did not select the rule for this event (for `--explain`). */
function triggerMismatch(rule: Rule, input: EvaluationInput): string {
  if (!rule.enabled) return 'the rule is disabled (enabled: false)';
  if (rule.trigger.schedule !== null) {
    return `a scheduled rule (${rule.trigger.schedule}); it runs at its ticks, not on events`;
  }
  if (!rule.trigger.types.includes(input.objectType)) {
    return `it watches ${rule.trigger.types.join(', ')}, not ${input.objectType}`;
  }
  return `it runs on ${rule.trigger.events.join(', ')} events, not ${input.event.type}`;
}

/** The `changed` and `self` filters; null when the rule passes them. */
function triggerFilter(
  rule: Rule,
  input: EvaluationInput,
  changed: readonly string[],
): string | null {
  const hops = input.selfHops ?? 0;
  if (hops > 0 && !rule.trigger.self) {
    return 'the change was made by the engine itself, and the rule has no on.self';
  }
  if (hops >= MAX_SELF_HOPS) {
    return `the chain of engine writes reached ${MAX_SELF_HOPS} hops, so it stops here`;
  }
  const filter = rule.trigger.changed;
  if (filter !== null && input.event.type !== 'schedule') {
    if (!filter.some((field) => changed.includes(field))) {
      return `none of ${filter.join(', ')} changed${changed.length ? ` (changed: ${changed.join(', ')})` : ''}`;
    }
  }
  return null;
}
