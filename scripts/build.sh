#!/usr/bin/env bash
# Configures and builds Postgate with CMake + Ninja. Usage: scripts/build.sh [BUILD_TYPE] [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build_type=${1:-Release}
build_dir=${2:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" >/dev/null
cmake --build "$build_dir" --parallel "$(nproc)"
