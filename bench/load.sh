#!/usr/bin/env bash
# bench/load.sh — Postgate and Postfix side by side in one run: Postfix's smtp-source drives
# 1, 10 and 100 concurrent sessions (one 1 KiB message per connection) at each server and
# reports accepted and delivered messages per second (medians of RUNS runs).
#
#   bench/load.sh                 # MSGS=2000 RUNS=3, both servers
#   MSGS=500 RUNS=1 bench/load.sh # quick look
#   ONLY=postgate bench/load.sh   # skip Postfix
#
# Needs ../shared/bench (smtp-load.sh, postfix-peer.sh; override with HARNESS=dir). Builds Release,
# starts Postgate on 127.0.0.1:2625 with a throw-away data directory, starts the reference Postfix
# on 127.0.0.1:25, and stops what it started on exit. Every phase is bounded by smtp-load.sh's
# timeouts. Root is needed for Postfix (it installs and runs the Debian package).
MSGS=${MSGS:-2000}
RUNS=${RUNS:-3}
SIZE=${SIZE:-1024}
SESSIONS=${SESSIONS:-"1 10 100"}
ONLY=${ONLY:-}
source "$(dirname "$0")/lib.sh"
bench_start_postgate

[ "$ONLY" != postgate ] && bench_start_postfix

results=$work/results.txt
: >"$results"
for s in $SESSIONS; do
  for server in postgate postfix; do
    [ -n "$ONLY" ] && [ "$ONLY" != "$server" ] && continue
    if [ $server = postgate ]; then
      out=$("$HARNESS/smtp-load.sh" -L postgate -s "$s" -m "$MSGS" -l "$SIZE" -n "$RUNS" "${bench_clean[@]}" \
        -D "$postgate_maildir" -q "$postgate_empty" 127.0.0.1 2625)
    else
      out=$("$HARNESS/smtp-load.sh" -L postfix -s "$s" -m "$MSGS" -l "$SIZE" -n "$RUNS" "${bench_clean[@]}" \
        -D "$postfix_maildir" -q "$postfix_empty" 127.0.0.1 25)
    fi
    echo "$out" | grep -E '^(run=|SUMMARY)' >&2
    echo "$out" | grep '^SUMMARY' >>"$results"
  done
done

median() { sed -n "s/.*$1\[[^]]*median=\([0-9.]*\).*/\1/p"; }
printf '\n%-9s %-9s %14s %15s\n' sessions server accepted_msg/s delivered_msg/s
for s in $SESSIONS; do
  for server in postgate postfix; do
    line=$(grep "label=$server sessions=$s " "$results" || true)
    [ -z "$line" ] && continue
    printf '%-9s %-9s %14s %15s\n' "$s" "$server" "$(echo "$line" | median accepted_mps)" \
      "$(echo "$line" | median delivered_mps)"
  done
  pg=$(grep "label=postgate sessions=$s " "$results" | median accepted_mps || true)
  pf=$(grep "label=postfix sessions=$s " "$results" | median accepted_mps || true)
  if [ -n "$pg" ] && [ -n "$pf" ]; then
    printf '%-9s %-9s %14s\n' "$s" "ratio" "$(echo "scale=2; $pg / $pf" | bc -l)x"
  fi
done
