// Durations in rule files (`30s`, `15m`, `1h`, `7d`): one small grammar shared by `correlate.within`
// and `once_per.within`.

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

export const DURATION_PATTERN = /^([1-9][0-9]{0,6})(s|m|h|d)$/;

/** Milliseconds of a duration, or null when the text is not one. */
export function parseDuration(text: string): number | null {
  const match = DURATION_PATTERN.exec(text);
  if (!match) return null;
  const [, amount, unit] = match;
  return Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
}
