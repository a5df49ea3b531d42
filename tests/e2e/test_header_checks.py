"""header_checks (a pcre: table, PCRE2) with every action, on the sessions Debian's Postfix 3.7.11
was given with the same table (2026-11-30): its replies, what it stored, and its cleanup log lines
("<action>: header … from …; from=<…> to=<…> proto=ESMTP helo=<…>: …"); and mime_header_checks and
nested_header_checks on the headers of a multipart body's parts and of an attached message,
compared the same way."""
import os
import re
import shutil
import smtplib
import tempfile
import unittest

from postgate.queue.v1 import queue_pb2, queue_pb2_grpc

from postgate_harness import Postgate, QUEUE_ID, wait_for

TABLE = r"""/^Subject:.*reject-plain/ REJECT
/^Subject:.*reject-text/ REJECT Spam is not welcome here
/^Subject:.*defer-me/ REJECT 4.7.1 Come back later
/^Subject:.*warn-me/ WARN looks odd
/^X-Drop-Me:/ IGNORE
/^Subject: replace-me(.*)/ REPLACE Subject: replaced$1
/^Subject:.*prepend-me/ PREPEND X-Prepended: yes
/^Subject:.*hold-me/ HOLD held for review
/^Subject:.*discard-me/ DISCARD gone
/^Subject:.*redirect-me/ REDIRECT foo@mail169.com
"""

# subject → (reply to the end of DATA, what follows our Received: header in bar's mailbox, or None)
POSTFIX = {
    "reject-plain": ("550 5.7.1 message content rejected", None),
    "reject-text": ("550 5.7.1 Spam is not welcome here", None),
    "defer-me": ("451 4.7.1 Come back later", None),
    "warn-me": ("250", "Subject: warn-me\nMessage-Id: <warn-me@x>\n"),
    "drop": ("250", "Subject: drop\nMessage-Id: <drop@x>\n"),
    "replace-me now": ("250", "Subject: replaced now\nMessage-Id: <replace-me@x>\n"),
    "prepend-me": ("250", "X-Prepended: yes\nSubject: prepend-me\nMessage-Id: <prepend-me@x>\n"),
}


def send(port, subject):
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo("client.example")
        client.mail("foo@mail169.com")
        client.rcpt("bar@mail169.com")
        extra = "X-Drop-Me: 1\r\n" if subject == "drop" else ""
        body = (f"Subject: {subject}\r\n{extra}Message-Id: <{subject.split()[0]}@x>\r\n"
                "Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nFrom: foo@mail169.com\r\n\r\nbody\r\n")
        try:
            code, text = client.data(body)
        except smtplib.SMTPDataError as error:
            code, text = error.smtp_code, error.smtp_error
        text = text.decode()
        return f"{code} {text}" if code != 250 else "250", re.search(QUEUE_ID, text).group(0) if code == 250 else None


class HeaderChecksTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="postgate-hc-")
        cls.table = os.path.join(cls.dir, "header_checks")
        with open(cls.table, "w") as out:
            out.write(TABLE)
        cls.postgate = Postgate({"header_checks": f"pcre:{cls.table}"})
        cls.postgate.start()

    @classmethod
    def tearDownClass(cls):
        cls.postgate.cleanup()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def stored(self, user, queue_id):
        text = wait_for(lambda: next((m for m in self.postgate.read_maildir(user) if queue_id in m), None),
                        what=f"{queue_id} in {user}'s mailbox")
        return text[text.index("(UTC)\n") + len("(UTC)\n"):]

    def test_replies_and_stored_messages_as_postfix(self):
        for subject, (reply, stored) in POSTFIX.items():
            with self.subTest(subject):
                got, queue_id = send(self.postgate.smtp_port, subject)
                self.assertEqual(got, reply)
                if stored is not None:
                    self.assertTrue(self.stored("bar", queue_id).startswith(stored))
        log = "\n".join(self.postgate.gateway.log())
        self.assertRegex(log, r"postgate/cleanup\[\d+\]: \w+: reject: header Subject: reject-plain from "
                              r"localhost\[127\.0\.0\.1\]; from=<foo@mail169\.com> to=<bar@mail169\.com> proto=ESMTP "
                              r"helo=<client\.example>: 5\.7\.1 message content rejected")
        self.assertRegex(log, r": warning: header Subject: warn-me from localhost\[127\.0\.0\.1\]; .*: looks odd")
        self.assertRegex(log, r": replace: header Subject: replace-me now from .*: Subject: replaced now")
        self.assertRegex(log, r": prepend: header Subject: prepend-me from .*: X-Prepended: yes")
        self.assertNotIn("X-Drop-Me", log)  # IGNORE is silent.
        self.assertFalse([line for line in self.postgate.gateway.log() if "reject: END-OF-MESSAGE" in line])

    def test_hold_discard_and_redirect(self):
        reply, held = send(self.postgate.smtp_port, "hold-me")
        self.assertEqual(reply, "250")
        with self.postgate.grpc_channel() as channel:
            message = queue_pb2_grpc.QueueServiceStub(channel).GetMessage(queue_pb2.GetMessageRequest(queue_id=held))
        self.assertEqual(message.state, queue_pb2.MESSAGE_STATE_HOLD)
        self.postgate.queue.wait_log(rf"{held}: from=<foo@mail169\.com>, size=\d+, nrcpt=1 \(queue hold\)")
        self.postgate.gateway.wait_log(rf"{held}: hold: header Subject: hold-me from .*: held for review")

        reply, discarded = send(self.postgate.smtp_port, "discard-me")
        self.assertEqual(reply, "250")  # As Postfix: accepted, then dropped.
        self.postgate.gateway.wait_log(rf"{discarded}: discard: header Subject: discard-me from .*: gone")

        reply, redirected = send(self.postgate.smtp_port, "redirect-me")
        self.assertEqual(reply, "250")
        self.assertIn("Subject: redirect-me", self.stored("foo", redirected))
        self.postgate.queue.wait_log(rf"{redirected}: to=<foo@mail169\.com>, relay=local.*status=sent")
        self.assertFalse(any(discarded in m or redirected in m for m in self.postgate.read_maildir("bar")))
        self.assertFalse(any(discarded in line for line in self.postgate.queue.log()), "discarded: never queued")


