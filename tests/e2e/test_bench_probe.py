"""bench/probe.py, which bench/run.sh relies on for targets 4–6, run small against a real Postgate:
its figures must describe what happened (every message it counts is in the Maildir)."""
import os
import re
import subprocess
import unittest

from postgate_harness import SOURCE_DIR, PostgateTestCase

PROBE = os.path.join(SOURCE_DIR, "bench", "probe.py")


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


if __name__ == "__main__":
    unittest.main()
