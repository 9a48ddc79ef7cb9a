#!/usr/bin/env node
// Entry point of the `itsm-rules` command. It runs the compiled JavaScript of dist/ (what
// `npm run build` emits, `npm start` builds first and the published package ships), which starts
// in a fraction of the time and memory of compiling TypeScript at every start.
//
// In a checkout, dist/ is used only while it is up to date with src/ (bin/build-state.js);
// otherwise the command runs the TypeScript sources through tsx (a dev dependency), exactly as if
// dist/ did not exist, so a stale build never runs old code in development. An installed package
// has no src/ and always runs dist/.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { BUILD, buildIsCurrent, hasSources } from './build-state.js';

// Start lean: V8's young generation stays at its initial size instead of doubling while the
// start-up allocates (and keeping the memory). The serving commands let it grow again once they
// listen (src/runtime/heap.ts says why); one-shot commands such as `check` keep it small.
setFlagsFromString('--semi-space-growth-factor=1');
// fetch parses HTTP with llhttp, a WebAssembly module whose main function V8 tiers up to optimised
// code as soon as one response has run through it: a compile of ~30 MB of native memory, much of
// which glibc keeps, in a server that is otherwise idle. With a budget 100 times V8's default
// (1.8 million) it tiers up after some tens of responses instead of the first, so a server under
// load still runs the optimised parser within a second while an idle one never compiles it.
setFlagsFromString('--wasm-tiering-budget=180000000');

let cli;
if (!hasSources()) {
  if (!existsSync(join(BUILD, 'runtime', 'cli.js'))) {
    console.error(
      `itsm-rules: ${BUILD} is missing; this copy was packed without \`npm run build\` (reinstall it, or run \`npm run build\` in its folder)`,
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
