import { describe, expect, it } from 'vitest';
import { UNIFIED_TYPES } from '../itsm/fields.js';
import {
  derivePriority,
  MappingError,
  type ReferenceResolver,
  toUnifiedValue,
  toUpstreamValue,
  UPSTREAM_COLUMNS,
  UPSTREAM_TABLES,
} from './mapping.js';
import { columnOf, TABLES } from './tables.js';

const resolve: ReferenceResolver = {
  user: (sysId) => `u-${sysId}`,
  reference: (_field, sysId) => (sysId === 'd'.repeat(32) ? 'Fproblem' : null),
};

describe('priority from impact and urgency', () => {
  it.each([
    ['1', '1', '1'],
    ['1', '2', '2'],
    ['2', '1', '2'],
    ['1', '3', '3'],
    ['2', '2', '3'],
    ['3', '1', '3'],
    ['2', '3', '4'],
    ['3', '2', '4'],
    ['3', '3', '5'],
    ['', '1', null],
    ['4', '1', null],
  ])('impact %s, urgency %s -> %s', (impact, urgency, priority) => {
    expect(derivePriority(impact, urgency)).toBe(priority);
  });
});

describe('upstream values to unified values', () => {
  it.each<[string, string, string, unknown]>([
    ['impact', 'impact', '1', 'high'],
    ['urgency', 'urgency', '3', 'low'],
    ['priority', 'priority', '1', 'critical'],
    ['priority', 'priority', '5', 'low'],
    ['requester', 'caller_id', 'a'.repeat(32), `u-${'a'.repeat(32)}`],
    ['problem', 'problem_id', 'd'.repeat(32), 'Fproblem'],
    ['active', 'active', 'false', false],
    ['escalation', 'escalation', '2', 2],
    ['status', 'state', '2', 2],
    ['due_date', 'due_date', '2024-05-01 09:30:00', '2024-05-01T09:30:00Z'],
    ['description', 'description', '', ''],
    ['impact', 'impact', '', null],
  ])('incident %s from %s=%j', (field, column, value, expected) => {
    expect(toUnifiedValue('incident', field, column, value, resolve)).toEqual(expected);
  });

  it.each<[string, string, string, RegExp]>([
    ['impact', 'impact', '9', /impact must be 1 \(high\), 2 \(medium\) or 3 \(low\)/],
    ['problem', 'problem_id', 'e'.repeat(32), /problem_id: no problem record with sys_id/],
    ['escalation', 'escalation', '-1', /escalation must be a whole number >= 0/],
  ])('refuses incident %s from %s=%j', (field, column, value, message) => {
    expect(() => toUnifiedValue('incident', field, column, value, resolve)).toThrow(MappingError);
    expect(() => toUnifiedValue('incident', field, column, value, resolve)).toThrow(message);
  });
});

describe('a change risk', () => {
  it.each([
    ['1', 'very high'],
    ['2', 'high'],
    ['3', 'moderate'],
    ['4', 'low'],
  ])('reads change_request.risk %s as %s, and writes it back as %s', (code, word) => {
    expect(toUnifiedValue('change', 'risk', 'risk', code, resolve)).toBe(word);
    expect(toUpstreamValue('risk', word, new Map())).toBe(code);
  });

  it.each(['0', '5', 'Moderate', 'moderate'])(
    'refuses change_request.risk %j, naming the codes it knows',
    (code) => {
      expect(() => toUnifiedValue('change', 'risk', 'risk', code, resolve)).toThrow(
        /risk must be 1 \(very high\), 2 \(high\), 3 \(moderate\) or 4 \(low\)/,
      );
    },
  );

  it('declares the same four codes in the Table API face as the mapping writes', () => {
    const column = columnOf(
      TABLES.get('change_request') as NonNullable<ReturnType<typeof TABLES.get>>,
      'risk',
    );
    expect(Object.keys(column?.choices ?? {}).sort()).toEqual(['1', '2', '3', '4']);
  });
});

describe('table definitions', () => {
  it.each(UNIFIED_TYPES.map((type) => [type]))(
    'declares every mapped column of %s in its table',
    (type) => {
      const table = TABLES.get(UPSTREAM_TABLES[type].table);
      expect(table?.type).toBe(type);
      const missing = Object.values(UPSTREAM_COLUMNS[type] as Record<string, string>).filter(
        (column) => table && !columnOf(table, column),
      );
      expect(missing).toEqual([]);
    },
  );
});
