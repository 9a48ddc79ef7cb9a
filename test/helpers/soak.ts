// The soak (`npm run soak -- ARGS`) run to its end from a test, and the summary it prints with
// `--json` (a `SOAK-SUMMARY {...}` line), shared by the soak tests of the embedded system and of
// the connector.
import { expect } from 'vitest';
import type { SoakSummary } from '../../soak/run.js';
import { runScript, type ScriptRun } from './run-script.js';

/** `npm run soak -- ARGS`: the soak through tsx, as npm runs it. */
export const runSoak = (args: string[]): Promise<ScriptRun> =>
  runScript('--import', ['tsx', 'soak/run.ts', ...args]);

/** The run's summary; fails the test, with both outputs, when it printed none. */
export function soakSummary(run: ScriptRun): SoakSummary {
  const line = run.stdout.split('\n').find((l) => l.startsWith('SOAK-SUMMARY '));
  expect(line, `no summary; stdout:\n${run.stdout}\nstderr:\n${run.stderr}`).toBeDefined();
  return JSON.parse((line as string).slice('SOAK-SUMMARY '.length)) as SoakSummary;
}
