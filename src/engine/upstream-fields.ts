// The upstream (ServiceNow) side of the object model as the rule checks see it: which columns
// the `raw` record of each unified type has, which of them a rule may write (`update.raw`), the
// choice codes of choice columns, and the tables `lookup` can read. Derived from the Table API's
// table definitions and the unified<->upstream mapping, so a column is declared in one place.
import type { UnifiedType } from '../itsm/fields.js';
import { hasJournals, UPSTREAM_COLUMNS, UPSTREAM_TABLES } from '../servicenow/mapping.js';
import {
  columnOf,
  isCustomColumn,
  SYSTEM_COLUMNS,
  TABLES,
  type TableDef,
} from '../servicenow/tables.js';

/** The table a unified type's `raw` record comes from. */
export function upstreamTableOf(type: UnifiedType): TableDef {
  const table = TABLES.get(UPSTREAM_TABLES[type].table);
  if (!table) throw new Error(`no table definition for ${type}`);
  return table;
}

/** The columns of the type's `raw` record (custom `u_` columns aside). */
export function upstreamColumnsOf(type: UnifiedType): string[] {
  return Object.keys(upstreamTableOf(type).columns);
}

/** Whether the type's `raw` record can hold the column. */
export function hasUpstreamColumn(type: UnifiedType, column: string): boolean {
  return isCustomColumn(column) || columnOf(upstreamTableOf(type), column) !== undefined;
}

/**
 * Why a rule cannot write the column through `update.raw`, or null when it can: the unified
 * model owns mapped columns (they are written through their unified field), the server stamps
 * the system columns, and only task types keep journals.
 */
export function rawWriteProblem(type: UnifiedType, column: string): string | null {
  const mapped = Object.entries(UPSTREAM_COLUMNS[type] as Record<string, string>).find(
    ([, upstream]) => upstream === column,
  );
  if (mapped) {
    return `${column} is the upstream column of the unified field ${mapped[0]}: write ${mapped[0]} (update.${mapped[0]}) instead`;
  }
  if (column === 'number' || Object.hasOwn(SYSTEM_COLUMNS, column)) {
    return `${column} is set by the ITSM API itself and cannot be written`;
  }
  const def = columnOf(upstreamTableOf(type), column);
  if (def?.kind === 'journal' && !hasJournals(type)) {
    return `${column} is a journal, which only incident, problem and change keep`;
  }
  return null;
}

/** The codes a choice column holds (`-5`..`4` for a change's state), or null for other columns. */
export function choiceCodesOf(type: UnifiedType, column: string): string[] | null {
  const def = columnOf(upstreamTableOf(type), column);
  return def?.kind === 'choice' && def.choices ? Object.keys(def.choices) : null;
}

/** The columns of a table `lookup` may read, or null when the table declares none (any column). */
export function lookupColumnsOf(table: string): string[] | null {
  const def = TABLES.get(table);
  return def ? Object.keys(def.columns) : null;
}

/** Why `lookup` cannot read the table, or null when it can. */
export function lookupTableProblem(table: string): string | null {
  const def = TABLES.get(table);
  if (def?.type) {
    return `${table} holds ${def.type} objects, which lookup does not read: it finds records of generic tables such as sys_user_group, sys_user and cmdb_ci`;
  }
  if (def?.readOnly) return `${table} is a view derived by the Table API, not a table lookup reads`;
  return null;
}

/** The generic tables the Table API declares, for suggestions. */
export function declaredGenericTables(): string[] {
  return [...TABLES.values()].filter((t) => t.type === null && !t.readOnly).map((t) => t.name);
}
