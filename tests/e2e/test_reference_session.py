"""The reference session from the README, byte for byte, then the mailbox and queuectl."""
import datetime
import email
import email.policy
import email.utils
import mailbox
import os
import re
import tempfile
import subprocess
import unittest

from postgate_harness import PostgateTestCase, BIN_DIR, QUEUE_ID, Postgate, Sink, SmtpConnection, free_port, wait_for

TRANSCRIPT = [
    (None, "220 mail169.com ESMTP Postgate\r\n"),
    ("ehlo 172.20.169.6", "250-mail169.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n"
                          "250-ETRN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"),
    ("mail from:<foo@mail169.com>", "250 2.1.0 Ok\r\n"),
    ("rcpt to:<bar@mail169.com>", "250 2.1.5 Ok\r\n"),
    ("data", "354 End data with <CR><LF>.<CR><LF>\r\n"),
]
BODY_LINE = "MOREAU--THOMAS, MARY, alphacassiopeabetagruis, 169"


def assert_well_formed(test, text, body):
    """Python's email parser finds no defect (MissingHeaderBodySeparatorDefect before the fix)."""
    message = email.message_from_string(text, policy=email.policy.default)
    test.assertEqual(message.defects, [])
    test.assertEqual(message.get_content().strip("\n"), body)


def play(test, port, line_end, recipient="bar@mail169.com"):
    """The reference netcat session (recipient aside); returns the queue ID."""
    transcript = [(line.replace("bar@mail169.com", recipient) if line else line, reply)
                  for line, reply in TRANSCRIPT]
    connection = SmtpConnection(port)
    try:
        for line, expected in transcript:
            if line is None:
                test.assertEqual(connection.read_reply(), expected)
            else:
                connection.send(line + line_end)
                test.assertEqual(connection.read_reply(), expected, line)
        connection.send(BODY_LINE + "\r\n.\r\n")
        queued = connection.read_reply()
        test.assertRegex(queued, rf"^250 2\.0\.0 Ok: queued as ({QUEUE_ID})\r\n$")
        connection.send("quit" + line_end)
        test.assertEqual(connection.read_reply(), "221 2.0.0 Bye\r\n")
        test.assertEqual(connection.sock.recv(100), b"", "server closes after 221")
    finally:
        connection.close()
    return re.search(QUEUE_ID, queued).group(0)


