// Parked work: what the drain does with an object whose action keeps failing (the network, a 5xx,
// a 429 past the client's retries, an `http` endpoint that is down), so that one object never
// holds up the rest of its account. The object is parked with the event that failed and every
// later event of it, in their order; each gets a run record with outcome `parked`, the account's
// other objects go on, and its cursor moves past them. A retry on a backoff schedule (the Node
// timer, the Worker's cron, or an operator's POST /admin/parked/retry) takes the waiting events in
// order; a half-done plan is finished from its stored plan and recorded effects, so no call is
// made twice. When every waiting event is finished the object is unparked.
import { engineEventOf, eventPlanKey } from '../engine/context.js';
import { PlanInterruptedError } from '../engine/execute.js';
import { skippedRun } from '../engine/run-record.js';
import type { ItsmEvent } from '../itsm/schemas.js';
import type { NewRunRecord, ParkedObject } from '../storage/pipeline-port.js';
import type { DrainOptions, PipelineDeps, ProcessedEvent } from './drain.js';

/** The wait before the first retry of a parked object, doubled per failed retry up to maxMs. */
export const PARK_RETRY = { baseMs: 5_000, maxMs: 5 * 60_000 } as const;

/** Parked objects one drain retries at most (the rest are due at the next one). */
export const PARKED_PER_DRAIN = 100;

/**
 * Failures that park an object: an action of its plan failed in a way that may pass (the plan's
 * calls so far are recorded, and a re-run finishes it). A failure to read (the events page, the
 * object) is the API's, not the object's: the drain stops and is retried with the cursor kept.
 */
export function isParkable(error: unknown): error is PlanInterruptedError {
  return error instanceof PlanInterruptedError;
}

