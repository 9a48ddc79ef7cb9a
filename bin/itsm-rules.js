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
import { BUILD, buildIsCurrent, hasSources } from './build-state.js';
import { setStartFlags } from './v8-flags.js';

setStartFlags(process.argv[2]);

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
const code = await main(process.argv.slice(2));
// process.exit() ends the process at once, dropping whatever stdout and stderr still hold: to a
// pipe (`itsm-rules test --json | jq`) Node writes asynchronously, and the kernel takes 64 KiB at
// a time, so a long report was cut there while the exit code still said 0. Wait until both
// streams have handed everything over, then exit: a server that has stopped may still hold a
// timer or a socket that would keep the process alive, so the exit stays explicit.
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exit(code);

/** Resolves once everything written to `stream` before now has been handed over (or cannot be). */
function flushed(stream) {
  return new Promise((resolve) => {
    // A reader that went away (`| head`) fails the write with EPIPE: nothing more can be
    // delivered, so that is done too, and not an error of the command.
    stream.once('error', () => resolve());
    stream.write('', () => resolve());
  });
}
