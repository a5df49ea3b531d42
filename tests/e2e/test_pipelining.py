"""smtpd_forbid_unauth_pipelining (Postfix 3.9's default, yes): a client that sends more behind a
command that must end its pipelined group (EHLO, HELO, DATA, VRFY, NOOP, STARTTLS; RFC 2920 §3.1)
gets Postfix's "554 5.5.0 Error: SMTP protocol synchronization" and is disconnected, with Postfix's
log line; the smuggling case is a whole transaction and its body sent before the 354. Legal
pipelining (MAIL, RCPT… DATA as one group; QUIT after the final dot) goes on working."""
import unittest

from postgate_harness import PostgateTestCase, SmtpConnection, read_to_close

SYNC = "554 5.5.0 Error: SMTP protocol synchronization\r\n"


class ForbidUnauthPipeliningTest(PostgateTestCase):

    def session(self, *groups):
        """Sends each group in one write, reading one reply per command before the next group
        except for the last; returns all the server said until it closed."""
        connection = SmtpConnection(self.postgate.smtp_port)
        try:
            connection.read_reply()
            for group in groups[:-1]:
                connection.send(group)
                for _ in range(group.count("\r\n")):
                    connection.read_reply()
            connection.send(groups[-1])
            return read_to_close(connection)
        finally:
            connection.close()

    def test_body_before_the_354_is_refused_and_nothing_queued(self):
        said = self.session("EHLO client.test\r\n", "MAIL FROM:<foo@mail169.com>\r\nRCPT TO:<bar@mail169.com>\r\n"
                            "DATA\r\nSubject: early\r\n\r\nbody\r\n.\r\n")
        self.assertEqual(said, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n" + SYNC)
        self.postgate.gateway.wait_log(r"improper command pipelining after DATA from localhost\[127\.0\.0\.1\]: "
                                       r"Subject: early\\r\\n\\r\\nbody\\r\\n\.\\r\\n$")
        self.assertEqual(self.postgate.read_maildir("bar"), [], "nothing was queued")

    def test_commands_behind_ehlo_are_refused(self):
        said = self.session("EHLO client.test\r\nMAIL FROM:<foo@mail169.com>\r\n")
        self.assertEqual(said, SYNC)
        self.postgate.gateway.wait_log(r"improper command pipelining after EHLO from localhost\[127\.0\.0\.1\]: "
                                       r"MAIL FROM:<foo@mail169\.com>\\r\\n$")

    def test_pipelined_credentials_do_not_reach_the_log(self):
        # The AUTH line's response, and every line behind it (an exchange's user name and
        # password, base64), are cut from the logged input.
        said = self.session("EHLO client.test\r\nAUTH PLAIN AHVzZXIAc2VjcmV0LXBhc3N3b3Jk\r\nQUIT\r\n")
        self.assertEqual(said, SYNC)
        line = self.postgate.gateway.wait_log(r"improper command pipelining after EHLO from .*AUTH PLAIN").string
        self.assertTrue(line.endswith(r": AUTH PLAIN ***"), line)
        said = self.session("EHLO client.test\r\nAUTH LOGIN\r\ndXNlcg==\r\nc2VjcmV0LXBhc3N3b3Jk\r\n")
        self.assertEqual(said, SYNC)
        line = self.postgate.gateway.wait_log(r"improper command pipelining after EHLO from .*AUTH LOGIN").string
        self.assertTrue(line.endswith(r": AUTH LOGIN ***"), line)
        log = "\n".join(self.postgate.gateway.log())
        for secret in ("AHVzZXIAc2VjcmV0LXBhc3N3b3Jk", "c2VjcmV0LXBhc3N3b3Jk", "dXNlcg=="):
            self.assertNotIn(secret, log)

    def test_starttls_with_injected_plaintext_is_refused(self):
        said = self.session("EHLO client.test\r\n", "STARTTLS\r\nVRFY injected\r\n")
        self.assertEqual(said, SYNC)

    def test_legal_pipelining_still_works(self):
        connection = SmtpConnection(self.postgate.smtp_port)
        try:
            connection.read_reply()
            self.assertTrue(connection.command("EHLO client.test").startswith("250-"))
            connection.send("MAIL FROM:<foo@mail169.com>\r\nRCPT TO:<bar@mail169.com>\r\nDATA\r\n")
            self.assertEqual([connection.read_reply() for _ in range(3)],
                             ["250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n"])
            connection.send("Subject: legal\r\n\r\nbody\r\n.\r\nQUIT\r\n")
            self.assertRegex(connection.read_reply(), r"^250 2\.0\.0 Ok: queued as ")
            self.assertEqual(connection.read_reply(), "221 2.0.0 Bye\r\n")
        finally:
            connection.close()


class PipeliningAllowedTest(PostgateTestCase):
    """smtpd_forbid_unauth_pipelining = no (Postfix 3.7's default): logged, still served."""
    overrides = {"smtpd_forbid_unauth_pipelining": "no"}

    def test_logged_but_served(self):
        connection = SmtpConnection(self.postgate.smtp_port)
        try:
            connection.read_reply()
            connection.send("EHLO client.test\r\nMAIL FROM:<foo@mail169.com>\r\n")
            self.assertTrue(connection.read_reply().startswith("250-mail169.com"))
            self.assertEqual(connection.read_reply(), "250 2.1.0 Ok\r\n")
        finally:
            connection.close()
        self.postgate.gateway.wait_log(r"improper command pipelining after EHLO from localhost\[127\.0\.0\.1\]")


if __name__ == "__main__":
    unittest.main()
