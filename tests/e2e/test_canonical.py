"""canonical_maps, sender_canonical_maps, recipient_canonical_maps and masquerade_domains, as
Postfix's cleanup applies them, compared with what Debian's Postfix 3.7.11 stored and logged for the
same tables and messages (../shared/bench/postfix-peer.sh, 2026-11-30): envelope sender and
recipients (from=<…>, to=<…>, orig_to=<…>), the header addresses of a local client (unqualified ones
get @$myorigin, group and display-name syntax kept), masquerade exceptions, extension propagation, a
canonical loop and a multi-valued entry (Postfix's warnings; the mail is kept); and, as Postfix's
documentation has it (remote_header_rewrite_domain empty), a remote client's headers left alone
while its envelope is rewritten. smtp_generic_maps on the way out, compared the same way with what
Postfix's smtp client sent to the same sink."""
import os
import re
import shutil
import smtplib
import tempfile
import unittest

from aiosmtpd.controller import Controller

from postgate_harness import Postgate, QUEUE_ID, free_port, wait_for

CANONICAL = """foo            Foo.Bar@example.com
@old.example   @new.example
loop1@x.example loop2@x.example
loop2@x.example loop1@x.example
"""
SENDER_CANONICAL = "app@host.example.com   noreply@host.example.com\n"
RECIPIENT_CANONICAL = """alias@mail169.com  bar@mail169.com
team@mail169.com   bar@mail169.com, foo@mail169.com
"""


def send(port, sender, recipients, message):
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example") as client:
        client.mail(sender)
        for recipient in recipients:
            client.rcpt(recipient)
        code, text = client.data(message.replace("\n", "\r\n").encode())
        assert code == 250, (code, text)
        return re.search(QUEUE_ID, text.decode()).group(0)


def headers_after_ours(content):
    """The stored header section after Postgate's own Return-Path…Received: lines, unfolded lines
    only (as the Postfix outputs below were collected)."""
    head = content.split("\n\n", 1)[0].split("\n")
    start = max(i for i, line in enumerate(head) if line.startswith("Received:"))
    return [line for line in head[start + 1:] if not line[:1].isspace()]


class CanonicalTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="postgate-canonical-")
        tables = {}
        for name, text in {"canonical": CANONICAL, "sender_canonical": SENDER_CANONICAL,
                           "recipient_canonical": RECIPIENT_CANONICAL}.items():
            tables[name] = os.path.join(cls.dir, name)
            with open(tables[name], "w") as out:
                out.write(text)
        cls.postgate = Postgate({"canonical_maps": f"texthash:{tables['canonical']}",
                                 "sender_canonical_maps": f"texthash:{tables['sender_canonical']}",
                                 "recipient_canonical_maps": f"texthash:{tables['recipient_canonical']}",
                                 "masquerade_domains": "example.com", "masquerade_exceptions": "root"})
        cls.postgate.start()

    @classmethod
    def tearDownClass(cls):
        cls.postgate.cleanup()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def stored(self, queue_id):
        def find():
            for content in self.postgate.read_maildir("bar"):
                if f" id {queue_id}" in content or f".{queue_id}@" in content:
                    return content
            return None
        return wait_for(find, 15, what=f"{queue_id} in bar's Maildir")

    def test_a_local_clients_envelope_and_headers_as_postfix_rewrote_them(self):
        port = self.postgate.smtp_port
        queue_id = send(port, "foo@mail169.com", ["alias@mail169.com"],
                        "From: foo\nTo: alias, \"Joe, J\" <joe@host.example.com>\n"
                        "Cc: x@old.example (Old), root@host.example.com\n"
                        "Reply-To: Group: a@sub.example.com, foo@mail169.com;\nSubject: one\n\nbody\n")
        self.postgate.queue.wait_log(rf"{queue_id}: from=<Foo\.Bar@example\.com>, size=")
        self.postgate.queue.wait_log(rf"{queue_id}: to=<bar@mail169\.com>, orig_to=<alias@mail169\.com>, "
                                     r"relay=local, .*status=sent")
        self.assertEqual(headers_after_ours(self.stored(queue_id))[:5], [
            "From: Foo.Bar@example.com",
            "To: bar@mail169.com, \"Joe, J\" <joe@example.com>",
            "Cc: x@new.example (Old), root@host.example.com",
            "Reply-To: Group: a@example.com, Foo.Bar@example.com;",
            "Subject: one"])

        queue_id = send(port, "app@host.example.com", ["bar+tag@mail169.com"],
                        "From: App <app@host.example.com>\nSender: app@host.example.com\nSubject: two\n\nbody\n")
        self.postgate.queue.wait_log(rf"{queue_id}: from=<noreply@example\.com>, size=")
        self.postgate.queue.wait_log(rf"{queue_id}: to=<bar\+tag@mail169\.com>, relay=local, .*status=sent")
        self.assertEqual(headers_after_ours(self.stored(queue_id))[:3],
                         ["From: App <noreply@example.com>", "Sender: noreply@example.com", "Subject: two"])

    def test_a_loop_and_a_multi_valued_entry_warn_and_keep_the_mail(self):
        port = self.postgate.smtp_port
        queue_id = send(port, "loop1@x.example", ["bar@mail169.com"], "From: loop1@x.example\nSubject: three\n\nbody\n")
        # Ten lookups bring the loop back where it began, as Postfix's did; both places warn.
        self.postgate.gateway.wait_log(rf"warning: {queue_id}: unreasonable canonical_maps map nesting for "
                                       r"loop1@x\.example -- message not accepted, try again later")
        self.postgate.queue.wait_log(rf"{queue_id}: from=<loop1@x\.example>, size=")
        self.assertEqual(headers_after_ours(self.stored(queue_id))[0], "From: loop1@x.example")

        queue_id = send(port, "u+ext@old.example", ["team@mail169.com"], "Subject: four\n\nbody\n")
        self.postgate.gateway.wait_log(rf"warning: {queue_id}: multi-valued recipient_canonical_maps entry for "
                                       r"team@mail169\.com")
        self.postgate.queue.wait_log(rf"{queue_id}: from=<u\+ext@new\.example>, size=")
        self.postgate.queue.wait_log(rf"{queue_id}: to=<bar@mail169\.com>, orig_to=<team@mail169\.com>, "
                                     r"relay=local, .*status=sent")
        # The added From: is the rewritten sender.
        self.assertIn("From: u+ext@new.example", headers_after_ours(self.stored(queue_id)))

    def test_a_remote_clients_headers_stay_while_its_envelope_is_rewritten(self):
        # No client is local here (Postfix: remote_header_rewrite_domain empty, its default).
        remote = Postgate({"canonical_maps": f"texthash:{os.path.join(self.dir, 'canonical')}",
                           "masquerade_domains": "example.com", "local_header_rewrite_clients": ""})
        remote.start()
        try:
            queue_id = send(remote.smtp_port, "joe@host.example.com", ["bar@mail169.com"],
                            "From: joe@host.example.com\nTo: x@old.example, bar\nSubject: five\n\nbody\n")
            remote.queue.wait_log(rf"{queue_id}: from=<joe@example\.com>, size=")
            content = remote.wait_delivered("bar", 1)[0]
            self.assertEqual(headers_after_ours(content),
                             ["From: joe@host.example.com", "To: x@old.example, bar", "Subject: five"])
        finally:
            remote.cleanup()


