// The reduced soak (`npm run soak -- --reduced`) as a test, so that CI runs it: the all-in-one
// system in a child process under 20% injected faults (500s, 429s, writes applied then failed,
// writes applied then cut off), with replayed notifications and at least five SIGKILLs and
// restarts; the ITSM state must then hold every effect the soak rules demand, each exactly once.
// Seeded, so a failure can be run again with the same inputs (`npm run soak -- --reduced --seed
// 20260501`). About a minute or two on two cores; the limit below is generous on purpose.
import { spawn } from 'node:child_process';
import { expect, it } from 'vitest';
import type { SoakSummary } from '../../soak/run.js';

const SEED = '20260501';

function runSoak(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'soak/run.ts', ...args], {
      cwd: new URL('../..', import.meta.url),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      err += chunk;
    });
    child.once('close', (code) => resolve({ code, out, err }));
  });
}

it(
  'misses and duplicates no effect under 20% faults, replays and five SIGKILLs (reduced soak)',
  async () => {
    const run = await runSoak(['--reduced', '--seed', SEED, '--duration-max', '8m', '--json']);
    const line = run.out.split('\n').find((l) => l.startsWith('SOAK-SUMMARY '));
    expect(line, `no summary; stdout:\n${run.out}\nstderr:\n${run.err}`).toBeDefined();
    const summary = JSON.parse((line as string).slice('SOAK-SUMMARY '.length)) as SoakSummary;

    expect(summary.findings).toEqual([]);
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
  expect(run.err).toContain('--kills must be a whole number >= 0, got "many"');
  expect(run.err).toContain('usage: npm run soak');
}, 30_000);
