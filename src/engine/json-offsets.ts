// Where each node of a JSON rule file starts, for the line of a problem. The loader reads JSON
// files with JSON.parse, which knows no positions; it used to parse the text again with the yaml
// library (JSON is YAML) to find a line, which now loads only for files that need it
// (yaml-library.ts). JSON's grammar is small enough to walk here, giving the offsets the yaml
// library gives (test/fuzz/yaml-subset.test.ts compares them), so a JSON rule set never needs it.
import { offsetOf, type Position } from './yaml-subset.js';

/**
 * The offset finder of a JSON text that JSON.parse accepted, or null for a text it leaves to the
 * yaml library (a lone CR, which YAML counts as a line break and JSON as a space).
 */
export function jsonOffsets(
  text: string,
): ((path: readonly PropertyKey[]) => number | undefined) | null {
  if (/\r(?!\n)/.test(text)) return null;
  let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const skip = () => {
    for (;;) {
      const c = text.charCodeAt(pos);
      if (c === 32 || c === 10 || c === 13 || c === 9) pos++;
      else return;
    }
  };
  /** Past a string starting at `pos`; its value. */
  const string = (): string => {
    const start = pos;
    pos++;
    for (;;) {
      const c = text.charCodeAt(pos);
      if (c === 92) pos += 2;
      else if (c === 34) break;
      else pos++;
    }
    pos++;
    return JSON.parse(text.slice(start, pos)) as string;
  };
  // Recursion is bounded: the loader refuses documents nested deeper than MAX_RULE_NESTING first.
  const node = (): Position => {
    skip();
    const start = pos;
    const c = text[pos];
    if (c === '{') {
      pos++;
      const keys = new Map<string, { key: number; value: Position }>();
      skip();
      if (text[pos] === '}') {
        pos++;
        return { start, keys };
      }
      for (;;) {
        skip();
        const keyStart = pos;
        const key = string();
        skip();
        pos++; // the colon
        const value = node();
        // The yaml library finds a key's first occurrence; JSON.parse keeps its last value.
        if (!keys.has(key)) keys.set(key, { key: keyStart, value });
        skip();
        if (text[pos++] === '}') return { start, keys };
      }
    }
    if (c === '[') {
      pos++;
      const items: Position[] = [];
      skip();
      if (text[pos] === ']') {
        pos++;
        return { start, items };
      }
      for (;;) {
        items.push(node());
        skip();
        if (text[pos++] === ']') return { start, items };
      }
    }
    if (c === '"') string();
    else {
      while (pos < text.length && !/[\s,\]}]/.test(text[pos] as string)) pos++;
    }
    return { start };
  };
  const root = node();
  return (path) => offsetOf(root, path);
}
