// The evaluation context of one event (or one object at a schedule tick): what conditions and
// values read (docs/rules.md, "What a rule can read"), and the keys that identify the event for
// idempotency and once-only claims.
import { formatIsoDate } from '../itsm/schemas.js';
import { type EvaluationContext, PATH_MEMO } from './expression.js';

export type EngineEventType = 'add' | 'update' | 'delete' | 'schedule';

export interface EngineEvent {
  /** The Kloudless event id, or the schedule tick (`2026-11-28T10:15:00Z`) for scheduled rules. */
  id: string;
  type: EngineEventType;
  account: number;
  at: string;
  user_id: string | null;
}

/** The engine's view of an API event (its id, kind, account, time and author). */
export function engineEventOf(event: {
  id: string;
  type: 'add' | 'update' | 'delete';
  account: number;
  modified: string;
  user_id: string | null;
}): EngineEvent {
  return {
    id: event.id,
    type: event.type,
    account: event.account,
    at: event.modified,
    user_id: event.user_id,
  };
}

/** Fields that change on every write and say nothing about what the write did. */
const BOOKKEEPING = new Set(['modified']);
/** Upstream columns every write stamps (when, by whom, how often): bookkeeping too. */
const RAW_BOOKKEEPING = new Set(['sys_updated_on', 'sys_updated_by', 'sys_mod_count']);

/** The upstream record of an object (`raw` of a unified object, `raw.object` of a generic one). */
export function upstreamRecordOf(
  object: Record<string, unknown> | null,
): Record<string, unknown> | null {
  const raw = object?.raw;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return null;
  if (object?.type === 'object') {
    const record = (raw as { object?: unknown }).object;
    return record !== null && typeof record === 'object' && !Array.isArray(record)
      ? (record as Record<string, unknown>)
      : null;
  }
  return raw as Record<string, unknown>;
}

/**
 * The fields that differ between `previous` and `object`. An add changes every field of the
 * object; a delete, and an update without a previous state, change none that can be named.
 * The upstream record counts column by column, as `raw.<column>` (`raw.assignment_group`), so
 * that a rule can watch one upstream column (`raw` itself stays in the list too, as before).
 */
export function changedFields(
  type: EngineEventType,
  object: Record<string, unknown> | null,
  previous: Record<string, unknown> | null,
): string[] {
  if (type === 'add') {
    if (!object) return [];
    const fields = Object.keys(object).filter((k) => !BOOKKEEPING.has(k));
    const record = upstreamRecordOf(object);
    if (record) {
      for (const column of Object.keys(record)) {
        if (!RAW_BOOKKEEPING.has(column)) fields.push(`raw.${column}`);
      }
    }
    return fields;
  }
  if (type !== 'update' || !object || !previous) return [];
  const fields = new Set([...Object.keys(object), ...Object.keys(previous)]);
  const changed = [...fields].filter(
    (field) => !BOOKKEEPING.has(field) && !sameValue(object[field], previous[field]),
  );
  const now = upstreamRecordOf(object);
  const before = upstreamRecordOf(previous);
  // Only when both states carry the upstream record: one without it says nothing of its columns.
  if (now && before) {
    for (const column of new Set([...Object.keys(now), ...Object.keys(before)])) {
      if (RAW_BOOKKEEPING.has(column) || sameValue(now[column], before[column])) continue;
      changed.push(`raw.${column}`);
    }
  }
  return changed;
}

/** Deep equality of JSON values; `undefined` and `null` both mean "not set". */
export function sameValue(a: unknown, b: unknown): boolean {
  if ((a === undefined || a === null) && (b === undefined || b === null)) return true;
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const key of keys) {
    if (!sameValue((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key])) {
      return false;
    }
  }
  return true;
}

export function createContext(input: {
  event: EngineEvent;
  object: Record<string, unknown> | null;
  previous: Record<string, unknown> | null;
  now: Date;
  /** The fields the event changed, when known better than by comparing previous and object. */
  changed?: readonly string[];
}): EvaluationContext {
  return {
    event: { ...input.event },
    object: input.object,
    previous: input.previous,
    changed: input.changed
      ? [...input.changed]
      : changedFields(input.event.type, input.object, input.previous),
    now: formatIsoDate(input.now),
    correlation: null,
    rule: { id: '' },
    // Shared by the per-rule copies of this context (a spread copies it): each path of the
    // event's object, previous state and event is read once for all the rules.
    [PATH_MEMO]: [],
  };
}

/** The key of the plan for a Kloudless event: events are unique per account. */
export function eventPlanKey(account: number, eventId: string): string {
  return `e:${account}:${eventId}`;
}

/** The key of the plan of a scheduled rule for one object at one tick. */
export function schedulePlanKey(
  account: number,
  ruleId: string,
  tick: string,
  objectId: string,
): string {
  return `s:${account}:${ruleId}:${tick}:${objectId}`;
}
