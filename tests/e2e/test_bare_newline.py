"""smtpd_forbid_bare_newline, its _exclusions (default $mynetworks) and _reject_code, with Postfix's
values: normalize (the default, as in Postfix 3.9), note, reject and no. The replies and log lines
of `reject` are those Debian's Postfix 3.7.11 gives (checked with ../shared/bench/postfix-peer.sh);
`note` is Postfix 3.9's ("notes=bare_lf" at the end of the disconnect line)."""
import re
import unittest

from postgate_harness import QUEUE_ID, PostgateTestCase, SmtpConnection, read_to_close, send_message, wait_for

BARE_LF_REPLY = "550 5.5.2 mail169.com Error: bare <LF> received\r\n"
CLIENT = r"localhost\[127\.0\.0\.1\]"


class Session:
    """A raw session on the gateway: greeting read, EHLO sent."""

    def __init__(self, port, ehlo=True):
        self.connection = SmtpConnection(port)
        self.connection.read_reply()
        if ehlo:
            assert self.connection.command("EHLO client.test").startswith("250-")

    def __enter__(self):
        return self.connection

    def __exit__(self, *_):
        self.connection.close()


def start_transaction(connection):
    assert connection.command("MAIL FROM:<foo@mail169.com>") == "250 2.1.0 Ok\r\n"
    assert connection.command("RCPT TO:<bar@mail169.com>") == "250 2.1.5 Ok\r\n"


class RejectTest(PostgateTestCase):
    """reject, for every client (the exclusions emptied: loopback is in $mynetworks)."""
    overrides = {"smtpd_forbid_bare_newline": "reject", "smtpd_forbid_bare_newline_exclusions": ""}

    def test_a_command_before_any_other_is_refused_and_the_session_ends(self):
        with Session(self.postgate.smtp_port, ehlo=False) as connection:
            connection.send(b"EHLO client.test\n")
            self.assertEqual(read_to_close(connection), BARE_LF_REPLY)
        self.postgate.gateway.wait_log(rf"NOQUEUE: reject: CONNECT from {CLIENT}: bare <LF> received; proto=SMTP$")
        self.postgate.gateway.wait_log(rf"disconnect from {CLIENT} commands=0/0$")

    def test_a_command_in_a_transaction_names_the_stage_sender_and_helo(self):
        with Session(self.postgate.smtp_port) as connection:
            self.assertEqual(connection.command("MAIL FROM:<foo@mail169.com>"), "250 2.1.0 Ok\r\n")
            connection.send(b"RCPT TO:<bar@mail169.com>\n")
            self.assertEqual(read_to_close(connection), BARE_LF_REPLY)
        self.postgate.gateway.wait_log(rf"NOQUEUE: reject: MAIL from {CLIENT}: bare <LF> received; "
                                       r"from=<foo@mail169\.com> proto=ESMTP helo=<client\.test>$")
        self.postgate.gateway.wait_log(rf"disconnect from {CLIENT} ehlo=1 mail=1 commands=2$")

    def test_a_message_with_a_bare_lf_is_refused_after_its_end_and_the_session_goes_on(self):
        with Session(self.postgate.smtp_port) as connection:
            start_transaction(connection)
            self.assertTrue(connection.command("DATA").startswith("354"))
            connection.send(b"Subject: bare\r\n\r\nfirst\nsecond\r\n.\r\n")
            self.assertEqual(connection.read_reply(), BARE_LF_REPLY)
            start_transaction(connection)  # The session carries on, as in Postfix.
            self.assertTrue(connection.command("DATA").startswith("354"))
            connection.send(b"Subject: clean\r\n\r\nall CRLF\r\n.\r\n")
            self.assertRegex(connection.read_reply(), r"^250 2\.0\.0 Ok: queued as " + QUEUE_ID)
            self.assertEqual(connection.command("QUIT"), "221 2.0.0 Bye\r\n")
        self.postgate.gateway.wait_log(rf"{QUEUE_ID}: reject: END-OF-MESSAGE from {CLIENT}: bare <LF> received; "
                                       r"from=<foo@mail169\.com> to=<bar@mail169\.com> proto=ESMTP helo=<client\.test>$")
        self.postgate.gateway.wait_log(rf"disconnect from {CLIENT} ehlo=1 mail=2 rcpt=2 data=1/2 quit=1 commands=7/8$")
        delivered = self.postgate.wait_delivered("bar", 1)
        wait_for(lambda: any("Subject: clean" in text for text in self.postgate.read_maildir("bar")), what="clean")
        self.assertFalse(any("Subject: bare" in text for text in delivered + self.postgate.read_maildir("bar")))
        metrics = self.metrics()
        self.assertRegex(metrics, r'postgate_smtpd_rejects_total\{reason="bare_newline"\} [1-9]')

    def test_a_bdat_chunk_with_a_bare_lf_is_refused_and_the_rest_discarded(self):
        with Session(self.postgate.smtp_port) as connection:
            start_transaction(connection)
            chunk = b"Subject: bdat\r\n\r\nbare\nline\r\n"
            connection.send(b"BDAT %d\r\n" % len(chunk) + chunk)
            self.assertEqual(connection.read_reply(), BARE_LF_REPLY)
            connection.send(b"BDAT 5 LAST\r\nend\r\n")
            self.assertEqual(connection.read_reply(), "551 5.0.0 Discarded 5 bytes after earlier error\r\n")
            self.assertEqual(connection.command("QUIT"), "221 2.0.0 Bye\r\n")
        self.postgate.gateway.wait_log(rf"{QUEUE_ID}: reject: BDAT content from {CLIENT}: bare <LF> received; "
                                       r"from=<foo@mail169\.com> to=<bar@mail169\.com> proto=ESMTP helo=<client\.test>$")
        # Postfix 3.7.11, same session: "ehlo=1 mail=1 rcpt=1 bdat=0/2 quit=1 commands=4/6".
        self.postgate.gateway.wait_log(rf"disconnect from {CLIENT} ehlo=1 mail=1 rcpt=1 bdat=0/2 quit=1 commands=4/6$")
        self.assertFalse(any("Subject: bdat" in text for text in self.postgate.read_maildir("bar")))

    def test_bare_cr_and_crlf_only_mail_is_not_refused(self):
        reply = send_message(self.postgate.smtp_port, body="Subject: cr\r\n\r\nbare\rcr is content\r\n")
        self.assertRegex(reply, r"^250 2\.0\.0 Ok: queued as ")

    def metrics(self):
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{self.postgate.gateway_metrics_port}/metrics") as response:
            return response.read().decode()


