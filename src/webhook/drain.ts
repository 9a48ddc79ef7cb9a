// The drain: what a notification for an account sets off. Pull the account's events after the
// stored cursor, page by page; for each event, skip it if it already has a run record, tell the
// engine's own writes (echoes) from other changes, fetch the changed object, take `previous`
// from the event or the last snapshot, evaluate, execute and write the run record. Events and
// objects are read with their upstream record (`raw`, which rules read as object.raw).
// Within a page, the events of one object are taken strictly in order, and different objects
// concurrently (up to `objectConcurrency`): an API answering in 100s of ms is then not waited on
// one event after another. The correlation counts and once_per claims that objects share are
// single-statement or one-transaction decisions in the store, so they stay exact in any order.
// An object whose action keeps failing is parked with its later events (park.ts) instead of
// holding up the account. The cursor moves only after every event of a page is done or parked,
// so a crash or a failure at any point is followed by a re-run of the same page, which the run
// records and the stored plans make harmless. Runtime-neutral: Node drives it from an in-process
// queue, Workers from a Queue.

import { changedFields, type EngineEvent, engineEventOf, eventPlanKey } from '../engine/context.js';
import { type Evaluation, evaluateEvent, MAX_SELF_HOPS } from '../engine/evaluate.js';
import {
  type ExecutionResult,
  executePlan,
  type HttpOptions,
  PlanInterruptedError,
} from '../engine/execute.js';
import type { RuleSet } from '../engine/load.js';
import { createLookupResolver, type LookupResolver } from '../engine/lookup.js';
import type { Plan } from '../engine/plan.js';
import {
  evaluatedRun,
  fieldChanges,
  objectNumberOf,
  type RunInput,
  skippedRun,
} from '../engine/run-record.js';
import {
  ItsmApiError,
  type ItsmClient,
  ItsmRequestError,
  ItsmResponseError,
} from '../itsm/client.js';
import { COLLECTION_PATHS, isObjectType, type ObjectType } from '../itsm/fields.js';
import { createLimiter, type Limiter } from '../itsm/limiter.js';
import type { ItsmEvent } from '../itsm/schemas.js';
import type { EngineStore } from '../storage/engine-port.js';
import type {
  NewRunRecord,
  PipelineStore,
  RunRecord,
  SnapshotChange,
} from '../storage/pipeline-port.js';
import type { EngineMetrics } from './metrics.js';
import { isParkable, PARKED_PER_DRAIN, parkBehind, parkObject, retryParked } from './park.js';

export const DEFAULT_PAGE_SIZE = 100;
/**
 * Objects of one account whose events are processed at the same time, by default on Node. An
 * account's drain waits on the API for each object's calls; with many distinct objects changing
 * at once (one busy account), 8 left the engine idle between calls: bench/pipeline-shape.ts at
 * one account went from about 0.41x to 0.5-0.6x of its floor with 32-64, and its p50 from about
 * 100 ms to 15-40 ms (bench/README.md). The Worker keeps 8 (worker.ts).
 */
export const DEFAULT_OBJECT_CONCURRENCY = 32;
/** The user the engine acts as unless told otherwise (`--as-user`, `ITSM_RULES_AS_USER`). */
export const DEFAULT_ENGINE_USER = 'itsm-rules';

export interface PipelineDeps {
  /** The ITSM API client; it sends X-Kloudless-As-User: `engineUser` on every request. */
  client: ItsmClient;
  engineStore: EngineStore;
  pipelineStore: PipelineStore;
  /** The rule set in force (a reload swaps it between events). */
  rules: () => RuleSet;
  /** The user the engine acts as: events by this user are the engine's own writes. */
  engineUser: string;
  http?: HttpOptions;
  now?: () => number;
  log?: (line: string) => void;
  metrics?: EngineMetrics;
  /** Events per page; default 100. */
  pageSize?: number;
  /** Where an account with no stored cursor starts: its oldest retained event (default), or now. */
  from?: 'oldest' | 'latest';
  /** How this runtime's users set `from: latest`, for the log; default `--from latest`. */
  fromLatestSetting?: string;
  /**
   * Answers rules' `lookup`s. By default each drain makes its own (cached for that drain), and
   * an event processed on its own gets a fresh one.
   */
  lookup?: LookupResolver;
  /** Objects of one account processed at the same time (their events in order); default 8. */
  objectConcurrency?: number;
  /** Backoff of a parked object's retries; default 5 s doubling up to 5 min (park.ts). */
  parkRetry?: { baseMs?: number; maxMs?: number };
  /**
   * Retries of parked objects still running, by `account:object`, kept across drains (Node). A
   * retry that waits on a slow endpoint then does not hold the drain that started it: the drain
   * ends, the account's next drain serves its other objects at once, and only the events of that
   * object wait for the retry. Without it (Workers, where the lease must cover the work), a drain
   * ends once its retries have.
   */
  retries?: Map<string, Promise<void>>;
}

