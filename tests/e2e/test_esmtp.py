"""ESMTP extensions end to end: CHUNKING (BDAT) and SMTPUTF8, with raw sockets and smtplib."""
import re
import smtplib
import unittest

from postgate.queue.v1 import queue_pb2, queue_pb2_grpc
from postgate_harness import PostgateTestCase, QUEUE_ID, Postgate, SmtpConnection, send_message, wait_for


def bdat(connection, data, last=False):
    """Sends one BDAT chunk exactly (no CRLF after the data) and returns the reply."""
    data = data.encode() if isinstance(data, str) else data
    connection.send(b"BDAT %d%s\r\n" % (len(data), b" LAST" if last else b"") + data)
    return connection.read_reply()


def delivered(postgate, queue_id):
    return wait_for(lambda: [m for m in postgate.read_maildir("bar") if f"id {queue_id}" in m] or None,
                    what=f"{queue_id} delivered")


class ChunkingTest(PostgateTestCase):
    overrides = {"message_size_limit": "100000"}

    def connect(self):
        connection = SmtpConnection(self.postgate.smtp_port)
        connection.read_reply()
        ehlo = connection.command("EHLO bdat.test")
        self.assertIn("250-CHUNKING\r\n", ehlo.replace("250 CHUNKING", "250-CHUNKING"))
        return connection

    def test_uneven_chunks_pipelined_with_zero_length_last(self):
        content = ("Subject: chunks\r\nX-8bit: caf\xc3\xa9\r\n\r\n.leading dot stays\r\n"
                   "..two dots stay\r\nline\r\n.\r\nafter a lone dot\r\n").encode("latin1")
        pieces = [content[:7], content[7:8], content[8:50], content[50:]]
        connection = self.connect()
        try:
            wire = b"MAIL FROM:<foo@mail169.com> BODY=8BITMIME\r\nRCPT TO:<bar@mail169.com>\r\n"
            for piece in pieces:
                wire += b"BDAT %d\r\n" % len(piece) + piece
            wire += b"BDAT 0 LAST\r\nQUIT\r\n"
            connection.send(wire)  # All of it in one write: PIPELINING with BDAT.
            replies = [connection.read_reply() for _ in range(2 + len(pieces) + 2)]
        finally:
            connection.close()
        self.assertEqual(replies[:2], ["250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n"])
        total = 0
        for piece, reply in zip(pieces, replies[2:]):
            total += len(piece)
            self.assertEqual(reply, f"250 2.0.0 Ok: {total} bytes\r\n")
        last = replies[2 + len(pieces)]
        self.assertRegex(last, rf"^250 2\.0\.0 Ok: {len(content)} bytes queued as {QUEUE_ID}\r\n$")
        self.assertEqual(replies[-1], "221 2.0.0 Bye\r\n")
        queue_id = re.search(QUEUE_ID, last).group(0)
        text = delivered(self.postgate, queue_id).pop()
        with open([p for p in self.postgate.maildir_files("bar") if queue_id in p][0], "rb") as f:
            raw = f.read()
        body = raw.split(b"\n\n", 1)[1]
        self.assertEqual(body, b".leading dot stays\n..two dots stay\nline\n.\nafter a lone dot\n")
        self.assertIn(b"X-8bit: caf\xc3\xa9\n", raw)
        self.assertIn("Subject: chunks", text)

    def test_single_last_chunk_without_final_newline(self):
        connection = self.connect()
        try:
            content = b"Subject: one\r\n\r\nno newline"
            connection.send(b"MAIL FROM:<foo@mail169.com>\r\nRCPT TO:<bar@mail169.com>\r\n"
                            b"BDAT %d LAST\r\n" % len(content) + content)
            replies = [connection.read_reply() for _ in range(3)]
        finally:
            connection.close()
        queue_id = re.search(QUEUE_ID, replies[2]).group(0)
        self.assertTrue(delivered(self.postgate, queue_id)[0].endswith("\n\nno newline\n"))

    def test_errors_and_mixing_with_data(self):
        connection = self.connect()
        try:
            self.assertEqual(bdat(connection, "abc"), "503 5.5.1 Error: need RCPT command\r\n")
            self.assertEqual(bdat(connection, "xy"), "551 5.0.0 Discarded 2 bytes after earlier error\r\n")
            self.assertEqual(connection.command("MAIL FROM:<foo@mail169.com>"), "503 5.5.1 Error: MAIL after BDAT\r\n")
            self.assertEqual(connection.command("RSET"), "250 2.0.0 Ok\r\n")
            connection.command("MAIL FROM:<foo@mail169.com>")
            connection.command("RCPT TO:<bar@mail169.com>")
            self.assertEqual(bdat(connection, "hello"), "250 2.0.0 Ok: 5 bytes\r\n")
            self.assertEqual(connection.command("DATA"), "503 5.5.1 Error: DATA after BDAT\r\n")
            self.assertEqual(connection.command("RSET"), "250 2.0.0 Ok\r\n")
            connection.command("MAIL FROM:<foo@mail169.com>")
            connection.command("RCPT TO:<bar@mail169.com>")
            self.assertTrue(connection.command("DATA").startswith("354"))
            connection.send("Subject: data then bdat\r\n\r\nx\r\n.\r\n")
            self.assertTrue(connection.read_reply().startswith("250 2.0.0 Ok: queued as"))
            self.assertEqual(connection.command("BDAT 0 LAST"), "503 5.5.1 Error: need RCPT command\r\n")
            self.assertEqual(connection.command("NOOP"), "250 2.0.0 Ok\r\n")
            self.assertEqual(connection.command("BDAT 3 FOO"), "521 5.5.4 Syntax: BDAT count [LAST]\r\n")
            self.assertEqual(connection.sock.recv(10), b"", "521 closes the connection")
        finally:
            connection.close()
        # The RSET-abandoned "hello" never reaches a mailbox.
        wait_for(lambda: any("data then bdat" in m for m in self.postgate.read_maildir("bar")))
        self.assertFalse(any(m.endswith("hello\n") for m in self.postgate.read_maildir("bar")))

    def test_chunk_over_the_size_limit_is_refused_and_skipped(self):
        connection = self.connect()
        try:
            connection.command("MAIL FROM:<foo@mail169.com>")
            connection.command("RCPT TO:<bar@mail169.com>")
            big = b"y" * 150000
            connection.send(b"BDAT %d\r\n" % len(big) + big)
            self.assertEqual(connection.read_reply(), "552 5.3.4 Message size exceeds fixed limit\r\n")
            self.assertEqual(bdat(connection, "more", last=True),
                             "551 5.0.0 Discarded 4 bytes after earlier error\r\n")
            self.assertEqual(connection.command("MAIL FROM:<foo@mail169.com>"), "250 2.1.0 Ok\r\n")
        finally:
            connection.close()


