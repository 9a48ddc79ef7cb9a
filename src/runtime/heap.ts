// The young generation of a server process after its start. bin/itsm-rules.js starts every
// command with V8's young generation held at its initial size (semi-space growth factor 1):
// left to itself V8 doubles it (up to 16 MB per semi-space) while the start-up allocates, and
// keeps it, which is most of the difference between an idle `serve` at ~75 MB and at ~90 MB, and
// keeps `check` of 1000 rule files under 100 MB. A server that takes load wants it back, so that
// short-lived request garbage dies young instead of being promoted: once listening, the serving
// commands restore V8's default growth, and the young generation grows with the load, not with
// the start-up.
import { setFlagsFromString } from 'node:v8';

/** V8's default semi-space growth factor (flag --semi-space-growth-factor). */
const DEFAULT_GROWTH = 2;

/** Lets V8 grow the young generation again (a no-op when bin/itsm-rules.js did not hold it). */
export function letYoungGenerationGrow(): void {
  setFlagsFromString(`--semi-space-growth-factor=${DEFAULT_GROWTH}`);
}
