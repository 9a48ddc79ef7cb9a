// The ServiceNow-shaped `raw` record of each unified object: table columns, string values, codes
// instead of labels (impact/urgency 1 high .. 3 low; priority 1 critical .. 4 low), sys_ids for
// users and references, `YYYY-MM-DD HH:MM:SS` dates. Returned only on `X-Kloudless-Raw-Data: true`.
import { type FieldKind, TYPE_FIELDS, type UnifiedType } from '../itsm/fields.js';
import type { StoredObject } from '../storage/port.js';
import { userIdToSysId } from './users.js';

export const UPSTREAM_TABLES: Record<UnifiedType, { table: string; prefix: string }> = {
  incident: { table: 'incident', prefix: 'INC' },
  problem: { table: 'problem', prefix: 'PRB' },
  change: { table: 'change_request', prefix: 'CHG' },
  article: { table: 'kb_knowledge', prefix: 'KB' },
  asset: { table: 'alm_asset', prefix: 'AST' },
};

const TASK_COLUMNS = {
  requester: 'opened_by',
  responder: 'u_responder',
  active: 'active',
  assignee: 'assigned_to',
  category: 'category',
  escalation: 'escalation',
  impact: 'impact',
  priority: 'priority',
  status: 'state',
  urgency: 'urgency',
  description: 'description',
};

/** Unified field -> upstream column, per type. */
export const UPSTREAM_COLUMNS: {
  [T in UnifiedType]: Record<keyof (typeof TYPE_FIELDS)[T], string>;
} = {
  incident: {
    ...TASK_COLUMNS,
    requester: 'caller_id',
    change: 'rfc',
    problem: 'problem_id',
    due_date: 'due_date',
  },
  problem: { ...TASK_COLUMNS, change: 'rfc', incident: 'u_incident', due_date: 'due_date' },
  change: {
    ...TASK_COLUMNS,
    requester: 'requested_by',
    problem: 'u_problem',
    incident: 'u_incident',
    start_date: 'start_date',
    end_date: 'end_date',
    risk: 'risk',
  },
  article: {
    author: 'author',
    active: 'active',
    category: 'kb_category',
    rating: 'rating',
    roles: 'roles',
    topic: 'topic',
    text: 'text',
    description: 'short_description',
  },
  asset: {
    active: 'active',
    assignee: 'assigned_to',
    department: 'department',
    model: 'model',
    name: 'display_name',
    quantity: 'quantity',
    description: 'comments',
  },
};

const LEVEL_CODES: Record<string, string> = { high: '1', medium: '2', low: '3' };
const PRIORITY_CODES: Record<string, string> = { critical: '1', high: '2', medium: '3', low: '4' };

/** Columns the unified model owns: a `raw.object` write may not set them. */
export function mappedColumns(type: UnifiedType): Set<string> {
  return new Set([
    ...Object.values(UPSTREAM_COLUMNS[type] as Record<string, string>),
    'sys_id',
    'number',
    'sys_created_on',
    'sys_updated_on',
    'sys_class_name',
  ]);
}

/** `2017-11-27T09:01:33Z` -> `2017-11-27 09:01:33`, as ServiceNow stores date-times. */
export function toUpstreamDate(iso: string): string {
  return iso.replace('T', ' ').replace(/Z$/, '');
}

function toUpstreamValue(
  kind: FieldKind,
  value: unknown,
  referenceSysIds: ReadonlyMap<string, string>,
): string {
  switch (kind) {
    case 'level':
      return LEVEL_CODES[String(value)] ?? String(value);
    case 'priority':
      return PRIORITY_CODES[String(value)] ?? String(value);
    case 'user':
      return userIdToSysId(String(value)) ?? String(value);
    case 'reference':
      return referenceSysIds.get(String(value)) ?? '';
    case 'date':
      return toUpstreamDate(String(value));
    default:
      return String(value);
  }
}

/** The upstream record of a unified object. `referenceSysIds` maps referenced ids to sys_ids. */
export function toRawRecord(
  object: StoredObject & { type: UnifiedType },
  referenceSysIds: ReadonlyMap<string, string>,
): Record<string, string> {
  const type = object.type;
  const kinds: Record<string, FieldKind> = TYPE_FIELDS[type];
  const columns = UPSTREAM_COLUMNS[type] as Record<string, string>;
  const raw: Record<string, string> = {};
  for (const [key, value] of Object.entries(object.extra)) {
    raw[key] = typeof value === 'string' ? value : JSON.stringify(value);
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
