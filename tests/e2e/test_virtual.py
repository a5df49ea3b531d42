"""virtual_alias_maps and virtual_alias_domains as Postfix's smtpd and cleanup apply them, compared
with what Debian's Postfix 3.7.11 did with the same table (2026-11-30): replies, the expanded
deliveries and their "orig_to=<…>" log lines, the catch-all, extension propagation, a remote
target, and a loop refused with "451 4.6.0 Alias expansion error"."""
import os
import re
import shutil
import smtplib
import tempfile
import unittest

from aiosmtpd.controller import Controller

from postgate_harness import Postgate, QUEUE_ID, free_port, wait_for

TABLE = """example.com anything
sales@example.com bar@mail169.com, foo@mail169.com
loop1@example.com loop2@example.com
loop2@example.com loop1@example.com
info@example.com info@example.com, bar@mail169.com
partners@example.com someone@example.org
@catchall.example foo@mail169.com
catchall.example anything
"""


class Captured:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, envelope.original_content))
        return "250 2.0.0 Ok"


def send(port, recipient):
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo("client.example")
        client.mail("foo@mail169.com")
        code, text = client.rcpt(recipient)
        if code != 250:
            return f"{code} {text.decode()}", None
        code, text = client.data(f"Subject: v {recipient}\r\n\r\nx\r\n")  # The final reply, whatever it is.
        if code != 250:
            return f"{code} {text.decode()}", None
        return "250", re.search(QUEUE_ID, text.decode()).group(0)


class VirtualAliasTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="postgate-virtual-")
        table = os.path.join(cls.dir, "virtual")
        with open(table, "w") as out:
            out.write(TABLE)
        cls.captured = Captured()
        port = free_port()
        cls.sink = Controller(cls.captured, hostname="127.0.0.1", port=port, decode_data=False)
        cls.sink.start()
        cls.postgate = Postgate({"virtual_alias_maps": f"texthash:{table}", "defer_transports": "",
                                 "relayhost": f"[127.0.0.1]:{port}", "smtp_tls_security_level": "none",
                                 "virtual_alias_recursion_limit": "100"})
        cls.postgate.start()

    @classmethod
    def tearDownClass(cls):
        cls.postgate.cleanup()
        cls.sink.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def delivered(self, queue_id, to, orig):
        self.postgate.queue.wait_log(rf"{queue_id}: to=<{re.escape(to)}>, orig_to=<{re.escape(orig)}>, relay=local, "
                                     r".*status=sent \(delivered to maildir\)")

    def test_replies_and_deliveries_as_postfix(self):
        port = self.postgate.smtp_port
        self.assertEqual(send(port, "nobody@example.com")[0],
                         "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in virtual alias table")
        reply, queue_id = send(port, "sales@example.com")
        self.assertEqual(reply, "250")
        self.delivered(queue_id, "bar@mail169.com", "sales@example.com")
        self.delivered(queue_id, "foo@mail169.com", "sales@example.com")
        reply, queue_id = send(port, "sales+x@example.com")
        self.delivered(queue_id, "bar+x@mail169.com", "sales+x@example.com")
        self.delivered(queue_id, "foo+x@mail169.com", "sales+x@example.com")
        reply, queue_id = send(port, "anyone@catchall.example")
        self.delivered(queue_id, "foo@mail169.com", "anyone@catchall.example")
        self.assertEqual(send(port, "loop1@example.com")[0], "451 4.6.0 Alias expansion error")
        self.postgate.gateway.wait_log(r"warning: \w+: unreasonable virtual_alias_maps map nesting for "
                                       r"loop1@example\.com -- message not accepted, try again later")

    def test_a_remote_target_and_an_address_kept_as_itself(self):
        reply, queue_id = send(self.postgate.smtp_port, "partners@example.com")
        self.assertEqual(reply, "250")
        rcpts, _ = wait_for(lambda: next((m for m in self.captured.messages if b"partners@example.com" in m[1]), None),
                            timeout=30, what="the remote copy")
        self.assertEqual(rcpts, ["someone@example.org"])
        self.postgate.queue.wait_log(rf"{queue_id}: to=<someone@example\.org>, orig_to=<partners@example\.com>, "
                                     r"relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=sent")
        # info@example.com expands to itself (kept: virtual domain, no further alias: it goes
        # nowhere local) and to bar: Postfix's "itself once" rule keeps the loop from forming.
        reply, queue_id = send(self.postgate.smtp_port, "info@example.com")
        self.assertEqual(reply, "250")
        self.delivered(queue_id, "bar@mail169.com", "info@example.com")


if __name__ == "__main__":
    unittest.main()