/** The wait after `attempts` failed tries: jitter over the upper half of a doubling ceiling. */
export function parkDelay(
  attempts: number,
  retry: PipelineDeps['parkRetry'] = {},
  random: () => number = Math.random,
): number {
  const base = retry.baseMs ?? PARK_RETRY.baseMs;
  const ceiling = Math.min(retry.maxMs ?? PARK_RETRY.maxMs, base * 2 ** Math.max(0, attempts - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function objectOf(event: ItsmEvent): { id: string; type: string } {
  const metadata = event.metadata as { id?: unknown; type?: unknown };
  return { id: String(metadata.id ?? ''), type: String(metadata.type ?? '') };
}

/** The run record of an event that waits (outcome `parked`), replaced once it is finished. */
function parkedRun(deps: PipelineDeps, event: ItsmEvent, reason: string): NewRunRecord {
  const object = objectOf(event);
  const at = (deps.now ?? Date.now)();
  return {
    ...skippedRun(
      {
        key: eventPlanKey(event.account, event.id),
        event: engineEventOf(event),
        objectType: object.type,
        objectId: object.id,
        selfHops: 0,
        at,
      },
      reason,
    ),
    outcome: 'parked',
  };
}

function retryNote(attempts: number, nextAt: number): string {
  return `retry ${attempts + 1} due at ${new Date(nextAt).toISOString()} (or POST /admin/parked/retry)`;
}

/**
 * Parks the object of `events` (all of one object, in order; the first one's action failed with
 * `error`) with all of them behind it. The drain calls it for an object not parked yet.
 */
export async function parkObject(
  deps: PipelineDeps,
  events: readonly ItsmEvent[],
  error: unknown,
): Promise<ParkedObject> {
  const first = events[0];
  if (!first) throw new Error('parkObject needs the event that failed');
  const now = (deps.now ?? Date.now)();
  const object = objectOf(first);
  const message = messageOf(error);
  const nextAt = now + parkDelay(1, deps.parkRetry);
  const parked = await deps.pipelineStore.park(
    {
      account: first.account,
      objectId: object.id,
      objectType: object.type,
      parkedAt: now,
      attempts: 1,
      nextAt,
      error: message,
    },
    events.map((event) => ({
      account: event.account,
      objectId: object.id,
      eventId: event.id,
      body: JSON.stringify(event),
      at: now,
    })),
  );
  for (const [index, event] of events.entries()) {
    const reason =
      index === 0
        ? `parked: ${message}; ${retryNote(parked.attempts, parked.nextAt)}`
        : waitsReason(parked);
    await deps.pipelineStore.saveRun(parkedRun(deps, event, reason));
  }
  deps.metrics?.parked.inc();
  deps.log?.(
    `drain: account ${first.account}: ${object.type} ${object.id} PARKED at event ${first.id} (${message}); ${events.length - 1} later event${events.length === 2 ? '' : 's'} of it wait behind it, the account's other objects go on; ${retryNote(parked.attempts, parked.nextAt)}`,
  );
  return parked;
}

function waitsReason(parked: ParkedObject): string {
  return `parked: waits behind an earlier event of ${parked.objectType} ${parked.objectId}, whose action keeps failing (${parked.error})`;
}

/**
 * Adds an event of an object parked already behind its earlier events; an event that already has
 * a finished run (a page run again after a crash) is not added. True when it was added.
 */
export async function parkBehind(deps: PipelineDeps, event: ItsmEvent): Promise<boolean> {
  const existing = await deps.pipelineStore.getRun(eventPlanKey(event.account, event.id));
  if (existing && existing.outcome !== 'parked') return false;
  const now = (deps.now ?? Date.now)();
  const object = objectOf(event);
  const parked = await deps.pipelineStore.park(
    {
      account: event.account,
      objectId: object.id,
      objectType: object.type,
      parkedAt: now,
      attempts: 1,
      // Only when the object was unparked just now (its retry finished meanwhile): nothing of
      // it failed, so its event is due at once.
      nextAt: now,
      error: 'parked behind an earlier event',
    },
    [
      {
        account: event.account,
        objectId: object.id,
        eventId: event.id,
        body: JSON.stringify(event),
        at: now,
      },
    ],
  );
  await deps.pipelineStore.saveRun(parkedRun(deps, event, waitsReason(parked)));
  return true;
}

/**
 * Retries a parked object: its waiting events in order, each through `process` (the drain's
 * processEvent). A failure that may pass parks it again with a longer wait; once every event is
 * finished the object is unparked. Anything else (the store failing, a lost Worker lease) throws.
 */
export async function retryParked(
  deps: PipelineDeps,
  parked: ParkedObject,
  process: (deps: PipelineDeps, event: ItsmEvent) => Promise<ProcessedEvent>,
  isTransient: (error: unknown) => boolean,
  options: DrainOptions = {},
): Promise<'done' | 'failed'> {
  const store = deps.pipelineStore;
  const now = deps.now ?? Date.now;
  let finished = 0;
  // Events added behind the object while it is retried are taken too, in order.
  for (;;) {
    const waiting = await store.parkedEvents(parked.account, parked.objectId);
    if (waiting.length === 0) break;
    for (const entry of waiting) {
      await options.beforeEvent?.();
      const event = JSON.parse(entry.body) as ItsmEvent;
      try {
        await process(deps, event);
      } catch (error) {
        if (!isTransient(error)) throw error;
        const attempts = parked.attempts + 1;
        const nextAt = now() + parkDelay(attempts, deps.parkRetry);
        const message = messageOf(error);
        await store.rescheduleParked(parked.account, parked.objectId, {
          attempts,
          nextAt,
          error: message,
        });
        await store.saveRun(
          parkedRun(deps, event, `parked: ${message}; ${retryNote(attempts, nextAt)}`),
        );
        deps.metrics?.parkedRetries.inc({ result: 'failed' });
        deps.log?.(
          `drain: account ${parked.account}: ${parked.objectType} ${parked.objectId} still PARKED after try ${attempts} (event ${event.id}: ${message}); ${retryNote(attempts, nextAt)}`,
        );
        return 'failed';
      }
      await store.removeParkedEvent(parked.account, entry.eventId);
      finished++;
    }
  }
  if (await store.unpark(parked.account, parked.objectId)) {
    deps.metrics?.parkedRetries.inc({ result: 'done' });
    deps.log?.(
      `drain: account ${parked.account}: ${parked.objectType} ${parked.objectId} unparked: its ${finished} waiting event${finished === 1 ? '' : 's'} are done`,
    );
  }
  return 'done';
}
