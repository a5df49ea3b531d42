#!/usr/bin/env bash
# scripts/runtime-packages.sh BINARY... — prints, one per line, the Debian packages that hold the
# shared libraries the binaries link (ldd, then dpkg -S; a library found through a symlink is
# looked up by its real path too). The image build installs exactly these in the runtime stages.
set -euo pipefail
for binary in "$@"; do ldd "$binary" | awk '/=> \//{print $3}'; done | sort -u \
  | while read -r library; do dpkg -S "$library" 2>/dev/null || dpkg -S "$(readlink -f "$library")"; done \
  | cut -d: -f1 | sort -u
