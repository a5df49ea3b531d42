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
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
HARNESS=${HARNESS:-$repo/../shared/bench}
MSGS=${MSGS:-2000}
RUNS=${RUNS:-3}
SIZE=${SIZE:-1024}
SESSIONS=${SESSIONS:-"1 10 100"}
ONLY=${ONLY:-}
[ -x "$HARNESS/smtp-load.sh" ] || { echo "bench: $HARNESS/smtp-load.sh not found (set HARNESS=)" >&2; exit 2; }

scripts/deps.sh build >/dev/null
scripts/build.sh Release build >/dev/null

work=$(mktemp -d /tmp/postgate-bench.XXXXXX)
pids=()
started_postfix=0
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  [ "$started_postfix" = 1 ] && "$HARNESS/postfix-peer.sh" stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Postgate with the reference configuration, on its own ports and data directory (the TLS pair and
# admin token config/main.cf names live under it).
cp config/main.cf config/aliases "$work/"
printf '\npostgate_data_directory = %s\npostgate_smtpd_health_listen = 127.0.0.1:0\n' "$work/var" >>"$work/main.cf"
scripts/make-snakeoil-cert.sh "$work/var/tls" mail169.com 2>/dev/null
openssl rand -hex 32 >"$work/var/admin-token"
# smtp-source -r N sends to 1bar…Nbar; alias them like the Postfix peer does.
for i in $(seq 1 100); do echo "${i}bar: bar"; done >>"$work/aliases"
build/bin/queue-service --config "$work/main.cf" --data-dir "$work/var" --listen 127.0.0.1:50651 \
  --metrics 127.0.0.1:0 >"$work/queue.log" 2>&1 &
pids+=($!)
build/bin/smtp-gateway --config "$work/main.cf" --listen 127.0.0.1:2625 --queue 127.0.0.1:50651 \
  --metrics 127.0.0.1:0 >"$work/gateway.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/2625) 2>/dev/null && break; sleep 0.1; done
(exec 3<>/dev/tcp/127.0.0.1/2625) 2>/dev/null || {
  echo "bench: Postgate did not start:" >&2
  cat "$work/queue.log" "$work/gateway.log" >&2
  exit 1
}
mkdir -p "$work/var/mail/bar/new" "$work/var/mail/bar/cur"
postgate_empty="build/bin/queuectl --server 127.0.0.1:50651 status | grep -q '^pending: 0 messages'"

if [ "$ONLY" != postgate ]; then
  "$HARNESS/postfix-peer.sh" start >/dev/null
  started_postfix=1
fi

results=$work/results.txt
: >"$results"
for s in $SESSIONS; do
  for server in postgate postfix; do
    [ -n "$ONLY" ] && [ "$ONLY" != "$server" ] && continue
    if [ $server = postgate ]; then
      out=$("$HARNESS/smtp-load.sh" -L postgate -s "$s" -m "$MSGS" -l "$SIZE" -n "$RUNS" -C \
        -D "$work/var/mail/bar" -q "$postgate_empty" 127.0.0.1 2625)
    else
      out=$("$HARNESS/smtp-load.sh" -L postfix -s "$s" -m "$MSGS" -l "$SIZE" -n "$RUNS" -C \
        -D /home/bar/Maildir -q "postqueue -p | grep -q 'queue is empty'" 127.0.0.1 25)
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
