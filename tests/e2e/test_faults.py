"""Faults between the services and under them: queue-service killed in the middle of a message,
its disk (nearly) full, and a soak – sustained load while queue-service is SIGKILLed and restarted
again and again – after which every acknowledged message is in the mailbox (exactly once, or at
worst duplicated by the at-least-once window), with the counts printed.

POSTGATE_SOAK_SECONDS sets the soak's length (default 40 s in ./scripts/test; see tests/README.md
for the long run)."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

from postgate.queue.v1 import queue_pb2, queue_pb2_grpc
from postgate_harness import QUEUE_ID, AcknowledgedLoad, Postgate, SmtpConnection, delivery_counts, send_message, wait_for


def open_transaction(port, recipient="bar@mail169.com"):
    connection = SmtpConnection(port)
    connection.read_reply()
    for line in ("EHLO client.test", "MAIL FROM:<foo@mail169.com>", f"RCPT TO:<{recipient}>"):
        reply = connection.command(line)
        assert reply.startswith("250"), reply
    return connection


class QueueKilledMidMessageTest(unittest.TestCase):
    def setUp(self):
        self.postgate = Postgate({"postgate_queue_timeout": "3s", "postgate_queue_replay_limit": "0"}).start()

    def tearDown(self):
        self.postgate.cleanup()

    def test_sigkill_during_upload_gives_451_and_nothing_half_stored(self):
        connection = open_transaction(self.postgate.smtp_port)
        try:
            self.assertTrue(connection.command("DATA").startswith("354"))
            connection.send("Subject: cut short\r\n\r\n" + "z" * 300_000 + "\r\n")  # Several chunks upload.
            self.postgate.queue.stop(signal.SIGKILL)
            connection.send(".\r\n")
            self.assertEqual(connection.read_reply(), "451 4.3.0 Error: queue file write error\r\n")
            self.assertEqual(connection.command("NOOP"), "250 2.0.0 Ok\r\n")  # The session lives on.
        finally:
            connection.close()
        self.postgate.start_queue()  # Restarts on the same data; recovery drops orphaned chunks.

        def accepted():
            try:
                return send_message(self.postgate.smtp_port).startswith("250 2.0.0 Ok: queued as")
            except AssertionError:
                return False

        wait_for(accepted, timeout=30, interval=0.2, what="the gateway to reconnect by itself")
        texts = self.postgate.wait_delivered("bar", 1)
        self.assertFalse(any("cut short" in t for t in texts))


class CuttingProxy:
    """A TCP relay between the gateway and queue-service that can cut every connection it carries
    (both directions closed at once, as a node or network fault would), and goes on relaying new ones."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets, self.lock = [], threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self.lock:
                self.sockets += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source, target):
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for end in (source, target):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        source.close()  # Each socket is the source of one pump.

    def cut(self):
        with self.lock:
            cut, self.sockets = self.sockets, []
        for end in cut:
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return len(cut) // 2

    def close(self):
        self.listener.close()
        self.cut()


class StreamCutMidMessageTest(unittest.TestCase):
    """The connection to queue-service breaks while a message uploads and the queue lives on: the
    gateway sends the message again to the same replica (its chunks kept, the same idempotency
    key), and the client gets 250 – whether the message rode on a shared EnqueueMany stream or on
    an Enqueue call of its own (postgate_queue_streams = 0)."""

    def test_the_upload_is_replayed_and_stored_once(self):
        for streams in ("2", "0"):
            with self.subTest(postgate_queue_streams=streams):
                postgate = Postgate({"postgate_queue_streams": streams}).start_queue()
                self.addCleanup(postgate.cleanup)
                proxy = CuttingProxy(postgate.grpc_port)
                self.addCleanup(proxy.close)
                postgate.start_gateway(queue_address=f"127.0.0.1:{proxy.port}")
                self.assertRegex(send_message(postgate.smtp_port), r"^250 ")  # The connection is up.
                postgate.wait_delivered("bar", 1)
                connection = open_transaction(postgate.smtp_port)
                try:
                    self.assertTrue(connection.command("DATA").startswith("354"))
                    body = "Subject: cut and replayed\r\n\r\n" + ("r" * 998 + "\r\n") * 150  # ~150 KB: kept.
                    connection.send(body)
                    self.assertGreaterEqual(proxy.cut(), 1)
                    connection.send("replayed-end\r\n.\r\n")
                    reply = connection.read_reply()
                    self.assertRegex(reply, r"^250 2\.0\.0 Ok: queued as " + QUEUE_ID + r"\r\n$")
                finally:
                    connection.close()
                texts = postgate.wait_delivered("bar", 2)
                (text,) = [t for t in texts if "replayed-end" in t]
                self.assertEqual(text.count("r" * 998), 150)
                queue_id = re.search(QUEUE_ID, reply).group(0)
                postgate.queue.wait_log(re.escape(queue_id) + r": to=<bar@mail169\.com>.*status=sent")
                # The cut upload was discarded, and the replay came by an Enqueue call of its own.
                with urllib.request.urlopen(f"http://127.0.0.1:{postgate.queue_metrics_port}/metrics", timeout=10) as r:
                    metrics = r.read().decode()
                self.assertRegex(metrics, r'(?m)^postgate_queue_enqueue_failures_total\{reason="cancelled"\} 1$')
                self.assertRegex(metrics, r'(?m)^postgate_queue_messages_stored_total 2$')
                calls = {m[0]: int(float(m[1])) for m in re.findall(
                    r'(?m)^postgate_queue_enqueue_calls_total\{rpc="(\w+)"\} (\S+)$', metrics)}
                self.assertEqual(calls["Enqueue"], 1 if streams != "0" else 3, calls)  # Else: both messages and the replay.


