// Run records: what the engine did with one event (or one object at a schedule tick), and why.
// One record per plan key, written after the plan's calls are done, answering "what happened to
// this incident": the rules that matched, each rule looked at that did not and the reason (for a
// false condition, the clause and the values it read, as `test --explain` names them), every
// call with its outcome, and the notes of actions that planned nothing. The store indexes every
// rule looked at with its verdict, so `/runs?rule_id=` answers for rules that did not act too.
//
// A false condition's explanation is not written as text: the record keeps what it needs (the
// event's context, once per run, and a fingerprint of each false rule's condition) and
// `renderRunDetail` writes the lines when the record is read, against the rules loaded then.
// Explaining every false rule of every event cost more than evaluating them (a set of 200 rules
// that do not match ran at 0.46x). A rule whose condition changed since the run (or that is
// gone) gets a line saying so instead of an explanation of another condition.
import type { NewRunRecord, RuleVerdict, RunOutcome } from '../storage/pipeline-port.js';
import { createContext, type EngineEvent } from './context.js';
import {
  type DeferredExplanations,
  deferredExplanationsOf,
  type Evaluation,
  type RuleOutcome,
  recordedExplanation,
} from './evaluate.js';
import type { CallResult, ExecutionResult } from './execute.js';
import type { PlanNote } from './plan.js';

/** The `detail` of a run record as read (GET /runs): every false condition explained. */
export interface RunDetail {
  event: EngineEvent;
  /** The version of the rule set that evaluated (rule-version.ts); absent when none did. */
  ruleVersion?: string;
  /** Why the event was not evaluated (outcome `skipped`). */
  reason?: string;
  rules: (RuleOutcome & { fileHash?: string })[];
  calls: CallResult[];
  notes: PlanNote[];
}

/** A rule's outcome as stored: a false condition's lines left to the reader (`when`). */
type StoredRuleOutcome = RuleOutcome & {
  /** The fingerprint of the condition that was false; its lines are rendered when read. */
  when?: string;
};

/** What a deferred explanation is rendered against: the event's context, less the event. */
interface StoredContext {
  object: Record<string, unknown> | null;
  previous: Record<string, unknown> | null;
  changed: string[];
  now: string;
}

/** The `detail` as stored, as JSON. */
interface StoredRunDetail extends Omit<RunDetail, 'rules'> {
  rules: StoredRuleOutcome[];
  /** Present when a rule's explanation is deferred. */
  context?: StoredContext;
}

export interface RunInput {
  key: string;
  event: EngineEvent;
  objectType: string | null;
  objectId: string | null;
  selfHops: number;
  at: number;
}

/** The record of an event that was not evaluated, and why. */
export function skippedRun(input: RunInput, reason: string): NewRunRecord {
  const detail: RunDetail = { event: input.event, reason, rules: [], calls: [], notes: [] };
  return {
    ...base(input),
    outcome: 'skipped',
    rules: [],
    verdicts: {},
    summary: reason,
    detail: JSON.stringify(detail),
  };
}

/** The record of an evaluated event, with the execution of its plan (absent: nothing to call). */
export function evaluatedRun(
  input: RunInput,
  evaluation: Evaluation,
  execution: ExecutionResult | null,
): NewRunRecord {
  const calls = execution?.results ?? [];
  const notes = execution?.plan.notes ?? evaluation.plan.notes;
  const matched = evaluation.outcomes.filter((o) => o.verdict === 'matched').map((o) => o.ruleId);
  const shadows = evaluation.outcomes.filter((o) => o.verdict === 'shadow');
  const failedRules = evaluation.outcomes.filter((o) => o.verdict === 'failed');
  const failedCalls = calls.filter((call) => call.outcome === 'failed');
  const outcome: RunOutcome =
    failedRules.length > 0 || failedCalls.length > 0
      ? 'failed'
      : matched.length > 0
        ? 'done'
        : shadows.length > 0
          ? 'shadow'
          : 'no_match';
  const version = evaluation.version;
  const detail: StoredRunDetail = {
    event: input.event,
    ...(version && { ruleVersion: version.version }),
    rules: [],
    calls,
    notes,
  };
  const deferred = deferredExplanationsOf(evaluation.outcomes);
  detail.rules = evaluation.outcomes.map((outcome) => {
    const stored = storedOutcome(outcome, deferred);
    // Each rule that acted (or would have, in shadow) with the hash of the file it was loaded from.
    const fileHash =
      version && (outcome.verdict === 'matched' || outcome.verdict === 'shadow')
        ? version.files[outcome.ruleId]
        : undefined;
    return fileHash ? { ...stored, fileHash } : stored;
  });
  if (deferred) {
    // The rules of one event are evaluated against copies of one context: kept once.
    const { object, previous, changed, now } = deferred.context;
    detail.context = { object, previous, changed, now };
  }
  return {
    ...base(input),
    ruleVersion: version?.version ?? null,
    outcome,
    rules: evaluation.outcomes
      .filter((o) => o.verdict === 'matched' || o.verdict === 'failed')
      .map((o) => o.ruleId),
    verdicts: verdictsOf(evaluation.outcomes),
    summary: summarize(evaluation, calls, failedRules),
    detail: JSON.stringify(detail),
  };
}

