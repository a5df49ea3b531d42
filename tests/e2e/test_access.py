"""Sender and recipient access tables (check_sender_access, check_recipient_access) and the
non-FQDN checks, with the replies Debian's Postfix 3.7.11 gives for the same tables; the README's
"only our domains may send through us" set-up; and an edited table applying without a restart."""
import os
import shutil
import smtplib
import tempfile
import unittest
import urllib.request

from postgate_harness import Postgate, wait_for


def rcpt_reply(port, sender, recipient):
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo("client.example")
        code, _ = client.docmd(f"MAIL FROM:<{sender}>")
        assert code == 250, code
        code, text = client.docmd(f"RCPT TO:<{recipient}>")
        return f"{code} {text.decode()}"


class AllowedSenderDomainsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="postgate-access-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.senders = os.path.join(self.dir, "sender_access")
        self.write(self.senders, "mail169.com OK\nexample.com OK\n")
        recipients = os.path.join(self.dir, "recipient_access")
        self.write(recipients, "blocked@mail169.com REJECT\nheld.example 450 4.7.1 Try later\n")
        self.postgate = Postgate({
            "smtpd_sender_restrictions": f"reject_non_fqdn_sender, check_sender_access texthash:{self.senders}, reject",
            "smtpd_recipient_restrictions": f"reject_non_fqdn_recipient, check_recipient_access texthash:{recipients}",
            "defer_transports": "smtp"})
        self.postgate.start()
        self.addCleanup(self.postgate.cleanup)

    @staticmethod
    def write(path, text):
        with open(path + ".new", "w") as out:
            out.write(text)
        os.replace(path + ".new", path)

    def test_only_listed_domains_may_send_and_recipients_are_checked(self):
        port = self.postgate.smtp_port
        self.assertEqual(rcpt_reply(port, "foo@mail169.com", "bar@mail169.com"), "250 2.1.5 Ok")
        self.assertEqual(rcpt_reply(port, "app@mail.example.com", "someone@example.org"), "250 2.1.5 Ok")
        self.assertEqual(rcpt_reply(port, "x@other.example", "bar@mail169.com"),
                         "554 5.7.1 <x@other.example>: Sender address rejected: Access denied")
        self.assertEqual(rcpt_reply(port, "nodomain", "bar@mail169.com"),
                         "504 5.5.2 <nodomain>: Sender address rejected: need fully-qualified address")
        self.assertEqual(rcpt_reply(port, "foo@mail169.com", "blocked@mail169.com"),
                         "554 5.7.1 <blocked@mail169.com>: Recipient address rejected: Access denied")
        self.assertEqual(rcpt_reply(port, "foo@mail169.com", "x@held.example"),
                         "450 4.7.1 <x@held.example>: Recipient address rejected: Try later")
        self.assertEqual(rcpt_reply(port, "foo@mail169.com", "bar"),
                         "504 5.5.2 <bar>: Recipient address rejected: need fully-qualified address")
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{self.postgate.gateway_metrics_port}/metrics").read().decode()
        self.assertIn('postgate_smtpd_rejects_total{reason="access_denied"} 3', metrics)  # 554, 554, 450.
        self.assertIn('postgate_smtpd_rejects_total{reason="relay_denied"} 0', metrics)
        self.postgate.gateway.wait_log(r"NOQUEUE: reject: RCPT from localhost\[127\.0\.0\.1\]: 554 5\.7\.1 "
                                       r"<x@other\.example>: Sender address rejected: Access denied; "
                                       r"from=<x@other\.example> to=<bar@mail169\.com> proto=ESMTP "
                                       r"helo=<client\.example>$")

    def test_an_edited_table_applies_without_a_restart_and_a_broken_one_is_refused(self):
        port = self.postgate.smtp_port
        self.assertTrue(rcpt_reply(port, "x@other.example", "bar@mail169.com").startswith("554 "))
        self.write(self.senders, "mail169.com OK\nexample.com OK\nother.example OK\n")
        self.postgate.gateway.wait_log(r"reload \(a table or key changed\): ")
        self.assertEqual(rcpt_reply(port, "x@other.example", "bar@mail169.com"), "250 2.1.5 Ok")
        self.write(self.senders, "mail169.com OK\nother.example HOLD\n")
        self.postgate.gateway.wait_log(r"reload \(a table or key changed\) refused.*the action for "
                                       r"\"other\.example\" is not one Postgate has")
        self.assertEqual(rcpt_reply(port, "x@other.example", "bar@mail169.com"), "250 2.1.5 Ok")


if __name__ == "__main__":
    unittest.main()
