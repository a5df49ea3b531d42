#!/usr/bin/env bash
# bench/steady.sh — steady state: mail at a fixed rate for a long time, delivery on, and
# queue-service's memory and status/scrape latency sampled throughout (issue 15's third figure).
#
#   bench/steady.sh                                  # SECONDS_TOTAL=1800 RATE=600: 30 minutes, ~1.1 M
#                                                    # messages, samples every 10 s (runs 2026-11-30,
#                                                    # bench/README.md)
#   SECONDS_TOTAL=600 bench/steady.sh                # 10 minutes (runs 2026-11-30, bench/README.md)
#   SECONDS_TOTAL=600 INTERVAL=15 BIN_DIR=/tmp/fresh-check2/build/bin bench/steady.sh
#                                                    # the same with other binaries (before/after)
# The bounded version in ./scripts/test is tests/e2e/test_steady.py (90 s; what it can and cannot
# check in that time is said there).
#
# RATE defaults to about half the peak 1 KiB accept rate bench/run.sh measures on 2 cores.
# Warm-up is the first sixth; the first and the last third after it are compared (printed, not
# judged): queue-service RSS (issue 15 asks for a ratio within 1 ± 0.10), GetQueueStatus and
# /metrics latency; each sample also shows where the memory is (postgate_queue_memory_bytes). Then every accepted message must be in the Maildir once the queue is empty.
# Prints the samples and a summary line; exits non-zero if anything was lost. Uses bench/lib.sh (Release build, loopback, throw-away data).
source "$(dirname "$0")/lib.sh"
seconds=${SECONDS_TOTAL:-1800}
rate=${RATE:-600}
interval=${INTERVAL:-$(( seconds >= 600 ? 10 : 5 ))}
warmup=$(( seconds / 6 ))
PY=/usr/bin/python3
bench_start_postgate
metrics_port=$(sed -n 's/.*listening grpc=[0-9.]*:[0-9]* metrics=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/queue.log" | head -1)
echo "[steady] $rate msg/s for $seconds s, samples every $interval s, warm-up $warmup s; binaries: ${BIN_DIR:-build/bin}" >&2
$PY bench/probe.py latency 127.0.0.1 2625 --rate "$rate" --seconds "$seconds" --connections 50 >"$work/probe.out" &
probe=$!
PYTHONPATH=$repo/build/tests/python $PY bench/steady.py "$queue_pid" 50651 "$metrics_port" \
  --seconds "$seconds" --interval "$interval" --warmup "$warmup" | tee "$work/samples.txt"
wait "$probe" || true
probe_line=$(cat "$work/probe.out")
accepted=$(echo "$probe_line" | tr ' ' '\n' | sed -n 's/^accepted=//p')
for _ in $(seq 1 600); do eval "$postgate_empty" && break; sleep 1; done
delivered=$(find "$postgate_maildir/new" -type f | wc -l)
summary=$(tail -1 "$work/samples.txt")
echo "[steady] probe: $probe_line" >&2
echo "steady: $summary accepted=$accepted delivered=$delivered rss_now_mib=$(awk '/^VmRSS:/ {printf "%.0f", $2/1024}' /proc/$queue_pid/status)"
[ "${accepted:-0}" -gt 0 ] && [ "$accepted" = "$delivered" ] || { echo "steady: accepted $accepted but delivered $delivered" >&2; exit 1; }
