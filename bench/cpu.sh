#!/usr/bin/env bash
# bench/cpu.sh — CPU time each Postgate service spends per message, the steadiest figure on a
# noisy machine (throughput swings run to run; CPU per message barely does). Starts Postgate
# (bench/lib.sh), sends MSGS messages of SIZE bytes over 100 sessions, one per connection, waits
# until all are in Maildir and the queue is empty, and prints user + system milliseconds per
# message for smtp-gateway and queue-service, read from /proc/PID/stat before and after.
#
# Each run then sends the same load to the reference Postfix and prints the CPU all of its
# processes spent per message (master with every child it reaped, and the children still running).
#
#   bench/cpu.sh                    # MSGS=3000 SIZE=1024 RUNS=3
#   SIZE=102400 MSGS=1000 bench/cpu.sh
#   POSTFIX=0 bench/cpu.sh          # Postgate only
#   PERF=1 bench/cpu.sh             # also perf record -g both services (build/bench-perf.*.data)
#   COUNTS=1 bench/cpu.sh           # also system calls, futex calls and context switches per
#                                   # message of each service (perf stat on kernel tracepoints):
#                                   # counts move far less than CPU time with the machine's noise
#   COUNTS=1 SYSCALLS="write sendto fsync" bench/cpu.sh   # + those system calls per message, each
MSGS=${MSGS:-3000}
SIZE=${SIZE:-1024}
RUNS=${RUNS:-3}
SESSIONS=${SESSIONS:-100}
POSTFIX=${POSTFIX:-1}
source "$(dirname "$0")/lib.sh"
bench_start_postgate
[ "$POSTFIX" = 1 ] && bench_start_postfix

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }  # utime + stime, in clock ticks
# Postfix as a whole: master's own and its reaped children's time (cutime + cstime), and the
# children still running. (A child that exits between the listing and the read is missed by one
# snapshot; its time shows up in master's cutime from then on.)
postfix_ticks() {
  local master
  master=$(tr -d ' ' </var/spool/postfix/pid/master.pid)
  {
    awk '{ print $14 + $15 + $16 + $17 }' "/proc/$master/stat"
    for child in $(pgrep -P "$master"); do awk '{ print $14 + $15 + $16 + $17 }' "/proc/$child/stat" 2>/dev/null; done
  } | awk '{ total += $1 } END { print total }'
}
hz=$(getconf CLK_TCK)
# A perf started in the background counts only once it has opened its events: wait for its
# perf_event descriptors (up to 10 s) so the load's first messages are not missed.
perf_attached() {
  for _ in $(seq 1 100); do
    ls -l "/proc/$1/fd" 2>/dev/null | grep -q perf_event && return 0
    sleep 0.1
  done
  echo "bench: perf (pid $1) did not attach" >&2
  return 1
}
for run in $(seq 1 "$RUNS"); do
  g0=$(cpu_ticks "$gateway_pid"); q0=$(cpu_ticks "$queue_pid")
  perf_pids=()
  if [ -n "${PERF:-}" ] && [ "$run" = "$RUNS" ]; then
    for p in gateway:$gateway_pid queue:$queue_pid; do
      perf record -q ${PERF_OPTS:--g} -p "${p#*:}" -o "$repo/build/bench-perf.${p%%:*}.data" >"$repo/build/bench-perf.${p%%:*}.log" 2>&1 &
      perf_pids+=($!)
    done
  fi
  count_pids=()
  if [ -n "${COUNTS:-}" ]; then
    events=raw_syscalls:sys_enter,syscalls:sys_enter_futex,sched:sched_switch
    for call in ${SYSCALLS:-}; do events+=",syscalls:sys_enter_$call"; done
    for p in gateway:$gateway_pid queue:$queue_pid; do
      perf stat -x, -e "$events" -p "${p#*:}" \
        -o "$work/counts.${p%%:*}" &
      count_pids+=($!)
    done
  fi
  for p in "${perf_pids[@]}" "${count_pids[@]}"; do perf_attached "$p"; done
  out=$("$HARNESS/smtp-load.sh" -L postgate -s "$SESSIONS" -m "$MSGS" -l "$SIZE" -n 1 "${bench_clean[@]}" \
    -D "$postgate_maildir" -q "$postgate_empty" 127.0.0.1 2625)
  for p in "${perf_pids[@]}" "${count_pids[@]}"; do kill -INT "$p"; wait "$p" || true; done
  g1=$(cpu_ticks "$gateway_pid"); q1=$(cpu_ticks "$queue_pid")
  line=$(echo "$out" | grep '^run=')
  accepted=$(echo "$line" | sed -n 's/.*accept_mps=\([0-9.]*\).*/\1/p')
  delivered=$(echo "$line" | sed -n 's/.*deliver_mps=\([0-9.]*\).*/\1/p')
  awk -v g=$((g1 - g0)) -v q=$((q1 - q0)) -v hz="$hz" -v n="$MSGS" -v a="$accepted" -v d="$delivered" \
    -v run="$run" -v size="$SIZE" 'BEGIN {
      printf "run=%d size=%d msgs=%d accepted=%s/s delivered=%s/s cpu_ms_per_msg gateway=%.3f queue=%.3f total=%.3f\n",
        run, size, n, a, d, g * 1000 / hz / n, q * 1000 / hz / n, (g + q) * 1000 / hz / n }'
  if [ -n "${COUNTS:-}" ]; then
    for service in gateway queue; do
      # perf stat -x, lines: count,unit,event,...
      awk -F, -v n="$MSGS" -v run="$run" -v service="$service" '
        $3 == "raw_syscalls:sys_enter" { syscalls = $1 }
        $3 == "syscalls:sys_enter_futex" { futex = $1 }
        $3 == "sched:sched_switch" { switches = $1 }
        $3 ~ /^syscalls:sys_enter_/ && $3 != "syscalls:sys_enter_futex" {
          each = each sprintf(" %s=%.2f", substr($3, 20), $1 / n) }
        END { printf "run=%d counts_per_msg %s syscalls=%.1f futex=%.1f context_switches=%.1f%s\n",
                run, service, syscalls / n, futex / n, switches / n, each }' "$work/counts.$service"
    done
  fi
  [ "$POSTFIX" = 1 ] || continue
  p0=$(postfix_ticks)
  out=$("$HARNESS/smtp-load.sh" -L postfix -s "$SESSIONS" -m "$MSGS" -l "$SIZE" -n 1 "${bench_clean[@]}" \
    -D "$postfix_maildir" -q "$postfix_empty" 127.0.0.1 25)
  p1=$(postfix_ticks)
  line=$(echo "$out" | grep '^run=')
  accepted=$(echo "$line" | sed -n 's/.*accept_mps=\([0-9.]*\).*/\1/p')
  delivered=$(echo "$line" | sed -n 's/.*deliver_mps=\([0-9.]*\).*/\1/p')
  awk -v p=$((p1 - p0)) -v hz="$hz" -v n="$MSGS" -v a="$accepted" -v d="$delivered" -v run="$run" -v size="$SIZE" 'BEGIN {
      printf "run=%d size=%d msgs=%d postfix accepted=%s/s delivered=%s/s cpu_ms_per_msg all_processes=%.3f\n",
        run, size, n, a, d, p * 1000 / hz / n }'
done