class EtrnTest(PostgateTestCase):
    overrides = {"fast_flush_domains": "$mydestination, example.org"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.stub = queue_pb2_grpc.QueueServiceStub(cls.postgate.grpc_channel())

    def attempts(self, queue_id):
        message = self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=queue_id))
        return [r.attempts for r in message.recipients if r.state == queue_pb2.RECIPIENT_STATE_DEFERRED]

    def test_etrn_flushes_deferred_mail_for_the_domain(self):
        reply = send_message(self.postgate.smtp_port, recipients=("x@example.org", "y@mx.example.org"))
        queue_id = re.search(QUEUE_ID, reply).group(0)
        wait_for(lambda: self.attempts(queue_id) == [1, 1], what="first attempt deferred")
        connection = SmtpConnection(self.postgate.smtp_port)
        try:
            connection.read_reply()
            connection.command("EHLO etrn.test")
            self.assertEqual(connection.command("ETRN example.org"), "250 Queuing started\r\n")
            wait_for(lambda: self.attempts(queue_id) == [2, 2], what="a second attempt after ETRN")
            self.assertEqual(connection.command("ETRN @example.org"), "250 Queuing started\r\n")
            wait_for(lambda: self.attempts(queue_id) == [3, 3], what="a third attempt after ETRN @")
            self.assertEqual(connection.command("ETRN example.net"), "459 <example.net>: service unavailable\r\n")
            self.assertEqual(connection.command("ETRN"), "500 Syntax: ETRN domain\r\n")
            self.assertEqual(connection.command("ETRN -bad-"), "501 Error: invalid parameter syntax\r\n")
            connection.command("MAIL FROM:<foo@mail169.com>")
            self.assertEqual(connection.command("ETRN example.org"), "503 Error: MAIL transaction in progress\r\n")
        finally:
            connection.close()
        self.postgate.queue.wait_log(r"flush @example\.org: 1 messages scheduled")

    def test_etrn_with_the_queue_down_is_458(self):
        postgate = Postgate({"fast_flush_domains": "example.org", "postgate_queue_timeout": "2s"}).start()
        try:
            postgate.queue.stop()
            connection = SmtpConnection(postgate.smtp_port)
            connection.read_reply()
            self.assertEqual(connection.command("ETRN example.org"), "458 Unable to queue messages\r\n")
            connection.close()
        finally:
            postgate.cleanup()


