#!/usr/bin/env bash
# bench/relay.sh — relayed throughput, side by side in one run (issue 15): Postgate and the
# reference Postfix each accept 1 KiB messages from mynetworks (100 sessions, one message per
# connection, smtp-source) for a remote domain and relay them to the same smtp-sink on loopback
# (relayhost = [127.0.0.1]:2526). Rate = messages / time from the first connection until the
# sender's queue is empty; every message must have been relayed (status=sent in its log).
#   bench/relay.sh                 # RUNS=3 MSGS=2000
#   RUNS=1 MSGS=500 bench/relay.sh # quick look
# Postfix's relayhost is set for the run and restored (to its previous value) on exit.
RUNS=${RUNS:-3}
MSGS=${MSGS:-2000}
source "$(dirname "$0")/lib.sh"
sink_relayhost='[127.0.0.1]:2526'
EXTRA_CF="relayhost = $sink_relayhost
defer_transports =" bench_start_postgate
bench_start_postfix
previous_relayhost=$(postconf -h relayhost)
restore_postfix() { postconf -e "relayhost = $previous_relayhost" && postfix reload >/dev/null 2>&1 || true; bench_cleanup; }
trap restore_postfix EXIT
postconf -e "relayhost = $sink_relayhost"
postfix reload >/dev/null 2>&1
bench_start_sink
source_bin=$(command -v smtp-source || echo /usr/sbin/smtp-source)

now() { date +%s.%N; }
sent_lines() {  # SERVER: how many messages it has relayed to the sink so far.
  case $1 in
    postgate) grep -c 'relay=127.0.0.1\[127.0.0.1\]:2526.*status=sent' "$work/queue.log" || true ;;
    postfix) grep -c 'postfix/smtp\[.*relay=127.0.0.1\[127.0.0.1\]:2526.*status=sent' /var/log/mail.log || true ;;
  esac
}
relay_once() {  # SERVER PORT EMPTY-CHECK: prints msg/s, or fails.
  local server=$1 port=$2 empty=$3 before t0 t1 after
  before=$(sent_lines "$server")
  t0=$(now)
  timeout 300 "$source_bin" -s 100 -m "$MSGS" -l 1024 -f foo@mail169.com -t user@relay.example \
    "127.0.0.1:$port" >/dev/null 2>&1 || { echo "relay: smtp-source to $server failed" >&2; return 1; }
  timeout 300 bash -c "until $empty; do sleep 0.05; done" || { echo "relay: $server queue not empty after 300 s" >&2; return 1; }
  t1=$(now)
  after=$(sent_lines "$server")
  [ $((after - before)) -ge "$MSGS" ] || { echo "relay: $server relayed $((after - before)) of $MSGS" >&2; return 1; }
  echo "$MSGS / ($t1 - $t0)" | bc -l
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -a postgate_rates postfix_rates
for run in $(seq 1 "$RUNS"); do
  p=$(relay_once postgate 2625 "$postgate_empty")
  f=$(relay_once postfix 25 "$postfix_empty")
  postgate_rates+=("$p")
  postfix_rates+=("$f")
  printf 'run %d: Postgate %.0f msg/s, Postfix %.0f msg/s, ratio %.2f\n' "$run" "$p" "$f" "$(echo "$p / $f" | bc -l)"
done
pg=$(printf '%s\n' "${postgate_rates[@]}" | median)
pf=$(printf '%s\n' "${postfix_rates[@]}" | median)
ratio=$(echo "$pg / $pf" | bc -l)
printf '\n| relayed 1 KiB via smtp-sink (medians of %d × %d) | Postgate | Postfix | ratio | target ≥ 3× |\n' "$RUNS" "$MSGS"
printf '|---|---|---|---|---|\n'
printf '| msg/s | %.0f | %.0f | %.2f× | %s |\n' "$pg" "$pf" "$ratio" "$(echo "$ratio >= 3" | bc -l | sed 's/1/met/;s/0/not met/')"
