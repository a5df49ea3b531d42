"""Relaying through an upstream that requires SMTP AUTH (smtp_sasl_*), against a real server:
Python's aiosmtpd with its authenticator, on a 587-style port (STARTTLS, AUTH only after it) and a
465-style one (implicit TLS, smtp_tls_wrappermode). A wrong password defers with the server's 535
quoted as Postfix does, visible in queuectl show and counted; the password file rotated as a
Kubernetes Secret is (a symlink swapped) is used on the next attempt without a restart; a server
offering AUTH only without TLS gets no password. A second Postgate's submission and smtps services
take the relayed mail after a login. No password reaches a log, a metric or the API."""
import base64
import os
import re
import shutil
import subprocess
import tempfile
import unittest
import urllib.request

from postgate_harness import BIN_DIR, QUEUE_ID, SOURCE_DIR, Postgate, free_port, send_message, wait_for

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, with python3-aiosmtpd.
WRONG = "Wrong-Pass-7f3a9"
RIGHT = "Right-Pass-c41e2"


class AuthServer:
    def __init__(self, directory, tls, *extra):
        self.port = free_port()
        self.out = os.path.join(directory, f"server-{self.port}")
        self.users = os.path.join(directory, "server-users")
        with open(self.users, "w") as out:
            out.write(f"relayuser:{RIGHT}\n")
        certs = os.path.join(directory, "tls")
        subprocess.run([os.path.join(SOURCE_DIR, "scripts/make-snakeoil-cert.sh"), certs, "relay.test"],
                       check=True, capture_output=True)
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, os.path.join(os.path.dirname(__file__), "auth_smtp_server.py"), "--port", str(self.port),
             "--users", self.users, "--out", self.out, "--tls", tls, "--cert", os.path.join(certs, "snakeoil.pem"),
             "--key", os.path.join(certs, "snakeoil.key"), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line.startswith("listening"):
            raise AssertionError(f"aiosmtpd did not start: {line} {self.process.stderr.read()}")

    def messages(self):
        if not os.path.isdir(self.out):
            return []
        return sorted(name for name in os.listdir(self.out) if name.endswith(".eml"))

    def read(self, name):
        with open(os.path.join(self.out, name)) as source:
            return source.read()

    def auth_log(self):
        path = os.path.join(self.out, "auth.log")
        if not os.path.exists(path):
            return ""
        with open(path) as source:
            return source.read()

    def stop(self):
        self.process.kill()
        self.process.wait()


class SmtpAuthClientTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="postgate-sasl-")
        self.servers = []
        self.postgate = None

    def tearDown(self):
        if self.postgate:
            self.postgate.cleanup()
        for server in self.servers:
            server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def server(self, tls, *extra):
        server = AuthServer(self.dir, tls, *extra)
        self.servers.append(server)
        return server

    def write_passwords(self, text):
        """As the kubelet updates a Secret volume: a new file, then the name swapped onto it."""
        data = os.path.join(self.dir, f"passwd-{len(os.listdir(self.dir))}")
        with open(data, "w") as out:
            out.write(text)
        link = os.path.join(self.dir, "sasl_passwd.tmp")
        os.symlink(data, link)
        os.replace(link, os.path.join(self.dir, "sasl_passwd"))

    def start(self, upstream_port, **overrides):
        settings = {"defer_transports": "", "relayhost": f"[127.0.0.1]:{upstream_port}",
                    "smtp_sasl_auth_enable": "yes",
                    "smtp_sasl_password_maps": f"texthash:{os.path.join(self.dir, 'sasl_passwd')}",
                    "smtp_sasl_tls_security_options": "noanonymous", "smtp_tls_security_level": "encrypt",
                    "queue_run_delay": "1s", "minimal_backoff_time": "1s", "maximal_backoff_time": "1s",
                    "smtp_helo_timeout": "10s", "smtp_connect_timeout": "5s"}
        settings.update(overrides)
        self.postgate = Postgate(settings)
        self.postgate.start()

    def send(self):
        reply = send_message(self.postgate.smtp_port, recipients=("someone@example.org",),
                             body="Subject: relayed\r\n\r\nthrough an authenticated provider\r\n")
        match = re.search(r"queued as (" + QUEUE_ID + ")", reply)
        self.assertIsNotNone(match, reply)
        return match.group(1)

    def queuectl(self, *args):
        return subprocess.run([os.path.join(BIN_DIR, "queuectl"), "--server", f"127.0.0.1:{self.postgate.grpc_port}",
                               *args], capture_output=True, text=True, timeout=30).stdout

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.postgate.queue_metrics_port}/metrics") as page:
            return page.read().decode()

    def login_count(self, mechanism, result):
        match = re.search(r'postgate_queue_smtp_sasl_logins_total\{mechanism="%s",result="%s"\} (\d+)'
                          % (mechanism, result), self.metrics())
        return int(match.group(1)) if match else 0

    def assert_no_secret_anywhere(self, *extra_texts):
        """Neither password, nor the base64 forms an AUTH line would carry, in logs, metrics, API."""
        secrets = [WRONG, RIGHT]
        for password in (WRONG, RIGHT):
            secrets.append(base64.b64encode(password.encode()).decode())
            secrets.append(base64.b64encode(f"\0relayuser\0{password}".encode()).decode())
        texts = ["\n".join(self.postgate.queue.log()), "\n".join(self.postgate.gateway.log()), self.metrics(),
                 *extra_texts]
        for text in texts:
            for secret in secrets:
                self.assertNotIn(secret, text)

    def test_starttls_wrong_password_deferred_then_rotated_file_delivers(self):
        server = self.server("starttls")
        self.write_passwords(f"[127.0.0.1]:{server.port} relayuser:{WRONG}\n")
        self.start(server.port)
        queue_id = self.send()
        wait_for(lambda: "SASL authentication failed" in self.queuectl("show", queue_id), timeout=30,
                 what="the refused login recorded")
        shown = self.queuectl("show", queue_id)
        self.assertRegex(shown, r"deferred\s+535 4\.7\.8 .*SASL authentication failed; server "
                                r"127\.0\.0\.1\[127\.0\.0\.1\] said: 535 5\.7\.8 Authentication credentials invalid")
        self.assertIn("PLAIN relayuser refused", server.auth_log())
        self.assertEqual(server.messages(), [])
        self.assertGreaterEqual(self.login_count("PLAIN", "failed"), 1)
        self.assertRegex("\n".join(self.postgate.queue.log()),
                         queue_id + r": to=<someone@example\.org>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*"
                         r"status=deferred \(SASL authentication failed; server 127\.0\.0\.1\[127\.0\.0\.1\] said: 535")

        # The Secret is rotated: the next attempt logs in with the new password, no restart.
        self.write_passwords(f"[127.0.0.1]:{server.port} relayuser:{RIGHT}\n")
        wait_for(lambda: server.messages(), timeout=30, what="delivery after the rotation")
        received = server.read(server.messages()[0])
        self.assertIn("X-Auth-Login: relayuser", received)
        self.assertIn("through an authenticated provider", received)
        self.postgate.queue.wait_log(queue_id + r": to=<someone@example\.org>.*status=sent")
        self.assertGreaterEqual(self.login_count("PLAIN", "success"), 1)
        self.assertIn("smtp_sasl_password_maps: ", "\n".join(self.postgate.queue.log()))  # The re-read is logged.
        self.assert_no_secret_anywhere(self.queuectl("show", queue_id), self.queuectl("show", "--json", queue_id))

    def test_implicit_tls_wrappermode_with_login_mechanism(self):
        server = self.server("implicit")
        self.write_passwords(f"[127.0.0.1]:{server.port} relayuser:{RIGHT}\n")
        self.start(server.port, smtp_tls_wrappermode="yes", smtp_sasl_mechanism_filter="login")
        queue_id = self.send()
        wait_for(lambda: server.messages(), timeout=30, what="delivery over implicit TLS")
        self.assertEqual(server.auth_log(), "LOGIN relayuser ok\n")
        self.postgate.queue.wait_log(r"Anonymous TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]")
        self.postgate.queue.wait_log(queue_id + r": to=<someone@example\.org>.*status=sent")
        self.assertEqual(self.login_count("LOGIN", "success"), 1)
        self.assert_no_secret_anywhere()

    def test_a_server_offering_auth_only_without_tls_gets_no_password(self):
        server = self.server("none", "--auth-before-tls")
        self.write_passwords(f"[127.0.0.1]:{server.port} relayuser:{RIGHT}\n")
        # Postfix's defaults: smtp_sasl_security_options = noplaintext, noanonymous.
        self.start(server.port, smtp_tls_security_level="may")
        queue_id = self.send()
        wait_for(lambda: "no mechanism available" in self.queuectl("show", queue_id), timeout=30,
                 what="the login refused by our own policy")
        self.assertRegex(self.queuectl("show", queue_id),
                         r"deferred\s+0 4\.7\.0 .*SASL authentication failed; cannot authenticate to server "
                         r"127\.0\.0\.1\[127\.0\.0\.1\]: no mechanism available")
        self.assertEqual(server.auth_log(), "")  # Not even an AUTH command reached it.
        self.assertEqual(server.messages(), [])
        self.assert_no_secret_anywhere()

    def test_relay_to_another_postgates_submission_and_smtps(self):
        """The upstream is a second Postgate: its submission service (STARTTLS, AUTH required to send
        at all) and its smtps one (implicit TLS), where bar@upstream.test is a local user."""
        hashed = subprocess.run(["mkpasswd", "-m", "yescrypt", RIGHT], check=True, capture_output=True,
                                text=True).stdout.strip()
        users = os.path.join(self.dir, "upstream-users")
        with open(users, "w") as out:
            out.write(f"relayuser:{hashed}\n")
        submission, smtps = free_port(), free_port()
        upstream = Postgate({"myhostname": "upstream.test", "mydomain": "upstream.test",
                             "mydestination": "upstream.test", "postgate_local_users": "bar",
                             "mynetworks": "192.168.0.0/24", "postgate_smtpd_sasl_users_file": users},
                            master_cf=("smtp inet n - n - - smtpd\n"
                                       f"127.0.0.1:{submission} inet n - n - - smtpd\n"
                                       "  -o smtpd_tls_security_level=encrypt -o smtpd_sasl_auth_enable=yes\n"
                                       "  -o smtpd_tls_auth_only=yes\n"
                                       "  -o { smtpd_relay_restrictions = permit_sasl_authenticated, reject }\n"
                                       f"127.0.0.1:{smtps} inet n - n - - smtpd\n"
                                       "  -o smtpd_tls_wrappermode=yes -o smtpd_sasl_auth_enable=yes\n"
                                       "  -o { smtpd_relay_restrictions = permit_sasl_authenticated, reject }\n"))
        try:
            upstream.start()
            for port, extra in ((submission, {}), (smtps, {"smtp_tls_wrappermode": "yes"})):
                self.write_passwords(f"[127.0.0.1]:{port} relayuser:{RIGHT}\n")
                self.start(port, **extra)
                reply = send_message(self.postgate.smtp_port, recipients=("bar@upstream.test",),
                                     body=f"Subject: via {port}\r\n\r\nrelayed with a login\r\n")
                queue_id = re.search(r"queued as (" + QUEUE_ID + ")", reply).group(1)
                self.postgate.queue.wait_log(queue_id + r": to=<bar@upstream\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:"
                                             + str(port) + r", .*status=sent \(250 2\.0\.0 Ok: queued as " + QUEUE_ID)
                upstream.gateway.wait_log(r"client=localhost\[127\.0\.0\.1\], sasl_method=PLAIN, sasl_username=relayuser")
                self.assert_no_secret_anywhere("\n".join(upstream.gateway.log()))
                self.postgate.cleanup()
                self.postgate = None
            upstream.wait_delivered("bar", 2)
        finally:
            upstream.cleanup()


if __name__ == "__main__":
    unittest.main()