/** Objects and events are read with their upstream record (`raw`), which rules can read. */
const RAW_HEADERS = { 'X-Kloudless-Raw-Data': 'true' } as const;

export interface DrainOptions {
  /** Asked after each page: true ends the drain there (the page in hand is finished first). */
  shouldStop?: () => boolean;
  /**
   * Awaited before each event (and before each page is fetched, and its cursor saved). A throw
   * ends the drain there
   * (the events in hand are finished first), with the cursor where it was: the events done so far
   * keep their run records, and the next drain skips them. The Worker keeps its account lease
   * alive here, and stops once it lost it. Events of different objects run concurrently, so it
   * may be called again before an earlier call has settled.
   */
  beforeEvent?: () => Promise<void>;
  /**
   * Called with each page's request time (the `at` its saveCursor will carry) as the page is
   * about to be requested. Node's receiver learns here that a note made before it no longer
   * covers the notifications that come next (engine.ts).
   */
  pageRequested?: (at: number) => void;
}

export interface DrainResult {
  account: number;
  pages: number;
  /** Events looked at, replays included. */
  events: number;
  /** Events that already had a run record (a replayed page). */
  duplicates: number;
  /** Events parked (their object's action keeps failing) or added behind a parked object. */
  parked: number;
  /** True when the drain reached the end of the event log. */
  caughtUp: boolean;
  cursor: string | null;
}

/**
 * A failure that may pass (the API unavailable or rate limiting, the network): the drain stops
 * with the cursor where it was, and is tried again later.
 */
export function isTransient(error: unknown): boolean {
  if (error instanceof PlanInterruptedError || error instanceof ItsmRequestError) return true;
  if (error instanceof ItsmApiError) {
    return error.retryable || error.status >= 500 || error.status === 429 || error.status === 408;
  }
  return false;
}

function isExpiredCursor(error: unknown): boolean {
  return (
    error instanceof ItsmApiError &&
    error.status === 400 &&
    /cursor .*expired/i.test(error.body?.message ?? error.message)
  );
}