MIME_TABLE = r"""/^Content-Type:.*name="?.*\.exe/ REJECT attachment not allowed
/^Content-Disposition: attachment; filename="?(.*)\.bat/ REPLACE Content-Disposition: attachment; filename=$1.txt
/^Content-Description:/ IGNORE
/^X-Part-Header:/ WARN part header seen by mime_header_checks
"""
NESTED_TABLE = r"""/^X-Secret:/ IGNORE
/^Subject: spam/ WARN nested spam
/^X-Part-Header:/ WARN part header seen by nested_header_checks
"""
MULTIPART = ("Subject: s\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n"
             "Message-Id: <parts@x>\nDate: Mon, 30 Nov 2026 10:00:00 +0000\nFrom: foo@mail169.com\n\n"
             "--b\nContent-Type: text/plain\nContent-Description: gone\n  folded too\nX-Part-Header: p\n\nhello\n"
             "--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"x.bat\"\n\nAAAA\n"
             "--b\nContent-Type: message/rfc822\n\nSubject: spam here\nX-Secret: 1\nX-Part-Header: n\n"
             "Content-Description: also gone\n\ninner\n--b--\n")
# What Postfix 3.7.11 stored of MULTIPART's body, and its cleanup's lines (action, header, text).
POSTFIX_BODY = ("--b\nContent-Type: text/plain\nX-Part-Header: p\n\nhello\n"
                "--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=x.txt\n\nAAAA\n"
                "--b\nContent-Type: message/rfc822\n\nSubject: spam here\nX-Part-Header: n\n\ninner\n--b--\n")
POSTFIX_LINES = [
    ("warning", "X-Part-Header: p", "part header seen by mime_header_checks"),
    ("replace", 'Content-Disposition: attachment; filename="x.bat"', "Content-Disposition: attachment; filename=x.txt"),
    ("warning", "Subject: spam here", "nested spam"),
    ("warning", "X-Part-Header: n", "part header seen by nested_header_checks"),
]


class MimeHeaderChecksTest(unittest.TestCase):
    def test_part_and_attached_message_headers_as_postfix(self):
        directory = tempfile.mkdtemp(prefix="postgate-mime-")
        self.addCleanup(shutil.rmtree, directory, True)
        tables = {}
        for name, text in (("mime", MIME_TABLE), ("nested", NESTED_TABLE)):
            tables[name] = os.path.join(directory, name)
            with open(tables[name], "w") as out:
                out.write(text)
        postgate = Postgate({"mime_header_checks": f"regexp:{tables['mime']}",
                             "nested_header_checks": f"regexp:{tables['nested']}"})
        postgate.start()
        self.addCleanup(postgate.cleanup)
        with smtplib.SMTP("127.0.0.1", postgate.smtp_port) as client:
            client.ehlo("client.example")
            client.sendmail("foo@mail169.com", ["bar@mail169.com"], MULTIPART.replace("\n", "\r\n").encode())
            client.mail("foo@mail169.com")
            client.rcpt("bar@mail169.com")
            code, text = client.data("Subject: r\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
                                     "Content-Type: application/x; name=\"a.exe\"\r\n\r\nMZ\r\n--b--\r\n")
        self.assertEqual((code, text.decode()), (550, "5.7.1 attachment not allowed"))
        stored = postgate.wait_delivered("bar", 1)[0]
        self.assertTrue(stored.endswith("\n\n" + POSTFIX_BODY), stored)
        for action, header, text in POSTFIX_LINES:
            postgate.gateway.wait_log(rf"postgate/cleanup\[\d+\]: {QUEUE_ID}: {action}: header {re.escape(header)} from "
                                      rf"localhost\[127\.0\.0\.1\]; from=<foo@mail169\.com> to=<bar@mail169\.com> "
                                      rf"proto=ESMTP helo=<client\.example>: {re.escape(text)}$")
        postgate.gateway.wait_log(r"reject: header Content-Type: application/x; name=\"a\.exe\" from localhost"
                                  r"\[127\.0\.0\.1\]; .*: 5\.7\.1 attachment not allowed$")


if __name__ == "__main__":
    unittest.main()
