// The reduced soak over the connector (`npm run soak -- --servicenow --reduced`) as a test, so
// that CI runs it: the instance is the Table API face in a process of its own under 20% injected
// faults (500s, 429s, writes applied then answered 500, writes applied then cut off), the engine
// is `serve --servicenow` in another, SIGKILLed and restarted at least five times, and the
// changes are made on the instance through the Table API by a ServiceNow user. The instance must
// then hold every effect the soak rules demand, each exactly once, and no engine write twice.
// Seeded (`npm run soak -- --servicenow --reduced --seed 20260501` repeats the inputs). About a
// minute on two cores; the limit below is generous on purpose.
import { expect, it } from 'vitest';
import { runSoak, soakSummary } from '../helpers/soak.js';

const SEED = '20260501';

it(
  'misses and duplicates no effect over the connector under 20% faults on the instance and five SIGKILLs (reduced soak)',
  async () => {
    const run = await runSoak([
      ...['--servicenow', '--reduced', '--seed', SEED, '--duration-max', '8m', '--json'],
    ]);
    const summary = soakSummary(run);

    expect(summary.findings).toEqual([]);
    expect(summary.busy, 'what the engine was busy with at --duration-max').toBeUndefined();
    expect(summary).toMatchObject({
      ok: true,
      servicenow: true,
      missed: 0,
      duplicated: 0,
      unexpected: 0,
      repeatedWrites: 0,
    });
    expect(run.code).toBe(0);
    // The run really was the one asked for: the faults hit the instance, the engine was killed.
    expect(summary.kills).toBeGreaterThanOrEqual(5);
    expect(summary.faults.share).toBeGreaterThanOrEqual(0.15);
    for (const kind of ['status500', 'status429', 'afterWrite', 'drop']) {
      expect(summary.faults.byKind[kind], kind).toBeGreaterThan(0);
    }
    expect(summary.engineWrites).toBeGreaterThan(100);
    expect(summary.expectedEffects).toBeGreaterThan(100);
  },
  10 * 60_000,
);

it('refuses --servicenow with more than one account, with exit 2 and the usage', async () => {
  const run = await runSoak(['--servicenow', '--accounts', '3']);
  expect(run.code).toBe(2);
  expect(run.stderr).toContain('--servicenow serves one instance as one account');
  expect(run.stderr).toContain('usage: npm run soak');
}, 30_000);
