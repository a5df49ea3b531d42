"""No SMTP smuggling: only <CR><LF>.<CR><LF> ends a message. Each known variant of a fake end of
data (SEC Consult's list, December 2023) is sent with a second transaction hidden behind it, in a
message to a local mailbox and to a remote (smtp-sink on loopback): exactly one message arrives
at each, the hidden commands in it as text, and nothing reaches the hidden recipient."""
import os
import re
import tempfile
import unittest

from postgate_harness import QUEUE_ID, Postgate, Sink, SmtpConnection, free_port, wait_for

FAKE_ENDS = {
    "LF.LF": b"\n.\n",
    "LF.CRLF": b"\n.\r\n",
    "CRLF.LF": b"\r\n.\n",
    "CR.CR": b"\r.\r",
    "CRLF.CR": b"\r\n.\r",
    "CR.CRLF": b"\r.\r\n",
    "CR.LF": b"\r.\n",
    "LF.CR": b"\n.\r",
    "CRLF NUL.CRLF": b"\r\n\x00.\r\n",
    "CRLF.CR CRLF": b"\r\n.\r\r\n",
}
HIDDEN = b"MAIL FROM:<evil@example.net>\r\nRCPT TO:<foo@mail169.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n"


class SmugglingTest(unittest.TestCase):
    def setUp(self):
        self.port = free_port()
        self.transport = tempfile.NamedTemporaryFile("w", suffix=".transport", delete=False)
        self.transport.write(f"example.org smtp:[127.0.0.1]:{self.port}\n")
        self.transport.close()
        self.sink = Sink(self.port)
        # The client is on loopback, in $mynetworks, which smtpd_forbid_bare_newline_exclusions
        # exempts by default (Postfix's "no": <LF>.<LF> would end DATA): test as an outside client.
        self.postgate = Postgate({"defer_transports": "", "transport_maps": f"texthash:{self.transport.name}",
                                  "smtpd_forbid_bare_newline_exclusions": ""}).start()

    def tearDown(self):
        self.postgate.cleanup()
        self.sink.stop()
        os.unlink(self.transport.name)

    def smuggle(self, name, fake_end):
        connection = SmtpConnection(self.postgate.smtp_port)
        try:
            connection.read_reply()
            for command in ("EHLO client.test", "MAIL FROM:<foo@mail169.com>", "RCPT TO:<bar@mail169.com>",
                            "RCPT TO:<user@example.org>"):
                self.assertTrue(connection.command(command).startswith("250"), command)
            self.assertTrue(connection.command("DATA").startswith("354"))
            connection.send(f"Subject: {name}\r\n\r\nbefore".encode() + fake_end + HIDDEN + b".\r\n")
            reply = connection.read_reply()
            self.assertRegex(reply, r"^250 2\.0\.0 Ok: queued as " + QUEUE_ID, name)
            # Had the fake end been taken, the hidden DATA would have left a 354 or 250 pending here.
            self.assertEqual(connection.command("QUIT"), "221 2.0.0 Bye\r\n", name)
        finally:
            connection.close()

    def test_each_fake_end_of_data_stays_content(self):
        for name, fake_end in FAKE_ENDS.items():
            self.smuggle(name, fake_end)
        count = len(FAKE_ENDS)
        local = self.postgate.wait_delivered("bar", count)
        remote = wait_for(lambda: len(m := self.sink.messages()) >= count and m, timeout=30,
                          what="every message at the remote")
        self.assertEqual(len(self.postgate.maildir_files("bar")), count)
        self.assertEqual(len(remote), count)
        for name in FAKE_ENDS:
            at_bar = [t for t in local if f"Subject: {name}\n" in t]
            at_remote = [t for t in remote if re.search(rf"^Subject: {re.escape(name)}\r?$", t, re.M)]
            self.assertEqual((len(at_bar), len(at_remote)), (1, 1), name)
            for text in (at_bar[0], at_remote[0]):
                self.assertIn("MAIL FROM:<evil@example.net>", text, name)
                self.assertIn("Subject: smuggled", text, name)
        self.assertEqual(self.postgate.maildir_files("foo"), [])
        gateway_log = "\n".join(self.postgate.gateway.log())
        self.assertNotIn("evil@example.net", gateway_log)  # Never seen as a command.


if __name__ == "__main__":
    unittest.main()
