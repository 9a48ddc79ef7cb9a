// The tables the Table API face knows: each table's name, the unified type it holds (or the
// generic-object store), its number prefix, and its columns with their kind (string, choice,
// reference to a table, journal, boolean, integer, datetime) and choice labels for display
// values. Tables not listed here are served from the generic-object store as they were written;
// `sys_audit_delete` and `sys_journal_field` are read-only views the face derives.
import type { UnifiedType } from '../itsm/fields.js';
import { UPSTREAM_TABLES } from './mapping.js';

export type ColumnKind =
  | 'string'
  | 'choice'
  | 'reference'
  | 'journal'
  | 'boolean'
  | 'integer'
  | 'datetime';

export interface ColumnDef {
  kind: ColumnKind;
  /** reference: the table it points to. */
  table?: string;
  /** choice: code -> label (the display value). */
  choices?: Readonly<Record<string, string>>;
}

export interface TableDef {
  name: string;
  /** The unified type whose objects are this table's records, or null (generic objects). */
  type: UnifiedType | null;
  /** `INC` for incident; null when the table's records carry no number. */
  prefix: string | null;
  /** The column a reference to this table shows as its display value. */
  displayColumn: string;
  columns: Readonly<Record<string, ColumnDef>>;
  /** Derived views (audit of deletes, journal entries): no writes. */
  readOnly: boolean;
}

const string: ColumnDef = { kind: 'string' };
const boolean: ColumnDef = { kind: 'boolean' };
const integer: ColumnDef = { kind: 'integer' };
const datetime: ColumnDef = { kind: 'datetime' };
const journal: ColumnDef = { kind: 'journal' };
const ref = (table: string): ColumnDef => ({ kind: 'reference', table });
const choice = (choices: Record<string, string>): ColumnDef => ({ kind: 'choice', choices });

/** Columns ServiceNow keeps on every record; the server maintains them, writes ignore them. */
export const SYSTEM_COLUMNS: Readonly<Record<string, ColumnDef>> = {
  sys_id: string,
  sys_class_name: string,
  sys_created_on: datetime,
  sys_created_by: string,
  sys_updated_on: datetime,
  sys_updated_by: string,
  sys_mod_count: integer,
};

const LEVEL = choice({ '1': '1 - High', '2': '2 - Medium', '3': '3 - Low' });
const PRIORITY = choice({
  '1': '1 - Critical',
  '2': '2 - High',
  '3': '3 - Moderate',
  '4': '4 - Low',
  '5': '5 - Planning',
});

const TASK_COLUMNS: Record<string, ColumnDef> = {
  number: string,
  short_description: string,
  description: string,
  u_responder: ref('sys_user'),
  active: boolean,
  assigned_to: ref('sys_user'),
  assignment_group: ref('sys_user_group'),
  cmdb_ci: ref('cmdb_ci'),
  category: string,
  escalation: integer,
  impact: LEVEL,
  urgency: LEVEL,
  priority: PRIORITY,
  opened_at: datetime,
  opened_by: ref('sys_user'),
  due_date: datetime,
  work_notes: journal,
  comments: journal,
};

const UNIFIED_TABLES: Record<UnifiedType, Record<string, ColumnDef>> = {
  incident: {
    ...TASK_COLUMNS,
    caller_id: ref('sys_user'),
    state: choice({
      '1': 'New',
      '2': 'In Progress',
      '3': 'On Hold',
      '6': 'Resolved',
      '7': 'Closed',
      '8': 'Canceled',
    }),
    problem_id: ref('problem'),
    rfc: ref('change_request'),
  },
  problem: {
    ...TASK_COLUMNS,
    opened_by: ref('sys_user'),
    state: choice({
      '101': 'New',
      '102': 'Assess',
      '103': 'Root Cause Analysis',
      '104': 'Fix in Progress',
      '106': 'Resolved',
      '107': 'Closed',
    }),
    rfc: ref('change_request'),
    u_incident: ref('incident'),
  },
  change: {
    ...TASK_COLUMNS,
    requested_by: ref('sys_user'),
    state: choice({
      '-5': 'New',
      '-4': 'Assess',
      '-3': 'Authorize',
      '-2': 'Scheduled',
      '-1': 'Implement',
      '0': 'Review',
      '3': 'Closed',
      '4': 'Canceled',
    }),
    approval: choice({
      'not requested': 'Not Yet Requested',
      requested: 'Requested',
      approved: 'Approved',
      rejected: 'Rejected',
    }),
    risk: choice({ '1': 'Very High', '2': 'High', '3': 'Moderate', '4': 'Low' }),
    type: string,
    start_date: datetime,
    end_date: datetime,
    u_problem: ref('problem'),
    u_incident: ref('incident'),
  },
  article: {
    number: string,
    short_description: string,
    text: string,
    topic: string,
    kb_category: string,
    rating: string,
    roles: string,
    author: ref('sys_user'),
    active: boolean,
    workflow_state: choice({ draft: 'Draft', published: 'Published', retired: 'Retired' }),
  },
  asset: {
    display_name: string,
    model: string,
    quantity: integer,
    department: string,
    assigned_to: ref('sys_user'),
    active: boolean,
    comments: string,
    asset_tag: string,
    serial_number: string,
  },
};

