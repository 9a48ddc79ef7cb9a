// The value mapping between the unified model and ServiceNow tables: which table and number
// prefix each unified type lives in, which column holds each unified field, the codes of levels,
// priorities and risks, and the reverse step a Table API write needs (upstream string value -> unified
// field value). Pure data and functions: the embedded server's `raw` records and its Table API
// face both read this one table, so a column is mapped in exactly one place.
import { type FieldKind, TYPE_FIELDS, type UnifiedType } from '../itsm/fields.js';
import { normalizeIsoDate } from '../itsm/schemas.js';
import { userIdToSysId } from './user-id.js';

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

export const LEVEL_CODES: Record<string, string> = { high: '1', medium: '2', low: '3' };
export const PRIORITY_CODES: Record<string, string> = {
  critical: '1',
  high: '2',
  medium: '3',
  low: '4',
};
/** change_request.risk: 1 Very High, 2 High, 3 Moderate, 4 Low. */
export const RISK_CODES: Record<string, string> = {
  'very high': '1',
  high: '2',
  moderate: '3',
  low: '4',
};
const RISK_BY_CODE: Record<string, string> = Object.fromEntries(
  Object.entries(RISK_CODES).map(([word, code]) => [code, word]),
);
const LEVEL_BY_CODE: Record<string, string> = { '1': 'high', '2': 'medium', '3': 'low' };
// ServiceNow's 5 (planning) has no unified twin: it reads as low, like 4.
const PRIORITY_BY_CODE: Record<string, string> = {
  '1': 'critical',
  '2': 'high',
  '3': 'medium',
  '4': 'low',
  '5': 'low',
};

/** `2017-11-27T09:01:33Z` -> `2017-11-27 09:01:33`, as ServiceNow stores date-times. */
export function toUpstreamDate(iso: string): string {
  return iso.replace('T', ' ').replace(/Z$/, '');
}

