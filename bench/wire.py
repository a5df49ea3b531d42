#!/usr/bin/env python3
"""bench/wire.py — end of DATA → reply as the network saw it, from a capture on loopback.

  wire.py CAPTURE SERVER_PORT

Reads CAPTURE (pcap or pcapng, taken with e.g. `dumpcap -i lo -f "tcp port SERVER_PORT"`: whole
segments, as the end of data may ride at the end of a segment of the body) through tshark and
prints, as key=value pairs, how long the server took from each client segment that ends a
message's data ("\\r\\n.\\r\\n", or a lone ".\\r\\n") to the first segment it sent back on that
connection: count of 2xx replies, p50/p90/p99/max in ms (the same quantiles as probe.py), and how
many replies were not 2xx.

Why: bench/probe.py measures from its own event loop, which on a busy 2-core machine adds its
scheduling delays to the server's (bench/README.md, 2026-12-03). The capture's timestamps are taken
in the kernel as each segment crosses the loopback device, so they hold the server's latency only.
"""
import subprocess
import sys

END_OF_DATA = b"\r\n.\r\n"


def latencies(rows, server_port):
    """rows: (time in s, TCP stream, source port, payload bytes) in capture order.
    Returns (seconds of each 2xx reply, number of other replies)."""
    pending = {}
    samples, other = [], 0
    for time, stream, source_port, payload in rows:
        if not payload:
            continue
        if source_port != server_port:
            if payload.endswith(END_OF_DATA) or payload == b".\r\n":
                pending[stream] = time
            continue
        started = pending.pop(stream, None)
        if started is None:
            continue  # A reply to something else (greeting, MAIL, RCPT, DATA).
        if payload[:1] == b"2":
            samples.append(time - started)
        else:
            other += 1
    return samples, other


def quantile(samples, q):
    return samples[min(len(samples) - 1, int(q * len(samples)))]


def summary(samples, other):
    samples = sorted(samples)
    if not samples:
        return f"count=0 not_2xx={other}"
    ms = lambda seconds: f"{1000 * seconds:.2f}"  # noqa: E731
    return (f"count={len(samples)} p50_ms={ms(quantile(samples, 0.50))} p90_ms={ms(quantile(samples, 0.90))} "
            f"p99_ms={ms(quantile(samples, 0.99))} max_ms={ms(samples[-1])} not_2xx={other}")


def read_capture(path):
    fields = subprocess.run(["tshark", "-r", path, "-T", "fields", "-e", "frame.time_epoch", "-e", "tcp.stream",
                             "-e", "tcp.srcport", "-e", "tcp.payload"],
                            capture_output=True, text=True, check=False)
    if not fields.stdout and fields.returncode != 0:
        raise SystemExit(f"wire.py: tshark -r {path}: {fields.stderr.strip()}")
    for line in fields.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) < 4:
            continue
        yield float(parts[0]), parts[1], int(parts[2]), bytes.fromhex(parts[3].replace(":", ""))


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    print(summary(*latencies(read_capture(sys.argv[1]), int(sys.argv[2]))))


if __name__ == "__main__":
    main()
