// A fast reader for the plain YAML that rule files are written in: block mappings and sequences,
// flow mappings and sequences on one line, plain and quoted scalars, comments. The yaml library
// builds a whole document (nodes, ranges, comments) through generators, which made it most of the
// time of `itsm-rules check` on a large rule folder; this reads the common shape of a rule file
// in one pass, straight to data, and keeps only the source offset of each node, for the line of
// a problem.
//
// It never decides anything the yaml library would decide differently: whatever lies outside the
// subset (anchors, aliases, tags, block scalars, multi-line scalars or flow collections, empty
// values, duplicate keys, odd keys, numbers other than plain decimals such as 0x1F or 1e3 (while
// 1d or 30m are strings, read here), tabs, CR, control characters, document markers, anything it
// does not understand) makes it answer null, and the loader reads the file with the yaml library as before, which also reports every problem. What
// it accepts, it reads exactly as the yaml library does with the 1.2 core schema (the fuzz test
// test/fuzz/yaml-subset.test.ts compares the two on mutated rule files).

/** A document read by the subset: its data and where each node starts. */
export interface YamlSubsetDocument {
  data: Record<string, unknown>;
  /**
   * The source offset of the node at `path`, or of its key for the last segment of a mapping;
   * the offset of the deepest node found when the path leaves the document (as the loader's
   * offsetOf over a yaml document).
   */
  offsetOf(path: readonly PropertyKey[]): number | undefined;
}

/** Where a node starts, and where its entries do. */
export interface Position {
  start: number;
  keys?: Map<string, { key: number; value: Position }>;
  items?: Position[];
}

/** Thrown inside the reader when the text leaves the subset; never escapes parseYamlSubset. */
const OUTSIDE = Symbol('outside the YAML subset');

/**
 * Deeper flow collections and blocks than this are left to the yaml library, which reports a
 * document nested too deep the way the loader expects; rule files are far shallower.
 */
const MAX_DEPTH = 64;
/** The yaml library refuses implicit keys longer than 1024 characters; those go to it. */
const MAX_KEY_LENGTH = 1000;

/** Characters the subset leaves to the yaml library: tabs, CR, controls, BOM, line separators. */
const UNSUPPORTED_CHARACTERS =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds.
  /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\ufeff\u2028\u2029\ud800-\udfff]/;
/** Block keys the subset reads: identifiers, header names, field names. */
const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$./-]*$/;
/** Decimal numbers that the 1.2 core schema and Number() read alike. */
const PLAIN_NUMBER = /^-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,15})?$/;
/**
 * The other numbers of the 1.2 core schema (the yaml library's tests for int, octal, hex, .inf and
 * .nan, exponent and float): left to the library. A plain scalar that matches none is a string.
 */
const CORE_NUMBERS = [
  /^[-+]?[0-9]+$/,
  /^0o[0-7]+$/,
  /^0x[0-9a-fA-F]+$/,
  /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/,
  /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/,
  /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/,
];
/** Characters that start something other than a plain scalar (YAML's indicators). */
const INDICATORS = new Set([...'-?:,[]{}#&*!|>\'"%@`']);
const FLOW_END = new Set([',', ']', '}']);

const NEWLINE = 10;
const SPACE = 32;

/** The data and node offsets of `text`, or null when it is not in the subset. */
export function parseYamlSubset(text: string): YamlSubsetDocument | null {
  if (UNSUPPORTED_CHARACTERS.test(text)) return null;
  try {
    const reader = new Reader(text);
    const start = reader.skipBlankLines(0);
    if (start >= text.length || reader.indentAt(start) !== 0) return null;
    reader.pos = start;
    const [data, position] = reader.blockMap(0, 0);
    if (reader.pos < text.length) return null;
    return { data, offsetOf: (path) => offsetOf(position, path) };
  } catch (error) {
    if (error === OUTSIDE) return null;
    throw error;
  }
}

