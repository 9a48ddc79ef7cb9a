import { describe, expect, it } from 'vitest';
import { normalizeIsoDate } from './schemas.js';

describe('normalizeIsoDate', () => {
  it.each([
    ['2017-11-27T09:01:33Z', '2017-11-27T09:01:33Z'],
    ['2017-11-27T09:01:33.123Z', '2017-11-27T09:01:33Z'],
    ['2017-11-27 09:01:33', '2017-11-27T09:01:33Z'],
    ['2017-11-27', '2017-11-27T00:00:00Z'],
    ['2026-11-28T10:00:00+01:00', '2026-11-28T09:00:00Z'],
    ['2026-11-28T23:30:00-0130', '2026-11-29T01:00:00Z'],
    ['2024-02-29', '2024-02-29T00:00:00Z'],
    ['0050-01-01', '0050-01-01T00:00:00Z'],
    ['0099-12-31T10:00:00Z', '0099-12-31T10:00:00Z'],
  ])('reads %s as %s', (input, expected) => {
    expect(normalizeIsoDate(input)).toBe(expected);
  });

  it.each([
    '2023-02-29',
    '2026-13-01',
    '2026-11-31',
    '2026-11-28T24:00:00Z',
    '2026-11-28T10:00:00+25:00',
    'yesterday',
    '12',
    '',
  ])('refuses %j', (input) => {
    expect(normalizeIsoDate(input)).toBeNull();
  });
});
