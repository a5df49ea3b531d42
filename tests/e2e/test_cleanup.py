"""cleanup(8) as Postfix does it, compared with what Debian's Postfix 3.7.11 stored for the same
sessions (../shared/bench/postfix-peer.sh, 2026-11-30; the expected header lines below are its
output with the time and queue ID as placeholders): missing Message-Id:, Date:, From: (or their
Resent- forms) for local clients, nothing for others, and the hop limit that stops mail loops."""
import datetime
import email.utils
import re
import smtplib
import urllib.request
import unittest

from postgate_harness import Postgate, PostgateTestCase, SmtpConnection, QUEUE_ID, wait_for

# Placeholders: MSGID is <YYYYmmddHHMMSS.QUEUEID@mail169.com>, DATE the arrival in main.cf's zone.
POSTFIX_CASES = {
    "netcat": ("foo@mail169.com", "Subject: test\r\n\r\nhello\r\n",
               "Subject: test\nMessage-Id: MSGID\nDate: DATE\nFrom: foo@mail169.com\n\nhello\n"),
    "null sender": ("", "Subject: bounce-ish\r\n\r\nhello\r\n",
                    "Subject: bounce-ish\nMessage-Id: MSGID\nDate: DATE\nFrom: MAILER-DAEMON\n\nhello\n"),
    "resent": ("foo@mail169.com", "From: a@example.com\r\nResent-From: x@example.com\r\nSubject: r\r\n\r\nbody\r\n",
               "From: a@example.com\nResent-From: x@example.com\nSubject: r\nResent-Message-Id: MSGID\n"
               "Resent-Date: DATE\n\nbody\n"),
    "resent date only": ("foo@mail169.com", "Resent-Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: r\r\n\r\nbody\r\n",
                         "Resent-Date: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: r\nResent-Message-Id: MSGID\n"
                         "Resent-From: foo@mail169.com\n\nbody\n"),
    "present in lower case": ("foo@mail169.com",
                              "message-id: <x@y>\r\ndate: Mon, 1 Jan 2024 00:00:00 +0000\r\nfrom: q@example.com\r\n\r\nbody\r\n",
                              "message-id: <x@y>\ndate: Mon, 1 Jan 2024 00:00:00 +0000\nfrom: q@example.com\n\nbody\n"),
    "no body": ("foo@mail169.com", "Subject: nobody\r\n",
                "Subject: nobody\nMessage-Id: MSGID\nDate: DATE\nFrom: foo@mail169.com\n"),
    "quoted local part": ('"a b"@mail169.com', "Subject: q\r\n\r\nbody\r\n",
                          'Subject: q\nMessage-Id: MSGID\nDate: DATE\nFrom: "a b"@mail169.com\n\nbody\n'),
}


def session(port, sender, body, recipients=("bar@mail169.com",)):
    """One message by hand (smtplib would add nothing, but would refuse a quoted sender); the reply."""
    connection = SmtpConnection(port)
    try:
        connection.read_reply()
        connection.command("EHLO client.example")
        assert connection.command(f"MAIL FROM:<{sender}>").startswith("250")
        for recipient in recipients:
            assert connection.command(f"RCPT TO:<{recipient}>").startswith("250")
        assert connection.command("DATA").startswith("354")
        connection.send(body + ".\r\n")
        return connection.read_reply()
    finally:
        connection.close()


def after_our_received(text):
    """The stored message after Return-Path:, X-Original-To:, Delivered-To: and our Received:."""
    match = re.match(r"Return-Path: [^\n]*\nX-Original-To: [^\n]*\nDelivered-To: [^\n]*\n"
                     r"Received: [^\n]*\n(?:\t[^\n]*\n)+", text)
    assert match, text[:400]
    return text[match.end():]


def received_date(text):
    return re.search(r"\n\tfor <[^>]+>; ([^\n]+)\n", text).group(1)


class HeaderCompletionTest(PostgateTestCase):
    """From 127.0.0.1: local_header_rewrite_clients = permit_inet_interfaces (Postfix's default)."""

    def test_the_same_sessions_store_what_postfix_stored(self):
        for name, (sender, body, expected) in POSTFIX_CASES.items():
            with self.subTest(name):
                reply = session(self.postgate.smtp_port, sender, body)
                queue_id = re.search(QUEUE_ID, reply).group(0)
                text = wait_for(lambda: next((m for m in self.postgate.read_maildir("bar") if queue_id in m), None),
                                what=f"{name} delivered")
                date = received_date(text)  # The same instant as the added Date: (the arrival).
                utc = email.utils.parsedate_to_datetime(date).astimezone(datetime.timezone.utc)
                expected = expected.replace("MSGID", f"<{utc:%Y%m%d%H%M%S}.{queue_id}@mail169.com>")
                self.assertEqual(after_our_received(text), expected.replace("DATE", date))
                self.postgate.gateway.wait_log(rf"postgate/cleanup\[\d+\]: {queue_id}: message-id=<")

    def test_a_message_from_a_sender_with_a_full_header_keeps_it_byte_for_byte(self):
        body = ("From: \"Ann\" <foo@mail169.com>\r\nTo: bar@mail169.com\r\nDate: Mon, 30 Nov 2026 10:00:00 +0100\r\n"
                "Message-ID: <kept@mail169.com>\r\nSubject: s\r\n\r\nx\r\n")
        queue_id = re.search(QUEUE_ID, session(self.postgate.smtp_port, "foo@mail169.com", body)).group(0)
        text = wait_for(lambda: next((m for m in self.postgate.read_maildir("bar") if queue_id in m), None))
        self.assertEqual(after_our_received(text), body.replace("\r\n", "\n"))
        self.postgate.gateway.wait_log(rf"{queue_id}: message-id=<kept@mail169\.com>")


