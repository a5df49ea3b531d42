# bench/lib.sh — sourced by the bench scripts: builds Release, and starts (and on exit stops)
# Postgate, the reference Postfix and smtp-sink on loopback. Sets: repo, HARNESS, work, pids.
# BIN_DIR (default build/bin) runs other Postgate binaries, e.g. an earlier release's.
#   bench_start_postgate   Postgate on 127.0.0.1:2625 (gRPC 50651), reference config/main.cf
#                          plus $EXTRA_CF, a throw-away data directory under $work; sets
#                          gateway_metrics_url and queue_metrics_url
#   bench_start_postfix    ../shared/bench/postfix-peer.sh on 127.0.0.1:25
#   bench_start_sink       Postfix's smtp-sink on 127.0.0.1:2526 (stores nothing)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
HARNESS=${HARNESS:-$repo/../shared/bench}
[ -x "$HARNESS/smtp-load.sh" ] || { echo "bench: $HARNESS/smtp-load.sh not found (set HARNESS=)" >&2; exit 2; }

scripts/deps.sh build >/dev/null
scripts/build.sh Release build >/dev/null

# Not under /tmp: on a busy /tmp, file creation on ext4 is slow (inode allocation skips recently
# deleted inodes), which would measure the machine rather than the server.
mkdir -p "$repo/build"
bin_dir=${BIN_DIR:-$repo/build/bin}
work=$(mktemp -d "${BENCH_DIR:-$repo/build}/bench-data.XXXXXX")
pids=()
started_postfix=0
bench_cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  if [ "$started_postfix" = 1 ]; then
    "$HARNESS/postfix-peer.sh" stop >/dev/null 2>&1 || true
    # What the runs added (they do not empty it, see bench_clean), like Postgate's data below.
    find "$postfix_maildir/new" "$postfix_maildir/cur" -type f -delete 2>/dev/null || true
  fi
  [ -n "${KEEP:-}" ] && echo "bench: kept $work" >&2 || rm -rf "$work"
}
trap bench_cleanup EXIT
source scripts/raise-fd-limit.sh

# The Maildirs are not emptied between runs (smtp-load.sh counts what each run adds): on ext4
# without a journal, as here, a file created within minutes of thousands of deletions in its
# block group first scans past every recently freed inode (recently_deleted(), up to 360 s), so
# emptying the Maildir before a run measures the harness's deletions, not the server. CLEAN=1
# empties them before each run as the harness used to (both servers alike).
bench_clean=()
[ -n "${CLEAN:-}" ] && bench_clean=(-C)

bench_wait_port() {  # PORT WHAT: up to 10 s.
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "bench: $2 did not start on port $1" >&2
  return 1
}

bench_metrics_port() {  # LOG SERVICE: the metrics port its "SERVICE listening" line names.
  local port
  for _ in $(seq 1 100); do
    port=$(sed -n "s/.*$2 listening .* metrics=127\.0\.0\.1:\([0-9]*\).*/\1/p" "$1" | head -1)
    [ -n "$port" ] && { echo "$port"; return 0; }
    sleep 0.1
  done
  echo "bench: no metrics port in $1" >&2
  return 1
}

bench_start_postgate() {
  cp config/main.cf config/aliases "$work/"
  printf '\npostgate_data_directory = %s\npostgate_smtpd_health_listen = 127.0.0.1:0\n' "$work/var" >>"$work/main.cf"
  [ -n "${EXTRA_CF:-}" ] && printf '%s\n' "$EXTRA_CF" >>"$work/main.cf"
  # The TLS pair and admin token config/main.cf names live under the data directory.
  scripts/make-snakeoil-cert.sh "$work/var/tls" mail169.com 2>/dev/null
  openssl rand -hex 32 >"$work/var/admin-token"
  # smtp-source -r N sends to 1bar…Nbar; alias them like the Postfix peer does.
  for i in $(seq 1 100); do echo "${i}bar: bar"; done >>"$work/aliases"
  "$bin_dir/queue-service" --config "$work/main.cf" --data-dir "$work/var" --listen 127.0.0.1:50651 \
    --metrics 127.0.0.1:0 >"$work/queue.log" 2>&1 &
  pids+=($!)
  queue_pid=$!
  # The gateway answers 451 while it cannot reach the queue: start it once the queue listens.
  bench_wait_port 50651 queue-service || { cat "$work/queue.log" >&2; exit 1; }
  "$bin_dir/smtp-gateway" --config "$work/main.cf" --listen 127.0.0.1:2625 --queue 127.0.0.1:50651 \
    --metrics 127.0.0.1:0 >"$work/gateway.log" 2>&1 &
  pids+=($!)
  gateway_pid=$!
  bench_wait_port 2625 Postgate || { cat "$work/queue.log" "$work/gateway.log" >&2; exit 1; }
  mkdir -p "$work/var/mail/bar/new" "$work/var/mail/bar/cur"
  postgate_maildir=$work/var/mail/bar
  # Their /metrics (bench/stages.py), from the start-up lines (up to 10 s).
  queue_metrics_url=http://127.0.0.1:$(bench_metrics_port "$work/queue.log" queue-service)/metrics
  gateway_metrics_url=http://127.0.0.1:$(bench_metrics_port "$work/gateway.log" smtp-gateway)/metrics
  postgate_empty="$bin_dir/queuectl --server 127.0.0.1:50651 status | grep -q '^pending: 0 messages'"
}

bench_start_postfix() {
  "$HARNESS/postfix-peer.sh" start >/dev/null
  started_postfix=1
  postfix_maildir=/home/bar/Maildir
  postfix_empty="postqueue -p | grep -q 'queue is empty'"
}

bench_start_sink() {
  local sink
  sink=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
  "$sink" -u nobody -c 127.0.0.1:2526 1000 >/dev/null 2>&1 &
  pids+=($!)
  bench_wait_port 2526 smtp-sink
}

# Peak RSS so far (VmHWM) of a process, in MiB.
bench_peak_rss_mib() { awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
