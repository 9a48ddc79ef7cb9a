// Table API records: an upstream record (string values, references as sys_ids, as the unified
// store keeps it in `raw`) presented the way an instance answers (references as {link, value},
// display values, sysparm_fields with one level of dot-walking), and a client's write body read
// back into upstream string values with every bad value named.
import { normalizeIsoDate } from '../itsm/schemas.js';
import {
  type ColumnDef,
  columnOf,
  isCustomColumn,
  isDeclared,
  SYSTEM_COLUMNS,
  TABLES,
  type TableDef,
  undeclaredTable,
} from './tables.js';

export type UpstreamRecord = Readonly<Record<string, string>>;
export type DisplayMode = 'false' | 'true' | 'all';

/** A record of another table by sys_id (for reference display values and dot-walking). */
export type RecordLookup = (table: string, sysId: string) => UpstreamRecord | undefined;

export interface PresentOptions {
  /** `http://127.0.0.1:8788` (no trailing slash): the base of reference links. */
  baseUrl: string;
  display: DisplayMode;
  excludeReferenceLink: boolean;
  /** sysparm_fields; null: every column. */
  fields: readonly string[] | null;
}

/** A record's own value: `__proto__` or `constructor` in a query or field list read as "". */
function own(record: UpstreamRecord | undefined, column: string): string {
  return record && Object.hasOwn(record, column) ? (record[column] ?? '') : '';
}

export function tableDef(name: string): TableDef {
  return TABLES.get(name) ?? undeclaredTable(name);
}

/** The display value of the record `sysId` of `table` (its number, name...), or "". */
export function displayOf(table: string, sysId: string, lookup: RecordLookup): string {
  if (sysId === '') return '';
  return own(lookup(table, sysId), tableDef(table).displayColumn);
}

function presentValue(
  column: ColumnDef | undefined,
  value: string,
  options: PresentOptions,
  lookup: RecordLookup,
): unknown {
  if (column?.kind === 'reference' && column.table) {
    const display = displayOf(column.table, value, lookup);
    const link = `${options.baseUrl}/api/now/table/${column.table}/${value}`;
    if (value === '') return options.display === 'all' ? { display_value: '', value: '' } : '';
    if (options.display === 'false') return options.excludeReferenceLink ? value : { link, value };
    if (options.display === 'true') {
      return options.excludeReferenceLink ? display : { display_value: display, link };
    }
    return options.excludeReferenceLink
      ? { display_value: display, value }
      : { display_value: display, link, value };
  }
  const display = column?.kind === 'choice' ? (column.choices?.[value] ?? value) : value;
  if (options.display === 'false') return value;
  if (options.display === 'true') return display;
  return { display_value: display, value };
}

/** `caller_id.name`: the column of the referenced record, or undefined when it cannot walk. */
function walk(
  table: TableDef,
  record: UpstreamRecord,
  path: string,
  lookup: RecordLookup,
): { column: ColumnDef | undefined; value: string } | undefined {
  const [head = '', tail = ''] = path.split('.');
  const reference = columnOf(table, head);
  if (reference?.kind !== 'reference' || !reference.table) return undefined;
  const target = tableDef(reference.table);
  const value = own(lookup(reference.table, own(record, head)), tail);
  return { column: columnOf(target, tail), value };
}

/** The record as the Table API answers it. */
export function presentRecord(
  table: TableDef,
  record: UpstreamRecord,
  options: PresentOptions,
  lookup: RecordLookup,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (options.fields === null) {
    const names = new Set([...Object.keys(table.columns), ...Object.keys(record)]);
    for (const name of names) {
      out[name] = presentValue(columnOf(table, name), record[name] ?? '', options, lookup);
    }
    return out;
  }
  for (const name of options.fields) {
    if (name.includes('.')) {
      const walked = walk(table, record, name, lookup);
      if (walked) out[name] = presentValue(walked.column, walked.value, options, lookup);
    } else if (Object.hasOwn(record, name) || columnOf(table, name)) {
      out[name] = presentValue(columnOf(table, name), record[name] ?? '', options, lookup);
    }
  }
  return out;
}

/** A read of one field for queries: dot-walks one level, like sysparm_fields. */
export function readField(
  table: TableDef,
  record: UpstreamRecord,
  field: string,
  lookup: RecordLookup,
): string {
  if (!field.includes('.')) return own(record, field);
  return walk(table, record, field, lookup)?.value ?? '';
}

/** Whether a query or sysparm_fields may name this field on the table. */
export function isKnownField(table: TableDef, field: string): boolean {
  if (!isDeclared(table)) return true;
  const [head = '', tail] = field.split('.');
  const column = columnOf(table, head);
  if (!column && !isCustomColumn(head)) return false;
  if (tail === undefined) return true;
  return column?.kind === 'reference' && column.table !== undefined
    ? isKnownField(tableDef(column.table), tail)
    : false;
}

