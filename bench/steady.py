#!/usr/bin/env python3
"""bench/steady.py — samples queue-service while bench/steady.sh keeps mail flowing.

  steady.py PID GRPC_PORT METRICS_PORT --seconds S --interval I --warmup W

Every I seconds: the process's RSS, how long GetQueueStatus and a /metrics scrape take, and the
queue's pending and DONE counts, and where the memory is (postgate_queue_memory_bytes, MiB:
store memtables, store table readers, store block cache, C heap in use, heap free); one line per sample. At the end, the mean RSS and latencies of
the first and the last third of the run after the warm-up W (each window (S - W) / 3 long) and
their ratio, as key=value pairs on the last line. Needs /usr/bin/python3 (grpc) and the test
stubs on PYTHONPATH (build/tests/python).
"""
import argparse
import re
import statistics
import time
import urllib.request

import grpc

from postgate.queue.v1 import queue_pb2, queue_pb2_grpc
from probe import rss_mib  # bench/probe.py, beside this file


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pid", type=int)
    parser.add_argument("grpc_port", type=int)
    parser.add_argument("metrics_port", type=int)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--interval", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=0)
    args = parser.parse_args()

    stub = queue_pb2_grpc.QueueServiceStub(grpc.insecure_channel(f"127.0.0.1:{args.grpc_port}"))
    samples = []
    start = time.monotonic()
    print("t_s rss_mib status_ms scrape_ms pending done memtables_mib tables_mib cache_mib heap_mib heap_free_mib", flush=True)
    while (elapsed := time.monotonic() - start) < args.seconds:
        began = time.monotonic()
        status = stub.GetQueueStatus(queue_pb2.GetQueueStatusRequest(), timeout=30)
        status_ms = (time.monotonic() - began) * 1000
        began = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{args.metrics_port}/metrics", timeout=30) as response:
            scrape = response.read().decode()
        parts = {m.group(1): float(m.group(2)) / (1 << 20)
                 for m in re.finditer(r'^postgate_queue_memory_bytes\{part="(\w+)"\} (\S+)$', scrape, re.M)}
        scrape_ms = (time.monotonic() - began) * 1000
        done = {entry.state: entry.messages for entry in status.by_state}[queue_pb2.MESSAGE_STATE_DONE]
        sample = (elapsed, rss_mib(args.pid), status_ms, scrape_ms, status.total_messages, done,
                  *(parts.get(part, 0.0) for part in ("store_memtables", "store_table_readers", "store_block_cache", "heap_in_use", "heap_free")))
        samples.append(sample)
        print("%.0f %.1f %.2f %.2f %d %d %.1f %.1f %.1f %.1f %.1f" % sample, flush=True)
        time.sleep(max(0.0, args.interval - (time.monotonic() - began)))

    window = (args.seconds - args.warmup) / 3
    first = [s for s in samples if args.warmup <= s[0] < args.warmup + window]
    last = [s for s in samples if s[0] >= args.seconds - window]
    if not first or not last:
        raise SystemExit("steady: too few samples for the windows (lengthen --seconds or shorten --interval)")

    def mean(rows, column):
        return statistics.fmean(row[column] for row in rows)
    rss_first, rss_last = mean(first, 1), mean(last, 1)
    print("rss_first_mib=%.1f rss_last_mib=%.1f rss_ratio=%.3f status_first_ms=%.2f status_last_ms=%.2f "
          "scrape_first_ms=%.2f scrape_last_ms=%.2f done_at_end=%d" % (
              rss_first, rss_last, rss_last / rss_first, mean(first, 2), mean(last, 2), mean(first, 3),
              mean(last, 3), samples[-1][5]), flush=True)


if __name__ == "__main__":
    main()
