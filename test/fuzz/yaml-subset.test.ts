// The loader's fast YAML reader (src/engine/yaml-subset.ts) against the yaml library it stands in
// for: on the rule files of the fixtures and on random edits of them, whatever the subset accepts
// must be a document the library reads without an error or a warning, to the same data (-0, key
// order and all), with every node, key and missing key at the same source offset (the line of
// every problem). Whatever it refuses goes to the library, so refusing is always safe; accepting
// the example rules is what makes it fast, and is tested too. Seed and size: FUZZ_SEED,
// FUZZ_CASES (see random.ts).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { jsonOffsets } from '../../src/engine/json-offsets.js';
import { yamlNodeOffset } from '../../src/engine/load.js';
import { parseYamlSubset } from '../../src/engine/yaml-subset.js';
import { fuzzCases, fuzzSeed, mutateJson, mutateText, Random, replayHint } from './random.js';

const SEED = fuzzSeed();
const CASES = fuzzCases();
console.log(replayHint('yaml-subset', SEED, CASES));

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? filesUnder(join(dir, entry.name))
      : /\.ya?ml$/.test(entry.name)
        ? [join(dir, entry.name)]
        : [],
  );
}

const EXAMPLES = 'test/fixtures/example-rules';
const CORPUS = filesUnder('test/fixtures').map((path) => ({
  path,
  text: readFileSync(path, 'utf8'),
}));

/** The yaml library as the loader calls it (load.ts parseSource). */
function readWithLibrary(text: string) {
  const doc = parseDocument(text, {
    schema: 'core',
    version: '1.2',
    uniqueKeys: true,
    prettyErrors: false,
    logLevel: 'error',
  });
  return doc;
}

/** Every path to a node of `value`, and beside each mapping a key it does not have. */
function pathsOf(value: unknown, base: PropertyKey[] = []): PropertyKey[][] {
  const paths: PropertyKey[][] = [base];
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      paths.push(...pathsOf(item, [...base, i]));
    });
    paths.push([...base, value.length], [...base, 'x']);
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) paths.push(...pathsOf(item, [...base, key]));
    paths.push([...base, 'no-such-key'], [...base, 'no-such-key', 'deeper'], [...base, 0]);
  } else {
    paths.push([...base, 'below-a-scalar']);
  }
  return paths;
}

/** Why the subset's reading of `text` differs from the library's, or null when it does not. */
function disagreement(text: string): string | null {
  const subset = parseYamlSubset(text);
  if (subset === null) return null;
  const doc = readWithLibrary(text);
  if (doc.errors.length > 0 || doc.warnings.length > 0) {
    return `the subset accepted a document the library reports: ${[...doc.errors, ...doc.warnings].map((e) => e.code).join(', ')}`;
  }
  const data = doc.toJS({ maxAliasCount: 100 });
  if (!isDeepStrictEqual(subset.data, data)) {
    return `different data: subset ${JSON.stringify(subset.data)}, library ${JSON.stringify(data)}`;
  }
  if (JSON.stringify(Object.keys(subset.data)) !== JSON.stringify(Object.keys(data))) {
    return 'different key order';
  }
  for (const path of pathsOf(data)) {
    const mine = subset.offsetOf(path);
    const theirs = yamlNodeOffset(doc.contents, path);
    if (mine !== theirs) {
      return `offset of ${JSON.stringify(path)}: subset ${mine}, library ${theirs}`;
    }
  }
  return null;
}

