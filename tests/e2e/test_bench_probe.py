"""bench/probe.py, which bench/run.sh relies on for targets 4–6, run small against a real Postgate:
its figures must describe what happened (every message it counts is in the Maildir). And
bench/stages.py, which splits the latency by stage from the services' histograms, and
bench/wire.py, which measures the latency on a loopback capture."""
import importlib.util
import math
import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

from postgate_harness import SOURCE_DIR, PostgateTestCase, wait_for

PROBE = os.path.join(SOURCE_DIR, "bench", "probe.py")
STAGES = os.path.join(SOURCE_DIR, "bench", "stages.py")
WIRE = os.path.join(SOURCE_DIR, "bench", "wire.py")


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fields(line):
    return dict(re.findall(r"(\w+)=(\S+)", line))


class BenchProbeTest(PostgateTestCase):
    def probe(self, *args):
        result = subprocess.run(["/usr/bin/python3", PROBE, *args, "127.0.0.1", str(self.postgate.smtp_port)],
                                capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        return fields(result.stdout)

    def delivered_so_far(self):
        return len(self.postgate.maildir_files("bar"))

    def test_latency_counts_each_acknowledged_message_once(self):
        before = self.delivered_so_far()
        figures = self.probe("latency", "--rate", "40", "--seconds", "1", "--connections", "4")
        self.assertEqual((figures["sent"], figures["accepted"], figures["errors"]), ("40", "40", "0"))
        self.assertLessEqual(float(figures["p50_ms"]), float(figures["p99_ms"]))
        self.assertLessEqual(float(figures["p99_ms"]), float(figures["max_ms"]))
        self.postgate.wait_delivered("bar", before + 40)

    def test_big_messages_arrive_whole(self):
        before = self.delivered_so_far()
        figures = self.probe("big", "--sessions", "3", "--size", "300000")
        self.assertEqual((figures["accepted"], figures["errors"]), ("3", "0"))
        self.postgate.wait_delivered("bar", before + 3)
        # The probe sends 300,000 bytes of 1,022 "y"s per CRLF-ended line, the last line cut short.
        expected = (300000 // 1024) * 1022 + min(300000 % 1024, 1022)
        bodies = [text for text in self.postgate.read_maildir("bar") if "Subject: big" in text]
        self.assertEqual([text.split("\n\n", 1)[1].count("y") for text in bodies], [expected] * 3)

    def test_idle_sessions_are_all_greeted_and_measured(self):
        gateway_pid = self.postgate.gateway.process.pid
        figures = self.probe("idle", "--idle", "200", "--wait", "5", "--rss-pid", str(gateway_pid),
                             "--rate", "20", "--seconds", "1", "--connections", "2")
        self.assertEqual((figures["greeted_within_5s"], figures["refused"], figures["silent"]), ("200", "0", "0"))
        self.assertGreater(float(figures["server_rss_mib"]), 1)
        self.assertEqual((figures["accepted"], figures["errors"]), ("20", "0"))

    def test_stages_count_the_messages_sent_between_the_snapshots(self):
        urls = [f"http://127.0.0.1:{port}/metrics"
                for port in (self.postgate.gateway_metrics_port, self.postgate.queue_metrics_port)]
        with tempfile.NamedTemporaryFile("w+", suffix=".txt") as before:
            subprocess.run(["/usr/bin/python3", STAGES, "snapshot", *urls], stdout=before, check=True, timeout=30)
            self.probe("latency", "--rate", "30", "--seconds", "1", "--connections", "3")
            report = subprocess.run(["/usr/bin/python3", STAGES, "report", before.name, *urls],
                                    capture_output=True, text=True, timeout=30)
        self.assertEqual(report.returncode, 0, report.stderr)
        figures = fields(report.stdout)
        self.assertEqual((figures["enqueue_count"], figures["commit_count"]), ("30", "30"), report.stdout)
        # 30 commits in 1 to 30 groups.
        self.assertTrue(1 <= int(figures["group_count"]) <= 30, report.stdout)
        self.assertAlmostEqual(float(figures["group_requests"]) * int(figures["group_count"]), 30, delta=0.1 * 30)
        for stage in ("enqueue", "commit", "group"):
            self.assertLessEqual(float(figures[f"{stage}_p50_ms"]), float(figures[f"{stage}_p99_ms"]))
        # The gateway's stage contains the queue's.
        self.assertLessEqual(float(figures["commit_p50_ms"]), float(figures["enqueue_p99_ms"]))

    def test_wire_latency_counts_every_reply_within_what_the_client_saw(self):
        capture_dir = tempfile.mkdtemp(prefix="postgate-wire-")
        self.addCleanup(shutil.rmtree, capture_dir, True)
        pcap, log = os.path.join(capture_dir, "latency.pcapng"), os.path.join(capture_dir, "dumpcap.log")
        port = str(self.postgate.smtp_port)
        with open(log, "w") as stderr:
            dumpcap = subprocess.Popen(["dumpcap", "-i", "lo", "-f", f"tcp port {port}", "-w", pcap],
                                       stdout=subprocess.DEVNULL, stderr=stderr)
        self.addCleanup(lambda: dumpcap.poll() is None and dumpcap.kill())
        def started():
            with open(log) as text:
                return "File:" in text.read()

        wait_for(started, timeout=30, what="dumpcap to start capturing")
        client = self.probe("latency", "--rate", "40", "--seconds", "1", "--connections", "4")

        def read():
            return subprocess.run(["/usr/bin/python3", WIRE, pcap, port], capture_output=True, text=True, timeout=60)

        # dumpcap writes packets to the file as it reads them from the kernel: every reply is there
        # once wire.py counts 40 (a SIGINT before that would lose the last ones).
        result = wait_for(lambda: (r := read()) and fields(r.stdout).get("count") == "40" and r, timeout=30,
                          interval=0.3, what="all 40 replies in the capture")
        dumpcap.send_signal(signal.SIGINT)
        dumpcap.wait(timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        wire = fields(result.stdout)
        self.assertEqual(wire["not_2xx"], "0", result.stdout)
        # Each reply's time on the wire lies inside the client's own measurement of it.
        for figure in ("p50_ms", "p99_ms", "max_ms"):
            self.assertLessEqual(float(wire[figure]), float(client[figure]), (result.stdout, client))
        self.assertGreater(float(wire["p50_ms"]), 0)


class WireLatenciesTest(unittest.TestCase):
    """bench/wire.py pairs each end of data with the server's next segment on that connection."""

    def setUp(self):
        self.wire = load_module("wire", WIRE)

    def test_pairs_end_of_data_with_the_next_reply_per_connection(self):
        rows = [(0.000, "1", 40000, b"MAIL FROM:<a@b>\r\n"), (0.001, "1", 25, b"250 2.1.0 Ok\r\n"),
                (1.000, "1", 40000, b"Subject: x\r\n\r\nbody\r\n.\r\n"),  # Data and its end in one segment.
                (1.000, "2", 40001, b".\r\n"),
                (1.002, "2", 25, b"250 2.0.0 Ok: queued as 4XyZ\r\n"),
                (1.003, "1", 25, b"451 4.3.0 Error: queue file write error\r\n"),
                (1.004, "1", 25, b"250 2.1.0 Ok\r\n"),  # The next MAIL's reply: not a sample.
                (1.005, "2", 40001, b""),  # A bare ACK.
                (2.000, "2", 40001, b".\r\n"), (2.010, "2", 25, b"250 2.0.0 Ok: queued as 4XyW\r\n")]
        samples, other = self.wire.latencies(rows, 25)
        self.assertEqual([round(s, 3) for s in samples], [0.002, 0.010])
        self.assertEqual(other, 1)
        self.assertEqual(self.wire.summary(samples, other),
                         "count=2 p50_ms=10.00 p90_ms=10.00 p99_ms=10.00 max_ms=10.00 not_2xx=1")
        self.assertEqual(self.wire.summary([], 0), "count=0 not_2xx=0")


class StagesQuantileTest(unittest.TestCase):
    """The interpolation matches Prometheus' histogram_quantile on known buckets."""

    def setUp(self):
        self.stages = load_module("stages", STAGES)

    def test_interpolates_within_the_bucket(self):
        # 100 observations: 50 up to 1 ms, 40 in (1, 2.5] ms, 10 in (2.5, 5] ms.
        cumulative = {0.001: 50, 0.0025: 90, 0.005: 100, math.inf: 100}
        self.assertAlmostEqual(self.stages.quantile(0.5, cumulative), 0.001)
        self.assertAlmostEqual(self.stages.quantile(0.7, cumulative), 0.001 + 0.0015 * 0.5)
        self.assertAlmostEqual(self.stages.quantile(0.99, cumulative), 0.0025 + 0.0025 * 0.9)

    def test_beyond_the_last_bucket_and_empty(self):
        self.assertEqual(self.stages.quantile(0.99, {0.01: 1, math.inf: 10}), 0.01)
        self.assertIsNone(self.stages.quantile(0.5, {0.01: 0, math.inf: 0}))


if __name__ == "__main__":
    unittest.main()
