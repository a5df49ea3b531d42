"""Protocol robustness: junk of every kind gets a reply or a clean close, never a crash, a leaked
session, a partial message or unbounded memory; after each test the gateway still serves mail."""
import os
import random
import re
import socket
import ssl
import urllib.request
import unittest

from postgate_harness import QUEUE_ID, PostgateTestCase, SmtpConnection, send_message, wait_for


def metric(port, series):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    match = re.search(r"^" + re.escape(series) + r" ([0-9.e+-]+)$", text, re.M)
    return float(match.group(1)) if match else None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        return int(re.search(r"^VmRSS:\s+(\d+) kB", status.read(), re.M).group(1))


class RobustnessTest(PostgateTestCase):
    overrides = {"smtpd_tls_security_level": "may"}

    def setUp(self):
        self.connection = SmtpConnection(self.postgate.smtp_port)
        self.connection.read_reply()

    def tearDown(self):
        self.connection.close()
        # Whatever happened, no session is left behind and new mail is accepted.
        wait_for(lambda: metric(self.postgate.gateway_metrics_port, "postgate_smtpd_active_sessions") == 0,
                 what="every session closed")
        self.assertIsNone(self.postgate.gateway.process.poll(), "the gateway died")
        self.assertRegex(send_message(self.postgate.smtp_port), r"^250 2\.0\.0 Ok: queued as " + QUEUE_ID)

    def closed(self):
        self.connection.sock.settimeout(10)
        try:
            while self.connection.sock.recv(65536):
                pass
            return True
        except OSError:
            return True

    def test_nul_bytes_and_invalid_utf8_in_commands(self):
        # Postfix reads up to the NUL (a C string) and says 250; Postgate refuses the whole line.
        self.assertEqual(self.connection.command("NOOP\x00junk"), "500 5.5.2 Error: command not recognized\r\n")
        self.connection.send(b"HELO \xff\xfe\r\n")
        self.assertEqual(self.connection.read_reply(), "500 5.5.2 Error: bad UTF-8 syntax\r\n")
        self.connection.send(b"MAIL FROM:<a\x00b@example.org>\r\n")
        self.assertTrue(self.connection.read_reply().startswith("5"))
        self.assertEqual(self.connection.command("NOOP"), "250 2.0.0 Ok\r\n")

    def test_ten_megabyte_line_costs_no_memory(self):
        before = rss_kib(self.postgate.gateway.process.pid)
        self.connection.send(b"NOOP " + b"x" * (10 * 1024 * 1024) + b"\r\n")
        self.assertEqual(self.connection.read_reply(), "500 5.5.2 Error: line too long\r\n")
        self.assertEqual(self.connection.command("NOOP"), "250 2.0.0 Ok\r\n")
        grown = rss_kib(self.postgate.gateway.process.pid) - before
        # Under AddressSanitizer (scripts/sanitize) freed buffers sit in its quarantine: ~11 MiB
        # here. A line held whole would cost at least twice its 10 MiB either way.
        limit = 16384 if os.environ.get("POSTGATE_SANITIZER") else 4096
        self.assertLess(grown, limit, f"RSS grew by {grown} KiB for one long line")

    def test_binary_garbage(self):
        garbage = random.Random(7).randbytes(256 * 1024)
        try:
            self.connection.send(garbage)
        except OSError:
            pass  # Cut off after too many errors while we were still sending: fine.
        self.assertTrue(self.closed())
        self.postgate.gateway.wait_log(r"too many errors|disconnect from")

    def test_tls_handshake_garbage_after_starttls(self):
        self.connection.command("EHLO client.test")
        self.assertEqual(self.connection.command("STARTTLS"), "220 2.0.0 Ready to start TLS\r\n")
        self.connection.send(b"\x16\x03\x01\x02\x00" + os.urandom(512))
        self.assertTrue(self.closed())
        self.postgate.gateway.wait_log(r"SSL_accept error from|TLS handshake")

    def test_tls_client_hello_on_the_plain_port(self):
        # A client that expects implicit TLS (port 465 style): its ClientHello is junk to SMTP.
        raw = socket.create_connection(("127.0.0.1", self.postgate.smtp_port), timeout=10)
        try:
            raw.recv(1024)  # The greeting.
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            with self.assertRaises((ssl.SSLError, OSError)):
                context.wrap_socket(raw, server_hostname="mail169.com").do_handshake()
        finally:
            raw.close()

    def test_commands_out_of_order(self):
        self.assertEqual(self.connection.command("RCPT TO:<bar@mail169.com>"), "503 5.5.1 Error: need MAIL command\r\n")
        self.assertEqual(self.connection.command("DATA"), "503 5.5.1 Error: need RCPT command\r\n")
        self.connection.send(b"BDAT 10 LAST\r\n0123456789")  # The chunk is read, then refused (RFC 3030).
        self.assertEqual(self.connection.read_reply(), "503 5.5.1 Error: need RCPT command\r\n")
        self.connection.command("EHLO client.test")
        self.connection.command("MAIL FROM:<foo@mail169.com>")
        self.assertEqual(self.connection.command("MAIL FROM:<foo@mail169.com>"), "503 5.5.1 Error: nested MAIL command\r\n")
        self.connection.command("RCPT TO:<nobody@mail169.com>")
        self.assertEqual(self.connection.command("DATA"), "554 5.5.1 Error: no valid recipients\r\n")