/** The offset `path` leads to in a tree of positions, as the loader's yamlNodeOffset finds it. */
export function offsetOf(root: Position, path: readonly PropertyKey[]): number | undefined {
  let node: Position | undefined = root;
  let offset = root.start;
  for (const [i, segment] of path.entries()) {
    if (node?.keys) {
      const entry: { key: number; value: Position } | undefined =
        typeof segment === 'string' ? node.keys.get(segment) : undefined;
      if (!entry) return offset;
      if (i === path.length - 1) return entry.key;
      node = entry.value;
    } else if (node?.items) {
      node = node.items[Number(segment)];
    } else {
      return offset;
    }
    offset = node?.start ?? offset;
  }
  return offset;
}

function outside(): never {
  throw OUTSIDE;
}

/** A plain scalar as the 1.2 core schema resolves it, when that is certain. */
function resolvePlain(text: string): unknown {
  switch (text) {
    case 'null':
    case 'Null':
    case 'NULL':
    case '~':
      return null;
    case 'true':
    case 'True':
    case 'TRUE':
      return true;
    case 'false':
    case 'False':
    case 'FALSE':
      return false;
  }
  const first = text.charCodeAt(0);
  // Only digits, signs and dots start numbers.
  if ((first >= 48 && first <= 57) || first === 43 || first === 45 || first === 46) {
    if (PLAIN_NUMBER.test(text)) return Number(text);
    if (CORE_NUMBERS.some((pattern) => pattern.test(text))) outside();
  }
  return text;
}

class Reader {
  pos = 0;
  constructor(private readonly text: string) {}

  /** The column of the first non-space character of the line that starts at `lineStart`. */
  indentAt(lineStart: number): number {
    let i = lineStart;
    while (this.text.charCodeAt(i) === SPACE) i++;
    return i - lineStart;
  }

  /** From a line start, past empty and comment-only lines: the start of the next content line. */
  skipBlankLines(from: number): number {
    const text = this.text;
    let lineStart = from;
    while (lineStart < text.length) {
      let i = lineStart;
      while (text.charCodeAt(i) === SPACE) i++;
      const c = text.charCodeAt(i);
      if (c === NEWLINE || c === 35 /* # */ || i >= text.length) {
        const end = text.indexOf('\n', i);
        if (end < 0) return text.length;
        lineStart = end + 1;
        continue;
      }
      return lineStart;
    }
    return text.length;
  }

  /**
   * After a value on its line: spaces, then a comment (after a space) or nothing, then the end of
   * the line. Leaves `pos` at the start of the next content line.
   */
  endLine(): void {
    const text = this.text;
    let i = this.pos;
    const before = i;
    while (text.charCodeAt(i) === SPACE) i++;
    if (i < text.length && text.charCodeAt(i) !== NEWLINE) {
      if (text.charCodeAt(i) !== 35 || i === before) outside();
      i = text.indexOf('\n', i);
      if (i < 0) i = text.length;
    }
    this.pos = i >= text.length ? text.length : this.skipBlankLines(i + 1);
  }

  /** The indentation of the content line at `pos` (which is at a line start), or -1 at the end. */
  nextIndent(): number {
    return this.pos >= this.text.length ? -1 : this.indentAt(this.pos);
  }

