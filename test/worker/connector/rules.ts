// The rules of the engine over a ServiceNow instance (test/fixtures/servicenow-engine-rules, the
// ones `serve --servicenow` runs in test/servicenow/serve-servicenow.test.ts) as {path, text}
// sources, read at build time by Vite's glob import (no file system inside workerd).
import type { RuleSource } from '../../../src/engine/load.js';

const files = import.meta.glob<string>('../../fixtures/servicenow-engine-rules/**/*.yaml', {
  query: '?raw',
  import: 'default',
  eager: true,
});

export const serviceNowRules: RuleSource[] = Object.entries(files).map(([path, text]) => ({
  path: path.replace(/^\.\.\/\.\.\//, 'test/'),
  text,
}));

const scheduleFiles = import.meta.glob<string>(
  '../../fixtures/servicenow-schedule-rules/**/*.yaml',
  { query: '?raw', import: 'default', eager: true },
);

/** Those rules and a scheduled one (test/fixtures/servicenow-schedule-rules): a Worker's own. */
export const serviceNowScheduleRules: RuleSource[] = [
  ...serviceNowRules,
  ...Object.entries(scheduleFiles).map(([path, text]) => ({
    path: path.replace(/^\.\.\/\.\.\//, 'test/'),
    text,
  })),
];
