// The seeded generator and mutator shared by the fuzz tests. Everything random in a fuzz run comes
// from one mulberry32 stream (seededRandom of src/server/faults.ts) seeded by FUZZ_SEED, so a
// failure is replayed exactly with `FUZZ_SEED=<seed> FUZZ_CASES=<n> npx vitest run test/fuzz/...`.
// FUZZ_CASES sets the number of cases per target (`npm run fuzz` runs the full form, 10,000).
import { seededRandom } from '../../src/server/faults.js';

/** Cases per target when FUZZ_CASES is not set: the form `npm test` runs. */
const DEFAULT_FUZZ_CASES = 2_000;

/** The seed of this run: FUZZ_SEED, or a fresh one (printed by `replayHint`). */
export function fuzzSeed(): number {
  const text = process.env.FUZZ_SEED;
  if (text !== undefined && text.trim() !== '') {
    if (!/^\d+$/.test(text.trim())) {
      throw new Error(`FUZZ_SEED must be a whole number, got ${JSON.stringify(text)}`);
    }
    return Number(text.trim()) >>> 0;
  }
  return (Date.now() ^ (process.pid << 16)) >>> 0;
}

/** How many cases to run: FUZZ_CASES, or `fallback`. */
export function fuzzCases(fallback = DEFAULT_FUZZ_CASES): number {
  const text = process.env.FUZZ_CASES;
  if (text === undefined || text.trim() === '') return fallback;
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1) {
    throw new Error(`FUZZ_CASES must be a positive whole number, got ${JSON.stringify(text)}`);
  }
  return Number(text.trim());
}

/** The line to print with any failure: how to replay it. */
export function replayHint(target: string, seed: number, cases: number, index?: number): string {
  const at = index === undefined ? '' : ` (failed at case ${index})`;
  return `fuzz ${target}: seed ${seed}, ${cases} cases${at}; replay with FUZZ_SEED=${seed} FUZZ_CASES=${cases} npx vitest run test/fuzz/${target}.test.ts`;
}

/** A deterministic source of random choices. */
export class Random {
  private readonly next: () => number;
  constructor(readonly seed: number) {
    this.next = seededRandom(seed);
  }

  /** A float in [0, 1). */
  float(): number {
    return this.next();
  }

  /** A whole number in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(0, items.length - 1)] as T;
  }

  /** A new generator forked from this one (for a case replayed on its own). */
  fork(): Random {
    return new Random(Math.floor(this.next() * 0x1_0000_0000) >>> 0);
  }

  /** A short string: ASCII, then odd characters (controls, quotes, unicode, lone surrogates). */
  string(maxLength = 12): string {
    const length = this.int(0, maxLength);
    let out = '';
    for (let i = 0; i < length; i++) out += this.char();
    return out;
  }

  char(): string {
    const roll = this.next();
    if (roll < 0.6) return String.fromCharCode(this.int(0x61, 0x7a));
    if (roll < 0.75) return String.fromCharCode(this.int(0x20, 0x7e));
    if (roll < 0.85) return String.fromCharCode(this.int(0, 0x1f));
    if (roll < 0.95) return this.pick(['é', 'ß', '日', '🙂', '\u2028', '\uFEFF', '\u0000']);
    return String.fromCharCode(this.int(0xd800, 0xdfff));
  }

  /** Random bytes. */
  bytes(maxLength = 64): Uint8Array {
    const out = new Uint8Array(this.int(0, maxLength));
    for (let i = 0; i < out.length; i++) out[i] = this.int(0, 255);
    return out;
  }

  /** A number of the kinds JSON and JavaScript find awkward. */
  number(): number {
    return this.pick([
      0,
      -0,
      1,
      -1,
      2,
      3,
      0.5,
      1e21,
      -1e-7,
      Number.MAX_SAFE_INTEGER,
      Number.MAX_SAFE_INTEGER + 2,
      2 ** 53,
      Number.MAX_VALUE,
      Number.MIN_VALUE,
      this.int(-1000, 1000),
      this.float() * 1e6,
    ]);
  }

