// The shipped rules/ folder, checked as a user checks it: `itsm-rules check` must accept it, and
// the rule test suites shipped beside the rules (`*.test.yaml`) must pass `itsm-rules test`. This
// is the only test that reads rules/, and it neither counts nor names the rules there nor asks
// that each has a case (`itsm-rules test` itself lists the rules no case expects to match, as
// information), so adding a valid rule never breaks a test (every other test uses test fixtures);
// a rule whose behaviour changes breaks its own suite, which is what the suite is for.
import { describe, expect, it } from 'vitest';
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
});
