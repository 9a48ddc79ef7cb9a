// The shipped rules/ folder, checked as a user checks it: `itsm-rules check` must accept it. This
// is the only test that reads rules/, and it neither counts nor names the rules there, so adding
// or editing a valid rule never breaks a test (every other test uses test/fixtures/example-rules).
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
});
