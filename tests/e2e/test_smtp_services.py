"""master.cf services beside port 25, as a Postfix user writes them: submission (STARTTLS before
anything, AUTH required to send at all: smtpd_relay_restrictions = permit_sasl_authenticated,
reject) and smtps (smtpd_tls_wrappermode, TLS from the first byte), each logging under its own
syslog_name. Real clients: swaks over STARTTLS, smtplib.SMTP_SSL and openssl s_client for implicit
TLS, a raw socket for exact replies. Port 25 keeps the reference EHLO list; smtpd_client_auth_rate_limit
counts per client and service over sessions, as anvil does. A master.cf edit is
picked up without a restart; a bad one stops the start with its file and line."""
import base64
import os
import re
import socket
import smtplib
import subprocess
import tempfile
import unittest

from postgate_harness import BIN_DIR, QUEUE_ID, Postgate, free_port, insecure_tls_context, smtp_replies, wait_for

PASSWORD = "Submit-Pass-31c"


def master_cf(submission, smtps, limited, relay_restrictions="permit_sasl_authenticated, reject"):
    return (
        "# service type private unpriv chroot wakeup maxproc command + args\n"
        "smtp      inet  n       -       n       -       -       smtpd\n"
        f"127.0.0.1:{submission} inet n - n - - smtpd\n"
        "  -o syslog_name=postgate/submission\n"
        "  -o smtpd_tls_security_level=encrypt\n"
        "  -o smtpd_sasl_auth_enable=yes\n"
        "  -o smtpd_tls_auth_only=yes\n"
        f"  -o {{ smtpd_relay_restrictions = {relay_restrictions} }}\n"
        f"127.0.0.1:{smtps} inet n - n - - smtpd\n"
        "  -o syslog_name=postgate/smtps\n"
        "  -o smtpd_tls_wrappermode=yes\n"
        "  -o smtpd_sasl_auth_enable=yes\n"
        "  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject\n"
        f"127.0.0.1:{limited} inet n - n - - smtpd\n"
        "  -o smtpd_sasl_auth_enable=yes\n"
        "  -o smtpd_client_auth_rate_limit=2\n"
        "pickup    unix  n       -       y       60      1       pickup\n")


class SmtpServicesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="postgate-services-")
        users = os.path.join(cls.dir, "users")
        hashed = subprocess.run(["mkpasswd", "-m", "sha-512", PASSWORD], check=True, capture_output=True,
                                text=True).stdout.strip()
        with open(users, "w") as out:
            out.write(f"foo:{hashed}\n")
        cls.submission, cls.smtps, cls.limited = free_port(), free_port(), free_port()
        # 127.0.0.1 is outside mynetworks: on port 25 it may only reach local users.
        cls.postgate = Postgate({"mynetworks": "192.168.0.0/24", "postgate_smtpd_sasl_users_file": users},
                                master_cf=master_cf(cls.submission, cls.smtps, cls.limited))
        cls.postgate.start()

    @classmethod
    def tearDownClass(cls):
        cls.postgate.cleanup()
        subprocess.run(["rm", "-rf", cls.dir], check=False)

    @staticmethod
    def raw(port, lines, starttls=False):
        """The greeting, then each line's reply."""
        return smtp_replies(port, lines, starttls=starttls)

    def test_services_listen_where_master_cf_says(self):
        ports = self.postgate.service_ports
        self.assertEqual(ports[f"127.0.0.1:{self.submission}"], self.submission)
        self.assertEqual(ports[f"127.0.0.1:{self.smtps}"], self.smtps)
        self.assertEqual(ports[f"127.0.0.1:{self.limited}"], self.limited)

    def test_port_25_keeps_the_reference_ehlo_list(self):
        greeting, ehlo = self.raw(self.postgate.smtp_port, ["EHLO client.test"])
        self.assertEqual(greeting, "220 mail169.com ESMTP Postgate")
        self.assertEqual(ehlo.split("\n"), [
            "250-mail169.com", "250-PIPELINING", "250-SIZE 10240000", "250-VRFY", "250-ETRN", "250-STARTTLS",
            "250-ENHANCEDSTATUSCODES", "250-8BITMIME", "250-DSN", "250-SMTPUTF8", "250 CHUNKING"])

    def test_submission_needs_tls_then_a_login(self):
        plain = base64.b64encode(f"\0foo\0{PASSWORD}".encode()).decode()
        _, ehlo, mail = self.raw(self.submission, ["EHLO client.test", "MAIL FROM:<foo@mail169.com>"])
        self.assertNotIn("AUTH", ehlo)
        self.assertEqual(mail, "530 5.7.0 Must issue a STARTTLS command first")
        answers = self.raw(self.submission, [
            "EHLO client.test", "MAIL FROM:<foo@mail169.com>", "RCPT TO:<bar@mail169.com>", "RSET",
            f"AUTH PLAIN {plain}", "MAIL FROM:<foo@mail169.com>", "RCPT TO:<bar@mail169.com>",
            "RCPT TO:<someone@example.org>", "DATA", "Subject: submitted\r\n\r\nvia submission\r\n.", "QUIT"],
            starttls=True)
        self.assertIn("250-AUTH PLAIN LOGIN", answers[1])
        # Not logged in: not even a local user may be reached on this service.
        self.assertEqual(answers[3], "554 5.7.1 <bar@mail169.com>: Recipient address rejected: Access denied")
        self.assertEqual(answers[5], "235 2.7.0 Authentication successful")
        self.assertEqual(answers[7:9], ["250 2.1.5 Ok", "250 2.1.5 Ok"])
        queue_id = re.search("queued as (" + QUEUE_ID + ")", answers[10]).group(1)
        log = self.postgate.gateway
        log.wait_log(r"postgate/submission/smtpd\[\d+\]: NOQUEUE: reject: RCPT from localhost\[127\.0\.0\.1\]: 554 5\.7\.1 "
                     r"<bar@mail169\.com>: Recipient address rejected: Access denied;")
        log.wait_log(r"postgate/submission/smtpd\[\d+\]: " + queue_id +
                     r": client=localhost\[127\.0\.0\.1\], sasl_method=PLAIN, sasl_username=foo$")
        self.postgate.wait_delivered("bar", 1)

    def test_submission_with_swaks(self):
        result = subprocess.run(["swaks", "--server", f"127.0.0.1:{self.submission}", "--tls", "--auth", "LOGIN",
                                 "--auth-user", "foo", "--auth-password", PASSWORD, "--from", "foo@mail169.com",
                                 "--to", "someone@example.org", "--header", "Subject: swaks submission"],
                                capture_output=True, text=True, timeout=60)
        self.assertIn("235 2.7.0 Authentication successful", result.stdout, result.stdout + result.stderr)
        self.assertRegex(result.stdout, r"250 2\.0\.0 Ok: queued as " + QUEUE_ID)

    def test_smtps_speaks_tls_from_the_first_byte(self):
        with smtplib.SMTP_SSL("127.0.0.1", self.smtps, context=insecure_tls_context(), timeout=15) as client:
            code, ehlo = client.ehlo("client.test")
            self.assertEqual(code, 250)
            self.assertNotIn(b"STARTTLS", ehlo)  # Already inside TLS.
            self.assertIn(b"AUTH PLAIN LOGIN", ehlo)
            self.assertEqual(client.login("foo", PASSWORD)[0], 235)
            refused = client.sendmail("foo@mail169.com", ["bar@mail169.com"], "Subject: smtps\r\n\r\nvia 465\r\n")
            self.assertEqual(refused, {})
        self.postgate.gateway.wait_log(r"postgate/smtps/smtpd\[\d+\]: Anonymous TLS connection established from "
                                       r"localhost\[127\.0\.0\.1\]: TLSv1\.3")
        # openssl s_client: the greeting arrives inside TLS, before any command.
        session = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{self.smtps}", "-quiet"],
                                 input="QUIT\r\n", capture_output=True, text=True, timeout=30)
        self.assertIn("220 mail169.com ESMTP Postgate", session.stdout)
        self.assertIn("221 2.0.0 Bye", session.stdout)

    def test_plaintext_client_on_smtps_gets_nothing_and_is_logged(self):
        with socket.create_connection(("127.0.0.1", self.smtps), timeout=15) as sock:
            sock.sendall(b"EHLO client.test\r\n")
            self.assertEqual(sock.recv(100), b"")  # No greeting in the clear; the handshake fails.
        self.postgate.gateway.wait_log(r"postgate/smtps/smtpd\[\d+\]: SSL_accept error from localhost\[127\.0\.0\.1\]")

    def test_auth_rate_limit_counts_per_client_over_sessions(self):
        wrong = "AUTH PLAIN " + base64.b64encode(b"\0foo\0wrong").decode()
        right = "AUTH PLAIN " + base64.b64encode(f"\0foo\0{PASSWORD}".encode()).decode()
        answers = self.raw(self.limited, ["EHLO client.test", wrong, wrong, wrong])
        self.assertIn("250-AUTH PLAIN LOGIN", answers[1])
        self.assertEqual(answers[2:4], ["535 5.7.8 Error: authentication failed: authentication failure"] * 2)
        self.assertEqual(answers[4], "450 4.7.1 Error: too many AUTH commands from 127.0.0.1")
        # A new session does not start the count again, even with the right password (as anvil).
        self.assertEqual(self.raw(self.limited, ["EHLO client.test", right])[2],
                         "450 4.7.1 Error: too many AUTH commands from 127.0.0.1")
        self.postgate.gateway.wait_log(r"warning: AUTH command rate limit exceeded: 3 from localhost\[127\.0\.0\.1\] "
                                       rf"for service 127\.0\.0\.1:{self.limited}$")
        # Other services count on their own.
        with smtplib.SMTP_SSL("127.0.0.1", self.smtps, context=insecure_tls_context(), timeout=15) as client:
            self.assertEqual(client.login("foo", PASSWORD)[0], 235)

    def test_master_cf_edit_applies_to_new_sessions(self):
        path = os.path.join(self.postgate.dir, "master.cf")

        def replace_and_wait(text):
            def reloads():
                return sum("reload (master.cf changed)" in line for line in self.postgate.gateway.log())
            before = reloads()
            with open(path + ".new", "w") as out:
                out.write(text)
            os.replace(path + ".new", path)
            wait_for(lambda: reloads() > before, what="the gateway to reload master.cf")
        try:
            replace_and_wait(master_cf(self.submission, self.smtps, self.limited, "permit_sasl_authenticated, defer"))
            answers = self.raw(self.submission, ["EHLO client.test", "MAIL FROM:<foo@mail169.com>",
                                                 "RCPT TO:<bar@mail169.com>"], starttls=True)
            self.assertEqual(answers[3], "450 4.3.2 <bar@mail169.com>: Recipient address rejected: Try again later")
        finally:
            replace_and_wait(master_cf(self.submission, self.smtps, self.limited))

    def test_a_bad_master_cf_stops_the_start_naming_file_and_line(self):
        directory = tempfile.mkdtemp(prefix="postgate-bad-master-", dir=self.dir)
        with open(os.path.join(directory, "main.cf"), "w") as out:
            out.write(open(self.postgate.config).read())
        with open(os.path.join(directory, "master.cf"), "w") as out:
            out.write("smtp inet n - n - - smtpd\n2587 inet n - n - - smtpd\n  -o smtpd_tls_auth_only=maybe\n")
        result = subprocess.run([os.path.join(BIN_DIR, "smtp-gateway"), "--config", os.path.join(directory, "main.cf"),
                                 "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"],
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"{directory}/master.cf:2: smtpd_tls_auth_only: bad boolean value \"maybe\" (use yes or no)",
                      result.stderr)


if __name__ == "__main__":
    unittest.main()
