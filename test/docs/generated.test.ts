// The generated tables of docs/ (between <!-- generated:NAME --> markers) must be what
// scripts/gen-docs.ts writes from the code today: a field, operator, action, flag or route added
// without `npm run docs` fails here.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  GENERATED_FILES,
  generatedSections,
  renderFile,
  renderGenerated,
} from '../../scripts/gen-docs.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const sections = generatedSections();

describe('the generated sections of the documentation', () => {
  it.each(GENERATED_FILES)('%s is up to date (npm run docs regenerates it)', (file) => {
    const text = readFileSync(join(ROOT, file), 'utf8');
    expect(text).toContain('<!-- generated:');
    expect(renderFile(file, text, sections)).toBe(text);
  });

  it('places every section the script generates somewhere', () => {
    const text = GENERATED_FILES.map((file) => readFileSync(join(ROOT, file), 'utf8')).join('\n');
    const missing = Object.keys(sections).filter(
      (name) => !text.includes(`<!-- generated:${name} -->`),
    );
    expect(missing).toEqual([]);
  });

  it('sees a stale section, and refuses a section it does not know', () => {
    const stale = '<!-- generated:operators -->\n| old |\n<!-- /generated:operators -->';
    expect(renderGenerated(stale, sections)).toContain('{"hours_since": iso}');
    expect(renderGenerated(stale, sections)).not.toContain('| old |');
    expect(() => renderGenerated('<!-- generated:nope -->\n<!-- /generated:nope -->')).toThrow(
      'unknown generated section "nope"',
    );
  });

  it('lists every field of every type with its choices, from the field table', () => {
    expect(sections.fields).toContain('| `priority` | priority | low, medium, high, critical |');
    expect(sections.fields).toContain('**asset** (`itsm/assets`)');
    expect(sections.operators).toContain('`{"rank": x}`');
  });
});