class ReferenceSessionTest(PostgateTestCase):

    def play(self, line_end):
        return play(self, self.postgate.smtp_port, line_end)

    def test_netcat_session_delivers_to_bar_and_queuectl_reports_it(self):
        before = len(self.postgate.maildir_files("bar"))
        queue_id = self.play("\r\n")  # nc -C
        messages = self.postgate.wait_delivered("bar", before + 1)
        message = [m for m in messages if queue_id in m]
        self.assertEqual(len(message), 1, "exactly one copy in bar's Maildir")
        text = message[0]
        headers, _, body = text.partition("\n\n")
        lines = headers.split("\n")
        self.assertEqual(lines[0], "Return-Path: <foo@mail169.com>")
        self.assertEqual(lines[1], "X-Original-To: bar@mail169.com")
        self.assertEqual(lines[2], "Delivered-To: bar@mail169.com")
        self.assertEqual(lines[3], "Received: from 172.20.169.6 (localhost [127.0.0.1])")
        self.assertEqual(lines[4], f"\tby mail169.com (Postgate) with ESMTP id {queue_id}")
        self.assertRegex(lines[5], r"^\tfor <bar@mail169\.com>; \w{3}, \d{2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}")
        # The client sent no header block: its line is not a header, so (as Postfix's cleanup) an
        # empty line ends the header section before it, and it is the whole body.
        self.assertEqual(body, BODY_LINE + "\n")
        # From 127.0.0.1 (local_header_rewrite_clients = permit_inet_interfaces), cleanup adds what
        # Debian's Postfix 3.7 adds to the same session: Message-Id: <UTC time.queue ID@myhostname>,
        # Date: and From: the envelope sender – and no To:.
        date = re.search(r"; (\w{3}, \d{2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4} \(\w+\))$", lines[5]).group(1)
        stamp = email.utils.parsedate_to_datetime(date).astimezone(datetime.timezone.utc).strftime("%Y%m%d%H%M%S")
        self.assertEqual(lines[6:], [f"Message-Id: <{stamp}.{queue_id}@mail169.com>", f"Date: {date}",
                                     "From: foo@mail169.com"])
        assert_well_formed(self, text, BODY_LINE)
        self.assertNotIn("\r", text, "Maildir files use LF line ends")

        def shown():
            result = subprocess.run([os.path.join(BIN_DIR, "queuectl"), "--server",
                                     f"127.0.0.1:{self.postgate.grpc_port}", "show", queue_id],
                                    capture_output=True, text=True, timeout=30)
            return result if "done" in result.stdout else None

        result = wait_for(shown, what="queuectl show reporting done")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(f"Queue ID:   {queue_id}", result.stdout)
        self.assertIn("Sender:     <foo@mail169.com>", result.stdout)
        self.assertRegex(result.stdout, r"bar@mail169\.com\s+delivered\s+250 2\.0\.0\s+relay=local\s+attempts=1\s+delivered to maildir")

    def test_plain_nc_with_bare_lf_command_lines(self):
        before = len(self.postgate.maildir_files("bar"))
        queue_id = self.play("\n")
        self.postgate.wait_delivered("bar", before + 1)
        self.assertEqual(sum(queue_id in m for m in self.postgate.read_maildir("bar")), 1)

    def test_pipelined_group_is_answered_in_order_and_nothing_is_lost(self):
        connection = SmtpConnection(self.postgate.smtp_port)
        try:
            connection.read_reply()
            # EHLO ends a group (RFC 2920): its reply is awaited; then one group up to DATA.
            self.assertTrue(connection.command("EHLO x").startswith("250-mail169.com"))
            connection.send("MAIL FROM:<foo@mail169.com>\r\nRCPT TO:<bar@mail169.com>\r\n"
                            "RCPT TO:<nobody@mail169.com>\r\nRCPT TO:<bar+tag@mail169.com>\r\nDATA\r\n")
            replies = [connection.read_reply() for _ in range(5)]
            self.assertEqual(replies, [
                "250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n",
                "550 5.1.1 <nobody@mail169.com>: Recipient address rejected: User unknown in local recipient table\r\n",
                "250 2.1.5 Ok\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n"])
            # Body, end of data and QUIT in one write: the QUIT after "." must not be lost.
            connection.send("Subject: pipelined\r\n\r\n..dot\r\n.\r\nQUIT\r\n")
            queued = connection.read_reply()
            self.assertRegex(queued, rf"^250 2\.0\.0 Ok: queued as {QUEUE_ID}\r\n$")
            self.assertEqual(connection.read_reply(), "221 2.0.0 Bye\r\n")
        finally:
            connection.close()
        queue_id = re.search(QUEUE_ID, queued).group(0)
        messages = wait_for(lambda: [m for m in self.postgate.read_maildir("bar") if queue_id in m] or None,
                            what="pipelined message delivered")
        # bar and bar+tag are two recipients of one message: two deliveries, each with its own Delivered-To.
        wait_for(lambda: len([m for m in self.postgate.read_maildir("bar") if queue_id in m]) == 2)
        messages = [m for m in self.postgate.read_maildir("bar") if queue_id in m]
        delivered_to = sorted(re.search(r"^Delivered-To: (.*)$", m, re.M).group(1) for m in messages)
        self.assertEqual(delivered_to, ["bar+tag@mail169.com", "bar@mail169.com"])
        self.assertTrue(all("\n.dot\n" in m for m in messages), "dot-unstuffed")


class ReferenceSessionOtherPathsTest(unittest.TestCase):
    """The same session's message is well formed in an mbox and when relayed (smtp-sink)."""

    def test_mbox(self):
        postgate = Postgate({"postgate_mailbox_format": "mbox"}).start()
        try:
            queue_id = play(self, postgate.smtp_port, "\r\n")
            path = os.path.join(postgate.data_dir, "mail", "bar.mbox")

            def delivered():
                if not os.path.exists(path):
                    return None
                box = mailbox.mbox(path)
                try:  # The raw text (a parsed message would be regenerated with the empty line).
                    texts = [box.get_bytes(key).decode() for key in box.keys()]
                finally:
                    box.close()
                return [text for text in texts if queue_id in text] or None

            text = wait_for(delivered, what="the message in bar.mbox")[0]
            self.assertFalse(text.startswith("From "), "get_bytes leaves the From_ line out")
            assert_well_formed(self, text, BODY_LINE)
        finally:
            postgate.cleanup()

    def test_relayed(self):
        port = free_port()
        with tempfile.NamedTemporaryFile("w", suffix=".transport", delete=False) as transport:
            transport.write(f"example.org smtp:[127.0.0.1]:{port}\n")
        sink = Sink(port)
        postgate = Postgate({"defer_transports": "", "transport_maps": f"texthash:{transport.name}"}).start()
        try:
            queue_id = play(self, postgate.smtp_port, "\r\n", recipient="user@example.org")
            text = wait_for(lambda: [m for m in sink.messages() if queue_id in m] or None,
                            what="the message at smtp-sink")[0]
            # smtp-sink's dump: its own headers, then the message as received.
            received = text[text.index("Received: from 172.20.169.6"):].replace("\r\n", "\n")
            assert_well_formed(self, received, BODY_LINE)
        finally:
            postgate.cleanup()
            sink.stop()
            os.unlink(transport.name)


if __name__ == "__main__":
    unittest.main()
