#!/usr/bin/env node
// Entry point of the `itsm-rules` command. It runs the compiled JavaScript of dist/ (what
// `npm run build` emits, `npm start` builds first and the published package ships), which starts
// in a fraction of the time and memory of compiling TypeScript at every start.
//
// In a checkout (src/ present) dist/ is used only while it is up to date: its build stamp must be
// newer than every file and folder under src/. An edit, a `git checkout` or a deleted file makes
// it older, and the command then runs the TypeScript sources through tsx (a dev dependency),
// exactly as if dist/ did not exist, so a stale build never runs old code in development. An
// installed package has no src/ and always runs dist/.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const sources = join(root, 'src');
const build = join(root, 'dist');
/** Written by `npm run build` (scripts/build-stamp.mjs) once the compile succeeded. */
const stamp = join(build, '.build-stamp');

/** The latest modification time of `dir` and of anything under it. */
function newestUnder(dir) {
  let newest = statSync(dir).mtimeMs;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestUnder(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function buildIsCurrent() {
  if (!existsSync(stamp)) return false;
  return newestUnder(sources) <= statSync(stamp).mtimeMs;
}

let cli;
if (!existsSync(sources)) {
  if (!existsSync(join(build, 'runtime', 'cli.js'))) {
    console.error(
      `itsm-rules: ${build} is missing; this copy was packed without \`npm run build\` (reinstall it, or run \`npm run build\` in its folder)`,
    );
    process.exit(1);
  }
  cli = '../dist/runtime/cli.js';
} else if (buildIsCurrent()) {
  cli = '../dist/runtime/cli.js';
} else {
  const { register } = await import('tsx/esm/api');
  register();
  cli = '../src/runtime/cli.ts';
}
const { main } = await import(cli);
process.exit(await main(process.argv.slice(2)));
