// The ServiceNow-shaped `raw` record of each unified object: table columns, string values, codes
// instead of labels (impact/urgency 1 high .. 3 low; priority 1 critical .. 4 low), sys_ids for
// users and references, `YYYY-MM-DD HH:MM:SS` dates. Returned only on `X-Kloudless-Raw-Data: true`.
import { type FieldKind, TYPE_FIELDS, type UnifiedType } from '../itsm/fields.js';
import {
  isJournalEntries,
  JOURNAL_COLUMNS,
  type JournalColumn,
  renderJournal,
  SYSTEM_COLUMNS,
  toUpstreamDate,
  toUpstreamValue,
  UPSTREAM_COLUMNS,
  UPSTREAM_TABLES,
} from '../servicenow/mapping.js';
import type { StoredObject } from '../storage/port.js';

export { toUpstreamDate, UPSTREAM_COLUMNS, UPSTREAM_TABLES } from '../servicenow/mapping.js';

/** Columns the unified model owns: a `raw.object` write may not set them. */
export function mappedColumns(type: UnifiedType): Set<string> {
  return new Set([
    ...Object.values(UPSTREAM_COLUMNS[type] as Record<string, string>),
    ...SYSTEM_COLUMNS,
  ]);
}

/** The upstream record of a unified object. `referenceSysIds` maps referenced ids to sys_ids. */
export function toRawRecord(
  object: StoredObject & { type: UnifiedType },
  referenceSysIds: ReadonlyMap<string, string>,
): Record<string, string> {
  // A remote system of record's own record is shown as it came.
  if (object.upstreamRecord) return { ...object.upstreamRecord };
  const type = object.type;
  const kinds: Record<string, FieldKind> = TYPE_FIELDS[type];
  const columns = UPSTREAM_COLUMNS[type] as Record<string, string>;
  const raw: Record<string, string> = {};
  for (const [key, value] of Object.entries(object.extra)) {
    if ((JOURNAL_COLUMNS as readonly string[]).includes(key) && isJournalEntries(value)) {
      raw[key] = renderJournal(key as JournalColumn, value);
    } else {
      raw[key] = typeof value === 'string' ? value : JSON.stringify(value);
    }
  }
  for (const [field, kind] of Object.entries(kinds)) {
    const column = columns[field];
    if (!column) continue;
    const value = object.fields[field];
    raw[column] =
      value === undefined || value === null ? '' : toUpstreamValue(kind, value, referenceSysIds);
  }
  raw.sys_id = object.upstreamId;
  raw.number = object.number ?? '';
  raw.sys_class_name = UPSTREAM_TABLES[type].table;
  raw.sys_created_on = toUpstreamDate(object.created);
  raw.sys_updated_on = toUpstreamDate(object.modified);
  return raw;
}
