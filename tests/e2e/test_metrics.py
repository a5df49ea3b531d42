"""Both /metrics endpoints: valid for promtool, and the numbers match what happened."""
import re
import subprocess
import unittest
import urllib.request

from postgate_harness import Postgate, SmtpConnection, send_message, wait_for


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def value(text, series):
    """The sample value of one exact series line, e.g. 'x_total{a="b"}'; None if absent."""
    match = re.search(r"^" + re.escape(series) + r" ([0-9.e+-]+)$", text, re.M)
    return float(match.group(1)) if match else None


class MetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.postgate = Postgate().start()
        for _ in range(2):
            send_message(cls.postgate.smtp_port)
        send_message(cls.postgate.smtp_port, recipients=("x@example.org",))
        connection = SmtpConnection(cls.postgate.smtp_port)
        connection.read_reply()
        connection.command("EHLO x")
        connection.command("MAIL FROM:<foo@mail169.com>")
        connection.command("RCPT TO:<nobody@mail169.com>")
        connection.command("QUIT")
        connection.close()
        cls.postgate.wait_delivered("bar", 2)

    @classmethod
    def tearDownClass(cls):
        cls.postgate.cleanup()

    def promtool(self, text):
        return subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)

    def test_gateway_metrics(self):
        text = wait_for(lambda: (t := scrape(self.postgate.gateway_metrics_port)) and
                        value(t, "postgate_smtpd_active_sessions") == 0 and t, what="sessions closed")
        result = self.promtool(text)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(value(text, "postgate_smtpd_messages_accepted_total"), 3)
        self.assertEqual(value(text, "postgate_smtpd_connections_total"), 4)
        self.assertEqual(value(text, "postgate_smtpd_enqueue_duration_seconds_count"), 3)
        self.assertEqual(value(text, 'postgate_smtpd_commands_total{reply_class="5xx",verb="RCPT"}'), 1)
        self.assertEqual(value(text, 'postgate_smtpd_commands_total{reply_class="2xx",verb="DATA"}'), 3)
        self.assertEqual(value(text, 'postgate_smtpd_rejects_total{reason="unknown_recipient"}'), 1)
        self.assertGreater(value(text, "postgate_smtpd_accepted_bytes_total"), 0)

    def test_queue_metrics(self):
        text = wait_for(lambda: (t := scrape(self.postgate.queue_metrics_port)) and
                        value(t, 'postgate_queue_messages{state="deferred"}') == 1 and t, what="queue settled")
        result = self.promtool(text)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(value(text, "postgate_queue_messages_stored_total"), 3)
        self.assertEqual(value(text, 'postgate_queue_messages{state="done"}'), 2)
        self.assertEqual(value(text, 'postgate_queue_messages{state="active"}'), 0)
        self.assertEqual(value(text, 'postgate_queue_deliveries_total{result="sent",transport="local"}'), 2)
        self.assertEqual(value(text, 'postgate_queue_deliveries_total{result="deferred",transport="smtp"}'), 1)
        self.assertEqual(value(text, "postgate_queue_delivery_duration_seconds_count"), 2)
        self.assertEqual(value(text, "postgate_queue_commit_duration_seconds_count"), 3)
        # The three small messages were three commit requests, in one to three groups.
        self.assertEqual(value(text, "postgate_queue_store_group_requests_sum"), 3)
        self.assertIn(value(text, "postgate_queue_store_group_duration_seconds_count"), (1, 2, 3))
        self.assertEqual(value(text, "postgate_queue_store_group_requests_count"),
                         value(text, "postgate_queue_store_group_duration_seconds_count"))
        self.assertGreater(value(text, "postgate_queue_oldest_message_age_seconds"), 0)
        self.assertGreater(value(text, "postgate_queue_oldest_deferred_age_seconds"), 0)
        self.assertEqual(value(text, 'postgate_queue_smtp_connection_cache_total{result="hit"}'), 0)


if __name__ == "__main__":
    unittest.main()
