// Whether the compiled build (dist/) may stand for the TypeScript sources (src/): always in an
// installed package (it has no src/), and in a checkout only while dist/'s build stamp (written
// by `npm run build`, scripts/build-stamp.mjs) is newer than every file and folder under src/.
// An edit, a `git checkout` or a deleted file makes it older. Used by bin/itsm-rules.js (which
// runs dist/ or the sources through tsx) and scripts/bundle-rules.ts (which bundles the Worker
// from dist/ or from the sources), so a stale build never runs old code.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package's folder (this file is in its bin/). */
export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BUILD = join(ROOT, 'dist');

/** The latest modification time of `dir` and of anything under it. */
function newestUnder(dir) {
  let newest = statSync(dir).mtimeMs;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestUnder(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** True in a checkout (src/ present), false in an installed package. */
export function hasSources(root = ROOT) {
  return existsSync(join(root, 'src'));
}

/** dist/ was built from src/ as it is now (in a checkout). */
export function buildIsCurrent(root = ROOT) {
  const stamp = join(root, 'dist', '.build-stamp');
  if (!existsSync(stamp)) return false;
  return newestUnder(join(root, 'src')) <= statSync(stamp).mtimeMs;
}