class ThousandsOfCommandsInOneWriteTest(PostgateTestCase):
    """5000 EHLO in one write: every reply, in order. EHLO may only end a pipelined group, so this
    needs smtpd_forbid_unauth_pipelining = no (with yes: one 554, test_pipelining.py)."""
    overrides = {"smtpd_forbid_unauth_pipelining": "no"}

    def test_thousands_of_pipelined_commands_in_one_write(self):
        count = 5000
        connection = SmtpConnection(self.postgate.smtp_port)
        try:
            connection.read_reply()
            connection.send(b"EHLO client.test\r\n" * count + b"QUIT\r\n")
            replies = [connection.read_reply() for _ in range(count + 1)]
        finally:
            connection.close()
        self.assertTrue(all(r.startswith("250-mail169.com\r\n") for r in replies[:count]))
        self.assertEqual(replies[-1], "221 2.0.0 Bye\r\n")


class DisconnectEverywhereTest(PostgateTestCase):
    """A client that vanishes at every point of a session leaves no partial message and no session;
    only a message whose final dot arrived is delivered."""

    STEPS = [b"EHLO client.test\r\n", b"MAIL FROM:<foo@mail169.com>\r\n", b"RCPT TO:<bar@mail169.com>\r\n",
             b"DATA\r\n", b"Subject: cut\r\n\r\nhalf a bo", b"dy\r\n", b"\r\n.", b"\r\n", b"QUIT\r\n"]

    def test_every_cut(self):
        for cut in range(len(self.STEPS) + 1):
            connection = SmtpConnection(self.postgate.smtp_port)
            connection.read_reply()
            for step in self.STEPS[:cut]:
                connection.send(step)
                # A command's reply is awaited: EHLO and DATA end a pipelined group, and
                # smtpd_forbid_unauth_pipelining ends the session of a client that sends on.
                if step.endswith(b"\r\n") and step[:4] in (b"EHLO", b"MAIL", b"RCPT", b"DATA"):
                    connection.read_reply()
            connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            connection.close()  # With linger 0: a reset, the rudest way to go.
        wait_for(lambda: metric(self.postgate.gateway_metrics_port, "postgate_smtpd_active_sessions") == 0,
                 what="every session closed")
        # Only sessions that sent the final "\r\n.\r\n" (the last two cuts) can have completed a
        # message – a reset may beat the data to the gateway, so at most two, and only whole ones.
        completed = int(metric(self.postgate.queue_metrics_port, "postgate_queue_messages_stored_total"))
        self.assertLessEqual(completed, 2)
        self.assertRegex(send_message(self.postgate.smtp_port), r"^250 2\.0\.0 Ok: queued as " + QUEUE_ID)
        texts = self.postgate.wait_delivered("bar", completed + 1)
        self.assertEqual(len(texts), completed + 1)
        for text in texts:
            if "Subject: cut" in text:
                self.assertIn("half a body\n", text)
        self.assertEqual(metric(self.postgate.queue_metrics_port, "postgate_queue_messages_stored_total"), completed + 1)


if __name__ == "__main__":
    unittest.main()
