#!/usr/bin/env bash
# bench/console.sh — the web console with a large queue (issue 20): fills Postgate's queue with
# MESSAGES messages (default 100,000; remote recipients, which config/main.cf holds, so they stay
# deferred) through the gateway with smtp-source, starts queue-console, signs in, and times each
# page REQUESTS times (curl, one request after another, end to end). Prints p50 / p99 / max per
# page; fails if a list page's p99 exceeds LIMIT_MS (default 200). The list pages through the API
# a page at a time (50 messages), so its cost does not grow with the queue; a recipient filter
# that matches nothing reads every message (the last row), and is reported, not bounded.
#   bench/console.sh                              # about 3 minutes on 2 cores
#   MESSAGES=10000 REQUESTS=20 bench/console.sh   # a quick look
source "$(dirname "$0")/lib.sh"
MESSAGES=${MESSAGES:-100000}
REQUESTS=${REQUESTS:-50}
LIMIT_MS=${LIMIT_MS:-200}

bench_start_postgate
echo "bench: filling the queue with $MESSAGES messages (smtp-source, 50 sessions)…" >&2
started=$(date +%s)
sessions=50
smtp-source -s $sessions -m "$MESSAGES" -d -f bench@mail169.com -t someone@remote.example 127.0.0.1:2625
queuectl=("$bin_dir/queuectl" --server 127.0.0.1:50651)
# Every message deferred (its one attempt made): nothing active, all of them pending.
for _ in $(seq 1 600); do
  status=$("${queuectl[@]}" status)
  if grep -q "^pending: $MESSAGES messages" <<<"$status" && grep -qE '^active +0 ' <<<"$status"; then break; fi
  sleep 1
done
grep -q "^pending: $MESSAGES messages" <<<"$status" || { echo "bench: the queue did not fill:" >&2; echo "$status" >&2; exit 1; }
echo "bench: $MESSAGES messages deferred after $(( $(date +%s) - started )) s" >&2

"$bin_dir/queue-console" --listen 127.0.0.1:0 --server 127.0.0.1:50651 --token-file "$work/var/admin-token" \
  >"$work/console.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  console_port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$work/console.log" | head -1)
  [ -n "$console_port" ] && break
  sleep 0.1
done
[ -n "${console_port:-}" ] || { cat "$work/console.log" >&2; exit 1; }
base=http://127.0.0.1:$console_port
curl -s -o /dev/null -c "$work/cookies" --data-urlencode "operator=bench" \
  --data-urlencode "token=$(cat "$work/var/admin-token")" "$base/login"
first=$(curl -s -b "$work/cookies" "$base/messages" | grep -o 'data-queue-id="[0-9A-F]*"' | head -1 | cut -d'"' -f2)
middle=$("${queuectl[@]}" --json list --all | sed -n "$((MESSAGES / 2))p" | python3 -c 'import json,sys; print(json.load(sys.stdin)["queue_id"])')
[ -n "$first" ] && [ -n "$middle" ] || { echo "bench: no messages listed" >&2; exit 1; }

time_page() {  # NAME PATH BOUNDED: REQUESTS timed GETs; prints a table row; returns 1 over the limit.
  local name=$1 path=$2 bounded=$3 times
  times=$(for _ in $(seq 1 "$REQUESTS"); do
    curl -s -o /dev/null -b "$work/cookies" -w '%{http_code} %{time_total}\n' "$base$path"
  done)
  if grep -qv '^200 ' <<<"$times"; then echo "bench: $path answered $(grep -v '^200 ' <<<"$times" | head -1)" >&2; return 1; fi
  awk '{ print $2 * 1000 }' <<<"$times" | sort -n | awk -v name="$name" -v limit="$LIMIT_MS" -v bounded="$bounded" '
    { t[NR] = $1 }
    END {
      n = NR; p50 = t[int((n + 1) / 2)]; p99 = t[int(n * 0.99 + 0.999)]; if (p99 == "") p99 = t[n]
      verdict = bounded ? (p99 <= limit ? "met" : "**not met**") : "(reported)"
      printf "| %s | %.1f | %.1f | %.1f | %s |\n", name, p50, p99, t[n], verdict
      exit (bounded && p99 > limit) ? 1 : 0
    }'
}

echo
echo "$(date -u +%F), $(nproc) cores, Postgate $(git rev-parse --short HEAD), $MESSAGES messages queued (deferred), $REQUESTS requests per page"
echo
echo "| Page | p50 ms | p99 ms | max ms | ≤ $LIMIT_MS ms |"
echo "|---|---:|---:|---:|---|"
status=0
time_page "list, first page (oldest 50)" "/messages" 1 || status=1
time_page "list, page from the middle" "/messages?after=$middle" 1 || status=1
time_page "list, newest first" "/messages?order=newest" 1 || status=1
time_page "list, state=deferred, @remote.example" "/messages?state=deferred&recipient=%40remote.example" 1 || status=1
time_page "overview" "/" 1 || status=1
time_page "message page (with its content)" "/message/$first" 1 || status=1
REQUESTS=$(( REQUESTS < 5 ? REQUESTS : 5 )) time_page "list, a recipient no message has (reads all)" "/messages?recipient=nobody%40nowhere.example" 0 || true
echo
echo "console RSS $(bench_peak_rss_mib "${pids[-1]}") MiB peak; queue-service $(bench_peak_rss_mib "$queue_pid") MiB peak"
exit $status