export async function drainAccount(
  pipeline: PipelineDeps,
  account: number,
  options: DrainOptions = {},
): Promise<DrainResult> {
  // One lookup cache per drain: the events of a burst that name the same group read it once,
  // and a group created since is found by the next drain.
  const deps: PipelineDeps = pipeline.lookup
    ? pipeline
    : { ...pipeline, lookup: createLookupResolver(pipeline.client) };
  const now = deps.now ?? Date.now;
  const state = await deps.pipelineStore.getAccount(account);
  const result: DrainResult = {
    account,
    pages: 0,
    events: 0,
    duplicates: 0,
    parked: 0,
    caughtUp: false,
    cursor: state?.cursor ?? null,
  };
  const limit = createLimiter(deps.objectConcurrency ?? DEFAULT_OBJECT_CONCURRENCY);

  // Parked objects due for a retry are retried beside the pages, sharing their concurrency: a
  // retry that waits on a slow endpoint holds up only its own object, whose events in the pages
  // are added behind it.
  const log = deps.log ?? (() => {});
  const retrying = new Map<string, Promise<void>>();
  const shared = deps.retries;
  const keyOf = (objectId: string) => `${account}:${objectId}`;
  if (shared) {
    // Retries an earlier drain started and that are still running: their objects wait for them.
    for (const [key, retry] of shared) {
      if (key.startsWith(`${account}:`)) retrying.set(key.slice(`${account}:`.length), retry);
    }
  }
  let retryFailure: { error: unknown } | null = null;
  const due = await deps.pipelineStore.listParked({
    account,
    dueAt: now(),
    limit: PARKED_PER_DRAIN,
  });
  for (const parked of due) {
    if (retrying.has(parked.objectId)) continue;
    const retry = limit
      .run(() => retryParked(deps, parked, processEvent, isTransient, options))
      .then(
        () => {},
        (error: unknown) => {
          if (!shared) {
            retryFailure ??= { error };
            return;
          }
          // The drain that started it may be over: the object stays parked and due, and the
          // account's next drain tries it again.
          log(
            `drain: account ${account}: the retry of parked ${parked.objectType} ${parked.objectId} stopped: ${error instanceof Error ? error.message : String(error)}`,
          );
        },
      )
      .finally(() => {
        retrying.delete(parked.objectId);
        shared?.delete(keyOf(parked.objectId));
      });
    retrying.set(parked.objectId, retry);
    shared?.set(keyOf(parked.objectId), retry);
  }

  try {
    await drainPages(deps, account, state, result, limit, retrying, options);
  } finally {
    // Without a shared registry the drain never ends with work of the account still running.
    if (!shared) await Promise.all(retrying.values());
  }
  if (retryFailure) throw (retryFailure as { error: unknown }).error;
  return result;
}

async function drainPages(
  deps: PipelineDeps,
  account: number,
  state: Awaited<ReturnType<PipelineStore['getAccount']>>,
  result: DrainResult,
  limit: Limiter,
  retrying: ReadonlyMap<string, Promise<void>>,
  options: DrainOptions,
): Promise<void> {
  const now = deps.now ?? Date.now;
  const log = deps.log ?? (() => {});
  let cursor = state?.cursor ?? null;
  if (cursor === null && state?.drainedAt == null && deps.from === 'latest') {
    // Only what happens from now on: nothing before the first notification is acted on.
    cursor = await deps.client.latestCursor(account);
    await deps.pipelineStore.saveCursor(account, cursor, now(), false);
    log(
      `drain: account ${account} starts at the newest event (${deps.fromLatestSetting ?? '--from latest'})`,
    );
  }

  let recovered = false;
  // The API bounds a page by bytes as well as count: a page shorter than asked with more to come
  // was cut at its byte budget, so the next request asks for about that many (the API then
  // reads no more than it sends); full pages let the size grow back. Memory stays at one page
  // of events plus the objects being processed.
  const maxPageSize = deps.pageSize ?? DEFAULT_PAGE_SIZE;
  let pageSize = maxPageSize;
  for (;;) {
    await options.beforeEvent?.();
    const requestedAt = now();
    options.pageRequested?.(requestedAt);
    let page: Awaited<ReturnType<ItsmClient['events']>>;
    try {
      page = await deps.client.events(account, {
        ...(cursor !== null && { cursor }),
        pageSize,
        rawData: true,
      });
    } catch (error) {
      if (!isExpiredCursor(error) || recovered) throw error;
      // Events between the cursor and the oldest retained one are gone from the API: they can
      // no longer be acted on. Say so loudly, then go on from what is still there.
      log(
        `drain: ERROR account ${account}: the stored cursor ${cursor} has expired (the API no longer retains the events after it); events in the gap cannot be processed; recovering from the oldest retained event`,
      );
      // The expired cursor stays stored until the first page from the oldest event is done: a
      // crash before that recovers the same way again (storing null would look like an account
      // never drained, and `--from latest` would then skip the retained events).
      recovered = true;
      cursor = null;
      continue;
    }
    await processPage(deps, account, page.objects, result, limit, retrying, options);
    // Still the account's only drain (the Worker's lease): a drain that lost it must not move
    // the cursor under the one that took over.
    await options.beforeEvent?.();
    pageSize =
      page.remaining > 0 && page.objects.length < pageSize
        ? Math.max(1, page.objects.length)
        : Math.min(maxPageSize, pageSize * 2);
    const caughtUp = page.remaining === 0 || page.objects.length === 0;
    await deps.pipelineStore.saveCursor(account, page.cursor, requestedAt, caughtUp);
    cursor = page.cursor;
    result.pages++;
    result.cursor = cursor;
    deps.metrics?.eventsRemaining.set({ account: String(account) }, page.remaining);
    if (caughtUp) {
      result.caughtUp = true;
      return;
    }
    if (options.shouldStop?.()) return;
  }
}

