"""Limits against abusive clients, with Postfix's names and replies: connections per client
(smtpd_client_connection_count_limit / _rate_limit, mynetworks exempt by default), the global
session limit with back-pressure, smtpd_timeout as a per-record deadline (a slowloris is cut),
smtpd_junk_command_limit, and overlong lines."""
import os
import re
import select
import socket
import time
import unittest
import urllib.request

from postgate_harness import Postgate, SmtpConnection, send_message, wait_for

TOO_MANY = "421 4.7.0 mail169.com Error: too many connections from 127.0.0.1\r\n"


def greeting(port, timeout=10.0):
    """Connects and returns (connection, first reply)."""
    connection = SmtpConnection(port, timeout=timeout)
    return connection, connection.read_reply()


def closed_by_server(connection):
    try:
        return connection.sock.recv(1) == b""
    except OSError:
        return True


class LimitsTestCase(unittest.TestCase):
    OVERRIDES = {}

    def setUp(self):
        self.postgate = Postgate(self.OVERRIDES).start()
        self.connections = []

    def tearDown(self):
        for connection in self.connections:
            connection.close()
        self.postgate.cleanup()

    def open(self, timeout=10.0):
        connection, reply = greeting(self.postgate.smtp_port, timeout)
        self.connections.append(connection)
        return connection, reply


class ConnectionCountLimitTest(LimitsTestCase):
    # Loopback is in mynetworks, which Postfix exempts by default: take the exemption away.
    OVERRIDES = {"smtpd_client_connection_count_limit": "2", "smtpd_client_event_limit_exceptions": ""}

    def test_third_concurrent_connection_is_refused_until_one_closes(self):
        first, _ = self.open()
        second, reply = self.open()
        self.assertTrue(reply.startswith("220 "))
        third, reply = self.open()
        self.assertEqual(reply, TOO_MANY)
        self.assertTrue(closed_by_server(third))
        self.postgate.gateway.wait_log(r"warning.*Connection concurrency limit exceeded: 3 from \S*\[127\.0\.0\.1\] "
                                       r"for service smtp")
        first.command("QUIT")
        # The slot is released when the session has ended on the server.
        wait_for(lambda: self.open()[1].startswith("220 "), what="a greeting after one session ended")


class ExemptClientsTest(LimitsTestCase):
    OVERRIDES = {"smtpd_client_connection_count_limit": "1"}  # Exceptions: $mynetworks (loopback).

    def test_mynetworks_clients_are_not_limited(self):
        for _ in range(3):
            self.assertTrue(self.open()[1].startswith("220 "))


class ConnectionRateLimitTest(LimitsTestCase):
    OVERRIDES = {"smtpd_client_connection_rate_limit": "3", "anvil_rate_time_unit": "60s",
                 "smtpd_client_event_limit_exceptions": ""}

    def test_fourth_connection_in_a_minute_is_refused(self):
        for _ in range(3):
            connection, reply = self.open()
            self.assertTrue(reply.startswith("220 "))
            connection.command("QUIT")
        _, reply = self.open()
        self.assertEqual(reply, TOO_MANY)
        self.postgate.gateway.wait_log(r"warning.*Connection rate limit exceeded: 4 from \S*\[127\.0\.0\.1\] "
                                       r"for service smtp")


class SessionLimitTest(LimitsTestCase):
    OVERRIDES = {"postgate_smtpd_session_limit": "3"}

    def test_clients_beyond_the_limit_wait_for_a_free_session(self):
        sessions = [self.open()[0] for _ in range(3)]
        # The fourth client gets its TCP connection (the kernel's listen queue) but no greeting …
        waiting = SmtpConnection(self.postgate.smtp_port, timeout=1.0)
        self.connections.append(waiting)
        with self.assertRaises(socket.timeout):
            waiting.read_reply()
        self.postgate.gateway.wait_log(r"postgate_smtpd_session_limit \(3\) reached")
        # … until a session ends; then it is served normally.
        sessions[0].command("QUIT")
        waiting.sock.settimeout(10.0)
        self.assertTrue(waiting.read_reply().startswith("220 "))
        self.assertTrue(waiting.command("EHLO client.test").startswith("250-"))


class DescriptorLimitTest(LimitsTestCase):
    def test_default_session_limit_shrinks_to_the_descriptors(self):
        self.postgate.gateway.stop()
        self.postgate.start_gateway(prefix=("prlimit", "--nofile=300:300"))
        self.postgate.gateway.wait_log(r"postgate_smtpd_session_limit 20000 lowered to 172: only 300 file descriptors")
        self.assertTrue(send_message(self.postgate.smtp_port).startswith("250 2.0.0 Ok: queued as"))


