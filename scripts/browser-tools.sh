#!/usr/bin/env bash
# The browser tests' tools: Debian's Chromium (scripts/deps.sh test installs it) and Playwright's
# driver library (npm playwright-core, which downloads no browser) under .tools/browser/.
# Usage: scripts/browser-tools.sh   → prints the node_modules directory for NODE_PATH.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/.tools/browser"
if ! command -v npm >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm >&2
fi
if [ ! -d "$dir/node_modules/playwright-core" ]; then
  mkdir -p "$dir"
  (cd "$dir" && { [ -f package.json ] || echo '{"private":true}' > package.json; } &&
   npm install --silent --no-audit --no-fund playwright-core@1 >&2)
fi
echo "$dir/node_modules"