/** The id of the object an event is about: its events are taken in order, one at a time. */
function objectKeyOf(event: ItsmEvent): string {
  return String((event.metadata as { id?: unknown }).id ?? '');
}

/**
 * Processes the events of one page: each object's in order, different objects concurrently. It
 * returns once every event is done or parked; on a failure that is not an object's (the API
 * failing a read, the store), it lets the events in hand finish, starts no new one, and throws.
 */
async function processPage(
  deps: PipelineDeps,
  account: number,
  events: readonly ItsmEvent[],
  result: DrainResult,
  limit: Limiter,
  retrying: ReadonlyMap<string, Promise<void>>,
  options: DrainOptions,
): Promise<void> {
  if (events.length === 0) return;
  const chains = new Map<string, ItsmEvent[]>();
  for (const event of events) {
    const key = objectKeyOf(event);
    const chain = chains.get(key);
    if (chain) chain.push(event);
    else chains.set(key, [event]);
  }
  const parkedIds = new Set(
    (await deps.pipelineStore.listParked({ account, limit: Number.MAX_SAFE_INTEGER })).map(
      (parked) => parked.objectId,
    ),
  );
  let failure: { error: unknown } | null = null;
  const stopped = () => failure !== null;
  await Promise.all(
    [...chains].map(async ([objectId, chain]) => {
      // An object being retried is parked until its retry is done: its new events go behind
      // it (the retry takes them too, in order) instead of waiting for it here, which would hold
      // the page, and with it the account's later events, for as long as the retry takes.
      const parked = parkedIds.has(objectId) || retrying.has(objectId);
      await limit.run(async () => {
        try {
          await processChain(deps, chain, parked, result, stopped, options);
        } catch (error) {
          failure ??= { error };
        }
      });
    }),
  );
  if (failure) throw (failure as { error: unknown }).error;
}

/** The events of one object, in order; from the first one whose action keeps failing, parked. */
async function processChain(
  deps: PipelineDeps,
  chain: readonly ItsmEvent[],
  parked: boolean,
  result: DrainResult,
  stopped: () => boolean,
  options: DrainOptions,
): Promise<void> {
  for (const [index, event] of chain.entries()) {
    if (stopped()) return;
    await options.beforeEvent?.();
    if (parked) {
      // Behind a parked object: this event waits for it, in order.
      if (await parkBehind(deps, event)) result.parked++;
      else result.duplicates++;
      result.events++;
      continue;
    }
    try {
      const outcome = await processEvent(deps, event);
      result.events++;
      if (outcome.duplicate) result.duplicates++;
    } catch (error) {
      if (!isParkable(error)) throw error;
      const rest = chain.slice(index);
      await parkObject(deps, rest, error);
      result.events += rest.length;
      result.parked += rest.length;
      return;
    }
  }
}

export interface ProcessedEvent {
  run: RunRecord;
  /** True when the event already had a run record and nothing was done again. */
  duplicate: boolean;
}