class Smtputf8Test(PostgateTestCase):
    overrides = {"postgate_local_users": "foo, bar, pelé"}

    def test_smtplib_smtputf8_is_preserved_byte_for_byte(self):
        # Date: and Message-ID: present, so cleanup adds nothing: the stored message is what was sent.
        message = ("From: Pelé <pelé@mail169.com>\r\nTo: bar@mail169.com\r\nSubject: Olá, café ☕\r\n"
                   "Date: Mon, 30 Nov 2026 12:00:00 +0000\r\nMessage-ID: <olá@mail169.com>\r\n"
                   "Content-Type: text/plain; charset=utf-8\r\n\r\nçà et là — 📧\r\n").encode("utf-8")
        with smtplib.SMTP("127.0.0.1", self.postgate.smtp_port) as client:
            client.ehlo("utf8.test")
            self.assertTrue(client.has_extn("smtputf8"))
            refused = client.sendmail("pelé@mail169.com", ["bar@mail169.com", "pelé@mail169.com"], message,
                                      mail_options=["SMTPUTF8", "BODY=8BITMIME"])
            self.assertEqual(refused, {})
        texts = wait_for(lambda: [m for m in self.postgate.read_maildir("bar") if "café" in m] or None)
        with open(self.postgate.maildir_files("bar")[0], "rb") as f:
            raw = f.read()
        self.assertIn(message.replace(b"\r\n", b"\n"), raw)
        self.assertIn("Return-Path: <pelé@mail169.com>", texts[0])
        self.assertIn("with UTF8SMTP id", texts[0])
        self.assertTrue(wait_for(lambda: self.postgate.read_maildir("pelé"), what="pelé's copy"))

    def test_unicode_without_smtputf8_and_bad_utf8(self):
        connection = SmtpConnection(self.postgate.smtp_port)
        try:
            connection.read_reply()
            connection.command("EHLO x")
            self.assertEqual(connection.command("MAIL FROM:<pelé@mail169.com>"),
                             "553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n")
            connection.send(b"MAIL FROM:<p\xffl@mail169.com> SMTPUTF8\r\n")
            self.assertEqual(connection.read_reply(), "500 5.5.2 Error: bad UTF-8 syntax\r\n")
            self.assertEqual(connection.command("MAIL FROM:<foo@mail169.com>"), "250 2.1.0 Ok\r\n")
            self.assertEqual(connection.command("RCPT TO:<pelé@mail169.com>"),
                             "553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n")
            self.assertEqual(connection.command("VRFY pelé SMTPUTF8"), "252 2.0.0 pelé\r\n")
        finally:
            connection.close()


if __name__ == "__main__":
    unittest.main()
