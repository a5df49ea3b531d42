"""What goes over the wire, seen by tshark's SMTP dissector on loopback: the eleven EHLO lines
of the Postfix list and the "queued as" reply."""
import os
import re
import signal
import subprocess
import tempfile
import threading
import unittest

from postgate_harness import QUEUE_ID, Postgate, send_message, wait_for

EHLO_LINES = ["mail169.com", "PIPELINING", "SIZE 10240000", "VRFY", "ETRN", "STARTTLS",
              "ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8", "CHUNKING"]


class WireTest(unittest.TestCase):
    def setUp(self):
        self.postgate = Postgate().start()
        self.capture_dir = tempfile.mkdtemp(prefix="postgate-pcap-")

    def tearDown(self):
        self.postgate.cleanup()
        subprocess.run(["rm", "-rf", self.capture_dir])

    def test_tshark_sees_the_ehlo_list_and_queued_as(self):
        port = self.postgate.smtp_port
        pcap = os.path.join(self.capture_dir, "smtp.pcapng")
        capture = subprocess.Popen(["tshark", "-i", "lo", "-f", f"tcp port {port}", "-w", pcap, "-a", "duration:60"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        started = threading.Event()
        lines = []

        def watch():
            for line in capture.stderr:
                lines.append(line)
                if "Capture started" in line:
                    started.set()

        threading.Thread(target=watch, daemon=True).start()
        wait_for(started.is_set, timeout=30, what="tshark to start capturing")
        reply = send_message(port)
        queue_id = re.search(QUEUE_ID, reply).group(0)

        def decode():
            return subprocess.run(["tshark", "-r", pcap, "-d", f"tcp.port=={port},smtp", "-Y", "smtp",
                                   "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|", "-e",
                                   "smtp.req.command", "-e", "smtp.response.code", "-e", "smtp.rsp.parameter"],
                                  capture_output=True, text=True, timeout=60)

        # dumpcap writes packets to the file as it gets them: wait until the 221 is in it.
        decoded = wait_for(lambda: (d := decode()) and "2.0.0 Bye" in d.stdout and d, timeout=30,
                           interval=0.3, what="the whole session in the capture file")
        capture.send_signal(signal.SIGINT)
        capture.wait(timeout=30)
        capture.stderr.close()
        self.assertEqual(decoded.returncode, 0, decoded.stderr)
        rows = [line.split("\t") for line in decoded.stdout.splitlines()]
        ehlo = [row for row in rows if row[1].startswith("250") and "PIPELINING" in row[2]]
        self.assertEqual(len(ehlo), 1, decoded.stdout)
        self.assertEqual(ehlo[0][2].split("|"), EHLO_LINES)
        commands = [row[0] for row in rows if row[0]]
        self.assertEqual(commands[:4], ["EHLO", "MAIL", "RCPT", "DATA"])
        queued = [row for row in rows if f"queued as {queue_id}" in row[2]]
        self.assertEqual(len(queued), 1, decoded.stdout)
        self.assertEqual(queued[0][1], "250")
        self.assertEqual(queued[0][2], f"2.0.0 Ok: queued as {queue_id}")


if __name__ == "__main__":
    unittest.main()
