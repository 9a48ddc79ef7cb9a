// The reduced soak (`npm run soak -- --reduced`) as a test, so that CI runs it: the all-in-one
// system in a child process under 20% injected faults (500s, 429s, writes applied then failed,
// writes applied then cut off), with replayed notifications and at least five SIGKILLs and
// restarts; the ITSM state must then hold every effect the soak rules demand, each exactly once.
// Seeded, so a failure can be run again with the same inputs (`npm run soak -- --reduced --seed
// 20260501`). About a minute or two on two cores; the limit below is generous on purpose.
import { expect, it } from 'vitest';
import { runSoak, soakSummary } from '../helpers/soak.js';

const SEED = '20260501';

it(
  'misses and duplicates no effect under 20% faults, replays and five SIGKILLs (reduced soak)',
  async () => {
    const run = await runSoak(['--reduced', '--seed', SEED, '--duration-max', '8m', '--json']);
    const summary = soakSummary(run);

    expect(summary.findings).toEqual([]);
    expect(summary.busy, 'what the engine was busy with at --duration-max').toBeUndefined();
    expect(summary).toMatchObject({
      ok: true,
      missed: 0,
      duplicated: 0,
      unexpected: 0,
      repeatedWrites: 0,
    });
    expect(run.code).toBe(0);
    // The run really was the one the issue asks for.
    expect(summary.kills).toBeGreaterThanOrEqual(5);
    expect(summary.faults.share).toBeGreaterThanOrEqual(0.2);
    for (const kind of ['status500', 'status429', 'afterWrite', 'drop']) {
      expect(summary.faults.byKind[kind], kind).toBeGreaterThan(0);
    }
    expect(summary.notificationsReplayed).toBeGreaterThan(0);
    expect(summary.expectedEffects).toBeGreaterThan(100);
  },
  10 * 60_000,
);

it('refuses a bad flag with exit 2 and the usage', async () => {
  const run = await runSoak(['--kills', 'many']);
  expect(run.code).toBe(2);
  expect(run.stderr).toContain('--kills must be a whole number >= 0, got "many"');
  expect(run.stderr).toContain('usage: npm run soak');
}, 30_000);