class RejectCodeTest(PostgateTestCase):
    overrides = {"smtpd_forbid_bare_newline": "REJECT", "smtpd_forbid_bare_newline_exclusions": "",
                 "smtpd_forbid_bare_newline_reject_code": "554"}

    def test_the_reply_code_is_the_configured_one(self):
        with Session(self.postgate.smtp_port) as connection:
            connection.send(b"NOOP\n")
            self.assertEqual(read_to_close(connection), "554 5.5.2 mail169.com Error: bare <LF> received\r\n")


class ExclusionsTest(PostgateTestCase):
    """The default exclusions are $mynetworks (loopback is in it): such a client gets "no" – a bare
    LF is a line end in every respect, so a plain `nc` session (LF only) works, as with Postfix."""
    overrides = {"smtpd_forbid_bare_newline": "reject"}

    def test_a_trusted_client_may_send_lf_only_and_end_data_with_lf_dot_lf(self):
        with Session(self.postgate.smtp_port, ehlo=False) as connection:
            connection.send(b"HELO nc.test\n")
            self.assertEqual(connection.read_reply(), "250 mail169.com\r\n")
            connection.send(b"MAIL FROM:<foo@mail169.com>\n")
            self.assertEqual(connection.read_reply(), "250 2.1.0 Ok\r\n")
            connection.send(b"RCPT TO:<bar@mail169.com>\n")
            self.assertEqual(connection.read_reply(), "250 2.1.5 Ok\r\n")
            connection.send(b"DATA\n")
            self.assertTrue(connection.read_reply().startswith("354"))
            connection.send(b"Subject: netcat\n\n..dot\nbody\n.\n")
            self.assertRegex(connection.read_reply(), r"^250 2\.0\.0 Ok: queued as " + QUEUE_ID)
            connection.send(b"QUIT\n")
            self.assertEqual(connection.read_reply(), "221 2.0.0 Bye\r\n")
        texts = self.postgate.wait_delivered("bar", 1)
        netcat = [text for text in texts if "Subject: netcat" in text]
        self.assertEqual(len(netcat), 1)
        # Message-Id:, Date: and From: were added after the client's header (cleanup, as Postfix).
        self.assertRegex(netcat[0], r"\nSubject: netcat\nMessage-Id: <[^\n]+>\nDate: [^\n]+\n"
                                    r"From: foo@mail169\.com\n\n\.dot\nbody\n$")


