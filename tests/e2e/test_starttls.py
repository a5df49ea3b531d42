"""STARTTLS with real TLS clients: openssl s_client, swaks, smtplib, curl; the CVE-2011-0411
injection; smtpd_tls_security_level = encrypt; certificate reload without restart."""
import hashlib
import os
import re
import smtplib
import ssl
import subprocess
import unittest

from postgate_harness import PostgateTestCase, QUEUE_ID, SOURCE_DIR, Postgate, SmtpConnection, wait_for


def client_context():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # The snakeoil certificate is self-signed.
    return context


def tls_connection(port):
    """A raw SmtpConnection that has done EHLO and STARTTLS; its socket is the TLS one."""
    connection = SmtpConnection(port)
    connection.read_reply()
    connection.command("EHLO raw.tls")
    assert connection.command("STARTTLS").startswith("220")
    connection.sock = client_context().wrap_socket(connection.sock, server_hostname="mail169.com")
    return connection


class StartTlsTest(PostgateTestCase):
    # openssl s_client writes its whole input at once ("EHLO…\r\nQUIT\r\n"), which
    # smtpd_forbid_unauth_pipelining refuses (test_pipelining.py); these tests are about TLS.
    overrides = {"smtpd_forbid_unauth_pipelining": "no"}

    def s_client(self, *options, commands="EHLO after.tls\r\nQUIT\r\n"):
        return subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect",
                               f"127.0.0.1:{self.postgate.smtp_port}", "-crlf", "-ign_eof", *options],
                              input=commands, capture_output=True, text=True, timeout=30)

    def test_openssl_s_client_tls13_and_the_post_tls_ehlo(self):
        result = self.s_client("-brief")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("Protocol version: TLSv1.3", result.stderr)
        after = result.stdout[result.stdout.index("250-mail169.com"):]
        self.assertEqual(re.findall(r"^250[- ](\S+)", after, re.M),
                         ["mail169.com", "PIPELINING", "SIZE", "VRFY", "ETRN", "ENHANCEDSTATUSCODES", "8BITMIME",
                          "DSN", "SMTPUTF8", "CHUNKING"])
        self.assertNotIn("STARTTLS", after, "not offered again inside TLS")
        self.assertIn("221 2.0.0 Bye", after)

    def test_tls12_allowed_tls11_refused(self):
        result = self.s_client("-brief", "-tls1_2")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("Protocol version: TLSv1.2", result.stderr)
        old = self.s_client("-brief", "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
        self.assertNotEqual(old.returncode, 0)
        self.assertNotIn("Protocol version", old.stderr)

    def test_swaks_tls_and_received_header(self):
        result = subprocess.run(["swaks", "--server", f"127.0.0.1:{self.postgate.smtp_port}", "--tls",
                                 "--from", "foo@mail169.com", "--to", "bar@mail169.com",
                                 "--header", "Subject: swaks over tls", "--body", "tls body"],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("TLS started", result.stdout)
        queue_id = re.search(rf"queued as ({QUEUE_ID})", result.stdout).group(1)
        text = wait_for(lambda: [m for m in self.postgate.read_maildir("bar") if queue_id in m] or None)[0]
        self.assertRegex(text, r"\n\t\(using TLSv1\.3 with cipher TLS_\w+ \(\d+/\d+ bits\)\)\n"
                               r"\t\(No client certificate requested\)\n"
                               rf"\tby mail169\.com \(Postgate\) with ESMTPS id {queue_id}\n")

    def test_smtplib_starttls(self):
        with smtplib.SMTP("127.0.0.1", self.postgate.smtp_port) as client:
            client.ehlo("smtplib.tls")
            self.assertTrue(client.has_extn("starttls"))
            code, _ = client.starttls(context=client_context())
            self.assertEqual(code, 220)
            client.ehlo("smtplib.tls")
            self.assertFalse(client.has_extn("starttls"))
            self.assertTrue(client.has_extn("chunking"))
            refused = client.sendmail("foo@mail169.com", ["bar@mail169.com"], "Subject: smtplib tls\r\n\r\nsecret\r\n")
            self.assertEqual(refused, {})
        wait_for(lambda: any("smtplib tls" in m and "with ESMTPS" in m for m in self.postgate.read_maildir("bar")))

    def test_curl_ssl_reqd(self):
        body = "Subject: via curl tls\r\n\r\ncurl over tls\r\n"
        result = subprocess.run(["curl", "-sS", "--ssl-reqd", "--insecure", "--url",
                                 f"smtp://127.0.0.1:{self.postgate.smtp_port}/curl.tls", "--mail-from",
                                 "foo@mail169.com", "--mail-rcpt", "bar@mail169.com", "--upload-file", "-"],
                                input=body, capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        wait_for(lambda: any("curl over tls" in m and "with ESMTPS" in m for m in self.postgate.read_maildir("bar")))

    def test_cve_2011_0411_pipelined_plaintext_is_discarded(self):
        connection = SmtpConnection(self.postgate.smtp_port)
        try:
            connection.read_reply()
            connection.command("EHLO x")
            connection.send("STARTTLS\r\nVRFY injected\r\n")  # One packet: the injection.
            self.assertEqual(connection.read_reply(), "220 2.0.0 Ready to start TLS\r\n")
            self.assertEqual(connection.buffer, b"")
            tls = client_context().wrap_socket(connection.sock, server_hostname="mail169.com")
            tls.sendall(b"NOOP\r\n")
            first = b""
            while not first.endswith(b"\r\n"):
                first += tls.recv(4096)
            self.assertEqual(first, b"250 2.0.0 Ok\r\n", "the injected VRFY must not run inside TLS")
            tls.close()
        finally:
            connection.close()
        self.postgate.gateway.wait_log(r"discarding 15 bytes pipelined after STARTTLS")

    def test_size_8bitmime_and_bdat_inside_tls(self):
        connection = tls_connection(self.postgate.smtp_port)
        try:
            ehlo = connection.command("EHLO inside.tls")
            self.assertIn("250-SIZE 10240000", ehlo)
            self.assertEqual(connection.command("MAIL FROM:<foo@mail169.com> SIZE=99999999"),
                             "552 5.3.4 Message size exceeds fixed limit\r\n")
            self.assertEqual(connection.command("MAIL FROM:<foo@mail169.com> BODY=8BITMIME SIZE=100"), "250 2.1.0 Ok\r\n")
            connection.command("RCPT TO:<bar@mail169.com>")
            content = "Subject: bdat in tls\r\n\r\ncafé\r\n".encode()
            connection.send(b"BDAT %d LAST\r\n" % len(content) + content)
            self.assertRegex(connection.read_reply(), rf"^250 2\.0\.0 Ok: {len(content)} bytes queued as {QUEUE_ID}")
        finally:
            connection.sock.close()
        wait_for(lambda: any("bdat in tls" in m and "café" in m and "with ESMTPS" in m
                             for m in self.postgate.read_maildir("bar")))

    def test_certificate_reload_without_restart(self):
        def fingerprint():
            connection = tls_connection(self.postgate.smtp_port)
            der = connection.sock.getpeercert(binary_form=True)
            connection.close()
            return hashlib.sha256(der).hexdigest()

        before = fingerprint()
        tls_dir = os.path.join(self.postgate.data_dir, "tls")
        # Rotate like a Secret update: new files written beside, then moved into place.
        staging = os.path.join(self.postgate.dir, "rotated")
        subprocess.run([os.path.join(SOURCE_DIR, "scripts/make-snakeoil-cert.sh"), staging, "rotated.test"],
                       check=True, capture_output=True)
        os.replace(os.path.join(staging, "snakeoil.key"), os.path.join(tls_dir, "snakeoil.key"))
        os.replace(os.path.join(staging, "snakeoil.pem"), os.path.join(tls_dir, "snakeoil.pem"))
        wait_for(lambda: fingerprint() != before, timeout=20, interval=0.3, what="the new certificate in use")
        self.postgate.gateway.wait_log(r"reloaded TLS certificate")
        self.assertIsNone(self.postgate.gateway.process.poll())


class EncryptLevelTest(unittest.TestCase):
    def setUp(self):
        self.postgate = Postgate({"smtpd_tls_security_level": "encrypt"}).start()

    def tearDown(self):
        self.postgate.cleanup()

    def test_mail_needs_starttls_first(self):
        with smtplib.SMTP("127.0.0.1", self.postgate.smtp_port) as client:
            client.ehlo("plain")
            code, text = client.mail("foo@mail169.com")
            self.assertEqual((code, text), (530, b"5.7.0 Must issue a STARTTLS command first"))
            client.starttls(context=client_context())
            client.ehlo("secure")
            self.assertEqual(client.sendmail("foo@mail169.com", ["bar@mail169.com"], "Subject: e\r\n\r\ne\r\n"), {})
        self.postgate.wait_delivered("bar", 1)


if __name__ == "__main__":
    unittest.main()