class RemoteClientTest(unittest.TestCase):
    def send_and_read(self, overrides):
        postgate = Postgate(overrides).start()
        try:
            queue_id = re.search(QUEUE_ID, session(postgate.smtp_port, "foo@mail169.com",
                                                   "Subject: remote\r\n\r\nhello\r\n")).group(0)
            text = wait_for(lambda: next((m for m in postgate.read_maildir("bar") if queue_id in m), None))
            return after_our_received(text)
        finally:
            postgate.cleanup()

    def test_a_client_not_in_local_header_rewrite_clients_gets_nothing_added_unless_always(self):
        # 127.0.0.1 is in mynetworks but not logged in: not one of these.
        self.assertEqual(self.send_and_read({"local_header_rewrite_clients": "permit_sasl_authenticated"}),
                         "Subject: remote\n\nhello\n")
        added = self.send_and_read({"local_header_rewrite_clients": "permit_sasl_authenticated",
                                    "always_add_missing_headers": "yes",
                                    "undisclosed_recipients_header": "To: undisclosed-recipients:;"})
        self.assertRegex(added, r"^Subject: remote\nMessage-Id: <\d{14}\.\w+@mail169\.com>\nDate: [^\n]+\n"
                                r"From: foo@mail169\.com\nTo: undisclosed-recipients:;\n\nhello\n$")
        self.assertRegex(self.send_and_read({"local_header_rewrite_clients": "permit_mynetworks"}),
                         r"^Subject: remote\nMessage-Id: ")


class HopLimitTest(PostgateTestCase):
    """Postfix 3.7 with hopcount_limit = 50 queued a message with 48 Received: headers and refused
    49 (its own makes 50) with "554 5.4.0 Error: too many hops"; nothing of it is queued."""

    @staticmethod
    def hops(count):
        return "".join(f"Received: from x{i}.example by y.example; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                       for i in range(count)) + "Subject: hops\r\n\r\nbody\r\n"

    def test_data_and_bdat(self):
        self.assertRegex(session(self.postgate.smtp_port, "foo@mail169.com", self.hops(48)),
                         r"^250 2\.0\.0 Ok: queued as ")
        reply = session(self.postgate.smtp_port, "foo@mail169.com", self.hops(49))
        self.assertEqual(reply, "554 5.4.0 Error: too many hops\r\n")
        refused_id = self.postgate.gateway.wait_log(
            r"postgate/cleanup\[\d+\]: warning: (\w+): message rejected: hopcount exceeded").group(1)
        with smtplib.SMTP("127.0.0.1", self.postgate.smtp_port) as client:
            client.ehlo("client.example")
            client.mail("foo@mail169.com")
            client.rcpt("bar@mail169.com")
            content = self.hops(49).encode()
            client.send(f"BDAT {len(content)} LAST\r\n".encode() + content)
            self.assertEqual(client.getreply(), (554, b"5.4.0 Error: too many hops"))
            # The session goes on: the next message is taken.
            client.mail("foo@mail169.com")
            client.rcpt("bar@mail169.com")
            self.assertEqual(client.data(b"Subject: after\r\n\r\nok\r\n")[0], 250)
        wait_for(lambda: any("Subject: after" in m for m in self.postgate.read_maildir("bar")), what="the next message")
        self.assertFalse(any(refused_id in line and "from=<" in line for line in self.postgate.queue.log()),
                         "the refused message was never queued")
        self.assertEqual(sum("Subject: hops" in m for m in self.postgate.read_maildir("bar")), 1)
        self.assertFalse([line for line in self.postgate.gateway.log() if "reject:" in line],
                         "as Postfix's smtpd, no reject line: cleanup's warning says it")
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{self.postgate.gateway_metrics_port}/metrics").read().decode()
        self.assertIn('postgate_smtpd_rejects_total{reason="too_many_hops"} 2', metrics)


if __name__ == "__main__":
    unittest.main()