class NormalizeTest(PostgateTestCase):
    """The default, normalize, for a client not excluded: a bare LF ends a content line, never the
    message; nothing is refused and nothing is noted."""
    overrides = {"smtpd_forbid_bare_newline_exclusions": ""}

    def test_lf_dot_lf_is_content_and_the_message_is_accepted(self):
        with Session(self.postgate.smtp_port) as connection:
            start_transaction(connection)
            self.assertTrue(connection.command("DATA").startswith("354"))
            connection.send(b"Subject: normalize\r\n\r\nA\n.\nB\r\n.\r\n")
            self.assertRegex(connection.read_reply(), r"^250 2\.0\.0 Ok: queued as ")
            connection.send(b"QUIT\n")  # A command ending in a bare LF is understood.
            self.assertEqual(connection.read_reply(), "221 2.0.0 Bye\r\n")
        text = [t for t in self.postgate.wait_delivered("bar", 1) if "Subject: normalize" in t][0]
        self.assertTrue(text.endswith("\n\nA\n.\nB\n"), text[-40:])
        line = self.postgate.gateway.wait_log(rf"disconnect from {CLIENT} ehlo=1 mail=1 rcpt=1 data=1 quit=1 "
                                              r"commands=5$").string
        self.assertNotIn("notes=", line)


class NoteTest(PostgateTestCase):
    overrides = {"smtpd_forbid_bare_newline": "note", "smtpd_forbid_bare_newline_exclusions": ""}

    def test_a_bare_lf_is_noted_on_the_disconnect_line_only_when_one_came(self):
        self.assertRegex(send_message(self.postgate.smtp_port, body="Subject: note\r\n\r\nbare\nlf\r\n"),
                         r"^250 2\.0\.0 Ok: queued as ")
        self.postgate.gateway.wait_log(rf"disconnect from {CLIENT} ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5 "
                                       r"notes=bare_lf$")
        with Session(self.postgate.smtp_port) as connection:
            connection.send(b"QUIT\r\n")
            self.assertEqual(connection.read_reply(), "221 2.0.0 Bye\r\n")
        lines = self.postgate.gateway.wait_log(rf"disconnect from {CLIENT} ehlo=1 quit=1 commands=2").string
        self.assertFalse(lines.endswith("notes=bare_lf"))


class AllowTest(PostgateTestCase):
    """no: Postfix 3.8's default – <LF>.<LF> ends DATA for every client (smuggling-prone)."""
    overrides = {"smtpd_forbid_bare_newline": "no", "smtpd_forbid_bare_newline_exclusions": ""}

    def test_lf_dot_lf_ends_the_message(self):
        with Session(self.postgate.smtp_port) as connection:
            start_transaction(connection)
            self.assertTrue(connection.command("DATA").startswith("354"))
            connection.send(b"Subject: no\r\n\r\nA\r\n.\nNOOP\r\n")
            self.assertRegex(connection.read_reply(), r"^250 2\.0\.0 Ok: queued as ")
            self.assertEqual(connection.read_reply(), "250 2.0.0 Ok\r\n")  # The NOOP after it.


if __name__ == "__main__":
    unittest.main()
