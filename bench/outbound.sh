#!/usr/bin/env bash
# bench/outbound.sh — many outbound SMTP sessions at once (issue 15): Postgate relays SESSIONS
# 1 KiB messages (accepted from mynetworks, 100 sessions in, smtp-source) to bench/slow_sink.py,
# which holds every message's end of DATA for HOLD seconds. With default_process_limit and
# default_destination_concurrency_limit raised to SESSIONS, every conversation is open at the
# same time. Reports the most conversations the sink held at once, queue-service's peak RSS
# (VmHWM), and that every message arrived exactly once.
#   bench/outbound.sh                         # SESSIONS=10000 HOLD=30
#   SESSIONS=1000 HOLD=10 bench/outbound.sh   # quick look
SESSIONS=${SESSIONS:-10000}
HOLD=${HOLD:-30}
source "$(dirname "$0")/lib.sh"
sink_port=2527
/usr/bin/python3 bench/slow_sink.py "$sink_port" "$HOLD" "$work/sink.json" &
pids+=($!)
bench_wait_port "$sink_port" slow_sink.py
EXTRA_CF="relayhost = [127.0.0.1]:$sink_port
defer_transports =
default_process_limit = $SESSIONS
default_destination_concurrency_limit = $SESSIONS" bench_start_postgate
source_bin=$(command -v smtp-source || echo /usr/sbin/smtp-source)

sink() { /usr/bin/python3 -c "import json,sys; print(json.load(open('$work/sink.json'))[sys.argv[1]])" "$1"; }
t0=$(date +%s)
timeout 300 "$source_bin" -s 100 -m "$SESSIONS" -l 1024 -f foo@mail169.com -t user@relay.example 127.0.0.1:2625 \
  >/dev/null 2>&1 || { echo "outbound: smtp-source failed" >&2; exit 1; }
accepted_s=$(( $(date +%s) - t0 ))
deadline=$(( $(date +%s) + HOLD + 600 ))
until [ "$(sink messages)" -ge "$SESSIONS" ] && eval "$postgate_empty"; do
  [ "$(date +%s)" -lt "$deadline" ] || { echo "outbound: not all delivered: sink has $(sink messages)" >&2; exit 1; }
  sleep 0.5
done
sleep 1  # The sink's counters are written every half second.
delivered_s=$(( $(date +%s) - t0 ))
sent=$(grep -c 'relay=127.0.0.1\[127.0.0.1\]:2527.*status=sent' "$work/queue.log" || true)
rss=$(bench_peak_rss_mib "$queue_pid")
held=$(sink most_held)
messages=$(sink messages)
printf '| %d messages, DATA held %d s (accepted in %d s, all relayed after %d s) | measured | target |\n' \
  "$SESSIONS" "$HOLD" "$accepted_s" "$delivered_s"
printf '|---|---|---|\n'
printf '| most conversations held at once | %d | %d |\n' "$held" "$SESSIONS"
printf '| queue-service peak RSS (VmHWM) | %d MiB | ≤ 512 MiB |\n' "$rss"
printf '| messages the sink received / status=sent lines | %d / %d | %d / %d (each once) |\n' "$messages" "$sent" "$SESSIONS" "$SESSIONS"
[ "$held" -ge "$SESSIONS" ] && [ "$rss" -le 512 ] && [ "$messages" -eq "$SESSIONS" ] && [ "$sent" -eq "$SESSIONS" ]