/** Runs one event through the engine (at most once: a second call returns the first run). */
export async function processEvent(deps: PipelineDeps, event: ItsmEvent): Promise<ProcessedEvent> {
  const now = deps.now ?? Date.now;
  const key = eventPlanKey(event.account, event.id);
  const existing = await deps.pipelineStore.getRun(key);
  // A parked event's run is a placeholder: the event is finished now (a retry of its object).
  if (existing && existing.outcome !== 'parked') return { run: existing, duplicate: true };

  const engineEvent: EngineEvent = engineEventOf(event);
  const metadata = event.metadata as Record<string, unknown> & { id: string; type: string };
  const input: RunInput = {
    key,
    event: engineEvent,
    objectType: metadata.type,
    objectId: metadata.id,
    objectNumber: objectNumberOf(metadata),
    selfHops: 0,
    at: now(),
  };
  // The snapshot an event leaves is saved with its run: nothing outside happens between the two.
  const finish = async (record: NewRunRecord, snapshot?: SnapshotChange) => {
    const run = await deps.pipelineStore.saveRun({ ...record, at: now() }, snapshot);
    countRun(deps.metrics, run);
    return { run, duplicate: false };
  };

  if (!isObjectType(metadata.type)) {
    return finish(skippedRun(input, `the object type ${JSON.stringify(metadata.type)} is unknown`));
  }
  const objectType: ObjectType = metadata.type;
  const ruleSet = deps.rules();

  try {
    // A re-run (after a crash or a failure mid-plan) finishes the plan stored by the first try.
    const resumed = await storedEvaluation(deps, event.account, key);
    if (resumed) {
      input.selfHops = resumed.plan.selfHops;
      const execution = await executeEvaluation(deps, resumed);
      const fetched =
        event.type === 'delete' || isFullObject(metadata)
          ? null
          : await fetchObject(deps.client, event.account, objectType, metadata);
      return finish(
        evaluatedRun(input, resumed, execution),
        remember(deps, event, objectType, metadata, fetched),
      );
    }

    if (event.user_id !== null && event.user_id === deps.engineUser) {
      input.selfHops = await hopsOf(deps.engineStore, metadata.id);
      const follows = ruleSet.rules.some(
        (rule) => rule.enabled && rule.trigger.self && rule.trigger.types.includes(objectType),
      );
      if (!follows) {
        return finish(
          skippedRun(
            input,
            `the engine's own write (hop ${input.selfHops}), and no rule for ${objectType} has on.self`,
          ),
          remember(deps, event, objectType, metadata, null),
        );
      }
      if (input.selfHops >= MAX_SELF_HOPS) {
        return finish(
          skippedRun(
            input,
            `the engine's own write at hop ${input.selfHops}: chains of on.self rules stop after ${MAX_SELF_HOPS} hops`,
          ),
          remember(deps, event, objectType, metadata, null),
        );
      }
    }

    // The object's last known state is read only when the event needs it (a delete, an update
    // without previous_metadata): an add or a full update would read it for nothing.
    const known = async () => {
      const snapshot = await deps.pipelineStore.getSnapshot(event.account, metadata.id);
      return snapshot ? (JSON.parse(snapshot.body) as Record<string, unknown>) : null;
    };
    let object: Record<string, unknown>;
    let previous: Record<string, unknown> | null = null;
    let changed: string[] | undefined;
    if (event.type === 'delete') {
      // The API returns only {id, type, api} for a deleted object: its last known state is ours.
      object = (await known()) ?? metadata;
    } else {
      const fetched = await fetchObject(deps.client, event.account, objectType, metadata);
      if (fetched === null) {
        return finish(
          skippedRun(
            input,
            `the ${objectType} was deleted before it could be read; its delete event follows`,
          ),
        );
      }
      object = fetched;
      if (event.type === 'update') {
        previous =
          (event.previous_metadata as Record<string, unknown> | undefined) ?? (await known());
        // What this event changed is read from the event itself when it carries both states:
        // the object fetched now may already hold later changes, and those are later events'.
        if (event.previous_metadata && isFullObject(metadata)) {
          changed = changedFields('update', metadata, event.previous_metadata);
        }
      }
    }

    input.objectNumber = objectNumberOf(object) ?? input.objectNumber ?? null;
    // Like `changed`: from the event's own two states when it carries both.
    input.changes =
      event.type === 'update' && event.previous_metadata && isFullObject(metadata)
        ? fieldChanges('update', metadata, event.previous_metadata)
        : fieldChanges(event.type, object, previous);
    const evaluation = await evaluateEvent(
      ruleSet,
      {
        key,
        event: engineEvent,
        objectType,
        object,
        previous,
        ...(changed && { changed }),
        now: new Date(now()),
        selfHops: input.selfHops,
        lookup: deps.lookup ?? createLookupResolver(deps.client),
      },
      deps.engineStore,
    );
    const execution = await executeEvaluation(deps, evaluation);
    return finish(
      evaluatedRun(input, evaluation, execution),
      remember(deps, event, objectType, metadata, object),
    );
  } catch (error) {
    if (isTransient(error)) throw error;
    // Anything else will fail the same way on every try: record it on the event's run, loudly,
    // and go on, so that one bad event never blocks the account.
    const message = error instanceof Error ? error.message : String(error);
    deps.log?.(`drain: ERROR event ${event.id} of account ${event.account}: ${message}`);
    await releaseIfUnplanned(deps, event.account, key);
    return finish({
      ...skippedRun(input, `failed: ${message}`),
      outcome: 'failed',
    });
  }
}

