// What every benchmark reports of its rounds: the median, so that one disturbed round (this
// machine is shared) moves no figure.

/** The middle value (the upper middle of an even count); 0 for no values. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}
