"""postgate_mailbox_format = mbox: one file per user that Python's mailbox module (and mail -f) reads."""
import mailbox
import os
import re
import signal
import subprocess
import time
import unittest

from postgate_harness import BIN_DIR, QUEUE_ID, AcknowledgedLoad, Postgate, send_message, wait_for


def mbox_copies(path):
    """{queue ID: [message text, …]} for every message in the mbox, by its Received: header's ID.
    Also checks each message is whole: its marker (Subject) appears in its own body."""
    copies = {}
    if not os.path.exists(path):
        return copies
    box = mailbox.mbox(path)
    try:
        for message in box:
            text = message.as_string()
            match = re.search(r"\bid (" + QUEUE_ID + r")\n", text)
            if match:
                copies.setdefault(match.group(1), []).append(text)
    finally:
        box.close()
    return copies


def mbox_counts(path, acknowledged):
    """(delivered once, duplicated copies, lost, damaged) for the acknowledged (marker, ID) pairs."""
    copies = mbox_copies(path)
    once = duplicates = lost = damaged = 0
    for marker, queue_id in acknowledged:
        found = copies.get(queue_id, [])
        damaged += sum(1 for text in found if text.count(marker) != 2 or "From " in text.split("\n", 1)[1])
        if not found:
            lost += 1
        elif len(found) == 1:
            once += 1
        else:
            duplicates += len(found) - 1
    return once, duplicates, lost, damaged


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

        # Two local workers deliver: either message may be appended first.
        by_subject = {message["Subject"]: message for message in wait_for(messages, what="two messages in bar.mbox")}
        self.assertEqual(sorted(by_subject), ["one", "two"])
        first, second = by_subject["one"], by_subject["two"]
        self.assertEqual(first.get_from().split("  ")[0], "foo@mail169.com")
        self.assertIn(">From the start\nplain\n", first.get_payload())
        self.assertEqual(second["Return-Path"], "<>")
        self.assertEqual(second.get_from().split("  ")[0], "MAILER-DAEMON")
        self.assertEqual(self.postgate.maildir_files("bar"), [])


class MboxUnderLoadTest(unittest.TestCase):
    """Two delivery workers (local_destination_concurrency_limit = 2) append to one mbox."""

    def setUp(self):
        self.postgate = Postgate({"postgate_mailbox_format": "mbox", "postgate_queue_timeout": "3s"}).start()
        self.path = os.path.join(self.postgate.data_dir, "mail", "bar.mbox")

    def tearDown(self):
        self.postgate.cleanup()

    def delivered(self):
        return sum(len(found) for found in mbox_copies(self.path).values())

    def test_concurrent_workers_never_interleave_messages(self):
        load = AcknowledgedLoad(self.postgate, senders=6)
        try:
            wait_for(lambda: load.count() >= 600, timeout=120, what="600 acknowledged messages")
        finally:
            acknowledged = load.stop()
        wait_for(lambda: self.delivered() >= len(acknowledged), timeout=120, what="every message in bar.mbox")
        self.assertEqual(mbox_counts(self.path, acknowledged), (len(acknowledged), 0, 0, 0))

    def appended(self):
        """Messages in bar.mbox so far (cheap: counts separator lines)."""
        try:
            with open(self.path, "rb") as f:
                text = f.read()
        except (FileNotFoundError, IsADirectoryError):
            return 0
        return text.count(b"\nFrom ") + text.startswith(b"From ")

    def flush(self):
        subprocess.run([os.path.join(BIN_DIR, "queuectl"), "--server", f"127.0.0.1:{self.postgate.grpc_port}",
                        "flush"], check=True, capture_output=True)

    def test_sigkill_repeats_at_most_the_message_each_worker_had_in_flight(self):
        # A backlog first: while bar.mbox is a directory every delivery defers, so the flush
        # below hands the workers hundreds of messages at once (as a restart's recovery does).
        os.makedirs(self.path)
        load = AcknowledgedLoad(self.postgate, senders=6)
        try:
            wait_for(lambda: load.count() >= 500, timeout=120, what="500 acknowledged messages")
        finally:
            acknowledged = load.stop()
        os.rmdir(self.path)
        self.flush()
        # A SIGKILL keeps what was appended; what the queue had not yet recorded is appended again
        # after the restart (whose recovery again queues everything at once). Results are recorded
        # per message, so each kill may repeat at most one message per local worker (2).
        kills = 0
        logs = []  # Each killed queue-service's log lines.
        for target in (100, 250, 400):
            wait_for(lambda: self.appended() >= target, timeout=120, what=f"{target} messages in bar.mbox")
            self.postgate.queue.stop(signal.SIGKILL)
            kills += 1
            logs.append(self.postgate.queue.log())
            self.postgate.start_queue()
            self.flush()  # The deferred ones wait for their backoff otherwise.
        deadline = time.monotonic() + 120
        while mbox_counts(self.path, acknowledged)[2] and time.monotonic() < deadline:
            time.sleep(0.2)
        once, duplicates, lost, damaged = mbox_counts(self.path, acknowledged)
        print(f"\nmbox: {kills} SIGKILLs, {len(acknowledged)} acknowledged, {duplicates} repeated", flush=True)
        self.assertEqual((lost, damaged), (0, 0))
        self.assertLessEqual(duplicates, 2 * kills)
        # "status=sent" is logged only once the result is recorded, so a message logged as sent
        # by one queue-service is never delivered again by the next.
        logs.append(self.postgate.queue.log())
        sent_by = [set(re.findall(r"(" + QUEUE_ID + r"): to=<bar@mail169\.com>.*status=sent", "\n".join(log)))
                   for log in logs]
        for i, earlier in enumerate(sent_by):
            for later in sent_by[i + 1:]:
                self.assertEqual(earlier & later, set())

if __name__ == "__main__":
    unittest.main()