/** Executes the evaluation's plan; null when it plans no call (nothing is stored then). */
export async function executeEvaluation(
  deps: PipelineDeps,
  evaluation: Evaluation,
): Promise<ExecutionResult | null> {
  if (evaluation.plan.calls.length === 0) return null;
  return executePlan(evaluation.plan, {
    client: deps.client,
    store: deps.engineStore,
    ...(deps.http && { http: deps.http }),
    ...(deps.now && { now: deps.now }),
  });
}

/**
 * After a failure recorded as final: without a stored plan nothing was acted on, so once_per
 * keys taken on the way are given back, or they would hold off the next event with the same key.
 */
export async function releaseIfUnplanned(
  deps: PipelineDeps,
  account: number,
  key: string,
): Promise<void> {
  if (!(await deps.engineStore.getPlan(key))) {
    await deps.engineStore.releaseClaims(account, `${key}:`);
  }
}

/**
 * The object's state after the event, kept (with the event's run) as the `previous` of its next
 * event if that one carries no previous_metadata, and the object of its delete. The event's own
 * metadata is the state right after the event; the object fetched later is the fallback when
 * metadata is partial. Undefined when there is nothing to keep.
 */
function remember(
  deps: PipelineDeps,
  event: ItsmEvent,
  objectType: ObjectType,
  metadata: Record<string, unknown> & { id: string },
  fetched: Record<string, unknown> | null,
): SnapshotChange | undefined {
  if (event.type === 'delete') {
    return { delete: { account: event.account, objectId: metadata.id } };
  }
  const state = isFullObject(metadata) ? metadata : fetched;
  if (state === null) return undefined;
  return {
    put: {
      account: event.account,
      objectId: metadata.id,
      objectType,
      body: JSON.stringify(state),
      eventId: event.id,
      at: (deps.now ?? Date.now)(),
    },
  };
}

/**
 * How many hops of engine writes led to this event: one more than the plan whose call last
 * wrote the object. An engine write with no recorded effect (a crash between the call and its
 * record) counts as hop 1.
 */
async function hopsOf(store: EngineStore, objectId: string): Promise<number> {
  const latest = await store.latestEffectWithPlan(objectId);
  if (!latest) return 1;
  const { plan } = latest;
  const selfHops = plan ? (JSON.parse(plan.body) as { selfHops?: unknown }).selfHops : 0;
  return (typeof selfHops === 'number' ? selfHops : 0) + 1;
}

/**
 * The plan an earlier try of this key stored (a crash or a failure mid-plan), as the evaluation
 * it stands for: the rules it holds, matched when it was made; null when there is none. Such a
 * plan is what runs again (executePlan keeps the first one stored), so it is finished as it is,
 * without evaluating again: a second evaluation sees the object after the plan's own writes, may
 * no longer match (and then the rest of the plan would never run), and would take once_per keys
 * for rules the stored plan does not hold (whose actions would then never run either). With no
 * stored plan, the claims of a try that stopped before storing one are released first.
 */
export async function storedEvaluation(
  deps: PipelineDeps,
  account: number,
  key: string,
): Promise<Evaluation | null> {
  const stored = await deps.engineStore.getPlan(key);
  if (!stored) {
    // An earlier try may have taken once_per keys and stopped before storing its plan: it acted
    // on nothing, so its claims are void, and the evaluation about to run takes what it needs.
    await deps.engineStore.releaseClaims(account, `${key}:`);
    return null;
  }
  const plan = JSON.parse(stored.body) as Plan;
  const ruleSet = deps.rules();
  return {
    plan,
    outcomes: plan.rules.map((ruleId) => ({
      ruleId,
      file: ruleSet.rules.find((rule) => rule.id === ruleId)?.file ?? '',
      verdict: 'matched' as const,
    })),
  };
}

