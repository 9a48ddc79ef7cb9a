// Fuzzing the rule loader: random and mutated rule files, YAML and JSON, seeded from the example
// rules (test/fixtures/example-rules) and the broken-rule fixtures: text edits, structural edits of the parsed data
// (keys, types, nesting, operators, durations, cron strings), huge and deeply nested documents,
// YAML alias bombs and merge keys. Invariants: loadRules never throws (every problem is reported
// as a problem), a set is accepted only when it has no problem, every accepted file passes the
// rule schema on its own and is within the nesting limit, and the built-in prototypes are
// untouched. `itsm-rules check` is run on a folder of mutated files too: it exits 0 or 1 with the
// problems listed, never with a crash. Seed and size: FUZZ_SEED, FUZZ_CASES (see random.ts).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import {
  type LoadResult,
  loadRules,
  MAX_RULE_NESTING,
  nestingExceeds,
} from '../../src/engine/load.js';
import { ruleFileSchema } from '../../src/engine/rule-schema.js';
import { spawnCli, writeRules } from '../helpers/serve.js';
import {
  fuzzCases,
  fuzzSeed,
  mutateJson,
  mutateText,
  Random,
  replayHint,
  watchPrototypes,
} from './random.js';

const SEED = fuzzSeed();
const CASES = fuzzCases();
console.log(replayHint('loader', SEED, CASES));

interface Source {
  path: string;
  text: string;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? filesUnder(join(dir, entry.name))
      : /\.(ya?ml|json)$/.test(entry.name)
        ? [join(dir, entry.name)]
        : [],
  );
}

const EXAMPLES = 'test/fixtures/example-rules';
const CORPUS: Source[] = [...filesUnder(EXAMPLES), ...filesUnder('test/fixtures/broken-rules')].map(
  (path) => ({ path, text: readFileSync(path, 'utf8') }),
);
/** The parsed good rules: the starting points of structural mutations. */
const GOOD = CORPUS.filter((s) => s.path.startsWith(`${EXAMPLES}/`)).map(
  (s) => parseYaml(s.text) as unknown,
);

const DURATIONS = ['1h', '15m', '2d', '0s', '-1h', '1.5h', '1y', '', 'h', '99999999999d', '1h30m'];
const CRONS = [
  '*/15 * * * *',
  '0 0 * * *',
  '* * * * * *',
  '61 * * * *',
  '*/0 * * * *',
  '',
  '@daily',
  'a b c d e',
  '0 0 31 2 *',
  '1-2/3,4 * * * MON-FRI',
];
const OPERATORS = [
  '==',
  'and',
  'or',
  'var',
  'rank',
  'hours_since',
  'matches',
  'changed',
  'nope',
  '__proto__',
  'log',
  'in',
  'if',
];

/** A targeted edit of a rule's data: the parts of the format where loaders tend to break. */
function targeted(random: Random, rule: Record<string, unknown>): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(rule)) as Record<string, unknown>;
  switch (random.int(0, 7)) {
    case 0:
      copy.on = {
        type: random.pick(['incident', 'problem', 'nope', 3, null]),
        schedule: random.pick(CRONS),
      };
      break;
    case 1:
      copy.once_per = { key: { var: 'object.id' }, within: random.pick(DURATIONS) };
      break;
    case 2:
      copy.correlate = {
        key: { var: 'object.category' },
        within: random.pick(DURATIONS),
        at_least: random.pick([1, 0, -1, 2.5, 1e9, '2']),
      };
      break;
    case 3:
      copy.when = { [random.pick(OPERATORS)]: [random.json(2), random.json(1)] };
      break;
    case 4:
      // biome-ignore lint/suspicious/noThenProperty: the rule format's key.
      copy.then = Array.from({ length: random.int(0, 3) }, () => ({
        [random.pick(['escalate', 'update', 'create', 'link', 'http', 'log', 'nope'])]:
          random.json(2),
      }));
      break;
    case 5:
      copy[random.key()] = random.json(2);
      break;
    case 6:
      copy.id = random.pick(['ok-id', 'Not_Kebab', '', 'a'.repeat(65), '__proto__', 7]);
      break;
    default:
      copy.when = {
        matches: [
          { var: 'object.description' },
          random.pick(['^a', '(', '[z-a]', '(?<n>x)', 'a{2,1}']),
          random.pick(['i', 'g', 'x', '']),
        ],
      };
  }
  return copy;
}

