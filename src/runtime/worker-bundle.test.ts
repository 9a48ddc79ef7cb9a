// The Worker's build step (scripts/bundle-rules.ts), run as wrangler runs it: the example rules are
// bundled into an entry module exporting the Worker; a folder with a broken rule fails the build
// with exactly the lines `itsm-rules check` prints, and writes nothing.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readRuleSources } from './rule-files.js';

const dir = mkdtempSync(join(tmpdir(), 'itsm-bundle-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[]) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', ...args], { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('bundling the rules for the Worker', () => {
  it('writes an entry module holding every rule file and exporting the Worker', async () => {
    const out = join(dir, 'worker.ts');
    const result = run(['scripts/bundle-rules.ts', '--rules', 'rules', '--out', out]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/bundle-rules: 8 rules from rules \(1 scheduled\) bundled into/);
    const entry = await import(out);
    expect(entry.ruleSources).toEqual(readRuleSources('rules'));
    expect(
      entry.default
        .rules()
        .rules.map((rule: { id: string }) => rule.id)
        .sort(),
    ).toEqual([
      'assign-network-incidents',
      'change-approval-gate',
      'escalate-major-incidents',
      'overdue-incident-escalation',
      'page-on-call-for-critical',
      'problem-in-fix-opens-change',
      'recurring-incidents-open-problem',
      'work-note-on-escalation',
    ]);
    expect(Object.keys(entry.default).sort()).toEqual(['fetch', 'queue', 'rules', 'scheduled']);
  });

  it('fails on a broken rule with the lines of itsm-rules check, writing nothing', () => {
    const out = join(dir, 'broken.ts');
    const rules = 'test/fixtures/broken-rules';
    const bundle = run(['scripts/bundle-rules.ts', '--rules', rules, '--out', out]);
    const check = run(['bin/itsm-rules.js', 'check', '--rules', rules]);
    expect(check.status).toBe(1);
    expect(bundle.status).toBe(1);
    expect(bundle.stderr.startsWith(check.stderr)).toBe(true);
    expect(bundle.stderr.slice(check.stderr.length)).toBe(
      `bundle-rules: the Worker was not built; fix the rules (itsm-rules check --rules ${rules})\n`,
    );
    expect(check.stderr).toMatch(/\n\d+ problems in \d+ of \d+ rule files\n$/);
    expect(existsSync(out)).toBe(false);
  });

  it('fails on a folder that does not exist', () => {
    const result = run([
      'scripts/bundle-rules.ts',
      '--rules',
      join(dir, 'nope'),
      '--out',
      join(dir, 'x.ts'),
    ]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/does not exist or cannot be read/);
  });
});