/** An event's metadata holds the whole object (not just {id, type, api}). */
function isFullObject(metadata: Record<string, unknown>): boolean {
  return Object.keys(metadata).some((key) => !['id', 'type', 'api', 'href'].includes(key));
}

async function fetchObject(
  client: ItsmClient,
  account: number,
  type: ObjectType,
  metadata: Record<string, unknown>,
): Promise<Record<string, unknown> | null> {
  const query: Record<string, string> = {};
  if (type === 'object') {
    const rawType = rawTypeOf(metadata);
    if (rawType) query.raw_type = rawType;
  }
  try {
    const response = await client.request({
      method: 'GET',
      path: `accounts/${account}/itsm/${COLLECTION_PATHS[type].plural}/${encodeURIComponent(String(metadata.id))}`,
      query,
      headers: { ...RAW_HEADERS },
    });
    if (response.body === null || typeof response.body !== 'object') {
      throw new ItsmResponseError(
        `GET ${type} ${String(metadata.id)} answered ${response.status} without an object`,
        {
          status: response.status,
          method: 'GET',
          path: `${type}/${String(metadata.id)}`,
          issues: [],
        },
      );
    }
    return response.body as Record<string, unknown>;
  } catch (error) {
    if (error instanceof ItsmApiError && (error.status === 404 || error.status === 410))
      return null;
    throw error;
  }
}

/** A generic object's upstream table, from its raw data or its href's `raw_type`. */
function rawTypeOf(metadata: Record<string, unknown>): string | null {
  const raw = metadata.raw as { type?: unknown } | undefined;
  if (typeof raw?.type === 'string') return raw.type;
  if (typeof metadata.href === 'string') {
    try {
      return new URL(metadata.href).searchParams.get('raw_type');
    } catch {
      return null;
    }
  }
  return null;
}

export function countRun(metrics: EngineMetrics | undefined, run: RunRecord): void {
  if (!metrics) return;
  metrics.eventsProcessed.inc({ outcome: run.outcome });
  const detail = JSON.parse(run.detail) as {
    rules?: { ruleId: string; verdict: string }[];
    calls?: { outcome: string; earlier: boolean }[];
  };
  for (const rule of detail.rules ?? []) {
    if (rule.verdict === 'matched') metrics.rulesMatched.inc({ rule: rule.ruleId });
    // A shadow rule is counted apart: it acted on nothing, but how often it would have is what
    // tells whether it is ready to be promoted.
    else if (rule.verdict === 'shadow') metrics.shadowMatches.inc({ rule: rule.ruleId });
    // A failed rule made no call, so actions_total cannot show it: it is counted by rule.
    else if (rule.verdict === 'failed') metrics.rulesFailed.inc({ rule: rule.ruleId });
  }
  for (const call of detail.calls ?? []) {
    if (!call.earlier) metrics.actions.inc({ outcome: call.outcome });
  }
}

/**
 * Retention: removes run records and plans older than `retentionMs` before `now`, but never
 * younger than the longest `correlate.within` of the rule set (a correlation looks back that far).
 * Node runs it hourly, the Worker on the cron's minute 0.
 */
export async function purgeExpired(
  stores: Pick<PipelineDeps, 'engineStore' | 'pipelineStore'>,
  ruleSet: RuleSet,
  retentionMs: number,
  now: number,
  log: (line: string) => void,
): Promise<void> {
  const longestWindow = Math.max(0, ...ruleSet.rules.map((rule) => rule.correlate?.withinMs ?? 0));
  const before = now - Math.max(retentionMs, longestWindow);
  const runs = await stores.pipelineStore.purgeRuns(before);
  const plans = await stores.engineStore.purge(before);
  if (runs > 0 || plans > 0) {
    log(
      `retention: removed ${runs} run records and ${plans} plans older than ${new Date(before).toISOString()}`,
    );
  }
}
