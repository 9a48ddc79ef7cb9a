// Impact preview: what a candidate rule set would have done with past events, beside what the
// baseline (the rules in force) did with the same events. Each event is evaluated by both sets in
// the order the API logged it, with the event's own time as `now`, each set counting correlations
// and taking once_per keys in its own throw-away store; nothing is executed, so nothing is written
// anywhere. The report says, per rule, which objects it would newly match, which it would no
// longer match, and where both match but the calls differ, with samples.
import type { ItsmClient } from '../itsm/client.js';
import { isObjectType, type ObjectType } from '../itsm/fields.js';
import type { ItsmEvent } from '../itsm/schemas.js';
import type { EngineStore } from '../storage/engine-port.js';
import { changedFields, type EngineEvent, engineEventOf, eventPlanKey } from './context.js';
import { type Evaluation, evaluateEvent } from './evaluate.js';
import { loadRules, type RuleSet, type RuleSource } from './load.js';
import { createLookupResolver, type LookupResolver } from './lookup.js';
import type { PlannedCall } from './plan.js';
import { formatProblem } from './problem.js';

/** Samples kept per rule and kind of difference. */
export const REPLAY_SAMPLES = 3;

export interface ReplaySample {
  account: number;
  eventId: string;
  eventType: string;
  objectType: string;
  objectId: string;
  at: string;
  /** The calls the rule planned for it in the candidate set (absent: it did not match there). */
  candidateCalls?: unknown[];
  /** The same in the baseline set. */
  baselineCalls?: unknown[];
}

export interface RuleImpact {
  ruleId: string;
  /** In the candidate set, the baseline set, or both. */
  in: 'both' | 'candidate' | 'baseline';
  /** Events where both sets matched it with the same calls. */
  unchanged: number;
  /** Events the candidate matches and the baseline does not. */
  newMatches: number;
  /** Events the baseline matches and the candidate does not. */
  lostMatches: number;
  /** Events both match, with different calls. */
  changedCalls: number;
  samples: {
    newMatches: ReplaySample[];
    lostMatches: ReplaySample[];
    changedCalls: ReplaySample[];
  };
}

export interface ReplayReport {
  /** Events read (in the window). */
  events: number;
  /** Events evaluated (the engine's own writes and unknown object types are not). */
  evaluated: number;
  /** Events that failed to evaluate in either set, with why (an expression failing is a verdict, not this). */
  errors: string[];
  rules: RuleImpact[];
}

export interface ReplayOptions {
  candidate: RuleSet;
  baseline: RuleSet;
  /** Two fresh stores: the candidate's and the baseline's correlations and once_per keys. */
  stores: { candidate: EngineStore; baseline: EngineStore };
  /** The engine's user: its events are the engine's own writes, not replayed. */
  engineUser: string;
  /** Reads `lookup`s (through the API, read only); without it, rules using lookup fail. */
  lookup?: LookupResolver;
}

/** A rule's planned calls with what differs between two evaluations of the same event only. */
function callsOf(evaluation: Evaluation, ruleId: string): unknown[] | null {
  const outcome = evaluation.outcomes.find((o) => o.ruleId === ruleId);
  if (outcome?.verdict === 'shadow') return (outcome.shadowCalls ?? []).map(comparable);
  if (outcome?.verdict !== 'matched') return null;
  return evaluation.plan.calls.filter((call) => call.ruleId === ruleId).map(comparable);
}

/** A call without what depends on its place in the plan (index, idempotency key). */
function comparable(call: PlannedCall): unknown {
  const { index: _index, idempotencyKey: _key, ...rest } = call;
  return rest;
}