class TimeoutTest(LimitsTestCase):
    OVERRIDES = {"smtpd_timeout": "2s"}

    def test_idle_client_is_told_and_dropped(self):
        connection, _ = self.open()
        connection.sock.settimeout(10)
        started = time.monotonic()
        self.assertEqual(connection.read_reply(), "421 4.4.2 mail169.com Error: timeout exceeded\r\n")
        self.assertGreaterEqual(time.monotonic() - started, 1.5)
        self.assertTrue(closed_by_server(connection))

    def trickle(self, connection, data, give_up_after=8.0):
        """Sends `data` a byte every 0.3 s (the attack's pace) until the server speaks or closes;
        returns (seconds taken, what the server said)."""
        started = time.monotonic()
        for byte in data:
            try:
                connection.send(bytes([byte]))
            except OSError:
                break
            readable, _, _ = select.select([connection.sock], [], [], 0.3)
            if readable or time.monotonic() - started > give_up_after:
                break
        connection.sock.settimeout(5)
        try:
            said = connection.read_reply()
        except (ConnectionError, OSError):
            said = ""
        return time.monotonic() - started, said

    def test_slowloris_is_cut_at_the_deadline_of_its_line(self):
        connection, _ = self.open()
        # Each byte comes well within smtpd_timeout, but the command line never ends in time.
        elapsed, said = self.trickle(connection, b"EHLO " + b"x" * 100)
        self.assertEqual(said, "421 4.4.2 mail169.com Error: timeout exceeded\r\n")
        self.assertLess(elapsed, 4)

    def test_a_slow_but_steady_message_is_not_cut(self):
        # 6 s of DATA at 2 KB every 0.5 s, each piece ending mid-line: every line ends well within
        # the 2 s deadline, so the message is accepted however long it takes as a whole.
        connection, _ = self.open()
        for line in ("EHLO x", "MAIL FROM:<foo@mail169.com>", "RCPT TO:<bar@mail169.com>", "DATA"):
            connection.command(line)
        connection.send(b"Subject: steady\r\n\r\n")
        line = b"s" * 700 + b"\r\n"
        stream = line * 40
        for offset in range(0, len(stream), 2000):
            connection.send(stream[offset:offset + 2000])
            readable, _, _ = select.select([connection.sock], [], [], 0.5)  # The client's pace.
            self.assertFalse(readable, "the server spoke (timed out?) in the middle of the message")
        connection.send(b".\r\n")
        self.assertRegex(connection.read_reply(), r"^250 2\.0\.0 Ok: queued as ")

    def test_slow_content_lines_are_cut_too(self):
        connection, _ = self.open()
        for line in ("EHLO x", "MAIL FROM:<foo@mail169.com>", "RCPT TO:<bar@mail169.com>", "DATA"):
            connection.command(line)
        elapsed, said = self.trickle(connection, b"y" * 100)
        self.assertEqual(said, "421 4.4.2 mail169.com Error: timeout exceeded\r\n")
        self.assertLess(elapsed, 4)
        self.assertEqual(self.postgate.maildir_files("bar"), [])  # Nothing half-received was kept.


class IdleSessionCostTest(LimitsTestCase):
    """What a slowloris costs while it lasts: one coroutine and its small buffers."""

    def test_hundreds_of_half_sent_commands_cost_a_few_kilobytes_each(self):
        with open(f"/proc/{self.postgate.gateway.process.pid}/status") as status:
            before = int(re.search(r"^VmRSS:\s+(\d+) kB", status.read(), re.M).group(1))
        count = 400
        for _ in range(count):
            connection, reply = self.open()
            self.assertTrue(reply.startswith("220 "))
            connection.send(b"EHLO slow")  # And then nothing: a command that never ends.
        wait_for(lambda: self.active_sessions() == count, what=f"{count} sessions open")
        with open(f"/proc/{self.postgate.gateway.process.pid}/status") as status:
            after = int(re.search(r"^VmRSS:\s+(\d+) kB", status.read(), re.M).group(1))
        per_session = (after - before) / count
        print(f"\n{count} half-sent commands: gateway RSS {before} → {after} KiB, {per_session:.1f} KiB each",
              flush=True)
        limit = 200 if os.environ.get("POSTGATE_SANITIZER") else 48  # ASan pads every allocation.
        self.assertLess(per_session, limit)

    def active_sessions(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.postgate.gateway_metrics_port}/metrics",
                                    timeout=10) as response:
            text = response.read().decode()
        return float(re.search(r"^postgate_smtpd_active_sessions ([0-9.e+]+)$", text, re.M).group(1))


class JunkCommandLimitTest(LimitsTestCase):
    OVERRIDES = {"smtpd_junk_command_limit": "5", "smtpd_hard_error_limit": "3", "smtpd_soft_error_limit": "10"}

    def test_noop_flood_counts_as_errors_past_the_limit(self):
        connection, _ = self.open()
        # Checked against Postfix 3.7 with the same three settings: nine "250", then the 421.
        replies = [connection.command("NOOP") for _ in range(10)]
        self.assertEqual(replies[:9], ["250 2.0.0 Ok\r\n"] * 9)
        self.assertEqual(replies[9], "421 4.7.0 mail169.com Error: too many errors\r\n")
        self.assertTrue(closed_by_server(connection))


class LineLengthTest(LimitsTestCase):
    OVERRIDES = {"line_length_limit": "512"}  # Postfix's smallest.

    def test_long_body_lines_are_kept_not_refused(self):
        # Postfix 3.7 (line_length_limit = 512) accepts a 1200-byte line and delivers it whole.
        body = "Subject: long\r\n\r\n" + "y" * 1200 + "\r\nend\r\n"
        self.assertTrue(send_message(self.postgate.smtp_port, body=body).startswith("250 2.0.0 Ok: queued as"))
        text = self.postgate.wait_delivered("bar", 1)[0]
        self.assertIn("\n" + "y" * 1200 + "\nend\n", text)

    def test_long_command_line_is_refused(self):
        connection, _ = self.open()
        self.assertEqual(connection.command("NOOP " + "x" * 600), "500 5.5.2 Error: line too long\r\n")
        self.assertEqual(connection.command("NOOP"), "250 2.0.0 Ok\r\n")


if __name__ == "__main__":
    unittest.main()
