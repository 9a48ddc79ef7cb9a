// The V8 flags every `itsm-rules` command starts with (bin/itsm-rules.js sets them before anything
// else loads). Kept in a file of their own so that bench/load.ts starts its baseline, the
// TypeScript sources through tsx, with the same ones.
import { setFlagsFromString } from 'node:v8';

/** The commands that keep running; the others (`check`, `test`, `schema`...) are one-shot. */
const SERVING = new Set(['serve', 'itsm-server']);

/** Sets the flags for `command` (the first argument of `itsm-rules`). */
export function setStartFlags(command) {
  // Start lean: V8's young generation stays at its initial size instead of doubling while the
  // start-up allocates (and keeping the memory). The serving commands let it grow again once they
  // listen (src/runtime/heap.ts says why); one-shot commands such as `check` keep it small.
  setFlagsFromString('--semi-space-growth-factor=1');
  // fetch parses HTTP with llhttp, a WebAssembly module whose main function V8 tiers up to
  // optimised code as soon as one response has run through it: a compile of ~30 MB of native
  // memory, much of which glibc keeps, in a server that is otherwise idle (`serve` all-in-one
  // fetches once at start, for the webhook handshake). With a budget 100 times V8's default
  // (1.8 million) it tiers up after some tens of responses instead of the first, so a server
  // under load still runs the optimised parser within a second while an idle one never compiles
  // it. (--liftoff-only would avoid the compile for good, at ~15% more CPU per fetch.)
  setFlagsFromString('--wasm-tiering-budget=180000000');
  if (!SERVING.has(command)) {
    // A one-shot command runs for a second or less: V8's optimising compiler, started on a
    // function after ~66 KB of its bytecode ran, spent more CPU (on its own threads) than it saved.
    // Ten times that budget optimises only what is really hot: `check` of 1000 rule files took
    // 27% less CPU and 2 MB less memory, of 4000 files 15% less CPU (--no-opt was 40% slower
    // there). A server keeps V8's default, which suits a long run.
    setFlagsFromString('--interrupt-budget=675840');
  }
}