  /** A JSON value of at most `depth` levels. */
  json(depth = 3): unknown {
    const roll = this.next();
    if (depth <= 0 || roll < 0.45) {
      return this.pick<() => unknown>([
        () => null,
        () => this.chance(0.5),
        () => this.number(),
        () => this.string(),
        () => this.pick(KEYWORDS),
      ])();
    }
    if (roll < 0.7) return Array.from({ length: this.int(0, 4) }, () => this.json(depth - 1));
    const out: Record<string, unknown> = {};
    const size = this.int(0, 4);
    for (let i = 0; i < size; i++) {
      // defineProperty, so that a "__proto__" key is a key like any other, as JSON.parse makes it.
      Object.defineProperty(out, this.key(), {
        value: this.json(depth - 1),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }

  /** An object key, often one that reaches the prototype chain in careless code. */
  key(): string {
    return this.chance(0.3)
      ? this.pick(DANGEROUS_KEYS)
      : this.chance(0.5)
        ? this.pick(KEYWORDS)
        : this.string(8);
  }
}

/** Keys that reach or replace a prototype when code assigns or reads them carelessly. */
export const DANGEROUS_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  '__defineGetter__',
] as const;

/** Words of the rule format and the API, so random data often lands near meaningful shapes. */
const KEYWORDS = [
  'on',
  'then',
  'when',
  'type',
  'events',
  'incident',
  'problem',
  'var',
  'object.priority',
  'account',
  'subscription',
  'critical',
  '1h',
  '*/5 * * * *',
  'escalate',
  'update',
  'log',
  'message',
];

/** A copy of `text` with 1 to 4 random edits: characters or runs inserted, deleted, repeated. */
export function mutateText(random: Random, text: string): string {
  let out = text;
  const edits = random.int(1, 4);
  for (let e = 0; e < edits; e++) {
    const at = random.int(0, out.length);
    const roll = random.float();
    if (roll < 0.3) out = out.slice(0, at) + random.string(4) + out.slice(at);
    else if (roll < 0.55) out = out.slice(0, at) + out.slice(at + random.int(1, 8));
    else if (roll < 0.7) {
      const end = Math.min(out.length, at + random.int(1, 16));
      out = out.slice(0, end) + out.slice(at, end) + out.slice(end);
    } else if (roll < 0.85) {
      out = out.slice(0, at) + random.pick(SYNTAX) + out.slice(at);
    } else {
      const end = Math.min(out.length, at + random.int(1, 6));
      out = out.slice(0, at) + random.string(end - at) + out.slice(end);
    }
  }
  return out;
}

const SYNTAX = [
  '{',
  '}',
  '[',
  ']',
  ':',
  ',',
  '"',
  "'",
  '\n',
  '\n  ',
  '- ',
  '&a ',
  '*a',
  '<<: ',
  '!!str ',
  '!!js/function ',
  '---\n',
  '#',
  '\\',
  '\\u0000',
  'null',
  '1e999',
  '__proto__',
];

/** A copy of `bytes` with 1 to 4 random byte edits (flip, insert, delete, truncate). */
export function mutateBytes(random: Random, bytes: Uint8Array): Uint8Array {
  let out = Array.from(bytes);
  const edits = random.int(1, 4);
  for (let e = 0; e < edits; e++) {
    const at = random.int(0, out.length);
    const roll = random.float();
    if (roll < 0.35 && out.length > 0) {
      const i = Math.min(at, out.length - 1);
      out[i] = (out[i] as number) ^ (1 << random.int(0, 7));
    } else if (roll < 0.6) out.splice(at, 0, random.int(0, 255));
    else if (roll < 0.85) out.splice(at, random.int(1, 4));
    else out = out.slice(0, at);
  }
  return Uint8Array.from(out);
}

/** A deep mutation of a JSON value: a random node replaced, removed, retyped or re-keyed. */
export function mutateJson(random: Random, value: unknown, depth = 0): unknown {
  const roll = random.float();
  if (depth > 8 || roll < 0.15) return random.json(2);
  if (Array.isArray(value)) {
    const copy = [...value];
    if (copy.length === 0 || roll < 0.25) copy.push(random.json(2));
    else if (roll < 0.35) copy.splice(random.int(0, copy.length - 1), 1);
    else {
      const i = random.int(0, copy.length - 1);
      copy[i] = mutateJson(random, copy[i], depth + 1);
    }
    return copy;
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 0 || roll < 0.25) entries.push([random.key(), random.json(2)]);
    else if (roll < 0.35) entries.splice(random.int(0, entries.length - 1), 1);
    else if (roll < 0.45) {
      const i = random.int(0, entries.length - 1);
      entries[i] = [random.key(), (entries[i] as [string, unknown])[1]];
    } else {
      const i = random.int(0, entries.length - 1);
      const [key, inner] = entries[i] as [string, unknown];
      entries[i] = [key, mutateJson(random, inner, depth + 1)];
    }
    const out: Record<string, unknown> = {};
    for (const [key, inner] of entries) {
      Object.defineProperty(out, key, {
        value: inner,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
  if (roll < 0.5) return random.json(1);
  if (typeof value === 'string') return mutateText(random, value);
  if (typeof value === 'number') return random.number();
  return random.json(1);
}

const WATCHED: [string, object][] = [
  ['Object.prototype', Object.prototype],
  ['Array.prototype', Array.prototype],
  ['Function.prototype', Function.prototype],
  ['String.prototype', String.prototype],
  ['Number.prototype', Number.prototype],
];

/**
 * Records the own properties of the built-in prototypes; the returned function lists every
 * property added, removed or replaced since (empty when nothing was polluted).
 */
export function watchPrototypes(): () => string[] {
  const before = WATCHED.map(([name, proto]) => {
    const values = new Map<PropertyKey, unknown>();
    for (const key of Reflect.ownKeys(proto)) {
      const descriptor = Object.getOwnPropertyDescriptor(proto, key);
      values.set(key, descriptor && ('value' in descriptor ? descriptor.value : descriptor.get));
    }
    return { name, proto, values };
  });
  return () => {
    const changes: string[] = [];
    for (const { name, proto, values } of before) {
      const keys = Reflect.ownKeys(proto);
      for (const key of keys) {
        const descriptor = Object.getOwnPropertyDescriptor(proto, key);
        const value = descriptor && ('value' in descriptor ? descriptor.value : descriptor.get);
        if (!values.has(key)) changes.push(`${name}.${String(key)} was added`);
        else if (values.get(key) !== value) changes.push(`${name}.${String(key)} was replaced`);
      }
      for (const key of values.keys()) {
        if (!keys.includes(key as string | symbol))
          changes.push(`${name}.${String(key)} was removed`);
      }
    }
    if (Object.getPrototypeOf({}) !== Object.prototype) changes.push('{} has a new prototype');
    return changes;
  };
}
