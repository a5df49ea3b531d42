"""postgate_mailbox_format = mbox: one file per user that Python's mailbox module (and mail -f) reads."""
import mailbox
import os
import unittest

from postgate_harness import Postgate, send_message, wait_for


class MboxTest(unittest.TestCase):
    def setUp(self):
        self.postgate = Postgate({"postgate_mailbox_format": "mbox"}).start()

    def tearDown(self):
        self.postgate.cleanup()

    def test_messages_append_with_from_quoting(self):
        path = os.path.join(self.postgate.data_dir, "mail", "bar.mbox")
        send_message(self.postgate.smtp_port, body="Subject: one\r\n\r\nFrom the start\r\nplain\r\n")
        send_message(self.postgate.smtp_port, sender="", body="Subject: two\r\n\r\nsecond\r\n")
        def messages():
            if not os.path.exists(path):
                return None
            box = mailbox.mbox(path)
            try:
                found = list(box)
            finally:
                box.close()
            return found if len(found) == 2 else None

        first, second = wait_for(messages, what="two messages in bar.mbox")
        self.assertEqual(first["Subject"], "one")
        self.assertEqual(first.get_from().split("  ")[0], "foo@mail169.com")
        self.assertIn(">From the start\nplain\n", first.get_payload())
        self.assertEqual(second["Return-Path"], "<>")
        self.assertEqual(second.get_from().split("  ")[0], "MAILER-DAEMON")
        self.assertEqual(self.postgate.maildir_files("bar"), [])


if __name__ == "__main__":
    unittest.main()
