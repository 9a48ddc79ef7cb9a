// The example rules of rules/ as {path, text} sources, read at build time by Vite's glob import
// (no file system inside workerd): the Worker tests run the very rules the Worker bundles.
import type { RuleSource } from '../../src/engine/load.js';

const files = import.meta.glob<string>('../../rules/**/*.{yaml,yml,json}', {
  query: '?raw',
  import: 'default',
  eager: true,
});

export const exampleRules: RuleSource[] = Object.entries(files).map(([path, text]) => ({
  path: path.replace(/^(\.\.\/)+/, ''),
  text,
}));
