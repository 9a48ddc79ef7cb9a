// The example rules (the copy in test/fixtures/example-rules, so that editing the shipped rules/
// breaks no test) as {path, text} sources, read at build time by Vite's glob import (no file
// system inside workerd).
import type { RuleSource } from '../../src/engine/load.js';

const files = import.meta.glob<string>('../fixtures/example-rules/**/*.{yaml,yml,json}', {
  query: '?raw',
  import: 'default',
  eager: true,
});

export const exampleRules: RuleSource[] = Object.entries(files).map(([path, text]) => ({
  path: path.replace(/^\.\.\//, 'test/'),
  text,
}));