  /** A block mapping whose keys start at column `indent`; `pos` is at its first key. */
  blockMap(indent: number, depth: number): [Record<string, unknown>, Position] {
    if (depth > MAX_DEPTH) outside();
    const text = this.text;
    const data: Record<string, unknown> = {};
    const keys = new Map<string, { key: number; value: Position }>();
    const position: Position = { start: this.pos, keys };
    for (;;) {
      const keyStart = this.pos;
      const key = this.blockKey();
      if (keys.has(key)) outside();
      // `pos` is just after the colon.
      let i = this.pos;
      while (text.charCodeAt(i) === SPACE) i++;
      let value: unknown;
      let valuePosition: Position;
      const c = text.charCodeAt(i);
      if (i >= text.length || c === NEWLINE || (c === 35 && i > this.pos)) {
        // The value is on the lines below: a deeper mapping or sequence, or a sequence at the
        // key's own column.
        this.endLine();
        const next = this.nextIndent();
        const lineStart = this.pos;
        this.pos = lineStart + Math.max(next, 0);
        if (next > indent) {
          [value, valuePosition] = this.blockNode(next, depth + 1);
        } else if (next === indent && this.isSequenceEntry()) {
          [value, valuePosition] = this.blockSeq(next, depth + 1);
        } else {
          outside(); // an empty value
        }
      } else {
        if (i === this.pos) outside(); // `key:value` is a plain scalar, not a pair
        this.pos = i;
        [value, valuePosition] = this.inlineValue(depth + 1);
        this.endLine();
      }
      data[key] = value;
      keys.set(key, { key: keyStart, value: valuePosition });
      const next = this.nextIndent();
      if (next < indent) return [data, position];
      if (next > indent) outside();
      this.pos += next;
    }
  }

  /** A value on lines of its own, starting at `pos` in column `indent`. */
  private blockNode(indent: number, depth: number): [unknown, Position] {
    if (this.isSequenceEntry()) return this.blockSeq(indent, depth);
    if (this.startsPair()) return this.blockMap(indent, depth);
    const value = this.inlineValue(depth);
    this.endLine();
    return value;
  }

  /** Whether `pos` is at a block sequence entry (`-` then a space or the end of the line). */
  private isSequenceEntry(): boolean {
    const text = this.text;
    if (text.charCodeAt(this.pos) !== 45) return false;
    const after = text.charCodeAt(this.pos + 1);
    return after === SPACE || after === NEWLINE || this.pos + 1 >= text.length;
  }

  /** A block sequence whose entries start at column `indent`; `pos` is at its first `-`. */
  blockSeq(indent: number, depth: number): [unknown[], Position] {
    if (depth > MAX_DEPTH) outside();
    const text = this.text;
    const data: unknown[] = [];
    const items: Position[] = [];
    const position: Position = { start: this.pos, items };
    for (;;) {
      if (!this.isSequenceEntry()) outside();
      const dash = this.pos;
      let i = dash + 1;
      while (text.charCodeAt(i) === SPACE) i++;
      const c = text.charCodeAt(i);
      let value: unknown;
      let valuePosition: Position;
      if (i >= text.length || c === NEWLINE || (c === 35 && i > dash + 1)) {
        this.pos = dash + 1;
        this.endLine();
        const next = this.nextIndent();
        if (next <= indent) outside(); // an empty entry
        this.pos += next;
        [value, valuePosition] = this.blockNode(next, depth + 1);
      } else {
        this.pos = i;
        const column = i - (dash - indent);
        if (this.startsPair()) {
          [value, valuePosition] = this.blockMap(column, depth + 1);
        } else {
          if (this.isSequenceEntry()) outside(); // `- - x`
          [value, valuePosition] = this.inlineValue(depth + 1);
          this.endLine();
        }
      }
      data.push(value);
      items.push(valuePosition);
      const next = this.nextIndent();
      if (next < indent) return [data, position];
      if (next > indent) outside();
      this.pos += next;
      // A key at the sequence's own column ends a sequence written beside its key.
      if (!this.isSequenceEntry()) {
        this.pos -= next;
        return [data, position];
      }
    }
  }

  /** Whether a `key:` pair starts at `pos` (a plain or quoted key, a colon, a space or the end). */
  private startsPair(): boolean {
    const text = this.text;
    const c = text[this.pos];
    if (c === '{' || c === '[') return false;
    let end: number;
    if (c === '"' || c === "'") {
      const saved = this.pos;
      this.quoted();
      end = this.pos;
      this.pos = saved;
    } else {
      end = this.pos;
      while (end < text.length) {
        const d = text.charCodeAt(end);
        if (d === NEWLINE) return false;
        if (d === 58 /* : */) break;
        if (d === 35 && text.charCodeAt(end - 1) === SPACE) return false;
        end++;
      }
    }
    if (text.charCodeAt(end) !== 58) return false;
    const after = text.charCodeAt(end + 1);
    return after === SPACE || after === NEWLINE || end + 1 >= text.length;
  }

