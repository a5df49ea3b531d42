"""SMTP AUTH for clients (smtpd_sasl_auth_enable) with real clients: swaks (PLAIN and LOGIN over
STARTTLS), Python's smtplib, curl, and a raw socket for the exact replies. The users file holds
hashes made by mkpasswd; smtpd_tls_auth_only keeps AUTH inside TLS. A client outside mynetworks
may relay only once logged in; a wrong password gets Postfix's reply and warning line; the file is
read again when it changes; passwords never reach the log or the metrics."""
import base64
import os
import re
import subprocess
import tempfile
import time
import unittest
import urllib.request
import smtplib

from postgate_harness import QUEUE_ID, Postgate, insecure_tls_context, smtp_replies, wait_for

PASSWORD = "Sub-Pass-9e1f"
ROTATED = "Sub-Pass-rotated-44"


def mkpasswd(password, method="sha-512"):
    return subprocess.run(["mkpasswd", "-m", method, password], check=True, capture_output=True,
                          text=True).stdout.strip()


class SmtpAuthServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="postgate-smtpd-sasl-")
        cls.users = os.path.join(cls.dir, "users")
        cls.write_users(f"foo:{mkpasswd(PASSWORD, 'yescrypt')}\nbar:{mkpasswd('other-user-pw')}\n")
        cls.owners = os.path.join(cls.dir, "sender_login_maps")
        with open(cls.owners, "w") as out:
            out.write("foo@mail169.com foo\nbar@mail169.com bar\n")
        # The client (127.0.0.1) is outside mynetworks: it may relay only once logged in.
        cls.postgate = Postgate({"mynetworks": "192.168.0.0/24", "smtpd_sasl_auth_enable": "yes",
                                 "smtpd_tls_auth_only": "yes", "postgate_smtpd_sasl_users_file": cls.users,
                                 "smtpd_sasl_authenticated_header": "yes",
                                 "smtpd_sender_login_maps": f"texthash:{cls.owners}",
                                 "smtpd_sender_restrictions": "reject_sender_login_mismatch"})
        cls.postgate.start()
        cls.port = cls.postgate.smtp_port

    @classmethod
    def tearDownClass(cls):
        cls.postgate.cleanup()
        subprocess.run(["rm", "-rf", cls.dir], check=False)

    @classmethod
    def write_users(cls, text):
        """As a Secret volume is updated: a new file, then the name swapped onto it."""
        data = os.path.join(cls.dir, f"users-{len(os.listdir(cls.dir))}")
        with open(data, "w") as out:
            out.write(text)
        os.symlink(data, cls.users + ".tmp")
        os.replace(cls.users + ".tmp", cls.users)

    def raw(self, lines, starttls=True):
        """Each line's reply, over STARTTLS unless told otherwise."""
        return smtp_replies(self.port, lines, starttls=starttls)[1:]

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.postgate.gateway_metrics_port}/metrics") as page:
            return page.read().decode()

    def test_auth_only_inside_tls(self):
        ehlo, auth = self.raw(["EHLO client.test", "AUTH PLAIN " + base64.b64encode(f"\0foo\0{PASSWORD}".encode()).decode()],
                              starttls=False)
        self.assertNotIn("AUTH", ehlo)
        self.assertEqual(auth, "503 5.5.1 Error: authentication not enabled")
        (ehlo,) = self.raw(["EHLO client.test"])
        self.assertIn("250-AUTH PLAIN LOGIN", ehlo)

    def test_relay_needs_a_login_and_is_logged_as_postfix_does(self):
        plain = base64.b64encode(f"\0foo\0{PASSWORD}".encode()).decode()
        answers = self.raw(["EHLO client.test", "MAIL FROM:<visitor@example.net>", "RCPT TO:<someone@example.org>",
                            "RSET", f"AUTH PLAIN {plain}", "MAIL FROM:<foo@mail169.com> AUTH=foo@mail169.com",
                            "RCPT TO:<someone@example.org>", "DATA", "Subject: submitted\r\n\r\nfrom outside\r\n.",
                            "QUIT"])
        self.assertEqual(answers[2], "554 5.7.1 <someone@example.org>: Relay access denied")
        self.assertEqual(answers[4], "235 2.7.0 Authentication successful")
        self.assertEqual(answers[6], "250 2.1.5 Ok")
        queue_id = re.search(r"queued as (" + QUEUE_ID + ")", answers[8]).group(1)
        self.postgate.gateway.wait_log(queue_id + r": client=localhost\[127\.0\.0\.1\], sasl_method=PLAIN, sasl_username=foo$")
        shown = subprocess.run([os.path.join(os.environ.get("POSTGATE_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build/bin")), "queuectl"),
                                "--server", f"127.0.0.1:{self.postgate.grpc_port}", "--token-file", self.postgate.token_file,
                                "cat", queue_id], capture_output=True, text=True, timeout=30).stdout
        self.assertRegex(shown, r"\t\(Authenticated sender: foo\)\n\tby mail169\.com \(Postgate\) with ESMTPSA id " + queue_id)
        self.assertNotIn(PASSWORD, "\n".join(self.postgate.gateway.log()) + self.metrics())

    def test_sending_as_another_users_address_is_refused(self):
        plain = base64.b64encode(f"\0foo\0{PASSWORD}".encode()).decode()
        answers = self.raw(["EHLO client.test", "MAIL FROM:<foo@mail169.com>", "RCPT TO:<bar@mail169.com>", "RSET",
                            f"AUTH PLAIN {plain}", "MAIL FROM:<bar@mail169.com>", "RCPT TO:<someone@example.org>",
                            "RSET", "MAIL FROM:<foo@mail169.com>", "RCPT TO:<someone@example.org>"])
        self.assertEqual(answers[2], "553 5.7.1 <foo@mail169.com>: Sender address rejected: not logged in")
        self.assertEqual(answers[6], "553 5.7.1 <bar@mail169.com>: Sender address rejected: not owned by user foo")
        self.assertEqual(answers[9], "250 2.1.5 Ok")
        self.postgate.gateway.wait_log(r"NOQUEUE: reject: RCPT from localhost\[127\.0\.0\.1\]: 553 5\.7\.1 "
                                       r"<bar@mail169\.com>: Sender address rejected: not owned by user foo; "
                                       r"from=<bar@mail169\.com> .*proto=ESMTP")

    def test_wrong_password_postfix_reply_and_warning(self):
        answers = self.raw(["EHLO client.test", "AUTH LOGIN", base64.b64encode(b"foo").decode(),
                            base64.b64encode(b"not-the-password").decode(), "AUTH PLAIN " +
                            base64.b64encode(b"\0nosuch\0whatever").decode()])
        self.assertEqual(answers[1:], ["334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6",
                                       "535 5.7.8 Error: authentication failed: authentication failure",
                                       "535 5.7.8 Error: authentication failed: authentication failure"])
        # The line fail2ban's postfix-sasl filter matches, and nothing else about the password.
        self.postgate.gateway.wait_log(r"warning: localhost\[127\.0\.0\.1\]: SASL LOGIN authentication failed: "
                                       r"authentication failure, sasl_username=foo$")
        self.postgate.gateway.wait_log(r"warning: localhost\[127\.0\.0\.1\]: SASL PLAIN authentication failed: "
                                       r"authentication failure, sasl_username=nosuch$")
        self.assertNotIn("not-the-password", "\n".join(self.postgate.gateway.log()))
        self.assertRegex(self.metrics(), r'postgate_smtpd_sasl_logins_total\{mechanism="LOGIN",result="failed"\} [1-9]')

    def test_real_clients_swaks_smtplib_curl(self):
        for mechanism in ("PLAIN", "LOGIN"):
            result = subprocess.run(["swaks", "--server", f"127.0.0.1:{self.port}", "--tls", "--auth", mechanism,
                                     "--auth-user", "foo", "--auth-password", PASSWORD, "--from", "foo@mail169.com",
                                     "--to", "someone@example.org", "--header", f"Subject: swaks {mechanism}"],
                                    capture_output=True, text=True, timeout=60)
            self.assertIn("235 2.7.0 Authentication successful", result.stdout, result.stdout + result.stderr)
            self.assertRegex(result.stdout, r"250 2\.0\.0 Ok: queued as " + QUEUE_ID)
        with smtplib.SMTP("127.0.0.1", self.port, timeout=15) as client:
            client.starttls(context=insecure_tls_context())
            self.assertEqual(client.login("foo", PASSWORD)[0], 235)
            client.sendmail("foo@mail169.com", ["someone@example.org"], "Subject: smtplib\r\n\r\nhi\r\n")
        with self.assertRaises(smtplib.SMTPAuthenticationError):
            with smtplib.SMTP("127.0.0.1", self.port, timeout=15) as client:
                client.starttls(context=insecure_tls_context())
                client.login("bar", PASSWORD)
        result = subprocess.run(["curl", "-sS", "--ssl-reqd", "--insecure", "--url", f"smtp://127.0.0.1:{self.port}/curl.test",
                                 "--user", f"foo:{PASSWORD}", "--mail-from", "foo@mail169.com", "--mail-rcpt",
                                 "someone@example.org", "--upload-file", "-"],
                                input="Subject: curl\r\n\r\nvia curl\r\n", capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_users_file_rotation_without_restart(self):
        self.write_users(f"foo:{mkpasswd(ROTATED, 'bcrypt')}\n")
        try:
            answers = self.raw(["EHLO client.test", "AUTH PLAIN " + base64.b64encode(f"\0foo\0{PASSWORD}".encode()).decode(),
                                "AUTH PLAIN " + base64.b64encode(f"\0foo\0{ROTATED}".encode()).decode()])
            self.assertEqual(answers[1], "535 5.7.8 Error: authentication failed: authentication failure")
            self.assertEqual(answers[2], "235 2.7.0 Authentication successful")
            self.postgate.gateway.wait_log(r"postgate_smtpd_sasl_users_file: .* re-read \(1 users\)")
        finally:
            self.write_users(f"foo:{mkpasswd(PASSWORD, 'yescrypt')}\nbar:{mkpasswd('other-user-pw')}\n")

    def test_repeated_failures_are_slowed_and_cut_off(self):
        # Postfix's error limits apply to AUTH failures: past smtpd_soft_error_limit (10) each
        # error reply waits smtpd_error_sleep_time (1 s); at smtpd_hard_error_limit (20) the
        # session ends with 421.
        wrong = "AUTH PLAIN " + base64.b64encode(b"\0foo\0guess").decode()
        started = time.monotonic()
        answers = self.raw(["EHLO client.test"] + [wrong] * 21)
        self.assertGreaterEqual(time.monotonic() - started, 9.5)  # Ten errors past the soft limit, 1 s each.
        self.assertEqual(answers[1:21], ["535 5.7.8 Error: authentication failed: authentication failure"] * 20)
        self.assertEqual(answers[21], "421 4.7.0 mail169.com Error: too many errors")


if __name__ == "__main__":
    unittest.main()
