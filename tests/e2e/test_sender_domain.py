"""reject_unknown_sender_domain, against a real DNS server (dnsmasq on a loopback port): the replies
and log lines are what Debian's Postfix 3.7.11 gave for the same senders and records
(../shared/bench/postfix-peer.sh with its chroot resolv.conf pointed at the same dnsmasq,
2026-11-30): a domain with MX, A or only AAAA records passes; a null MX (RFC 7505) is refused
with 550 5.7.27; no such domain, or one without any of those records, gets 450 4.1.8 "Domain not
found" (unknown_address_reject_code); a DNS server that does not answer gets the same 450
(defer_if_permit: a later reject in the list wins); our own domains, address literals and <> are
not looked up."""
import shutil
import smtplib
import socket
import subprocess
import unittest

from postgate_harness import Postgate, Sink, free_port, wait_for

SENDERS = [
    ("a@mx.example", "250 2.1.5 Ok"),
    ("a@plain.example", "250 2.1.5 Ok"),
    ("a@v6only.example", "250 2.1.5 Ok"),
    ("a@nullmx.example", "550 5.7.27 <a@nullmx.example>: Sender address rejected: Domain nullmx.example does not "
                         "accept mail (nullMX)"),
    ("a@textonly.example", "450 4.1.8 <a@textonly.example>: Sender address rejected: Domain not found"),
    ("a@nowhere.example", "450 4.1.8 <a@nowhere.example>: Sender address rejected: Domain not found"),
    ("a@[127.0.0.1]", "250 2.1.5 Ok"),
    ("a@mail169.com", "250 2.1.5 Ok"),
    ("", "250 2.1.5 Ok"),
]


def rcpt_reply(port, sender):
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example") as client:
        client.ehlo()
        client.mail(sender)
        code, text = client.rcpt("bar@mail169.com")
        return f"{code} {text.decode()}"


class UnknownSenderDomainTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns_port = free_port()
        cls.dnsmasq = subprocess.Popen(
            [shutil.which("dnsmasq") or "/usr/sbin/dnsmasq", "--keep-in-foreground", "--no-daemon", "--no-resolv",
             "--no-hosts", "--bind-interfaces", "--listen-address", "127.0.0.1", "--port", str(cls.dns_port),
             "--log-facility=-", "--local=/example/",
             "--mx-host=mx.example,mx1.mx.example,10", "--host-record=mx1.mx.example,127.0.0.2",
             "--host-record=plain.example,127.0.0.3", "--host-record=v6only.example,::1",
             "--txt-record=textonly.example,nothing", "--dns-rr=nullmx.example,15,000000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: Sink.listening(cls.dns_port), 15, what="dnsmasq listening")

    @classmethod
    def tearDownClass(cls):
        cls.dnsmasq.terminate()
        cls.dnsmasq.wait(timeout=10)

    def start(self, settings):
        postgate = Postgate(settings)
        postgate.start()
        self.addCleanup(postgate.cleanup)
        return postgate

    def test_each_kind_of_domain_gets_postfixs_reply_and_log_line(self):
        postgate = self.start({"smtpd_sender_restrictions": "reject_unknown_sender_domain",
                               "postgate_dns_servers": f"127.0.0.1:{self.dns_port}"})
        for sender, expected in SENDERS:
            with self.subTest(sender=sender):
                self.assertEqual(rcpt_reply(postgate.smtp_port, sender), expected)
        postgate.gateway.wait_log(r"NOQUEUE: reject: RCPT from localhost\[127\.0\.0\.1\]: 450 4\.1\.8 "
                                  r"<a@nowhere\.example>: Sender address rejected: Domain not found; "
                                  r"from=<a@nowhere\.example> to=<bar@mail169\.com> proto=ESMTP helo=<client\.example>$")

    def test_in_the_recipient_list_and_with_unknown_address_reject_code(self):
        postgate = self.start({"smtpd_recipient_restrictions": "reject_unknown_sender_domain",
                               "unknown_address_reject_code": "550",
                               "postgate_dns_servers": f"127.0.0.1:{self.dns_port}"})
        self.assertEqual(rcpt_reply(postgate.smtp_port, "a@nowhere.example"),
                         "550 5.1.8 <a@nowhere.example>: Sender address rejected: Domain not found")
        self.assertEqual(rcpt_reply(postgate.smtp_port, "a@plain.example"), "250 2.1.5 Ok")

    def test_a_dns_server_that_does_not_answer_defers_unless_a_later_check_rejects(self):
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # Takes queries, never answers.
        silent.bind(("127.0.0.1", 0))
        self.addCleanup(silent.close)
        servers = f"127.0.0.1:{silent.getsockname()[1]}"
        deferring = self.start({"smtpd_sender_restrictions": "reject_unknown_sender_domain",
                                "postgate_dns_servers": servers})
        self.assertEqual(rcpt_reply(deferring.smtp_port, "a@plain.example"),
                         "450 4.1.8 <a@plain.example>: Sender address rejected: Domain not found")
        rejecting = self.start({"smtpd_sender_restrictions": "reject_unknown_sender_domain, reject",
                                "postgate_dns_servers": servers})
        self.assertEqual(rcpt_reply(rejecting.smtp_port, "a@plain.example"),
                         "554 5.7.1 <a@plain.example>: Sender address rejected: Access denied")


if __name__ == "__main__":
    unittest.main()