GENERIC = """foo@mail169.com   foo.account@isp.example
@mail169.com      @isp.example
"""


class Captured:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, envelope.rcpt_tos, envelope.original_content.decode()))
        return "250 2.0.0 Ok"


class GenericMapsTest(unittest.TestCase):
    def test_the_envelope_and_header_addresses_leave_as_postfixs_smtp_sent_them(self):
        directory = tempfile.mkdtemp(prefix="postgate-generic-")
        self.addCleanup(shutil.rmtree, directory, True)
        table = os.path.join(directory, "generic")
        with open(table, "w") as out:
            out.write(GENERIC)
        captured = Captured()
        sink = Controller(captured, hostname="127.0.0.1", port=free_port())
        sink.start()
        self.addCleanup(sink.stop)
        postgate = Postgate({"smtp_generic_maps": f"texthash:{table}", "defer_transports": "",
                             "relayhost": f"[127.0.0.1]:{sink.port}", "smtp_tls_security_level": "none"})
        postgate.start()
        self.addCleanup(postgate.cleanup)
        queue_id = send(postgate.smtp_port, "foo@mail169.com", ["remote@remote.example"],
                        "From: Foo <foo@mail169.com>\nTo: remote@remote.example\n"
                        "Cc: bar+x@mail169.com, other@else.example\nReply-To: foo\nSubject: g\n\n"
                        "foo@mail169.com in the body\n")
        sender, recipients, content = wait_for(lambda: captured.messages and captured.messages[0], 30,
                                               what="the relayed message")
        self.assertEqual((sender, recipients), ("foo.account@isp.example", ["remote@remote.example"]))
        self.assertEqual(headers_after_ours(content.replace("\r\n", "\n"))[:5], [
            "From: Foo <foo.account@isp.example>", "To: remote@remote.example",
            "Cc: bar+x@isp.example, other@else.example", "Reply-To: foo.account@isp.example", "Subject: g"])
        self.assertIn("\r\n\r\nfoo@mail169.com in the body\r\n", content)  # The body is left alone.
        # The queue and its log keep the addresses as stored.
        postgate.queue.wait_log(rf"{queue_id}: from=<foo@mail169\.com>, size=")
        postgate.queue.wait_log(rf"{queue_id}: to=<remote@remote\.example>, relay=127\.0\.0\.1.*status=sent")


if __name__ == "__main__":
    unittest.main()
