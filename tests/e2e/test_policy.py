"""Policy and limits through the whole gateway: relay, local users, aliases, sizes, VRFY."""
import time
import unittest

from postgate_harness import PostgateTestCase, Postgate, SmtpConnection, send_message


def session(port, lines):
    """Plays lines after the greeting; returns the replies."""
    connection = SmtpConnection(port)
    try:
        connection.read_reply()
        return [connection.command(line) for line in lines]
    finally:
        connection.close()


class OutsideMynetworksTest(PostgateTestCase):
    """Loopback is taken out of mynetworks, so 127.0.0.1 is an outside client here."""

    overrides = {"mynetworks": "192.168.0.0/24"}

    def test_relay_is_refused_but_local_users_are_reachable(self):
        replies = session(self.postgate.smtp_port, [
            "EHLO outside.test", "MAIL FROM:<someone@example.net>",
            "RCPT TO:<x@example.org>", "RCPT TO:<bar%example.org@mail169.com>", "RCPT TO:<user@[10.0.0.1]>",
            "RCPT TO:<@mail169.com:user@example.org>",
            "RCPT TO:<bar@mail169.com>", "RCPT TO:<BAR+Tag@MAIL169.COM>", "RCPT TO:<postmaster@localhost>",
            "RCPT TO:<nobody@mail169.com>"])
        self.assertEqual(replies[2:], [
            "554 5.7.1 <x@example.org>: Relay access denied\r\n",
            "554 5.7.1 <bar%example.org@mail169.com>: Relay access denied\r\n",
            "554 5.7.1 <user@[10.0.0.1]>: Relay access denied\r\n",
            "554 5.7.1 <user@example.org>: Relay access denied\r\n",
            "250 2.1.5 Ok\r\n", "250 2.1.5 Ok\r\n", "250 2.1.5 Ok\r\n",
            "550 5.1.1 <nobody@mail169.com>: Recipient address rejected: User unknown in local recipient table\r\n"])

    def test_no_valid_recipients(self):
        replies = session(self.postgate.smtp_port, [
            "HELO outside.test", "MAIL FROM:<someone@example.net>", "RCPT TO:<x@example.org>", "DATA"])
        self.assertEqual(replies[3], "554 5.5.1 Error: no valid recipients\r\n")


class LimitsTest(PostgateTestCase):
    overrides = {"message_size_limit": "2000", "smtpd_recipient_limit": "2"}

    def test_declared_size_over_limit(self):
        replies = session(self.postgate.smtp_port, ["EHLO x", "MAIL FROM:<foo@mail169.com> SIZE=2001",
                                                    "MAIL FROM:<foo@mail169.com> SIZE=2000"])
        self.assertEqual(replies[0].splitlines()[2], "250-SIZE 2000")
        self.assertEqual(replies[1:], ["552 5.3.4 Message size exceeds fixed limit\r\n", "250 2.1.0 Ok\r\n"])

    def test_real_size_over_limit_is_refused_and_nothing_is_queued(self):
        reply = send_message(self.postgate.smtp_port, body="Subject: big\r\n\r\n" + ("x" * 70 + "\r\n") * 40)
        self.assertEqual(reply, "552 5.3.4 Message size exceeds fixed limit\r\n")
        # The session goes on: a small message right after is accepted.
        self.assertTrue(send_message(self.postgate.smtp_port).startswith("250 2.0.0 Ok: queued as"))
        self.postgate.wait_delivered("bar", 1)
        self.assertEqual(len(self.postgate.maildir_files("bar")), 1)

    def test_recipient_limit(self):
        replies = session(self.postgate.smtp_port, ["EHLO x", "MAIL FROM:<foo@mail169.com>",
                                                    "RCPT TO:<bar@mail169.com>", "RCPT TO:<foo@mail169.com>",
                                                    "RCPT TO:<bar@mail169.com>"])
        self.assertEqual(replies[4], "452 4.5.3 Error: too many recipients\r\n")

    def test_vrfy_help_noop_rset_and_errors(self):
        replies = session(self.postgate.smtp_port, [
            "VRFY bar", "VRFY nosuch", "VRFY", "NOOP", "RSET", "HELP", "FOO", "MAIL FROM:<a", "QUIT"])
        self.assertEqual(replies[0], "252 2.0.0 bar\r\n")
        self.assertEqual(replies[1], "550 5.1.1 <nosuch>: Recipient address rejected: User unknown in local recipient table\r\n")
        self.assertEqual(replies[2], "501 5.5.4 Syntax: VRFY address [SMTPUTF8]\r\n")
        self.assertEqual(replies[3:5], ["250 2.0.0 Ok\r\n", "250 2.0.0 Ok\r\n"])
        self.assertTrue(replies[5].startswith("214-2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY"))
        self.assertEqual(replies[6], "500 5.5.2 Error: command not recognized\r\n")
        self.assertEqual(replies[7], "501 5.1.7 Bad sender address syntax\r\n")
        self.assertEqual(replies[8], "221 2.0.0 Bye\r\n")

    def test_overlong_command_line(self):
        replies = session(self.postgate.smtp_port, ["NOOP " + "x" * 5000, "NOOP"])
        self.assertEqual(replies, ["500 5.5.2 Error: line too long\r\n", "250 2.0.0 Ok\r\n"])


class ErrorLimitsTest(PostgateTestCase):
    overrides = {"smtpd_soft_error_limit": "18", "smtpd_hard_error_limit": "20", "smtpd_error_sleep_time": "1s"}

    def test_tarpit_then_disconnect_like_postfix(self):
        connection = SmtpConnection(self.postgate.smtp_port)
        try:
            connection.read_reply()
            started = time.monotonic()
            replies = [connection.command("FOO") for _ in range(20)]
            elapsed = time.monotonic() - started
            self.assertEqual(set(replies), {"500 5.5.2 Error: command not recognized\r\n"})
            # Errors 19 and 20 are past the soft limit: each waited smtpd_error_sleep_time.
            self.assertGreaterEqual(elapsed, 1.9)
            self.assertEqual(connection.command("NOOP"), "421 4.7.0 mail169.com Error: too many errors\r\n")
            self.assertEqual(connection.sock.recv(10), b"")
        finally:
            connection.close()


if __name__ == "__main__":
    unittest.main()