const DISPLAY_COLUMNS: Record<UnifiedType, string> = {
  incident: 'number',
  problem: 'number',
  change: 'number',
  article: 'number',
  asset: 'display_name',
};

const GENERIC_TABLES: Record<
  string,
  { displayColumn: string; columns: Record<string, ColumnDef> }
> = {
  sys_user: {
    displayColumn: 'name',
    columns: {
      user_name: string,
      first_name: string,
      last_name: string,
      name: string,
      email: string,
      title: string,
      department: string,
      manager: ref('sys_user'),
      active: boolean,
    },
  },
  sys_user_group: {
    displayColumn: 'name',
    columns: {
      name: string,
      description: string,
      email: string,
      manager: ref('sys_user'),
      active: boolean,
    },
  },
  cmdb_ci: {
    displayColumn: 'name',
    columns: {
      name: string,
      short_description: string,
      serial_number: string,
      ip_address: string,
      assigned_to: ref('sys_user'),
      support_group: ref('sys_user_group'),
      operational_status: choice({
        '1': 'Operational',
        '2': 'Non-Operational',
        '3': 'Repair in Progress',
        '6': 'Retired',
      }),
    },
  },
};

export const AUDIT_DELETE_TABLE = 'sys_audit_delete';
export const JOURNAL_TABLE = 'sys_journal_field';

const VIEW_TABLES: Record<string, { displayColumn: string; columns: Record<string, ColumnDef> }> = {
  [AUDIT_DELETE_TABLE]: {
    displayColumn: 'documentkey',
    columns: { tablename: string, documentkey: string, display_value: string },
  },
  [JOURNAL_TABLE]: {
    displayColumn: 'value',
    columns: { element_id: string, name: string, element: string, value: string },
  },
};

function define(
  name: string,
  type: UnifiedType | null,
  displayColumn: string,
  columns: Record<string, ColumnDef>,
  readOnly: boolean,
): TableDef {
  return {
    name,
    type,
    prefix: type ? UPSTREAM_TABLES[type].prefix : null,
    displayColumn,
    columns: { ...columns, ...SYSTEM_COLUMNS },
    readOnly,
  };
}

export const TABLES: ReadonlyMap<string, TableDef> = new Map([
  ...(Object.keys(UNIFIED_TABLES) as UnifiedType[]).map((type): [string, TableDef] => {
    const name = UPSTREAM_TABLES[type].table;
    return [name, define(name, type, DISPLAY_COLUMNS[type], UNIFIED_TABLES[type], false)];
  }),
  ...Object.entries(GENERIC_TABLES).map(([name, t]): [string, TableDef] => [
    name,
    define(name, null, t.displayColumn, t.columns, false),
  ]),
  ...Object.entries(VIEW_TABLES).map(([name, t]): [string, TableDef] => [
    name,
    define(name, null, t.displayColumn, t.columns, true),
  ]),
]);

const TABLE_NAME = /^[a-z][a-z0-9_]{0,79}$/;

/** Whether a name can be a table at all (lower-case letters, digits, underscores). */
export function isTableName(name: string): boolean {
  return TABLE_NAME.test(name);
}

/**
 * The definition of a table not listed in TABLES: a generic-object table whose columns are
 * whatever its records hold (any column may be written, since none is declared).
 */
export function undeclaredTable(name: string): TableDef {
  return define(name, null, 'sys_id', {}, false);
}

/** The column definition, or undefined when the table does not declare it. */
export function columnOf(table: TableDef, column: string): ColumnDef | undefined {
  return Object.hasOwn(table.columns, column) ? table.columns[column] : undefined;
}

/** A table declared here, or one with no declared columns (served as written). */
export function isDeclared(table: TableDef): boolean {
  return TABLES.get(table.name) === table;
}

/** Custom columns (`u_...`) are accepted on every table, as instances add them freely. */
export function isCustomColumn(column: string): boolean {
  return /^u_[a-z0-9_]+$/.test(column);
}
