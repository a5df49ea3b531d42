"""Logs in Postfix's shape: pflogsumm counts them right, one grep follows a queue ID through both
services, and the JSON format is one valid object per line."""
import json
import os
import re
import subprocess
import tempfile
import unittest

from postgate_harness import QUEUE_ID, Postgate, SmtpConnection, send_message, wait_for

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d mail169\.com postgate/(smtpd|cleanup|queue)\[\d+\]: ")


class PostfixShapedLogsTest(unittest.TestCase):
    def setUp(self):
        self.postgate = Postgate().start()

    def tearDown(self):
        self.postgate.cleanup()

    def test_pflogsumm_and_grep_by_queue_id(self):
        delivered = [re.search(QUEUE_ID, send_message(self.postgate.smtp_port)).group(0) for _ in range(2)]
        deferred = re.search(QUEUE_ID, send_message(self.postgate.smtp_port, recipients=("x@example.org",))).group(0)
        connection = SmtpConnection(self.postgate.smtp_port)
        connection.read_reply()
        connection.command("EHLO x")
        connection.command("MAIL FROM:<foo@mail169.com>")
        self.assertTrue(connection.command("RCPT TO:<nobody@mail169.com>").startswith("550"))
        connection.command("QUIT")
        connection.close()
        self.postgate.queue.wait_log(rf"{deferred}: to=<x@example\.org>.*status=deferred")
        for queue_id in delivered:
            self.postgate.queue.wait_log(rf"{queue_id}: removed")
        self.postgate.gateway.wait_log(r"NOQUEUE: reject: RCPT")
        lines = self.postgate.gateway.log() + self.postgate.queue.log()
        for line in lines:
            self.assertRegex(line, LINE)

        # One grep follows a message through both services.
        trail = [line for line in lines if delivered[0] in line]
        self.assertTrue(any("postgate/smtpd" in l and f"{delivered[0]}: client=localhost[127.0.0.1]" in l for l in trail))
        self.assertTrue(any("postgate/queue" in l and f"{delivered[0]}: from=<foo@mail169.com>, size=" in l for l in trail))
        self.assertTrue(any(re.search(rf"{delivered[0]}: to=<bar@mail169\.com>, relay=local, delay=[\d.]+, "
                                      r"delays=[\d.]+/[\d.]+/0/[\d.]+, dsn=2\.0\.0, status=sent \(delivered to maildir\)", l)
                            for l in trail))

        with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as log:
            log.write("\n".join(lines) + "\n")
        try:
            report = subprocess.run(["pflogsumm", "--syslog-name=postgate", log.name], capture_output=True, text=True,
                                    timeout=60)
        finally:
            os.unlink(log.name)
        self.assertEqual(report.returncode, 0, report.stderr)
        totals = report.stdout.split("Grand Totals")[1]
        self.assertRegex(totals, r"\n\s+3\s+received\n")
        self.assertRegex(totals, r"\n\s+2\s+delivered\n")
        self.assertRegex(totals, r"\n\s+1\s+deferred")
        self.assertRegex(totals, r"\n\s+1\s+rejected")

    def test_json_log_format(self):
        self.postgate.cleanup()
        self.postgate = Postgate({"postgate_log_format": "json"}).start()
        queue_id = re.search(QUEUE_ID, send_message(self.postgate.smtp_port)).group(0)
        self.postgate.queue.wait_log(rf"{queue_id}: removed")
        for service, program in ((self.postgate.gateway, "postgate/smtpd"), (self.postgate.queue, "postgate/queue")):
            records = [json.loads(line) for line in service.log()]
            self.assertTrue(records)
            for record in records:
                self.assertEqual(set(record), {"time", "host", "program", "pid", "level", "message"})
                # The gateway logs as Postfix's smtpd and cleanup (message-id=…) do.
                self.assertIn(record["program"], (program, "postgate/cleanup") if service is self.postgate.gateway
                              else (program,))
                self.assertEqual(record["host"], "mail169.com")
        messages = [json.loads(line)["message"] for line in self.postgate.queue.log()]
        self.assertIn(f"{queue_id}: removed", messages)
        cleanup = [json.loads(line) for line in self.postgate.gateway.log() if "message-id=" in line]
        self.assertEqual([r["program"] for r in cleanup], ["postgate/cleanup"])
        self.assertRegex(cleanup[0]["message"], rf"^{queue_id}: message-id=<\d{{14}}\.{queue_id}@mail169\.com>$")


if __name__ == "__main__":
    unittest.main()
