#!/usr/bin/env bash
# bench/micro.sh [FILTER] — builds Release and runs the Google Benchmark micro-benchmarks of the
# hot paths (build/benchmarks/*: SMTP line reading and parsing, DATA/BDAT decoding, queue IDs,
# message records and their protobuf encoding, the store's write path with and without fsync).
# FILTER is a --benchmark_filter regex. The store benchmark writes under $TMPDIR (default /tmp):
# point it at the disk you care about. Takes about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
scripts/build.sh Release build >/dev/null
for benchmark in build/benchmarks/*; do
  echo "== $(basename "$benchmark")"
  "$benchmark" --benchmark_filter="${1:-.}" --benchmark_min_time=0.5
done
