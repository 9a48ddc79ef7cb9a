// Which code the `itsm-rules` command runs (bin/build-state.js): the compiled dist/ only while its
// build stamp is newer than everything under src/, so a stale build never runs old code; and an
// installed copy without dist/ says what is wrong instead of failing on a missing module.
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildIsCurrent, hasSources } from '../bin/build-state.js';
import { ROOT, runScript } from './helpers/run-script.js';

const folders: string[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

/** A checkout-shaped folder: src/ with a file in a subfolder, dist/ with its build stamp. */
function checkout(): string {
  const root = mkdtempSync(join(tmpdir(), 'itsm-build-state-'));
  folders.push(root);
  mkdirSync(join(root, 'src', 'engine'), { recursive: true });
  writeFileSync(join(root, 'src', 'engine', 'load.ts'), 'export {};\n');
  writeFileSync(join(root, 'src', 'engine', 'plan.ts'), 'export {};\n');
  mkdirSync(join(root, 'dist'));
  writeFileSync(join(root, 'dist', '.build-stamp'), 'built\n');
  // Sources an hour old, the stamp a minute old: a build made after the last edit.
  const hourAgo = new Date(Date.now() - 3_600_000);
  for (const path of ['src/engine/load.ts', 'src/engine/plan.ts', 'src/engine', 'src']) {
    utimesSync(join(root, path), hourAgo, hourAgo);
  }
  const minuteAgo = new Date(Date.now() - 60_000);
  utimesSync(join(root, 'dist', '.build-stamp'), minuteAgo, minuteAgo);
  return root;
}

describe('choosing between dist/ and the sources', () => {
  it('uses dist/ when its stamp is newer than every source', () => {
    expect(buildIsCurrent(checkout())).toBe(true);
  });

  it('uses the sources once a file is edited after the build', () => {
    const root = checkout();
    writeFileSync(join(root, 'src', 'engine', 'load.ts'), 'export const edited = 1;\n');
    expect(buildIsCurrent(root)).toBe(false);
  });

  it('uses the sources once a file is deleted after the build (its folder changed)', () => {
    const root = checkout();
    unlinkSync(join(root, 'src', 'engine', 'plan.ts'));
    expect(buildIsCurrent(root)).toBe(false);
  });

  it('uses the sources when there was never a build', () => {
    const root = checkout();
    rmSync(join(root, 'dist'), { recursive: true });
    expect(buildIsCurrent(root)).toBe(false);
  });

  it('tells an installed package (no src/) from a checkout', () => {
    const root = checkout();
    expect(hasSources(root)).toBe(true);
    rmSync(join(root, 'src'), { recursive: true });
    expect(hasSources(root)).toBe(false);
  });
});

describe('an installed copy without dist/', () => {
  it('exits 1 and says the copy was packed without a build', async () => {
    const root = mkdtempSync(join(tmpdir(), 'itsm-no-dist-'));
    folders.push(root);
    cpSync(join(ROOT, 'bin'), join(root, 'bin'), { recursive: true });
    const run = await runScript(join(root, 'bin', 'itsm-rules.js'), ['check'], { cwd: root });
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      `itsm-rules: ${join(root, 'dist')} is missing; this copy was packed without \`npm run build\` (reinstall it, or run \`npm run build\` in its folder)\n`,
    );
    expect(run.code).toBe(1);
  });
});
