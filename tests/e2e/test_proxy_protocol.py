"""HAProxy PROXY protocol v1 and v2 in front of the gateway: relay decisions, logs and Received:
use the real client address; only trusted proxies may send it; a bad or missing header drops
the connection. (The addresses only travel inside the PROXY header: all traffic is loopback.)"""
import re
import socket
import struct
import unittest

from postgate_harness import QUEUE_ID, Postgate, PostgateTestCase, SmtpConnection, wait_for

LB = {"smtpd_upstream_proxy_protocol": "haproxy", "postgate_proxy_networks": "127.0.0.0/8",
      "mynetworks": "192.168.0.0/24", "smtpd_peername_lookup": "no", "smtpd_upstream_proxy_timeout": "2s"}


def v2_header(source, source_port=40000):
    addresses = socket.inet_aton(source) + socket.inet_aton("127.0.0.1") + struct.pack("!HH", source_port, 25)
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", len(addresses)) + addresses


class ProxyProtocolTest(PostgateTestCase):
    overrides = LB

    def relay_attempt(self, header):
        connection = SmtpConnection(self.postgate.smtp_port)
        try:
            connection.send(header)
            self.assertTrue(connection.read_reply().startswith("220 "))
            connection.command("EHLO lb.test")
            connection.command("MAIL FROM:<foo@mail169.com>")
            return connection.command("RCPT TO:<x@example.org>")
        finally:
            connection.close()

    def test_v1_real_address_decides_relay(self):
        self.assertEqual(self.relay_attempt(b"PROXY TCP4 192.168.0.10 127.0.0.1 40000 25\r\n"), "250 2.1.5 Ok\r\n")
        self.assertEqual(self.relay_attempt(b"PROXY TCP4 10.9.9.9 127.0.0.1 40001 25\r\n"),
                         "554 5.7.1 <x@example.org>: Relay access denied\r\n")
        self.postgate.gateway.wait_log(r"connect from unknown\[10\.9\.9\.9\]")
        self.postgate.gateway.wait_log(r"NOQUEUE: reject: RCPT from unknown\[10\.9\.9\.9\]: 554 5\.7\.1")

    def test_v2_and_received_header(self):
        self.assertEqual(self.relay_attempt(v2_header("10.9.9.9")), "554 5.7.1 <x@example.org>: Relay access denied\r\n")
        connection = SmtpConnection(self.postgate.smtp_port)
        connection.send(v2_header("192.168.0.77"))
        connection.read_reply()
        for line in ("EHLO lb.test", "MAIL FROM:<foo@mail169.com>", "RCPT TO:<bar@mail169.com>", "DATA"):
            connection.command(line)
        connection.send("Subject: via lb\r\n\r\nhi\r\n.\r\n")
        queue_id = re.search(QUEUE_ID, connection.read_reply()).group(0)
        connection.close()
        text = wait_for(lambda: [m for m in self.postgate.read_maildir("bar") if queue_id in m] or None)[0]
        self.assertIn("Received: from lb.test (unknown [192.168.0.77])", text)

    def test_bad_or_missing_header_drops_the_connection(self):
        for first in (b"EHLO no-proxy-header\r\n", b"PROXY TCP4 nonsense\r\n"):
            connection = SmtpConnection(self.postgate.smtp_port)
            connection.send(first)
            self.assertEqual(connection.sock.recv(100), b"", "dropped without a greeting")
            connection.close()
        silent = SmtpConnection(self.postgate.smtp_port)
        self.assertEqual(silent.sock.recv(100), b"", "dropped after smtpd_upstream_proxy_timeout")
        silent.close()
        self.postgate.gateway.wait_log(r"haproxy read: timeout error from 127\.0\.0\.1")


class UntrustedProxyTest(PostgateTestCase):
    overrides = dict(LB, postgate_proxy_networks="10.0.0.0/8")

    def test_only_trusted_proxies_may_speak(self):
        connection = SmtpConnection(self.postgate.smtp_port)
        connection.send(b"PROXY TCP4 192.168.0.10 127.0.0.1 40000 25\r\n")
        try:
            self.assertEqual(connection.sock.recv(100), b"", "no greeting for an untrusted proxy")
        except ConnectionResetError:
            pass  # Dropped with our header unread: the kernel answers with a reset. Also a refusal.
        connection.close()
        self.postgate.gateway.wait_log(r"connection from 127\.0\.0\.1 refused: not in postgate_proxy_networks")


if __name__ == "__main__":
    unittest.main()
