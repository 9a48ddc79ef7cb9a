// What every benchmark reports of its rounds: the median, so that one disturbed round (this
// machine is shared) moves no figure; percentiles of latencies; and the request-rate load shape
// with its command-line options (--seconds, --rounds, --connections).
import { parseArgs } from 'node:util';

/** The middle value (the upper middle of an even count); 0 for no values. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** The value below which a share `q` (0..1) of the samples lie; 0 for no samples. */
export function percentile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

/** How long, how often and how wide a request-rate benchmark loads its server. */
export interface LoadShape {
  seconds: number;
  rounds: number;
  connections: number;
}

/** Requests per second with `connections` concurrent loops for `seconds`; a failed answer throws. */
async function measure(shape: LoadShape, request: () => Promise<Response>): Promise<number> {
  const deadline = performance.now() + shape.seconds * 1000;
  let done = 0;
  const loop = async () => {
    while (performance.now() < deadline) {
      const response = await request();
      await response.arrayBuffer();
      if (!response.ok) throw new Error(`benchmark request failed: ${response.status}`);
      done++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: shape.connections }, loop));
  return done / ((performance.now() - started) / 1000);
}

/** The median request rate over the rounds. */
export async function requestRate(
  shape: LoadShape,
  request: () => Promise<Response>,
): Promise<number> {
  const results: number[] = [];
  for (let i = 0; i < shape.rounds; i++) results.push(await measure(shape, request));
  return median(results);
}

/** `--seconds 2 --rounds 3 --connections 20` (those defaults) of a request-rate benchmark. */
export function loadShapeFromArgs(args: string[] = process.argv.slice(2)): LoadShape {
  const { values } = parseArgs({
    args,
    options: {
      seconds: { type: 'string', default: '2' },
      rounds: { type: 'string', default: '3' },
      connections: { type: 'string', default: '20' },
    },
  });
  return {
    seconds: Number(values.seconds),
    rounds: Number(values.rounds),
    connections: Number(values.connections),
  };
}
