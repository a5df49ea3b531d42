#!/usr/bin/env python3
"""bench/stages.py — where the end-of-DATA latency goes, from the services' own histograms.

  stages.py snapshot GATEWAY_METRICS_URL QUEUE_METRICS_URL > before.txt
  stages.py report before.txt GATEWAY_METRICS_URL QUEUE_METRICS_URL

`snapshot` saves both /metrics pages; `report` scrapes them again and prints, for what happened in
between, p50 and p99 of each stage as one line of key=value pairs:

  enqueue_*  postgate_smtpd_enqueue_duration_seconds: the gateway, from the end of DATA until the
             queue's answer to the commit (cleanup's last step, the gRPC commit, the queue's write);
  commit_*   postgate_queue_commit_duration_seconds: queue-service, from the commit's arrival until
             the message is on disk (waiting for the store writer's group and its fsync);
  group_*    postgate_queue_store_group_duration_seconds: one group of the store writer, its write
             and fsync – per group, not per message; group_requests is how many commits and chunks
             a group carried on average (postgate_queue_store_group_requests). What `commit` takes
             beyond `group` is the wait for the writer.

Quantiles are interpolated inside the histogram's buckets as Prometheus' histogram_quantile does,
so they are as coarse as the buckets (0.5, 1, 2.5, 5, 10 ms …). What the client measured end to end
(bench/probe.py latency) minus `enqueue` is the gateway's own part: reading the content, the reply.
"""
import math
import re
import sys
import urllib.request

HISTOGRAMS = {"enqueue": ("gateway", "postgate_smtpd_enqueue_duration_seconds"),
              "commit": ("queue", "postgate_queue_commit_duration_seconds"),
              "group": ("queue", "postgate_queue_store_group_duration_seconds")}


def scrape(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def sample(text, series):
    """The value of one series without labels (e.g. a histogram's _sum), 0 if absent."""
    match = re.search(rf"^{series} ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def buckets(text, name):
    """{upper bound: cumulative count} of histogram `name` (no labels) in a /metrics page."""
    found = {}
    for match in re.finditer(rf'^{name}_bucket\{{le="([^"]+)"\}} ([0-9.e+]+)$', text, re.M):
        found[math.inf if match.group(1) == "+Inf" else float(match.group(1))] = float(match.group(2))
    return found


def quantile(q, cumulative):
    """histogram_quantile(q) over {upper bound: cumulative count}; None without observations."""
    bounds = sorted(cumulative)
    total = cumulative[bounds[-1]] if bounds else 0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        if cumulative[bound] >= rank:
            if bound == math.inf:
                return lower  # Beyond the last finite bucket: its bound is all that is known.
            inside = cumulative[bound] - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, cumulative[bound]
    return lower


def main(argv):
    if len(argv) == 4 and argv[1] == "snapshot":
        print(scrape(argv[2]), end="")
        print("\f", end="")  # Separates the two pages.
        print(scrape(argv[3]), end="")
        return 0
    if len(argv) != 5 or argv[1] != "report":
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[2]) as before_file:
        before_gateway, before_queue = before_file.read().split("\f")
    after = {"gateway": scrape(argv[3]), "queue": scrape(argv[4])}
    before = {"gateway": before_gateway, "queue": before_queue}
    fields = []
    for stage, (service, name) in HISTOGRAMS.items():
        start, end = buckets(before[service], name), buckets(after[service], name)
        delta = {bound: end[bound] - start.get(bound, 0.0) for bound in end}
        count = delta.get(math.inf, 0)
        fields.append(f"{stage}_count={count:.0f}")
        for q in (0.5, 0.99):
            value = quantile(q, delta)
            fields.append(f"{stage}_p{round(q * 100)}_ms=" + ("n/a" if value is None else f"{value * 1000:.2f}"))
    requests = [sample(page, "postgate_queue_store_group_requests_" + part)
                for page in (before["queue"], after["queue"]) for part in ("sum", "count")]
    groups = requests[3] - requests[1]
    fields.append("group_requests=" + (f"{(requests[2] - requests[0]) / groups:.1f}" if groups else "n/a"))
    print(" ".join(fields))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
