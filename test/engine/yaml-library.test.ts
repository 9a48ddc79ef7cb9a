// The yaml library is loaded only for rule files the loader's subset reader leaves to it: a folder
// of plain rules (the example rules) never loads it, which is what keeps `check` and `serve` lean
// at start; a file beyond the subset loads it once, and reads and reports exactly as before.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as yaml from 'yaml';
import { loadRules, type RuleSource } from '../../src/engine/load.js';
import { formatProblem } from '../../src/engine/problem.js';
import { provideYamlLibrary } from '../../src/engine/yaml-library.js';

const EXAMPLES = 'test/fixtures/example-rules';

function sourcesUnder(dir: string): RuleSource[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourcesUnder(join(dir, entry.name))
      : /\.(ya?ml|json)$/.test(entry.name) && !entry.name.includes('.test.')
        ? [{ path: join(dir, entry.name), text: readFileSync(join(dir, entry.name), 'utf8') }]
        : [],
  );
}

/** Provides the library through a loader that counts its calls. */
function countingProvider(): { loads: number } {
  const counter = { loads: 0 };
  provideYamlLibrary(() => {
    counter.loads++;
    return yaml;
  });
  return counter;
}

describe('the yaml library behind the rule loader', () => {
  afterAll(() => provideYamlLibrary(() => yaml));

  it('is not loaded for a folder of plain YAML rules', () => {
    const counter = countingProvider();
    const result = loadRules(sourcesUnder(EXAMPLES));
    expect(result.problems.map(formatProblem)).toEqual([]);
    expect(result.ruleSet?.rules.length).toBeGreaterThan(0);
    expect(counter.loads).toBe(0);
  });

  it('is not loaded for the line of a problem in a JSON rule file', () => {
    const counter = countingProvider();
    const text = JSON.stringify(
      {
        on: { type: 'incident' },
        // biome-ignore lint/suspicious/noThenProperty: the rule format's key; a list, never a function.
        then: [{ log: { message: 'hi' } }],
        when: true,
        colour: 'red',
      },
      null,
      2,
    );
    const result = loadRules([{ path: 'rules/a.json', text }]);
    expect(result.problems.map((problem) => [problem.code, problem.line])).toEqual([
      ['RULE_UNKNOWN_KEY', 13],
    ]);
    expect(counter.loads).toBe(0);
  });

  it('is loaded once for files beyond the subset, which load as before', () => {
    const counter = countingProvider();
    const anchored = `on: {type: incident}
then:
  - log: &message {message: hello}
  - log: *message
`;
    const result = loadRules([
      { path: 'rules/a.yaml', text: anchored },
      { path: 'rules/b.yaml', text: anchored },
    ]);
    expect(result.problems.map(formatProblem)).toEqual([]);
    expect(result.ruleSet?.rules.map((rule) => rule.actions)).toEqual([
      [{ log: { message: 'hello' } }, { log: { message: 'hello' } }],
      [{ log: { message: 'hello' } }, { log: { message: 'hello' } }],
    ]);
    expect(counter.loads).toBe(1);
  });

  it('reports a syntax error with its line through the library', () => {
    countingProvider();
    const result = loadRules([
      { path: 'rules/broken.yaml', text: 'on:\n  type: incident\nthen: [\n' },
    ]);
    expect(result.ruleSet).toBeNull();
    expect(result.problems[0]?.code).toBe('RULE_SYNTAX');
    expect(result.problems[0]?.line).toBeGreaterThan(0);
  });
});
