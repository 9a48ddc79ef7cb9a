import { describe, expect, it } from 'vitest';
import {
  EncodedQueryError,
  matchesQuery,
  orderRecords,
  parseEncodedQuery,
  queryFields,
} from './encoded-query.js';

const RECORD: Record<string, string> = {
  number: 'INC0010001',
  short_description: 'Mail server is DOWN',
  priority: '2',
  impact: '1',
  urgency: '1',
  state: '2',
  active: 'true',
  assigned_to: '',
  sys_mod_count: '10',
  sys_created_on: '2024-05-01 09:30:00',
  caller_id: 'a'.repeat(32),
  opened_by: 'a'.repeat(32),
  note: 'x^y',
};
const read = (field: string) => RECORD[field] ?? '';

describe('encoded query evaluation', () => {
  it.each<[string, boolean]>([
    ['', true],
    ['priority=2', true],
    ['priority=3', false],
    ['priority!=3', true],
    ['priority<3', true],
    ['priority<=2', true],
    ['priority>2', false],
    ['priority>=2', true],
    ['sys_mod_count>9', true],
    ['sys_mod_count<9', false],
    ['priorityIN1,2', true],
    ['priorityIN3,4', false],
    ['priorityNOT IN3,4', true],
    ['short_descriptionLIKEmail', true],
    ['short_descriptionLIKEdown', true],
    ['short_descriptionNOT LIKEmail', false],
    ['short_descriptionSTARTSWITHmail', true],
    ['short_descriptionENDSWITHdown', true],
    ['assigned_toISEMPTY', true],
    ['assigned_toISNOTEMPTY', false],
    ['missingISEMPTY', true],
    ['assigned_toANYTHING', true],
    ['priorityBETWEEN1@3', true],
    ['priorityBETWEEN3@5', false],
    ['assigned_to<1', false],
    ['caller_idSAMEASopened_by', true],
    ['caller_idNSAMEASopened_by', false],
    ['sys_created_on>=2024-05-01 00:00:00', true],
    ['sys_created_on<2024-05-01 09:30:00', false],
    ['sys_created_on>2024-04-30', true],
    ["sys_created_on>=javascript:gs.dateGenerate('2024-05-01','09:30:00')", true],
    ["sys_created_on>javascript:gs.dateGenerate('2024-05-01','09:30:00')", false],
    ['priority=1^ORpriority=2', true],
    ['priority=1^ORpriority=3', false],
    ['active=true^priority=1', false],
    ['active=true^priority=1^ORpriority=2', true],
    ['priority=1^NQpriority=2', true],
    ['priority=1^NQpriority=3', false],
    ['priority=1^NQactive=true^state=2', true],
    ['note=x^^y', true],
    ['priority=2^EQ', true],
    ['priority=2^ORDERBYnumber', true],
  ])('%s matches: %s', (query, expected) => {
    expect(matchesQuery(parseEncodedQuery(query), read)).toBe(expected);
  });
});

describe('encoded query errors', () => {
  it.each<[string, RegExp]>([
    ['priority', /no operator after the field priority/],
    ['priority~2', /no operator after the field priority/],
    ['=2', /does not start with a field name/],
    ['Priority=2', /does not start with a field name/],
    ['^ORpriority=2', /needs a condition before it/],
    ['assigned_toISEMPTYx', /ISEMPTY takes no value/],
    ['priorityBETWEEN1', /BETWEEN takes two values joined by @/],
    ['ORDERBY', /followed by a field name/],
    ['ORDERBYDESCa b', /followed by a field name/],
    ['sys_created_on>javascript:gs.daysAgo(1)', /scripted values are not run here/],
    ['caller_idSAMEAS', /compares with another field/],
  ])('%s is refused: %s', (query, message) => {
    let error: unknown;
    try {
      parseEncodedQuery(query);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(EncodedQueryError);
    expect((error as Error).message).toMatch(message);
  });
});

describe('ordering and fields', () => {
  const rows = [
    { n: '10', d: 'b' },
    { n: '9', d: 'a' },
    { n: '10', d: 'a' },
  ];
  const get = (row: { n: string; d: string }, field: string) => row[field as 'n' | 'd'];

  it('orders numbers numerically and keeps ties stable', () => {
    const { orderBy } = parseEncodedQuery('ORDERBYn');
    expect(orderRecords(rows, orderBy, get)).toEqual([rows[1], rows[0], rows[2]]);
  });

  it('orders by several terms, descending where asked', () => {
    const { orderBy } = parseEncodedQuery('ORDERBYDESCn^ORDERBYd');
    expect(orderRecords(rows, orderBy, get)).toEqual([rows[2], rows[0], rows[1]]);
  });

  it('lists every field a query reads', () => {
    const query = parseEncodedQuery('a=1^ORb=2^NQcSAMEASd^ORDERBYDESCe^f.gISEMPTY');
    expect(queryFields(query).sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f.g']);
  });
});
