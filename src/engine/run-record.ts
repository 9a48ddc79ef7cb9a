// Run records: what the engine did with one event (or one object at a schedule tick), and why.
// One record per plan key, written after the plan's calls are done, answering "what happened to
// this incident": the rules that matched, each rule looked at that did not and the reason (for a
// false condition, the clause and the values it read, as `test --explain` names them), every
// call with its outcome, and the notes of actions that planned nothing. The store indexes every
// rule looked at with its verdict, so `/runs?rule_id=` answers for rules that did not act too.
import type { NewRunRecord, RuleVerdict, RunOutcome } from '../storage/pipeline-port.js';
import { changedFields, type EngineEvent, upstreamRecordOf } from './context.js';
import type { Evaluation, RuleOutcome } from './evaluate.js';
import type { CallResult, ExecutionResult } from './execute.js';
import type { PlanNote } from './plan.js';

/** The `detail` of a run record, stored as JSON. */
export interface RunDetail {
  event: EngineEvent;
  /** Why the event was not evaluated (outcome `skipped`). */
  reason?: string;
  rules: RuleOutcome[];
  calls: CallResult[];
  notes: PlanNote[];
  /** What the event changed in the object, field by field (absent in runs saved before). */
  changes?: FieldChange[];
}

/** One field the event changed: its value before (undefined for an add) and after. */
export interface FieldChange {
  field: string;
  before?: unknown;
  after?: unknown;
}

export interface RunInput {
  key: string;
  event: EngineEvent;
  objectType: string | null;
  objectId: string | null;
  /** The object's number (INC0010001), when it has one. */
  objectNumber?: string | null;
  /** What the event changed in the object. */
  changes?: FieldChange[];
  selfHops: number;
  at: number;
}

/** What every object has from its creation on: an add's diff leaves them out. */
const IDENTITY_FIELDS = new Set(['id', 'type', 'api', 'href', 'created']);

/** A record keeps at most this many changed fields, and values up to this length of JSON. */
const MAX_CHANGES = 60;
const MAX_VALUE_JSON = 600;

/** The number people know an object by (INC0010001): its upstream record's; null if it has none. */
export function objectNumberOf(object: Record<string, unknown> | null): string | null {
  const number = upstreamRecordOf(object)?.number ?? object?.number;
  return typeof number === 'string' && number !== '' ? number : null;
}

/**
 * The fields an event changed with their values before and after (an add: every field, after
 * only), for "what did this event change" in the run record. Long values are cut, so that an
 * object with a large description does not make every run record large.
 */
export function fieldChanges(
  type: EngineEvent['type'],
  object: Record<string, unknown> | null,
  previous: Record<string, unknown> | null,
): FieldChange[] {
  const now = upstreamRecordOf(object);
  const before = upstreamRecordOf(previous);
  const read = (
    state: Record<string, unknown> | null,
    record: Record<string, unknown> | null,
    field: string,
  ) => (field.startsWith('raw.') ? record?.[field.slice(4)] : state?.[field]);
  return (
    changedFields(type, object, previous)
      // An add's upstream columns repeat its unified fields, and its identity is no change:
      // the diff keeps the fields it was created with.
      .filter(
        (field) =>
          field !== 'raw' &&
          !(type === 'add' && (field.startsWith('raw.') || IDENTITY_FIELDS.has(field))),
      )
      .slice(0, MAX_CHANGES)
      .map((field) => {
        const change: FieldChange = { field };
        const was = type === 'add' ? undefined : read(previous, before, field);
        const is = read(object, now, field);
        if (was !== undefined) change.before = clip(was);
        if (is !== undefined) change.after = clip(is);
        return change;
      })
  );
}

function clip(value: unknown): unknown {
  const text = JSON.stringify(value);
  if (text === undefined || text.length <= MAX_VALUE_JSON) return value;
  return `${text.slice(0, MAX_VALUE_JSON - 3)}...`;
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
  const failedRules = evaluation.outcomes.filter((o) => o.verdict === 'failed');
  const failedCalls = calls.filter((call) => call.outcome === 'failed');
  const outcome: RunOutcome =
    failedRules.length > 0 || failedCalls.length > 0
      ? 'failed'
      : matched.length > 0
        ? 'done'
        : 'no_match';
  const detail: RunDetail = {
    event: input.event,
    rules: evaluation.outcomes,
    calls,
    notes,
    ...(input.changes && { changes: input.changes }),
  };
  return {
    ...base(input),
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
    objectNumber: input.objectNumber ?? null,
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
  for (const rule of failedRules) parts.push(`${rule.ruleId} failed: ${rule.reason ?? 'error'}`);
  if (matched.length === 0 && failedRules.length === 0) {
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
