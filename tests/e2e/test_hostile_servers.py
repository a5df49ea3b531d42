"""Hostile remote servers against Postgate's SMTP client (hostile_smtp.py, on loopback): anyone can
make Postgate connect to such a server by mailing a domain whose MX it is. queue-service stays up
with bounded memory, and each message is deferred or bounced with a precise reason."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from hostile_smtp import HostileServer
from postgate.queue.v1 import queue_pb2, queue_pb2_grpc
from postgate_harness import QUEUE_ID, SOURCE_DIR, Postgate, send_message, wait_for

DEFERRED, BOUNCED = queue_pb2.RECIPIENT_STATE_DEFERRED, queue_pb2.RECIPIENT_STATE_BOUNCED
HOST = r"127\.0\.0\.1\[127\.0\.0\.1\]"
# scenario: (final state, reason pattern)
EXPECTED = {
    "endless_multiline": (DEFERRED, rf"^protocol error with {HOST} while receiving the initial server greeting: "
                                    r"multi-line reply longer than 1000 lines$"),
    "wide_multiline": (DEFERRED, rf"^protocol error with {HOST} while receiving the initial server greeting: "
                                 r"multi-line reply longer than 65536 bytes$"),
    "huge_line": (DEFERRED, rf"^protocol error with {HOST} while receiving the initial server greeting: "
                            r"reply line longer than 2048 bytes$"),
    "drip": (DEFERRED, rf"^conversation with {HOST} timed out while receiving the initial server greeting$"),
    "garbage_greeting": (DEFERRED, rf"^host {HOST} said: \?\?\? garbage \?\[31m instead of a greeting "
                                   r"\(in reply to initial greeting\)$"),
    "own_hostname": (BOUNCED, rf"^host {HOST} greeted me with my own hostname mail169\.com: "
                              r"mail for 127\.0\.0\.1 loops back to myself$"),
    "own_hostname_in_ehlo": (BOUNCED, rf"^host {HOST} replied to HELO/EHLO with my own hostname mail169\.com: "
                                      r"mail for 127\.0\.0\.1 loops back to myself$"),
    "reset_in_data": (DEFERRED, rf"^lost connection with {HOST} while (sending message body|receiving the end of "
                                r"data reply)$"),
    "early_reply": (DEFERRED, rf"^protocol error with {HOST} while sending message body: the server replied "
                              r"before the end of data$"),
}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        return int(re.search(r"^VmRSS:\s+(\d+) kB", status.read(), re.M).group(1))


class HostileServersTest(unittest.TestCase):
    def setUp(self):
        self.servers = {name: HostileServer(name) for name in EXPECTED}
        self.transport = tempfile.NamedTemporaryFile("w", suffix=".transport", delete=False)
        for name, server in self.servers.items():
            self.transport.write(f"{name.replace('_', '-')}.example smtp:[127.0.0.1]:{server.port}\n")
        self.transport.close()
        # A whole-reply deadline of 3 s: the drip needs 10 s for its greeting.
        self.postgate = Postgate({"defer_transports": "", "transport_maps": f"texthash:{self.transport.name}",
                                  "smtp_helo_timeout": "3s", "smtp_data_done_timeout": "3s",
                                  "smtp_connect_timeout": "3s"}).start()
        self.stub = queue_pb2_grpc.QueueServiceStub(self.postgate.grpc_channel())

    def tearDown(self):
        self.postgate.cleanup()
        for server in self.servers.values():
            server.stop()
        os.unlink(self.transport.name)

    def recipient(self, queue_id):
        return self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=queue_id)).recipients[0]

    def test_each_hostile_server_gets_a_precise_deferral_or_bounce_and_memory_stays_bounded(self):
        pid = self.postgate.queue.process.pid
        before = rss_kib(pid)
        sent = {}
        for name in EXPECTED:
            reply = send_message(self.postgate.smtp_port, recipients=(f"user@{name.replace('_', '-')}.example",),
                                 body=f"Subject: {name}\r\n\r\nto a hostile server\r\n")
            sent[name] = re.search(QUEUE_ID, reply).group(0)
        peak = before
        for name, (state, reason) in EXPECTED.items():
            def settled():
                nonlocal peak
                peak = max(peak, rss_kib(pid))
                recipient = self.recipient(sent[name])
                return recipient if recipient.attempts >= 1 else None

            recipient = wait_for(settled, timeout=30, what=f"the first attempt at the {name} server")
            self.assertEqual(recipient.state, state, f"{name}: {recipient.reason}")
            self.assertRegex(recipient.reason, reason, name)
            self.assertEqual(recipient.attempts, 1, name)  # Never delivered, never tried twice at once.
        self.assertGreater(self.servers["huge_line"].connections, 0)
        self.assertIsNone(self.postgate.queue.process.poll(), "queue-service is still running")
        # 100 MB offered in one line and endless reply lines: at most a few MiB kept.
        self.assertLess(peak - before, 32 * 1024, f"queue-service RSS {before} KiB → peak {peak} KiB")
        print(f"\nhostile servers: queue-service RSS {before} KiB before, peak {peak} KiB", flush=True)


class OpportunisticTlsTest(unittest.TestCase):
    """smtp_tls_security_level = may against a server whose TLS is broken, and the SNI name sent."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="postgate-tls-")
        subprocess.run([os.path.join(SOURCE_DIR, "scripts/make-snakeoil-cert.sh"), self.dir, "localhost"],
                       check=True, capture_output=True)
        HostileServer.tls_files = (os.path.join(self.dir, "snakeoil.pem"), os.path.join(self.dir, "snakeoil.key"))
        HostileServer.sni_names.clear()
        self.broken = HostileServer("tls_garbage")
        self.good = HostileServer("tls_sni")
        with open(os.path.join(self.dir, "transport"), "w") as transport:
            transport.write(f"broken.example smtp:[127.0.0.1]:{self.broken.port}\n"
                            f"by-address.example smtp:[127.0.0.1]:{self.good.port}\n"
                            f"by-name.example smtp:[localhost]:{self.good.port}\n")

    def tearDown(self):
        if getattr(self, "postgate", None):
            self.postgate.cleanup()
        self.broken.stop()
        self.good.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, level, **overrides):
        self.postgate = Postgate({"defer_transports": "", "transport_maps": f"texthash:{self.dir}/transport",
                                  "smtp_tls_security_level": level, "minimal_backoff_time": "2s",
                                  "maximal_backoff_time": "2s", "queue_run_delay": "1s", **overrides}).start()
        self.stub = queue_pb2_grpc.QueueServiceStub(self.postgate.grpc_channel())

    def send(self, recipient):
        reply = send_message(self.postgate.smtp_port, recipients=(recipient,), body="Subject: tls\r\n\r\nbody\r\n")
        return re.search(QUEUE_ID, reply).group(0)

    def recipient(self, queue_id):
        return self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=queue_id)).recipients[0]

    def test_may_falls_back_to_plaintext_on_the_next_attempt_as_postfix(self):
        self.start("may")
        queue_id = self.send("user@broken.example")
        # As Postfix 3.7: the first attempt, right after arrival, defers; once the message has
        # waited minimal_backoff_time, a failed handshake is followed by plaintext at once.
        first = wait_for(lambda: (r := self.recipient(queue_id)).attempts >= 1 and r, what="the first attempt")
        self.assertEqual(first.state, DEFERRED)
        self.assertRegex(first.reason, r"^TLS handshake with 127\.0\.0\.1\[127\.0\.0\.1\]:\d+ failed")
        delivered = wait_for(lambda: (r := self.recipient(queue_id)).state == queue_pb2.RECIPIENT_STATE_DELIVERED
                             and r, timeout=20, what="delivery in plaintext")
        self.assertGreaterEqual(delivered.attempts, 2)
        self.assertEqual(HostileServer.delivered, 1)
        self.postgate.queue.wait_log(r"smtp_tls_security_level = may: delivering in plaintext on a new connection")

    def test_may_never_falls_back_to_plaintext_when_a_login_is_due(self):
        # Credentials for this server: plaintext after a failed handshake could hand them over in
        # the clear (or get "relay access denied"), so every attempt stays deferred, as Postfix.
        with open(os.path.join(self.dir, "sasl_passwd"), "w") as out:
            out.write(f"[127.0.0.1]:{self.broken.port} user:never-in-clear\n")
        self.start("may", smtp_sasl_auth_enable="yes", smtp_sasl_password_maps=f"texthash:{self.dir}/sasl_passwd")
        delivered_before = HostileServer.delivered  # A class-wide count: other tests deliver too.
        queue_id = self.send("user@broken.example")
        wait_for(lambda: self.recipient(queue_id).attempts >= 3, timeout=20, what="three attempts")
        self.assertEqual(self.recipient(queue_id).state, DEFERRED)
        self.assertRegex(self.recipient(queue_id).reason, r"^TLS handshake with 127\.0\.0\.1\[127\.0\.0\.1\]:\d+ failed")
        self.assertEqual(HostileServer.delivered, delivered_before)
        self.assertNotIn("delivering in plaintext", "\n".join(self.postgate.queue.log()))

    def test_encrypt_never_falls_back(self):
        self.start("encrypt")
        queue_id = self.send("user@broken.example")
        wait_for(lambda: self.recipient(queue_id).attempts >= 3, timeout=20, what="three attempts")
        self.assertEqual(self.recipient(queue_id).state, DEFERRED)
        self.assertEqual(HostileServer.delivered, 0)

    def test_sni_is_the_host_name_and_never_an_address(self):
        self.start("may")
        for recipient in ("user@by-name.example", "user@by-address.example"):
            queue_id = self.send(recipient)
            wait_for(lambda: self.recipient(queue_id).state == queue_pb2.RECIPIENT_STATE_DELIVERED,
                     what=f"{recipient} delivered over TLS")
        self.assertEqual(HostileServer.sni_names, ["localhost", None])


if __name__ == "__main__":
    unittest.main()
