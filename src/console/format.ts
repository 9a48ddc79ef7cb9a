// How the console writes things people read: times in UTC, durations, and an object's label
// (its number, INC0010001, rather than its 65-character id).
import type { RunRecord } from '../storage/pipeline-port.js';

/** `2026-12-04 16:20:05` (UTC), the form the console writes every time in. */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

/** `3 s`, `4 min`, `2 h`: how long ago, or how long, to a person. */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 90) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 90) return `${minutes} min`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} h`;
  return `${Math.round(hours / 24)} d`;
}

/** The id cut for a table cell: its start and end, which is what people compare. */
export function shortId(id: string): string {
  return id.length <= 20 ? id : `${id.slice(0, 8)}...${id.slice(-8)}`;
}

/** What a run is about, as people name it: `INC0010001`, or the type and a short id. */
export function objectLabel(run: Pick<RunRecord, 'objectNumber' | 'objectType' | 'objectId'>) {
  if (run.objectNumber) return run.objectNumber;
  if (run.objectId === null) return '(no object)';
  return `${run.objectType ?? 'object'} ${shortId(run.objectId)}`;
}

/** A value in a diff or a list: strings as they are, anything else as JSON. */
export function showValue(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value;
  return JSON.stringify(value) ?? '';
}
