// The shipped rules/ folder, checked as a user checks it: `itsm-rules check` must accept it, and
// the rule test suites shipped beside the rules (`*.test.yaml`) must pass `itsm-rules test`, with a
// case in which each shipped rule matches (so a new rule comes with its case). This
// is the only test that reads rules/, and it neither counts nor names the rules there, so adding
// or editing a valid rule never breaks a test (every other test uses test/fixtures/example-rules);
// a rule whose behaviour changes breaks its own suite, which is what the suite is for.
import { describe, expect, it } from 'vitest';
import { loadRules } from '../src/engine/load.js';
import { loadSuites } from '../src/engine/rule-suite.js';
import { readRuleSources, readSuiteSources } from '../src/runtime/rule-files.js';
import { spawnCli } from './helpers/serve.js';

describe('the shipped rules/ folder', () => {
  it('passes itsm-rules check', async () => {
    const cli = spawnCli(['check', '--rules', 'rules']);
    const exit = await cli.exited;
    expect(cli.stderr()).toBe('');
    expect(cli.stdout()).toMatch(/^\d+ rules in rules: all valid/);
    expect(exit.code).toBe(0);
  }, 30_000);

  it('passes its own rule test suites', async () => {
    const cli = spawnCli(['test', '--rules', 'rules']);
    const exit = await cli.exited;
    expect(cli.stderr()).toBe('');
    expect(cli.stdout()).toMatch(/\n[1-9]\d* passed, 0 failed\n$/);
    expect(cli.stdout()).not.toContain('✗');
    expect(exit.code).toBe(0);
  }, 60_000);

  it('has, for each of its rules, a suite case in which the rule matches', () => {
    const { ruleSet } = loadRules(readRuleSources('rules'));
    const { suites, problems } = loadSuites(readSuiteSources('rules'), ruleSet);
    expect(problems).toEqual([]);
    const matched = new Set(
      suites.flatMap((suite) =>
        suite.cases.flatMap((item) => item.steps.flatMap((step) => step.expect?.matched ?? [])),
      ),
    );
    const untested = (ruleSet?.rules ?? []).map((rule) => rule.id).filter((id) => !matched.has(id));
    expect(untested, 'shipped rules that no suite case expects to match').toEqual([]);
    expect(ruleSet?.rules.length).toBeGreaterThan(0);
  });
});