class DiskFullTest(unittest.TestCase):
    """The queue's data directory on a 48 MB tmpfs, filled up to below queue_minfree
    (1.5 × message_size_limit = 1.5 MB here)."""

    def setUp(self):
        self.postgate = Postgate({"message_size_limit": "1000000"})
        self.mount = self.postgate.data_dir
        saved = tempfile.mkdtemp(prefix="postgate-data-")
        shutil.copytree(self.mount, saved, dirs_exist_ok=True)  # Certificates, admin token.
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", self.mount], check=True)
        shutil.copytree(saved, self.mount, dirs_exist_ok=True)
        shutil.rmtree(saved)
        self.filler = os.path.join(self.mount, "filler")
        self.postgate.start()

    def tearDown(self):
        self.postgate.stop()
        subprocess.run(["umount", self.mount], check=False)
        self.postgate.cleanup()

    def fill(self, leave_bytes):
        stats = os.statvfs(self.mount)
        size = stats.f_bavail * stats.f_frsize - leave_bytes
        with open(self.filler, "wb") as out:
            out.truncate(0)
            chunk = b"\0" * (1 << 20)
            while size > 0:
                out.write(chunk[:min(size, len(chunk))])
                size -= len(chunk)

    def test_new_mail_gets_452_and_queued_mail_is_untouched(self):
        queued = re.search(QUEUE_ID, send_message(self.postgate.smtp_port, recipients=("user@example.org",),
                                                  body="Subject: waiting\r\n\r\nkept safe\r\n")).group(0)
        stub = queue_pb2_grpc.QueueServiceStub(self.postgate.grpc_channel())
        wait_for(lambda: stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=queued)).state
                 == queue_pb2.MESSAGE_STATE_DEFERRED, what="the remote message deferred (defer_transports)")
        self.fill(leave_bytes=1_000_000)

        connection = open_transaction(self.postgate.smtp_port)
        try:
            self.assertEqual(connection.command("DATA"), "452 4.3.1 Insufficient system storage\r\n")
            self.assertEqual(connection.command("RCPT TO:<bar@mail169.com>"), "503 5.5.1 Error: need MAIL command\r\n")
        finally:
            connection.close()
        self.postgate.gateway.wait_log(r"insufficient system storage: \d+ bytes free")

        # What was queued before is still there, whole.
        message = stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=queued))
        self.assertEqual(message.state, queue_pb2.MESSAGE_STATE_DEFERRED)
        content = b"".join(c.data for c in stub.GetMessageContent(
            queue_pb2.GetMessageContentRequest(queue_id=queued), metadata=self.postgate.admin_metadata()))
        self.assertIn(b"kept safe", content)

        # Space again: mail is accepted at once, without a restart.
        os.unlink(self.filler)
        self.assertRegex(send_message(self.postgate.smtp_port), r"^250 2\.0\.0 Ok: queued as " + QUEUE_ID)
        self.postgate.wait_delivered("bar", 1)


class SoakTest(unittest.TestCase):
    SECONDS = float(os.environ.get("POSTGATE_SOAK_SECONDS", "40"))
    KILL_EVERY = 8.0  # Seconds between SIGKILLs of queue-service.

    def setUp(self):
        self.postgate = Postgate({"postgate_queue_timeout": "3s"}).start()

    def tearDown(self):
        self.postgate.cleanup()

    def test_acknowledged_mail_survives_repeated_sigkills(self):
        load = AcknowledgedLoad(self.postgate)
        kills = 0
        started = time.monotonic()
        try:
            while time.monotonic() - started < self.SECONDS:
                before = load.count()
                # Load flows between kills (a condition, with a deadline), then the next SIGKILL.
                wait_for(lambda: load.count() >= before + 20, timeout=30, what="mail flowing again")
                # The soak's timeline: the load runs KILL_EVERY seconds before the next kill. This
                # paces the attack; nothing waits here for the system to reach some state.
                time.sleep(max(0.0, min(started + self.SECONDS, time.monotonic() + self.KILL_EVERY) - time.monotonic()))
                if time.monotonic() - started >= self.SECONDS:
                    break
                self.postgate.queue.stop(signal.SIGKILL)
                kills += 1
                self.postgate.start_queue()
        finally:
            acknowledged = load.stop()

        once, duplicated, lost = delivery_counts(self.postgate, acknowledged)
        print(f"\nsoak: {self.SECONDS:.0f} s, {kills} SIGKILLs of queue-service, {len(acknowledged)} acknowledged, "
              f"{once} delivered once, {duplicated} duplicated, {lost} lost; {load.refused} sessions refused "
              f"(451 or reset, not acknowledged)", flush=True)
        self.assertGreaterEqual(kills, 2)
        self.assertEqual(lost, 0)
        self.assertLessEqual(duplicated, kills)  # At most the one in flight per kill.


if __name__ == "__main__":
    unittest.main()
