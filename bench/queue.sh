#!/usr/bin/env bash
# bench/queue.sh — issue 15's three queue-service figures, one after the other, from one command:
#   1. relayed throughput against Postfix, both relaying to the same smtp-sink (bench/relay.sh,
#      medians of RUNS runs; target ≥ 3×),
#   2. SESSIONS concurrent outbound sessions to a slow sink (bench/outbound.sh; all held at once,
#      RSS ≤ 512 MiB, each message delivered once),
#   3. steady state for SECONDS_TOTAL seconds at RATE msg/s with delivery on (bench/steady.sh;
#      RSS and status/scrape latency first vs last third, nothing lost).
# Each part prints its table; the exit status is non-zero if any part failed its check.
#   bench/queue.sh                                          # about 35 minutes on 2 cores
#   RUNS=1 MSGS=500 SESSIONS=1000 HOLD=10 SECONDS_TOTAL=120 bench/queue.sh   # a quick look
cd "$(dirname "$0")/.."
status=0
echo "== 1/3 relayed throughput (bench/relay.sh)"
bench/relay.sh || status=1
echo "== 2/3 outbound sessions (bench/outbound.sh)"
bench/outbound.sh || status=1
echo "== 3/3 steady state (bench/steady.sh)"
bench/steady.sh || status=1
exit $status