  /** A key of a block mapping and its colon; `pos` ends just after the colon. */
  private blockKey(): string {
    const text = this.text;
    const c = text[this.pos];
    let key: string;
    if (c === '"' || c === "'") {
      key = this.quoted();
    } else {
      const colon = text.indexOf(':', this.pos);
      if (colon < 0) outside();
      key = text.slice(this.pos, colon);
      if (!PLAIN_KEY.test(key) || typeof resolvePlain(key) !== 'string') outside();
      this.pos = colon;
    }
    if (key.length > MAX_KEY_LENGTH || key === '__proto__' || key === '<<') outside();
    if (text.charCodeAt(this.pos) !== 58) outside();
    const after = text.charCodeAt(this.pos + 1);
    if (!(after === SPACE || after === NEWLINE || this.pos + 1 >= text.length)) outside();
    this.pos++;
    return key;
  }

  /** A value that starts on the current line: a flow collection or a scalar. */
  private inlineValue(depth: number): [unknown, Position] {
    const text = this.text;
    const start = this.pos;
    const c = text[start];
    if (c === '{' || c === '[') return this.flow(depth);
    if (c === '"' || c === "'") return [this.quoted(), { start }];
    if (INDICATORS.has(c as string)) {
      // `-` starts a plain scalar when it is not an entry (`-5`, `-x`); other indicators do not.
      if (c !== '-' || this.isSequenceEntry()) outside();
    }
    let end = start;
    while (end < text.length) {
      const d = text.charCodeAt(end);
      if (d === NEWLINE) break;
      if (d === 35 && text.charCodeAt(end - 1) === SPACE) break;
      if (d === 58) {
        const after = text.charCodeAt(end + 1);
        if (after === SPACE || after === NEWLINE || end + 1 >= text.length) outside();
      }
      end++;
    }
    let last = end;
    while (text.charCodeAt(last - 1) === SPACE) last--;
    this.pos = last;
    return [resolvePlain(text.slice(start, last)), { start }];
  }

  /** A flow mapping or sequence that ends on the same line. */
  private flow(depth: number): [unknown, Position] {
    if (depth > MAX_DEPTH) outside();
    const text = this.text;
    const start = this.pos;
    const isMap = text[start] === '{';
    const close = isMap ? '}' : ']';
    this.pos++;
    this.skipSpaces();
    if (text[this.pos] === close) {
      this.pos++;
      return isMap ? [{}, { start, keys: new Map() }] : [[], { start, items: [] }];
    }
    if (isMap) {
      const data: Record<string, unknown> = {};
      const keys = new Map<string, { key: number; value: Position }>();
      for (;;) {
        const keyStart = this.pos;
        const c = text[this.pos];
        let key: unknown;
        if (c === '"' || c === "'") {
          key = this.quoted();
          if (text[this.pos] !== ':') outside();
        } else {
          key = this.flowPlain();
          if (typeof key !== 'string') outside();
        }
        if (
          typeof key !== 'string' ||
          keys.has(key) ||
          key.length > MAX_KEY_LENGTH ||
          key === '__proto__' ||
          key === '<<'
        ) {
          outside();
        }
        if (text[this.pos] !== ':' || text.charCodeAt(this.pos + 1) !== SPACE) outside();
        this.pos++;
        this.skipSpaces();
        const [value, valuePosition] = this.flowNode(depth + 1);
        data[key] = value;
        keys.set(key, { key: keyStart, value: valuePosition });
        if (this.flowNext(close)) return [data, { start, keys }];
      }
    }
    const data: unknown[] = [];
    const items: Position[] = [];
    for (;;) {
      const [value, valuePosition] = this.flowNode(depth + 1);
      if (text[this.pos] === ':') outside(); // a pair in a sequence: `[a: b]`
      data.push(value);
      items.push(valuePosition);
      if (this.flowNext(close)) return [data, { start, items }];
    }
  }