/** Why json-offsets.ts places a node of a valid JSON `text` elsewhere than the library, or null. */
function jsonDisagreement(text: string): string | null {
  let data: unknown;
  try {
    data = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch {
    return null;
  }
  const offsets = jsonOffsets(text);
  if (offsets === null) return null;
  const doc = readWithLibrary(text);
  for (const path of pathsOf(data)) {
    const mine = offsets(path);
    const theirs = yamlNodeOffset(doc.contents, path);
    if (mine !== theirs)
      return `offset of ${JSON.stringify(path)}: json ${mine}, library ${theirs}`;
  }
  return null;
}

/** Edits aimed at the subset's edges: indentation, indicators, scalars the schema resolves. */
const YAML_EDITS = [
  ' ',
  '  ',
  '\n',
  '\n  ',
  '\n- ',
  '- ',
  '-',
  ': ',
  ':',
  ' #',
  '#',
  '"',
  "'",
  "''",
  '\\"',
  ',',
  ', ',
  '{',
  '}',
  '[',
  ']',
  '[]',
  '{}',
  '0',
  '-0',
  '007',
  '1.5',
  '1.',
  '.5',
  '1e3',
  '0x1F',
  '0o17',
  '+1',
  '.inf',
  '.NaN',
  'true',
  'True',
  'FALSE',
  'null',
  '~',
  'yes',
  '?',
  '|',
  '>',
  '&a',
  '*a',
  '!',
  '%',
  '@',
  '`',
  '\t',
  '\r',
  'constructor',
  '__proto__',
  '<<',
];

function mutateYaml(random: Random, text: string): string {
  if (random.chance(0.4)) return mutateText(random, text);
  let out = text;
  const edits = random.int(1, 3);
  for (let e = 0; e < edits; e++) {
    const at = random.int(0, out.length);
    const roll = random.float();
    if (roll < 0.6) out = out.slice(0, at) + random.pick(YAML_EDITS) + out.slice(at);
    else if (roll < 0.8) out = out.slice(0, at) + out.slice(at + random.int(1, 3));
    else {
      // Shift a whole line left or right.
      const start = out.lastIndexOf('\n', at - 1) + 1;
      out =
        random.chance(0.5) && out.startsWith('  ', start)
          ? out.slice(0, start) + out.slice(start + 2)
          : `${out.slice(0, start)}  ${out.slice(start)}`;
    }
  }
  return out;
}

describe('the YAML subset of the rule loader', () => {
  it('reads every example rule itself (the files the loader is fast on)', () => {
    const examples = CORPUS.filter((file) => file.path.startsWith(`${EXAMPLES}/`));
    expect(examples.length).toBeGreaterThanOrEqual(5);
    const refused = examples
      .filter((file) => !file.path.endsWith('.test.yaml'))
      .filter((file) => parseYamlSubset(file.text) === null)
      .map((file) => file.path);
    expect(refused).toEqual([]);
  });

  it('reads each fixture exactly as the yaml library does', () => {
    for (const file of CORPUS) {
      expect(disagreement(file.text), file.path).toBeNull();
    }
  });

  it.each([
    ['an anchor and an alias', 'a: &x 1\nb: *x\n'],
    ['a tag', 'a: !!str 1\n'],
    ['a block scalar', 'a: |\n  text\n'],
    ['a plain scalar over two lines', 'a: one\n  two\n'],
    ['a quoted scalar over two lines', 'a: "one\n  two"\n'],
    ['a flow collection over two lines', 'a: [1,\n  2]\n'],
    ['an empty value', 'a:\nb: 1\n'],
    ['a duplicate key', 'a: 1\na: 2\n'],
    ['a duplicate key in a flow mapping', 'a: {b: 1, b: 2}\n'],
    ['a tab', 'a:\t1\n'],
    ['CRLF line ends', 'a: 1\r\nb: 2\r\n'],
    ['a byte-order mark', '\uFEFFa: 1\n'],
    ['a document marker', '---\na: 1\n'],
    ['a hex number', 'a: 0x1F\n'],
    ['an exponent', 'a: 1e3\n'],
    ['a number with a leading zero', 'a: 007\n'],
    ['a key that is not a string', 'true: 1\n'],
    ['a __proto__ key', '__proto__: 1\n'],
    ['a sequence at the top', '- a\n'],
    ['a trailing comma', 'a: [1, 2,]\n'],
    ['an escape beyond JSON', 'a: "\\x41"\n'],
  ])('leaves %s to the yaml library', (_name, text) => {
    expect(parseYamlSubset(text)).toBeNull();
  });

  it.each([
    [
      'plain, quoted and resolved scalars',
      "a: text # c\nb: \"q\\\"\\u00e9\"\nc: 'it''s'\nd: -1.5\ne: ~\nf: False\ng: 1d\nh: -x\n",
    ],
    [
      'a sequence beside its key',
      'on:\n  events:\n  - add\n  - update\nthen:\n- log: {message: hi}\n  x: [1, "2", {a: b}]\n',
    ],
    [
      'a value on the line below its key',
      'when:\n  {"==": [{var: object.id}, 1]}\nthen:\n  -\n    log: {message: x}\n',
    ],
    ['URLs and colons inside plain scalars', 'url: https://example.com/a?b=c\nflow: [a-b, c.d]\n'],
  ])('reads %s as the library does', (_name, text) => {
    expect(parseYamlSubset(text)).not.toBeNull();
    expect(disagreement(text)).toBeNull();
  });

  it('finds every node of a JSON rule file where the library does, however it is laid out', () => {
    const random = new Random(SEED ^ 0x150);
    const layouts = [0, 1, 2, '\t', '\r\n  '];
    const rules = CORPUS.map((file) => readWithLibrary(file.text).toJS()).filter(
      (data) => data !== null && typeof data === 'object',
    );
    for (let i = 0; i < CASES / 4; i++) {
      const data = random.chance(0.5) ? random.pick(rules) : mutateJson(random, random.pick(rules));
      const layout = random.pick(layouts);
      let text = JSON.stringify(data, null, typeof layout === 'number' ? layout : '\t');
      if (layout === '\r\n  ') text = text.replaceAll('\n', '\r\n');
      if (random.chance(0.1)) text = `\uFEFF${text}`;
      if (random.chance(0.2)) text = text.replaceAll(':', ' : ').replaceAll(',', ' ,');
      const problem = jsonDisagreement(text);
      if (problem !== null) {
        throw new Error(
          `${problem}\n${replayHint('yaml-subset', SEED, CASES, i)}\n--- text ---\n${text}`,
        );
      }
    }
  });

  it('never reads an edited rule file otherwise than the library', () => {
    const random = new Random(SEED);
    let accepted = 0;
    for (let i = 0; i < CASES; i++) {
      const text = mutateYaml(random, random.pick(CORPUS).text);
      const problem = disagreement(text);
      if (problem !== null) {
        throw new Error(
          `${problem}\n${replayHint('yaml-subset', SEED, CASES, i)}\n--- text ---\n${text}`,
        );
      }
      if (parseYamlSubset(text) !== null) accepted++;
    }
    // Edits that keep a file valid are read by the subset too, so the comparison above is not
    // vacuous.
    expect(accepted).toBeGreaterThan(CASES / 10);
  });
});