export async function replayEvents(
  events: AsyncIterable<ItsmEvent> | Iterable<ItsmEvent>,
  options: ReplayOptions,
): Promise<ReplayReport> {
  const report: ReplayReport = { events: 0, evaluated: 0, errors: [], rules: [] };
  const impacts = new Map<string, RuleImpact>();
  const candidateIds = new Set(options.candidate.rules.map((rule) => rule.id));
  const baselineIds = new Set(options.baseline.rules.map((rule) => rule.id));
  for (const id of [...new Set([...candidateIds, ...baselineIds])].sort()) {
    impacts.set(id, {
      ruleId: id,
      in: candidateIds.has(id) ? (baselineIds.has(id) ? 'both' : 'candidate') : 'baseline',
      unchanged: 0,
      newMatches: 0,
      lostMatches: 0,
      changedCalls: 0,
      samples: { newMatches: [], lostMatches: [], changedCalls: [] },
    });
  }
  // The last state of each object seen in the replay: the `previous` of an update without
  // previous_metadata, and the object of a delete.
  const known = new Map<string, Record<string, unknown>>();

  for await (const event of events) {
    report.events++;
    const metadata = event.metadata as Record<string, unknown> & { id: string; type: string };
    const stateKey = `${event.account}:${metadata.id}`;
    const before = known.get(stateKey) ?? null;
    if (event.type === 'delete') known.delete(stateKey);
    else if (isFullObject(metadata)) known.set(stateKey, metadata);
    if (!isObjectType(metadata.type)) continue;
    if (event.user_id !== null && event.user_id === options.engineUser) continue;
    const objectType: ObjectType = metadata.type;
    const object = event.type === 'delete' ? (before ?? metadata) : metadata;
    const previous =
      event.type === 'update'
        ? ((event.previous_metadata as Record<string, unknown> | undefined) ?? before)
        : null;
    const engineEvent: EngineEvent = engineEventOf(event);
    const input = {
      key: eventPlanKey(event.account, event.id),
      event: engineEvent,
      objectType,
      object,
      previous,
      ...(event.type === 'update' &&
        previous !== null && { changed: changedFields('update', object, previous) }),
      now: new Date(event.modified),
      ...(options.lookup && { lookup: options.lookup }),
    };
    let candidate: Evaluation;
    let baseline: Evaluation;
    try {
      candidate = await evaluateEvent(options.candidate, input, options.stores.candidate);
      baseline = await evaluateEvent(options.baseline, input, options.stores.baseline);
    } catch (error) {
      report.errors.push(
        `event ${event.id} (${event.type} of ${objectType} ${metadata.id} in account ${event.account}): ${error instanceof Error ? error.message : String(error)}`,
      );
      continue;
    }
    report.evaluated++;
    const sample = (candidateCalls: unknown[] | null, baselineCalls: unknown[] | null) => ({
      account: event.account,
      eventId: event.id,
      eventType: event.type,
      objectType,
      objectId: metadata.id,
      at: event.modified,
      ...(candidateCalls !== null && { candidateCalls }),
      ...(baselineCalls !== null && { baselineCalls }),
    });
    for (const impact of impacts.values()) {
      const now = callsOf(candidate, impact.ruleId);
      const then = callsOf(baseline, impact.ruleId);
      const kind =
        now !== null && then === null
          ? 'newMatches'
          : now === null && then !== null
            ? 'lostMatches'
            : now !== null && then !== null && JSON.stringify(now) !== JSON.stringify(then)
              ? 'changedCalls'
              : now !== null
                ? 'unchanged'
                : null;
      if (kind === null) continue;
      if (kind === 'unchanged') {
        impact.unchanged++;
        continue;
      }
      impact[kind]++;
      if (impact.samples[kind].length < REPLAY_SAMPLES)
        impact.samples[kind].push(sample(now, then));
    }
  }
  report.rules = [...impacts.values()];
  return report;
}

/** An event's metadata holds the whole object (not just {id, type, api}). */
function isFullObject(metadata: Record<string, unknown>): boolean {
  return Object.keys(metadata).some((key) => !['id', 'type', 'api', 'href'].includes(key));
}

/** The retained events of each account (read only, oldest first), from the first in the window. */
export async function* retainedEvents(
  client: Pick<ItsmClient, 'events'>,
  accounts: readonly number[],
  from: number,
): AsyncGenerator<ItsmEvent> {
  for (const account of accounts) {
    let cursor: string | undefined;
    for (;;) {
      const page = await client.events(account, {
        pageSize: 100,
        rawData: true,
        ...(cursor && { cursor }),
      });
      for (const event of page.objects) {
        if (Date.parse(event.modified) >= from) yield event;
      }
      cursor = page.cursor;
      if (page.remaining === 0 || page.objects.length === 0) break;
    }
  }
}

export interface PreviewRequest {
  /** The candidate rule set's files. */
  files: RuleSource[];
  sinceMs: number;
  /** Default: every account the engine knows. */
  accounts?: number[];
}

export type PreviewResult = { ok: true; report: ReplayReport } | { ok: false; problems: string[] };

/**
 * The engine's impact preview (`POST /admin/rules/preview`): the candidate files are loaded as
 * `check` loads them (a set with problems is refused, with every problem), then replayed against
 * the rules in force over the API's retained events, read only.
 */
export async function previewRules(
  request: PreviewRequest,
  deps: {
    client: Pick<ItsmClient, 'events' | 'list'>;
    baseline: RuleSet;
    stores: { candidate: EngineStore; baseline: EngineStore };
    engineUser: string;
    accounts: readonly number[];
    now: number;
  },
): Promise<PreviewResult> {
  const loaded = loadRules(request.files);
  if (!loaded.ruleSet) return { ok: false, problems: loaded.problems.map(formatProblem) };
  const report = await replayEvents(
    retainedEvents(deps.client, request.accounts ?? deps.accounts, deps.now - request.sinceMs),
    {
      candidate: loaded.ruleSet,
      baseline: deps.baseline,
      stores: deps.stores,
      engineUser: deps.engineUser,
      lookup: createLookupResolver(deps.client),
    },
  );
  return { ok: true, report };
}