  /** After a flow entry: true at the closing bracket (consumed), false after a comma. */
  private flowNext(close: string): boolean {
    const text = this.text;
    this.skipSpaces();
    const c = text[this.pos];
    if (c === close) {
      this.pos++;
      return true;
    }
    if (c !== ',') outside();
    this.pos++;
    this.skipSpaces();
    // A trailing comma, or an entry left empty.
    if (FLOW_END.has(text[this.pos] as string)) outside();
    return false;
  }

  private flowNode(depth: number): [unknown, Position] {
    const start = this.pos;
    const c = this.text[start];
    if (c === '{' || c === '[') return this.flow(depth);
    if (c === '"' || c === "'") {
      const value = this.quoted();
      return [value, { start }];
    }
    return [this.flowPlain(), { start }];
  }

  /** A plain scalar inside a flow collection: up to a comma, a closing bracket or `: `. */
  private flowPlain(): unknown {
    const text = this.text;
    const start = this.pos;
    const c = text[start];
    if (c === undefined || INDICATORS.has(c)) {
      const after = text.charCodeAt(start + 1);
      // `-5` or `-x` are plain; `- `, `-,` and every other indicator are not.
      if (c !== '-' || after === SPACE || FLOW_END.has(text[start + 1] as string)) outside();
    }
    let end = start;
    for (; end < text.length; end++) {
      const d = text[end];
      if (d === ',' || d === ']' || d === '}') break;
      if (d === '[' || d === '{' || d === '\n') outside();
      if (d === '#' && text[end - 1] === ' ') outside();
      if (d === ':') {
        const after = text[end + 1];
        if (after === ' ') break;
        outside();
      }
    }
    if (end >= text.length) outside();
    let last = end;
    while (text.charCodeAt(last - 1) === SPACE) last--;
    if (last === start) outside();
    this.pos = end;
    return resolvePlain(text.slice(start, last));
  }

  private skipSpaces(): void {
    while (this.text.charCodeAt(this.pos) === SPACE) this.pos++;
  }

  /** A single- or double-quoted scalar on one line; `pos` ends after the closing quote. */
  private quoted(): string {
    const text = this.text;
    const quote = text[this.pos];
    let i = this.pos + 1;
    let out = '';
    if (quote === "'") {
      for (;;) {
        const end = text.indexOf("'", i);
        if (end < 0) outside();
        const part = text.slice(i, end);
        if (part.includes('\n')) outside();
        out += part;
        if (text[end + 1] === "'") {
          out += "'";
          i = end + 2;
          continue;
        }
        this.pos = end + 1;
        return out;
      }
    }
    for (;;) {
      const c = text[i];
      if (c === undefined || c === '\n') outside();
      if (c === '"') break;
      if (c === '\\') {
        const e = text[i + 1];
        const simple = e === undefined ? undefined : ESCAPES[e];
        if (simple !== undefined) {
          out += simple;
          i += 2;
          continue;
        }
        if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
          const code = Number.parseInt(text.slice(i + 2, i + 6), 16);
          // Surrogate halves are left to the yaml library (which pairs them, or not).
          if (code >= 0xd800 && code <= 0xdfff) outside();
          out += String.fromCharCode(code);
          i += 6;
          continue;
        }
        outside();
      }
      out += c;
      i++;
    }
    this.pos = i + 1;
    return out;
  }
}

/** Double-quoted escapes the subset reads (JSON's); the rest of YAML's are left to the library. */
const ESCAPES: Record<string, string> = {
  '\\': '\\',
  '"': '"',
  '/': '/',
  n: '\n',
  t: '\t',
  r: '\r',
  b: '\b',
  f: '\f',
};
