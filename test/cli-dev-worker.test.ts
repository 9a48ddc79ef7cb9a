// `npm run dev:worker` (scripts/dev-worker.mjs) with rules that do not load: it builds the rules
// bundle once at start, prints each problem once (the very lines of `itsm-rules check`) and
// exits 1 before wrangler starts, with no stack trace. Child processes from the repository root;
// nothing listens, so port 8787 stays free.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runScript } from './helpers/run-script.js';

const TIMEOUT = 30_000;
const BROKEN = 'test/fixtures/broken-rules';

/** `node <script> ...args` from the repository root, with no ITSM_* variable but `env`. */
const run = (script: string, args: string[], env: Record<string, string>) =>
  runScript(script, args, { env });

const temps: string[] = [];
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

describe('npm run dev:worker', () => {
  it(
    'prints the problems once, as check does, and exits 1 without a stack trace',
    async () => {
      const [dev, check] = await Promise.all([
        run('scripts/dev-worker.mjs', [], { ITSM_RULES_DIR: BROKEN }),
        run('bin/itsm-rules.js', ['check'], { ITSM_RULES_DIR: BROKEN }),
      ]);
      expect(check.code).toBe(1);
      expect(dev.code).toBe(1);
      expect(dev.stdout).toBe('');
      expect(dev.stderr).toBe(
        `${check.stderr}bundle-rules: the Worker was not built; fix the rules (itsm-rules check --rules ${BROKEN})\n`,
      );
      expect(dev.stderr).not.toMatch(/^\s+at /m);
    },
    TIMEOUT,
  );

  it(
    'names a rules folder that does not exist in one line, and exits 1',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'itsm-rules-dev-worker-'));
      temps.push(dir);
      const missing = join(dir, 'no-rules');
      const dev = await run('scripts/dev-worker.mjs', [], { ITSM_RULES_DIR: missing });
      expect(dev.code).toBe(1);
      expect(dev.stderr).toBe(
        `the rules folder ${missing} does not exist or cannot be read; point --rules at the folder of rule files\n`,
      );
    },
    TIMEOUT,
  );

  it(
    "leaves wrangler's start-up build of an up-to-date bundle quiet, and rebuilds a changed one",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'itsm-rules-dev-worker-'));
      temps.push(dir);
      const out = join(dir, 'worker.ts');
      const tsx = 'node_modules/tsx/dist/cli.mjs';
      const bundle = (rules: string, env: Record<string, string>) =>
        run(tsx, ['scripts/bundle-rules.ts', '--rules', rules, '--out', out], env);

      const first = await bundle('rules', {});
      expect(first.code).toBe(0);
      expect(first.stdout).toMatch(
        /^bundle-rules: \d+ rules from rules \(1 scheduled\) bundled into /,
      );
      const again = await bundle('rules', { ITSM_RULES_BUNDLE_QUIET: '1' });
      expect(again).toEqual({ code: 0, stdout: '', stderr: '' });
      const changed = await bundle('soak/rules', { ITSM_RULES_BUNDLE_QUIET: '1' });
      expect(changed.code).toBe(0);
      expect(changed.stdout).toContain('bundled into');
    },
    TIMEOUT,
  );
});
