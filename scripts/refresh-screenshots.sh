#!/usr/bin/env bash
# Refreshes the console screenshots in docs/images/ from the browser test, which drives the real
# console in Chromium and saves each page it visits under test/screenshots/ (git-ignored).
#   npm run screenshots
# Needs Debian's chromium (apt-get install chromium), as the browser test does.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf test/screenshots
npx vitest run --project node test/console/console-browser.test.ts
# The test's page name, then the name the README and docs/console.md show it under.
PAGES=(overview:console-overview run:console-run overview-parked:console-parked)
for pair in "${PAGES[@]}"; do
  if [[ ! -f "test/screenshots/${pair%%:*}.png" ]]; then
    echo "refresh-screenshots: the browser test saved no ${pair%%:*}.png; docs/images is unchanged" >&2
    exit 1
  fi
done
for pair in "${PAGES[@]}"; do
  cp "test/screenshots/${pair%%:*}.png" "docs/images/${pair#*:}.png"
  echo "docs/images/${pair#*:}.png <- test/screenshots/${pair%%:*}.png"
done