/** Each rule looked at and its verdict; a rule listed twice counts as failed if it failed once. */
function verdictsOf(outcomes: readonly RuleOutcome[]): Record<string, RuleVerdict> {
  const verdicts = new Map<string, RuleVerdict>();
  for (const outcome of outcomes) {
    if (verdicts.get(outcome.ruleId) !== 'failed') verdicts.set(outcome.ruleId, outcome.verdict);
  }
  return Object.fromEntries(verdicts);
}

function base(input: RunInput) {
  return {
    key: input.key,
    account: input.event.account,
    eventId: input.event.id,
    eventType: input.event.type,
    objectType: input.objectType,
    objectId: input.objectId,
    selfHops: input.selfHops,
    at: input.at,
  };
}

function summarize(
  evaluation: Evaluation,
  calls: readonly CallResult[],
  failedRules: readonly RuleOutcome[],
): string {
  const parts: string[] = [];
  const matched = evaluation.plan.rules;
  if (matched.length > 0) parts.push(`matched ${matched.join(', ')}`);
  for (const shadow of evaluation.outcomes.filter((o) => o.verdict === 'shadow')) {
    const count = shadow.shadowCalls?.length ?? 0;
    parts.push(
      `shadow ${shadow.ruleId} would have made ${count} call${count === 1 ? '' : 's'} (none made)`,
    );
  }
  for (const rule of failedRules) parts.push(`${rule.ruleId} failed: ${rule.reason ?? 'error'}`);
  const shadowed = evaluation.outcomes.some((o) => o.verdict === 'shadow');
  if (matched.length === 0 && failedRules.length === 0 && !shadowed) {
    const looked = evaluation.outcomes.length;
    parts.push(
      looked === 0 ? 'no rule is triggered by this event' : `no rule matched (${looked} looked at)`,
    );
  }
  if (calls.length > 0) {
    const done = calls.filter((call) => call.outcome === 'done').length;
    const failed = calls.length - done;
    parts.push(`${done} call${done === 1 ? '' : 's'} done${failed ? `, ${failed} failed` : ''}`);
    for (const call of calls) {
      if (call.outcome === 'failed') parts.push(`${call.summary}: ${call.detail ?? 'failed'}`);
    }
  } else if (matched.length > 0) {
    parts.push('nothing to write');
  }
  return parts.join('; ');
}

/** An outcome as stored: the lines of a deferred explanation replaced by its fingerprint. */
function storedOutcome(
  outcome: RuleOutcome,
  deferred: DeferredExplanations | null,
): StoredRuleOutcome {
  if (!deferred?.whens.has(outcome)) return outcome;
  // Copied key by key: a spread would read `details` and so work the explanation out.
  const { ruleId, file, verdict, reason } = outcome;
  return {
    ruleId,
    file,
    verdict,
    reason,
    ...(outcome.correlation && { correlation: outcome.correlation }),
    when: fingerprintOf(deferred.whens.get(outcome)),
  };
}

/**
 * The stored `detail` as GET /runs shows it: each deferred explanation rendered against the
 * rules loaded now (`rules`, by id). A record stored with its lines (before explanations were
 * deferred) is shown as stored.
 */
export function renderRunDetail(
  text: string,
  rules: () => { rules: readonly { id: string; source: { when?: unknown } }[] },
): RunDetail {
  const stored = JSON.parse(text) as StoredRunDetail;
  const { context: storedContext, ...detail } = stored;
  if (!storedContext) return detail as RunDetail;
  const base = createContext({
    event: stored.event,
    object: storedContext.object,
    previous: storedContext.previous,
    changed: storedContext.changed,
    now: new Date(storedContext.now),
  });
  const byId = new Map(rules().rules.map((rule) => [rule.id, rule]));
  return {
    ...detail,
    rules: stored.rules.map((outcome) => {
      if (outcome.when === undefined) return outcome;
      const { when: fingerprint, ...rest } = outcome;
      const rule = byId.get(outcome.ruleId);
      const details =
        rule && fingerprintOf(rule.source.when) === fingerprint
          ? recordedExplanation(rule.source.when, { ...base, rule: { id: outcome.ruleId } })
          : [
              rule
                ? "(not shown: the rule's condition has changed since this run)"
                : '(not shown: the rule is no longer loaded)',
            ];
      return { ...rest, details };
    }),
  };
}

/** Fingerprints worked out so far, per condition (conditions are the rules' own objects). */
const fingerprints = new WeakMap<object, string>();

/**
 * A fingerprint of a condition's JSON: two 32-bit FNV-1a hashes (different offsets), enough to
 * tell a condition from the one it was edited into.
 */
function fingerprintOf(when: unknown): string {
  const cacheable = when !== null && typeof when === 'object';
  const known = cacheable ? fingerprints.get(when) : undefined;
  if (known !== undefined) return known;
  const text = JSON.stringify(when) ?? 'undefined';
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    a = Math.imul(a ^ code, 0x01000193) >>> 0;
    b = Math.imul(b ^ code, 0x0100019d) >>> 0;
  }
  const fingerprint = `${a.toString(16).padStart(8, '0')}${b.toString(16).padStart(8, '0')}`;
  if (cacheable) fingerprints.set(when, fingerprint);
  return fingerprint;
}
