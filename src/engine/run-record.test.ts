// The parts of a run record the console reads: the object's number, and what an event changed.
import { describe, expect, it } from 'vitest';
import { fieldChanges, objectNumberOf } from './run-record.js';

describe('objectNumberOf', () => {
  it.each<[string, Record<string, unknown> | null, string | null]>([
    [
      'the upstream record of a unified object',
      { id: 'a', raw: { number: 'INC0010001' } },
      'INC0010001',
    ],
    [
      'a generic object',
      { id: 'a', type: 'object', raw: { object: { number: 'CHG0030001' } } },
      'CHG0030001',
    ],
    ['an object without raw but with a number', { id: 'a', number: 'PRB0040001' }, 'PRB0040001'],
    ['an empty number', { id: 'a', raw: { number: '' } }, null],
    ['no number at all', { id: 'a', raw: {} }, null],
    ['no object', null, null],
  ])('reads the number of %s', (_name, object, expected) => {
    expect(objectNumberOf(object)).toBe(expected);
  });
});

describe('fieldChanges', () => {
  it('lists each changed field of an update with its value before and after', () => {
    const previous = {
      id: 'a',
      priority: 'low',
      impact: 'high',
      modified: '1',
      raw: { priority: '4' },
    };
    const object = {
      id: 'a',
      priority: 'high',
      impact: 'high',
      modified: '2',
      raw: { priority: '2' },
    };
    expect(fieldChanges('update', object, previous)).toEqual([
      { field: 'priority', before: 'low', after: 'high' },
      { field: 'raw.priority', before: '4', after: '2' },
    ]);
  });

  it('gives an add its unified fields, after only, without its identity or upstream columns', () => {
    const object = {
      id: 'a',
      type: 'incident',
      priority: 'low',
      modified: '1',
      raw: { priority: '4', number: 'INC1' },
    };
    expect(fieldChanges('add', object, null)).toEqual([{ field: 'priority', after: 'low' }]);
  });

  it('names a field that was unset before, and one unset after', () => {
    expect(fieldChanges('update', { id: 'a', due: '2026' }, { id: 'a', owner: 'u1' })).toEqual([
      { field: 'due', after: '2026' },
      { field: 'owner', before: 'u1' },
    ]);
  });

  it('cuts a long value, so that a large description does not make every record large', () => {
    const long = 'x'.repeat(5000);
    const [change] = fieldChanges('update', { description: long }, { description: 'short' });
    const after = String(change?.after);
    expect(after.length).toBeLessThanOrEqual(600);
    expect(after.endsWith('...')).toBe(true);
  });
});
