"""Graceful drain on SIGTERM: idle sessions and new connections get 421 4.3.2, a message in DATA
finishes, the gateway exits 0, nothing acknowledged is lost, and no client sees a reset."""
import re
import signal
import socket
import threading
import unittest

from postgate_harness import QUEUE_ID, Postgate, SmtpConnection, wait_for

SHUTTING_DOWN = "421 4.3.2 Service shutting down\r\n"


def polite_send(port, marker):
    """One message the way a well-behaved client sends it: stops at the first 4xx/5xx reply.
    Returns ("queued", id), ("421", None), ("refused", None); a reset raises."""
    try:
        connection = SmtpConnection(port)
    except ConnectionRefusedError:
        return ("refused", None)
    try:
        steps = [None, "EHLO drain.test", "MAIL FROM:<foo@mail169.com>", "RCPT TO:<bar@mail169.com>", "DATA"]
        for step in steps:
            reply = connection.read_reply() if step is None else connection.command(step)
            if reply.startswith("421"):
                return ("421", None)
            assert reply[0] in "23", reply
        connection.send(f"Subject: {marker}\r\n\r\n{marker}\r\n.\r\n")
        reply = connection.read_reply()
        if reply.startswith("421"):
            return ("421", None)
        queue_id = re.search(QUEUE_ID, reply).group(0)
        reply = connection.command("QUIT")
        assert reply.startswith("221") or reply == SHUTTING_DOWN, reply
        return ("queued", queue_id)
    finally:
        connection.close()


class DrainTest(unittest.TestCase):
    def setUp(self):
        self.postgate = Postgate({"postgate_drain_timeout": "5s"}).start()

    def tearDown(self):
        self.postgate.cleanup()

    def test_idle_new_and_in_data_sessions(self):
        port = self.postgate.smtp_port
        idle = SmtpConnection(port)
        idle.read_reply()
        idle.command("EHLO idle")
        busy = SmtpConnection(port)
        busy.read_reply()
        for line in ("EHLO busy", "MAIL FROM:<foo@mail169.com>", "RCPT TO:<bar@mail169.com>", "DATA"):
            busy.command(line)
        busy.send("Subject: in flight\r\n\r\nfirst half\r\n")
        self.postgate.gateway.process.send_signal(signal.SIGTERM)
        self.assertEqual(idle.read_reply(), SHUTTING_DOWN)
        late = SmtpConnection(port)
        self.assertEqual(late.read_reply(), SHUTTING_DOWN)
        late.close()
        busy.send("second half\r\n.\r\n")
        queued = busy.read_reply()
        self.assertRegex(queued, rf"^250 2\.0\.0 Ok: queued as {QUEUE_ID}")
        self.assertEqual(busy.command("NOOP"), SHUTTING_DOWN)
        busy.close()
        idle.close()
        self.assertEqual(self.postgate.gateway.process.wait(timeout=30), 0)
        text = self.postgate.wait_delivered("bar", 1)[0]
        self.assertIn("first half\nsecond half\n", text)

    def test_drain_under_load_loses_nothing_and_resets_nobody(self):
        port = self.postgate.smtp_port
        results, errors, lock = [], [], threading.Lock()
        stop = threading.Event()

        def sender(worker):
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    outcome = polite_send(port, f"load-{worker}-{n}")
                except (ConnectionResetError, BrokenPipeError) as error:
                    with lock:
                        errors.append(repr(error))
                    continue
                except ConnectionError:
                    # Closed without a word: accepted by the kernel as the gateway exited. A close,
                    # not a reset, and never after an acknowledgement.
                    outcome = ("closed", None)
                with lock:
                    results.append(outcome)
                if outcome[0] in ("refused", "closed", "421"):
                    return  # Like a real MTA after "421 shutting down": back off, do not hammer.

        threads = [threading.Thread(target=sender, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        try:
            wait_for(lambda: sum(r[0] == "queued" for r in results) >= 40, timeout=60, what="mail flowing")
            self.postgate.gateway.process.send_signal(signal.SIGTERM)
            self.assertEqual(self.postgate.gateway.process.wait(timeout=40), 0)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
        self.assertEqual(errors, [], "no client may see a connection reset")
        self.assertTrue(any(r[0] == "421" for r in results) or any(r[0] == "refused" for r in results))
        acknowledged = [queue_id for kind, queue_id in results if kind == "queued"]
        texts = wait_for(lambda: (t := self.postgate.read_maildir("bar")) and
                         all(any(f"id {q}" in m for m in t) for q in acknowledged) and t,
                         timeout=60, what=f"all {len(acknowledged)} acknowledged messages delivered")
        for queue_id in acknowledged:
            self.assertEqual(sum(f"id {queue_id}\n" in m for m in texts), 1)


if __name__ == "__main__":
    unittest.main()