/** A write body that cannot be stored; `problems` name each field and what it must be. */
export class RecordInputError extends Error {
  readonly code = 'SN_INPUT_INVALID';
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'RecordInputError';
  }
}

export interface InputOptions {
  /** sysparm_input_display_value: choices by label, references by display value. */
  inputDisplayValue: boolean;
  /** The sys_id of the record of `table` whose display value is `display`, or undefined. */
  findByDisplay: (table: string, display: string) => string | undefined;
}

const SYS_ID = /^[0-9a-f]{32}$/;

function toText(value: unknown): string | undefined {
  if (value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'boolean') return String(value);
  // A reference sent back as the Table API gave it: {"link": ..., "value": sys_id}.
  if (typeof value === 'object' && !Array.isArray(value)) {
    const inner = (value as Record<string, unknown>).value;
    if (typeof inner === 'string') return inner;
  }
  return undefined;
}

function toUpstreamDateTime(value: string): string | undefined {
  const iso = normalizeIsoDate(value);
  return iso === null ? undefined : iso.replace('T', ' ').replace(/Z$/, '');
}

function readValue(
  name: string,
  column: ColumnDef | undefined,
  text: string,
  options: InputOptions,
): { value: string } | { problem: string } {
  if (text === '' || !column) return { value: text };
  switch (column.kind) {
    case 'boolean':
      if (text === 'true' || text === '1') return { value: 'true' };
      if (text === 'false' || text === '0') return { value: 'false' };
      return { problem: `${name} must be "true" or "false", got ${JSON.stringify(text)}` };
    case 'integer':
      return /^-?\d{1,15}$/.test(text)
        ? { value: text }
        : { problem: `${name} must be a whole number, got ${JSON.stringify(text)}` };
    case 'datetime': {
      const value = toUpstreamDateTime(text);
      return value
        ? { value }
        : {
            problem: `${name} must be a date-time such as 2024-05-01 09:30:00 (UTC), got ${JSON.stringify(text)}`,
          };
    }
    case 'choice': {
      const choices = column.choices ?? {};
      if (Object.hasOwn(choices, text)) return { value: text };
      if (options.inputDisplayValue) {
        // Labels such as "1 - High" are also matched without their code ("High").
        const wanted = text.toLowerCase();
        const code = Object.keys(choices).find((key) => {
          const label = (choices[key] ?? '').toLowerCase();
          return label === wanted || label.replace(/^-?\d+ - /, '') === wanted;
        });
        if (code !== undefined) return { value: code };
      }
      const list = Object.entries(choices)
        .map(([code, label]) => `${code} (${label})`)
        .join(', ');
      return {
        problem: `${name} must be one of ${list}, got ${JSON.stringify(text)}${options.inputDisplayValue ? '' : '; to write labels, add sysparm_input_display_value=true'}`,
      };
    }
    case 'reference': {
      if (SYS_ID.test(text)) return { value: text };
      if (options.inputDisplayValue && column.table) {
        const sysId = options.findByDisplay(column.table, text);
        if (sysId) return { value: sysId };
        return {
          problem: `${name}: no ${column.table} record is displayed as ${JSON.stringify(text)}`,
        };
      }
      return {
        problem: `${name} must be the sys_id of a ${column.table} record (32 hex digits), got ${JSON.stringify(text)}; to write display values, add sysparm_input_display_value=true`,
      };
    }
    default:
      return { value: text };
  }
}

/**
 * A client's write body as upstream string values. System columns are ignored (the server keeps
 * them, as an instance does); unknown columns of a declared table, wrong JSON types and values a
 * column cannot hold are collected into one RecordInputError.
 */
export function readInput(
  table: TableDef,
  body: Record<string, unknown>,
  options: InputOptions,
): Record<string, string> {
  const problems: string[] = [];
  const unknown: string[] = [];
  const record: Record<string, string> = {};
  for (const [name, raw] of Object.entries(body)) {
    if (Object.hasOwn(SYSTEM_COLUMNS, name) || name === 'number') continue;
    if (name === '__proto__') {
      problems.push('a record may not have a __proto__ field');
      continue;
    }
    const column = columnOf(table, name);
    if (!column && isDeclared(table) && !isCustomColumn(name)) {
      unknown.push(name);
      continue;
    }
    const text = toText(raw);
    if (text === undefined) {
      problems.push(
        `${name} must be a string, number, boolean or null, got ${JSON.stringify(raw)}`,
      );
      continue;
    }
    const read = readValue(name, column, text, options);
    if ('problem' in read) problems.push(read.problem);
    else record[name] = read.value;
  }
  if (unknown.length > 0) {
    problems.unshift(
      `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} in table ${table.name}; custom columns start with u_`,
    );
  }
  if (problems.length > 0) throw new RecordInputError(problems);
  return record;
}