/** A huge, deep or aliasing document, by kind. */
function monster(random: Random): Source {
  const kind = random.int(0, 5);
  if (kind === 0) {
    const depth = random.pick([MAX_RULE_NESTING - 10, MAX_RULE_NESTING + 1, 5_000, 50_000]);
    const when = `${'{"!": ['.repeat(depth)}true${']}'.repeat(depth)}`;
    return {
      path: 'rules/deep.json',
      text: `{"on": {"type": "incident"}, "then": [{"log": {"message": "x"}}], "when": ${when}}`,
    };
  }
  if (kind === 1) {
    const depth = random.pick([50, 500, 5_000]);
    return {
      path: 'rules/deep.yaml',
      text: `on: {type: incident}\nthen: [{log: {message: x}}]\nwhen: ${'['.repeat(depth)}1${']'.repeat(depth)}\n`,
    };
  }
  if (kind === 2) {
    // A billion laughs: each alias doubles the document.
    const lines = ['a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
    for (let i = 1; i <= 20; i++)
      lines.push(`a${i}: &a${i} [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(', ')}]`);
    return {
      path: 'rules/bomb.yaml',
      text: `on: {type: incident}\nthen: [{log: {message: x}}]\nwhen: {"==": [1, 1]}\nx:\n  ${lines.join('\n  ')}\n`,
    };
  }
  if (kind === 3) {
    const actions = random.pick([1_000, 5_000]);
    const then = Array.from({ length: actions }, (_, i) => `  - log: {message: "n${i}"}`).join(
      '\n',
    );
    return { path: 'rules/huge.yaml', text: `on: {type: incident}\nthen:\n${then}\n` };
  }
  if (kind === 4) {
    // Merge keys are not part of YAML 1.2 core: "<<" must stay a (refused) key, never merge.
    return {
      path: 'rules/merge.yaml',
      text: `base: &base {then: [{log: {message: x}}]}\non: {type: incident}\n<<: *base\nthen: [{log: {message: y}}]\n`,
    };
  }
  const big = 'x'.repeat(random.pick([10_000, 1_000_000]));
  return {
    path: 'rules/long.yaml',
    text: `on: {type: incident}\nthen: [{log: {message: "${big}"}}]\n`,
  };
}

function makeSource(random: Random): Source {
  const roll = random.float();
  if (roll < 0.01) return monster(random);
  if (roll < 0.4) {
    const base = random.pick(CORPUS);
    return { path: base.path, text: mutateText(random, base.text) };
  }
  const rule = random.pick(GOOD) as Record<string, unknown>;
  const data = roll < 0.7 ? mutateJson(random, rule) : targeted(random, rule);
  const asJson = random.chance(0.5);
  let text: string;
  try {
    text = asJson ? JSON.stringify(data, null, random.chance(0.5) ? 2 : 0) : stringifyYaml(data);
  } catch {
    text = String(data);
  }
  return {
    path: `rules/incident/fuzz-${random.int(0, 3)}.${asJson ? 'json' : 'yaml'}`,
    text: text ?? 'null',
  };
}

/** The data of a source as an independent reader sees it: JSON.parse, or YAML 1.2 core. */
function independentParse(source: Source): unknown {
  if (source.path.endsWith('.json')) return JSON.parse(source.text.replace(/^\uFEFF/, ''));
  return parseYaml(source.text, {
    schema: 'core',
    version: '1.2',
    uniqueKeys: true,
    maxAliasCount: 100,
  });
}

function checkResult(result: LoadResult, sources: Source[], where: () => string): void {
  if ((result.ruleSet === null) !== result.problems.length > 0) {
    throw new Error(`a result must have rules or problems, not both or neither\n${where()}`);
  }
  for (const problem of result.problems) {
    if (
      typeof problem.message !== 'string' ||
      problem.message === '' ||
      typeof problem.code !== 'string'
    ) {
      throw new Error(
        `a problem without a message or code: ${JSON.stringify(problem)}\n${where()}`,
      );
    }
  }
  if (!result.ruleSet) return;
  for (const source of sources) {
    const data = independentParse(source);
    if (nestingExceeds(data, MAX_RULE_NESTING))
      throw new Error(`accepted a file nested too deeply\n${where()}`);
    const parsed = ruleFileSchema.safeParse(data);
    if (!parsed.success) {
      throw new Error(
        `accepted a file the schema refuses: ${parsed.error.message.slice(0, 500)}\n${where()}`,
      );
    }
  }
}

const figures: string[] = [];
afterAll(() => {
  for (const line of figures) console.log(line);
});

describe(`loader fuzz (seed ${SEED}, ${CASES} cases)`, () => {
  it(
    'reports every random or mutated rule file as problems, never throws, never accepts what the schema refuses',
    () => {
      const random = new Random(SEED);
      const prototypesChanged = watchPrototypes();
      const started = performance.now();
      let accepted = 0;
      for (let index = 0; index < CASES; index++) {
        const caseRandom = random.fork();
        const sources = Array.from({ length: caseRandom.chance(0.1) ? 2 : 1 }, () =>
          makeSource(caseRandom),
        );
        const where = () =>
          `${replayHint('loader', SEED, CASES, index)}\n${sources.map((s) => `${s.path}:\n${s.text.slice(0, 600)}`).join('\n')}`;
        let result: LoadResult;
        try {
          result = loadRules(sources);
        } catch (error) {
          throw new Error(`loadRules threw ${String(error)}\n${where()}`);
        }
        checkResult(result, sources, where);
        if (result.ruleSet) accepted++;
        const changes = prototypesChanged();
        if (changes.length > 0)
          throw new Error(`prototype pollution: ${changes.join(', ')}\n${where()}`);
      }
      figures.push(
        `loader fuzz: ${CASES} rule sets in ${Math.round(performance.now() - started)} ms (seed ${SEED}); ${accepted} accepted, ${CASES - accepted} refused with problems`,
      );
      expect(prototypesChanged()).toEqual([]);
    },
    Math.max(20_000, CASES * 20),
  );

  it.each([
    [
      'a JSON document nested 50,000 levels',
      'rules/deep.json',
      `{"on": {"type": "incident"}, "then": [], "when": ${'['.repeat(50_000)}${']'.repeat(50_000)}}`,
    ],
    [
      'a YAML document nested 50,000 levels',
      'rules/deep.yaml',
      `on: {type: incident}\nwhen: ${'['.repeat(50_000)}${']'.repeat(50_000)}\n`,
    ],
    [
      // Each overflowing part leaves an error of its own: still one problem.
      'a YAML document with two parts nested 50,000 levels',
      'rules/deep.yaml',
      `on: {type: incident}\nwhen: ${'['.repeat(50_000)}${']'.repeat(50_000)}\nthen: ${'['.repeat(50_000)}${']'.repeat(50_000)}\n`,
    ],
    [
      'a JSON document nested just past the limit',
      'rules/deep.json',
      `{"on": {"type": "incident"}, "then": [], "when": ${'['.repeat(MAX_RULE_NESTING)}${']'.repeat(MAX_RULE_NESTING)}}`,
    ],
  ])('refuses %s with a problem that says it is nested too deeply', (_name, path, text) => {
    const result = loadRules([{ path, text }]);
    expect(result.ruleSet).toBeNull();
    expect(result.problems.map((p) => p.message)).toEqual([
      expect.stringContaining(`nested more than ${MAX_RULE_NESTING} levels deep`),
    ]);
  });

  it('refuses a YAML alias bomb and a merge key with problems', () => {
    const random = new Random(SEED);
    for (let i = 0; i < 40; i++) {
      const source = monster(random);
      if (!source.path.includes('bomb') && !source.path.includes('merge')) continue;
      const result = loadRules([source]);
      expect(result.ruleSet, source.text).toBeNull();
      expect(result.problems.length).toBeGreaterThan(0);
    }
  });

  it('itsm-rules check lists the problems of a folder of mutated files and exits 1, without a crash', async () => {
    const random = new Random(SEED ^ 0x5bd1e995);
    const files: Record<string, string> = {};
    for (let i = 0; i < 12; i++) {
      const source = makeSource(random);
      files[`incident/fuzz-${i}.${source.path.endsWith('.json') ? 'json' : 'yaml'}`] = source.text;
    }
    files['incident/deep.json'] =
      `{"on": {"type": "incident"}, "then": [], "when": ${'['.repeat(10_000)}${']'.repeat(10_000)}}`;
    const folder = writeRules(files);
    try {
      const cli = spawnCli(['check', '--rules', folder.dir]);
      const exit = await cli.exited;
      expect(exit, cli.stderr()).toEqual({ code: 1, signal: null });
      const output = cli.stdout() + cli.stderr();
      expect(output).toContain('deep.json');
      expect(output).toContain('nested more than');
      expect(output).not.toMatch(/RangeError|Maximum call stack|\n\s+at /);
    } finally {
      folder.remove();
    }
  });
});
