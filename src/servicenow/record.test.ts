import { describe, expect, it } from 'vitest';
import {
  type InputOptions,
  isKnownField,
  type PresentOptions,
  presentRecord,
  RecordInputError,
  readField,
  readInput,
  tableDef,
  type UpstreamRecord,
} from './record.js';

const USER = 'a'.repeat(32);
const GROUP = 'b'.repeat(32);
const BASE = 'http://127.0.0.1:8788';
const RECORDS: Record<string, Record<string, UpstreamRecord>> = {
  sys_user: { [USER]: { sys_id: USER, name: 'Vinod Kumar', user_name: 'vinod', manager: '' } },
  sys_user_group: { [GROUP]: { sys_id: GROUP, name: 'Network' } },
};
const lookup = (table: string, sysId: string) => RECORDS[table]?.[sysId];
const incident: UpstreamRecord = {
  sys_id: 'c'.repeat(32),
  number: 'INC0010001',
  impact: '1',
  caller_id: USER,
  assignment_group: '',
};
const options = (overrides: Partial<PresentOptions> = {}): PresentOptions => ({
  baseUrl: BASE,
  display: 'false',
  excludeReferenceLink: false,
  fields: ['impact', 'caller_id', 'assignment_group'],
  ...overrides,
});

describe('presenting a record', () => {
  it.each<[string, Partial<PresentOptions>, Record<string, unknown>]>([
    [
      'values and reference links',
      {},
      {
        impact: '1',
        caller_id: { link: `${BASE}/api/now/table/sys_user/${USER}`, value: USER },
        assignment_group: '',
      },
    ],
    [
      'bare sys_ids without links',
      { excludeReferenceLink: true },
      { impact: '1', caller_id: USER, assignment_group: '' },
    ],
    [
      'display values',
      { display: 'true' },
      {
        impact: '1 - High',
        caller_id: { display_value: 'Vinod Kumar', link: `${BASE}/api/now/table/sys_user/${USER}` },
        assignment_group: '',
      },
    ],
    [
      'display and value pairs',
      { display: 'all', excludeReferenceLink: true },
      {
        impact: { display_value: '1 - High', value: '1' },
        caller_id: { display_value: 'Vinod Kumar', value: USER },
        assignment_group: { display_value: '', value: '' },
      },
    ],
    [
      'dot-walked fields, one level',
      { fields: ['number', 'caller_id.name', 'caller_id.user_name', 'impact.x', 'nope'] },
      { number: 'INC0010001', 'caller_id.name': 'Vinod Kumar', 'caller_id.user_name': 'vinod' },
    ],
  ])('%s', (_name, overrides, expected) => {
    expect(presentRecord(tableDef('incident'), incident, options(overrides), lookup)).toEqual(
      expected,
    );
  });

  it('gives every declared column, "" where the record has no value', () => {
    const out = presentRecord(tableDef('incident'), incident, options({ fields: null }), lookup);
    expect(out).toMatchObject({ number: 'INC0010001', short_description: '', work_notes: '' });
  });
});

describe('reading a write body', () => {
  const input: InputOptions = { inputDisplayValue: false, findByDisplay: () => undefined };
  const byDisplay: InputOptions = {
    inputDisplayValue: true,
    findByDisplay: (table: string, display: string) =>
      table === 'sys_user_group' && display === 'Network' ? GROUP : undefined,
  };

  it.each<[string, Record<string, unknown>, InputOptions, Record<string, string>]>([
    [
      'strings as they are',
      { short_description: 'x', impact: '2' },
      input,
      { short_description: 'x', impact: '2' },
    ],
    [
      'numbers and booleans as strings',
      { escalation: 2, active: false },
      input,
      { escalation: '2', active: 'false' },
    ],
    ['null as empty', { assigned_to: null }, input, { assigned_to: '' }],
    [
      'a reference object by its value',
      { caller_id: { link: 'x', value: USER } },
      input,
      { caller_id: USER },
    ],
    [
      'date-times in UTC',
      { due_date: '2024-05-01T11:30:00+02:00' },
      input,
      { due_date: '2024-05-01 09:30:00' },
    ],
    [
      'system columns ignored',
      { sys_id: 'x', number: 'y', sys_mod_count: '9', category: 'c' },
      input,
      { category: 'c' },
    ],
    ['custom columns', { u_anything: 'x' }, input, { u_anything: 'x' }],
    [
      'choice labels with input display values',
      { impact: 'High', state: 'in progress' },
      byDisplay,
      { impact: '1', state: '2' },
    ],
    [
      'references by display value',
      { assignment_group: 'Network' },
      byDisplay,
      { assignment_group: GROUP },
    ],
  ])('reads %s', (_name, body, opts, expected) => {
    expect(readInput(tableDef('incident'), body, opts)).toEqual(expected);
  });

  it.each<[string, Record<string, unknown>, InputOptions, RegExp]>([
    [
      'an unknown field',
      { nonsense: 'x', other: 1 },
      input,
      /unknown fields nonsense, other in table incident/,
    ],
    [
      'an object value',
      { short_description: { a: 1 } },
      input,
      /short_description must be a string, number, boolean or null/,
    ],
    ['an array value', { category: ['a'] }, input, /category must be a string/],
    [
      'a choice outside its codes',
      { impact: '7' },
      input,
      /impact must be one of 1 \(1 - High\).*sysparm_input_display_value/,
    ],
    ['a label without input display values', { impact: 'High' }, input, /impact must be one of/],
    [
      'a reference that is no sys_id',
      { caller_id: 'vinod' },
      input,
      /caller_id must be the sys_id of a sys_user record/,
    ],
    [
      'an unknown display value',
      { assignment_group: 'Nobody' },
      byDisplay,
      /no sys_user_group record is displayed as "Nobody"/,
    ],
    ['a bad boolean', { active: 'yes' }, input, /active must be "true" or "false"/],
    ['a bad integer', { escalation: '1.5' }, input, /escalation must be a whole number/],
    ['a bad date', { due_date: '2024-13-01' }, input, /due_date must be a date-time/],
    ['__proto__', JSON.parse('{"__proto__": {"x": 1}}'), input, /__proto__/],
  ])('refuses %s', (_name, body, opts, message) => {
    expect(() => readInput(tableDef('incident'), body, opts)).toThrow(RecordInputError);
    expect(() => readInput(tableDef('incident'), body, opts)).toThrow(message);
  });

  it('accepts any column of an undeclared table', () => {
    expect(readInput(tableDef('u_widget'), { colour: 'red' }, input)).toEqual({ colour: 'red' });
  });
});

describe('reading fields for queries', () => {
  it.each([['__proto__'], ['constructor'], ['toString']])(
    'reads %s of a record that lacks it as ""',
    (field) => {
      expect(readField(tableDef('u_widget'), { a: 'x' }, field, lookup)).toBe('');
    },
  );

  it('dot-walks one reference', () => {
    expect(readField(tableDef('incident'), incident, 'caller_id.user_name', lookup)).toBe('vinod');
    expect(readField(tableDef('incident'), incident, 'caller_id.__proto__', lookup)).toBe('');
  });
});

describe('known fields', () => {
  it.each<[string, string, boolean]>([
    ['incident', 'priority', true],
    ['incident', 'caller_id.name', true],
    ['incident', 'caller_id.nope', false],
    ['incident', 'impact.name', false],
    ['incident', 'u_custom', true],
    ['incident', 'nope', false],
    ['u_widget', 'anything', true],
  ])('%s.%s known: %s', (table, field, known) => {
    expect(isKnownField(tableDef(table), field)).toBe(known);
  });
});
