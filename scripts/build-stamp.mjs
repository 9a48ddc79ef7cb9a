// Last step of `npm run build`: marks dist/ as built from the sources as they are now.
// bin/itsm-rules.js runs dist/ only while this stamp is newer than everything under src/; tsc's
// incremental build leaves unchanged outputs (and their times) alone, so their times cannot say.
import { writeFileSync } from 'node:fs';

writeFileSync(new URL('../dist/.build-stamp', import.meta.url), `${new Date().toISOString()}\n`);
