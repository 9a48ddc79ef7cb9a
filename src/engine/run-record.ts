// Run records: what the engine did with one event (or one object at a schedule tick), and why.
// One record per plan key, written after the plan's calls are done, answering "what happened to
// this incident": the rules that matched, each rule looked at that did not and the reason (for a
// false condition, the clause and the values it read, as `test --explain` names them), every
// call with its outcome, and the notes of actions that planned nothing. The store indexes every
// rule looked at with its verdict, so `/runs?rule_id=` answers for rules that did not act too.
import type { NewRunRecord, RuleVerdict, RunOutcome } from '../storage/pipeline-port.js';
import type { EngineEvent } from './context.js';
import type { Evaluation, RuleOutcome } from './evaluate.js';
import type { CallResult, ExecutionResult } from './execute.js';
import type { PlanNote } from './plan.js';

/** The `detail` of a run record, stored as JSON. */
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
  const detail: RunDetail = {
    event: input.event,
    ...(version && { ruleVersion: version.version }),
    // Each rule that acted (or would have, in shadow) with the hash of the file it was loaded from.
    rules: evaluation.outcomes.map((o) =>
      version && (o.verdict === 'matched' || o.verdict === 'shadow') && version.files[o.ruleId]
        ? { ...o, fileHash: version.files[o.ruleId] }
        : o,
    ),
    calls,
    notes,
  };
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
