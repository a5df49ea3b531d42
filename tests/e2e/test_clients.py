"""Real SMTP clients against Postgate: Python smtplib, swaks and curl."""
import email
import smtplib
import subprocess
import unittest

from postgate_harness import PostgateTestCase, QUEUE_ID, Postgate, wait_for


class RealClientsTest(PostgateTestCase):

    def delivered_with(self, marker):
        return wait_for(lambda: [m for m in self.postgate.read_maildir("bar") if marker in m] or None,
                        what=f"message with {marker!r} delivered")

    def test_smtplib(self):
        with smtplib.SMTP("127.0.0.1", self.postgate.smtp_port, local_hostname="smtplib.test") as client:
            code, features = client.ehlo()
            self.assertEqual(code, 250)
            for extension in ("pipelining", "size", "8bitmime", "enhancedstatuscodes", "vrfy"):
                self.assertTrue(client.has_extn(extension), extension)
            self.assertEqual(client.esmtp_features["size"], "10240000")
            message = email.message_from_string("From: foo@mail169.com\nTo: bar@mail169.com\n"
                                                "Subject: via smtplib\n\nhello from smtplib\n.starts with a dot\n")
            refused = client.send_message(message, "foo@mail169.com", ["bar@mail169.com", "postmaster@mail169.com"])
            self.assertEqual(refused, {})
            code, text = client.verify("bar")
            self.assertEqual((code, text), (252, b"2.0.0 bar"))
            with self.assertRaises(smtplib.SMTPRecipientsRefused) as refusal:
                client.sendmail("foo@mail169.com", ["nobody@mail169.com"], "Subject: x\n\nx\n")
            self.assertEqual(refusal.exception.recipients["nobody@mail169.com"][0], 550)
        delivered = self.delivered_with("hello from smtplib")
        wait_for(lambda: len([m for m in self.postgate.read_maildir("bar") if "hello from smtplib" in m]) == 2,
                 what="bar and postmaster (aliased to bar) copies")
        delivered = [m for m in self.postgate.read_maildir("bar") if "hello from smtplib" in m]
        originals = sorted(email.message_from_string(m)["X-Original-To"] for m in delivered)
        self.assertEqual(originals, ["bar@mail169.com", "postmaster@mail169.com"])
        parsed = email.message_from_string(delivered[0])
        self.assertEqual(parsed["Subject"], "via smtplib")
        self.assertIn("\n.starts with a dot\n", delivered[0])

    def test_swaks(self):
        result = subprocess.run(["swaks", "--server", f"127.0.0.1:{self.postgate.smtp_port}", "--from",
                                 "foo@mail169.com", "--to", "bar@mail169.com", "--helo", "swaks.test",
                                 "--header", "Subject: via swaks", "--body", "hello from swaks",
                                 "--pipeline"], capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertRegex(result.stdout, rf"<\*\* 250 2\.0\.0 Ok: queued as {QUEUE_ID}|<-  250 2\.0\.0 Ok: queued as {QUEUE_ID}")
        delivered = self.delivered_with("hello from swaks")[0]
        self.assertIn("Subject: via swaks", delivered)
        self.assertIn("Received: from swaks.test (localhost [127.0.0.1])", delivered)

    def test_curl(self):
        body = "From: foo@mail169.com\r\nTo: bar@mail169.com\r\nSubject: via curl\r\n\r\nhello from curl\r\n"
        result = subprocess.run(["curl", "-sS", "--url", f"smtp://127.0.0.1:{self.postgate.smtp_port}/curl.test",
                                 "--mail-from", "foo@mail169.com", "--mail-rcpt", "bar+curl@mail169.com",
                                 "--upload-file", "-"], input=body, capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        delivered = self.delivered_with("hello from curl")[0]
        self.assertIn("Delivered-To: bar+curl@mail169.com", delivered)
        self.assertIn("Subject: via curl", delivered)


if __name__ == "__main__":
    unittest.main()