/** A unified field value as the upstream string; `referenceSysIds` maps object ids to sys_ids. */
export function toUpstreamValue(
  kind: FieldKind,
  value: unknown,
  referenceSysIds: ReadonlyMap<string, string>,
): string {
  switch (kind) {
    case 'level':
      return LEVEL_CODES[String(value)] ?? String(value);
    case 'priority':
      return PRIORITY_CODES[String(value)] ?? String(value);
    case 'risk':
      return RISK_CODES[String(value)] ?? String(value);
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

/** Upstream columns the server stamps on every write; no client sets them on either face. */
export const STAMPED_COLUMNS = ['sys_created_by', 'sys_updated_by', 'sys_mod_count'] as const;

/** Columns the instance keeps itself (identity, numbering, stamps): no write sets them. */
export const SYSTEM_COLUMNS = [
  'sys_id',
  'number',
  'sys_created_on',
  'sys_updated_on',
  'sys_class_name',
  ...STAMPED_COLUMNS,
] as const;

/** Task tables keep `work_notes` and `comments` as journals: a write appends an entry. */
export const JOURNAL_COLUMNS = ['work_notes', 'comments'] as const;
export type JournalColumn = (typeof JOURNAL_COLUMNS)[number];

export function hasJournals(type: UnifiedType): boolean {
  return type === 'incident' || type === 'problem' || type === 'change';
}

/**
 * ServiceNow's priority lookup from impact and urgency codes (1 high .. 3 low): 1/1 -> 1;
 * 1/2, 2/1 -> 2; 1/3, 2/2, 3/1 -> 3; 2/3, 3/2 -> 4; 3/3 -> 5. Null when either is missing.
 */
export function derivePriority(impact: string, urgency: string): string | null {
  const i = Number(impact);
  const u = Number(urgency);
  if (![1, 2, 3].includes(i) || ![1, 2, 3].includes(u)) return null;
  return String(i + u - 1);
}

/** The unified field a column of the type's table holds, or undefined. */
export function unifiedFieldOf(type: UnifiedType, column: string): string | undefined {
  const columns = UPSTREAM_COLUMNS[type] as Record<string, string>;
  for (const [field, mapped] of Object.entries(columns)) if (mapped === column) return field;
  return undefined;
}

/** A Table API value that has no unified twin: names the column and what it must be. */
export class MappingError extends Error {
  readonly code = 'SN_MAPPING_INVALID';
  constructor(
    readonly column: string,
    message: string,
  ) {
    super(message);
    this.name = 'MappingError';
  }
}

export interface ReferenceResolver {
  /** The unified user id of a sys_user sys_id. */
  user(sysId: string): string;
  /** The unified id of the incident/problem/change with this sys_id, or null. */
  reference(field: string, sysId: string): string | null;
}

/**
 * One upstream string value as the unified field's write value (null clears it). Throws a
 * MappingError when the value has no unified meaning (an impact of 7, a date that is no date).
 */
export function toUnifiedValue(
  type: UnifiedType,
  field: string,
  column: string,
  value: string,
  resolve: ReferenceResolver,
): unknown {
  const kind = (TYPE_FIELDS[type] as Record<string, FieldKind>)[field];
  if (value === '') return kind === 'string' ? '' : null;
  switch (kind) {
    case 'level': {
      const level = LEVEL_BY_CODE[value];
      if (!level)
        throw new MappingError(
          column,
          `${column} must be 1 (high), 2 (medium) or 3 (low), got ${JSON.stringify(value)}`,
        );
      return level;
    }
    case 'priority': {
      const priority = PRIORITY_BY_CODE[value];
      if (!priority)
        throw new MappingError(
          column,
          `${column} must be 1 (critical) to 5 (planning), got ${JSON.stringify(value)}`,
        );
      return priority;
    }
    case 'risk': {
      const risk = RISK_BY_CODE[value];
      if (!risk)
        throw new MappingError(
          column,
          `${column} must be 1 (very high), 2 (high), 3 (moderate) or 4 (low), got ${JSON.stringify(value)}`,
        );
      return risk;
    }
    case 'user':
      return resolve.user(value);
    case 'reference': {
      const id = resolve.reference(field, value);
      if (id === null) {
        const table = UPSTREAM_TABLES[field as UnifiedType]?.table ?? field;
        throw new MappingError(
          column,
          `${column}: no ${table} record with sys_id ${JSON.stringify(value)}`,
        );
      }
      return id;
    }
    case 'boolean':
      if (value === 'true' || value === '1') return true;
      if (value === 'false' || value === '0') return false;
      throw new MappingError(
        column,
        `${column} must be true or false, got ${JSON.stringify(value)}`,
      );
    case 'count':
      if (!/^\d{1,15}$/.test(value))
        throw new MappingError(
          column,
          `${column} must be a whole number >= 0, got ${JSON.stringify(value)}`,
        );
      return Number(value);
    case 'number':
      if (!/^-?\d+(\.\d+)?$/.test(value))
        throw new MappingError(column, `${column} must be a number, got ${JSON.stringify(value)}`);
      return Number(value);
    case 'date': {
      const iso = normalizeIsoDate(value);
      if (iso === null)
        throw new MappingError(
          column,
          `${column} must be a date-time such as 2024-05-01 09:30:00, got ${JSON.stringify(value)}`,
        );
      return iso;
    }
    case 'status':
      return /^-?\d{1,9}$/.test(value) ? Number(value) : value;
    default:
      return value;
  }
}

/** One journal entry, newest first in the record's journal column (`sys_journal_field` row). */
export interface JournalEntry {
  sys_id: string;
  value: string;
  sys_created_on: string;
  sys_created_by: string;
}

const JOURNAL_LABELS: Record<JournalColumn, string> = {
  work_notes: 'Work notes',
  comments: 'Additional comments',
};

export function isJournalEntries(value: unknown): value is JournalEntry[] {
  return (
    Array.isArray(value) &&
    value.every((e) => e !== null && typeof e === 'object' && typeof e.value === 'string')
  );
}

/**
 * A journal column as an instance reads it back: its entries, newest first, each headed by
 * when and by whom (`2024-05-01 09:30:00 - vinod (Work notes)`).
 */
export function renderJournal(column: JournalColumn, entries: readonly JournalEntry[]): string {
  return entries
    .map(
      (e) =>
        `${e.sys_created_on} - ${e.sys_created_by} (${JOURNAL_LABELS[column]})\n${e.value}\n\n`,
    )
    .join('');
}
