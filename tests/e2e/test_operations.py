"""Operating the queue: watch events live, hold/release/requeue/delete, cat, flush and list filters,
through queuectl and the real gRPC API."""
import json
import os
import re
import subprocess
import threading
import unittest
import urllib.request

import grpc

from postgate.queue.v1 import queue_pb2, queue_pb2_grpc
from postgate_harness import BIN_DIR, QUEUE_ID, PostgateTestCase, send_message, wait_for


class OperationsTest(PostgateTestCase):
    overrides = {"fast_flush_domains": "example.org"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.stub = queue_pb2_grpc.QueueServiceStub(cls.postgate.grpc_channel())

    def queuectl(self, *args, token=True):
        auth = ["--token-file", self.postgate.token_file] if token else []
        return subprocess.run([os.path.join(BIN_DIR, "queuectl"), "--server", f"127.0.0.1:{self.postgate.grpc_port}",
                               *auth, *args], capture_output=True, text=True, timeout=60)

    def message(self, queue_id):
        return self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=queue_id))

    def deferred_message(self, recipient="x@example.org", body="Subject: ops\r\n\r\nops body\r\n"):
        queue_id = re.search(QUEUE_ID, send_message(self.postgate.smtp_port, recipients=(recipient,), body=body)).group(0)
        wait_for(lambda: self.message(queue_id).state == queue_pb2.MESSAGE_STATE_DEFERRED)
        return queue_id

    def start_watch(self, *args):
        process = subprocess.Popen([os.path.join(BIN_DIR, "queuectl"), "--server", f"127.0.0.1:{self.postgate.grpc_port}",
                                    "--json", "watch", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready = threading.Event()
        threading.Thread(target=lambda: [ready.set() for line in process.stderr if "watching" in line], daemon=True).start()
        wait_for(ready.is_set, what="queuectl watch to be registered")
        return process

    def test_global_options_work_after_the_subcommand_as_the_readme_shows(self):
        queue_id = self.deferred_message("someone@example.org")
        binary = os.path.join(BIN_DIR, "queuectl")
        server = f"127.0.0.1:{self.postgate.grpc_port}"
        listed = subprocess.run([binary, "--server", server, "list", "--recipient", "@example.org", "--json"],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn(queue_id, [json.loads(line)["queue_id"] for line in listed.stdout.splitlines()])
        shown = subprocess.run([binary, "show", queue_id, "--json", "--server", server],
                               capture_output=True, text=True, timeout=60)
        self.assertEqual(shown.returncode, 0, shown.stderr)
        self.assertEqual(json.loads(shown.stdout)["queue_id"], queue_id)
        held = subprocess.run([binary, "hold", queue_id, "--server", server, "--token-file", self.postgate.token_file],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(held.returncode, 0, held.stderr)
        self.assertEqual(self.message(queue_id).state, queue_pb2.MESSAGE_STATE_HOLD)
        # What is no option anywhere is still refused.
        wrong = subprocess.run([binary, "--server", server, "list", "--no-such-option"], capture_output=True, text=True)
        self.assertNotEqual(wrong.returncode, 0)

    def test_watchers_hold_no_thread_each_and_all_see_the_event(self):
        # WatchEvents runs on gRPC's callback API: 200 open watches must not cost 200 threads.
        def threads():
            with open(f"/proc/{self.postgate.queue.process.pid}/status") as status:
                return int(re.search(r"^Threads:\s+(\d+)", status.read(), re.M).group(1))
        before = threads()
        channels = [self.postgate.grpc_channel() for _ in range(4)]
        stubs = [queue_pb2_grpc.QueueServiceStub(channel) for channel in channels]
        watches = [stubs[i % 4].WatchEvents(queue_pb2.WatchEventsRequest(kinds=[queue_pb2.EVENT_KIND_RECEIVED]))
                   for i in range(200)]
        try:
            for watch in watches:
                watch.initial_metadata()  # Sent when the watch is in place.
            during = threads()
            queue_id = re.search(QUEUE_ID, send_message(self.postgate.smtp_port)).group(0)
            for watch in watches:
                self.assertEqual(next(watch).queue_id, queue_id)
            self.assertLess(during - before, 20, f"{before} threads before 200 watches, {during} with them")
        finally:
            for watch in watches:
                watch.cancel()
            for channel in channels:
                channel.close()

    def test_an_invalid_watch_is_refused(self):
        with self.assertRaises(grpc.RpcError) as refused:
            next(self.stub.WatchEvents(queue_pb2.WatchEventsRequest(queue_id="not-an-id")))
        self.assertEqual(refused.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_watch_follows_a_message_while_mail_flows(self):
        watch = self.start_watch("--domain", "mail169.com", "--count", "3")
        reply = send_message(self.postgate.smtp_port)
        queue_id = re.search(QUEUE_ID, reply).group(0)
        out, _ = watch.communicate(timeout=30)
        events = [json.loads(line) for line in out.splitlines()]
        self.assertEqual([(e["kind"], e["queue_id"]) for e in events],
                         [("EVENT_KIND_RECEIVED", queue_id), ("EVENT_KIND_DELIVERED", queue_id), ("EVENT_KIND_DONE", queue_id)])
        self.assertEqual(events[1]["recipient"], "bar@mail169.com")
        self.assertEqual(events[1]["dsn_status"], "2.0.0")
        self.assertEqual(watch.returncode, 0)

    def test_hold_release_requeue_delete(self):
        queue_id = self.deferred_message()
        watch = self.start_watch("--id", queue_id, "--count", "4")
        held = self.queuectl("hold", queue_id)
        self.assertEqual((held.returncode, held.stdout), (0, f"{queue_id}: placed on hold\n"))
        self.assertEqual(self.message(queue_id).state, queue_pb2.MESSAGE_STATE_HOLD)
        self.assertIn(f"{queue_id}!", self.queuectl("list").stdout)
        again = self.queuectl("hold", queue_id)
        self.assertEqual(again.returncode, 2)
        self.assertIn("already held", again.stderr)
        # A held message is not attempted by a flush.
        self.assertEqual(self.queuectl("flush", "example.org").stdout, "0 messages scheduled for delivery now\n")
        held_flush = self.queuectl("flush", "-i", queue_id)
        self.assertEqual(held_flush.returncode, 2)
        self.assertIn("held (release it)", held_flush.stderr)
        self.assertEqual(self.message(queue_id).recipients[0].attempts, 1)
        self.assertEqual(self.queuectl("release", queue_id).returncode, 0)
        wait_for(lambda: self.message(queue_id).recipients[0].attempts == 2, what="an attempt after release")
        self.assertEqual(self.queuectl("requeue", queue_id).returncode, 0)
        wait_for(lambda: self.message(queue_id).recipients[0].attempts == 3, what="an attempt after requeue")
        self.assertEqual(self.queuectl("flush", "-i", queue_id).stdout, f"{queue_id}: scheduled for delivery now\n")
        wait_for(lambda: self.message(queue_id).recipients[0].attempts == 4, what="an attempt after flush -i")
        history = self.message(queue_id).recipients[0].history
        self.assertEqual([(h.smtp_code, h.dsn_status, h.reason) for h in history], [(450, "4.3.2", "deferred transport")] * 4)
        self.assertLess(history[0].time.ToNanoseconds(), history[3].time.ToNanoseconds())
        shown = self.queuectl("show", queue_id).stdout
        self.assertEqual(shown.count("450 4.3.2 deferred transport"), 4)
        content = self.queuectl("cat", queue_id)
        self.assertEqual(content.returncode, 0)
        self.assertTrue(content.stdout.startswith("Received: from client.test"))
        # The header as cleanup completed it (Message-Id:, Date:, From: added for a local client).
        self.assertRegex(content.stdout, r"\nSubject: ops\nMessage-Id: <[^\n]+>\nDate: [^\n]+\n"
                                         r"From: [^\n]+\n\nops body\n$")
        self.assertEqual(self.queuectl("delete", queue_id).returncode, 0)
        with self.assertRaises(grpc.RpcError) as gone:
            self.message(queue_id)
        self.assertEqual(gone.exception.code(), grpc.StatusCode.NOT_FOUND)
        out, _ = watch.communicate(timeout=30)
        kinds = [json.loads(line)["kind"] for line in out.splitlines()]
        self.assertEqual(kinds, ["EVENT_KIND_HELD", "EVENT_KIND_RELEASED", "EVENT_KIND_DEFERRED", "EVENT_KIND_DEFERRED"])
        missing = self.queuectl("flush", "-i", "0000000000000")
        self.assertEqual(missing.returncode, 2)
        self.assertIn("not found", missing.stderr)
        self.postgate.queue.wait_log(rf"{queue_id}: removed")

    def test_errors_through_the_api(self):
        delivered = re.search(QUEUE_ID, send_message(self.postgate.smtp_port)).group(0)
        wait_for(lambda: self.message(delivered).state == queue_pb2.MESSAGE_STATE_DONE)
        admin = self.postgate.admin_metadata()
        for call in (self.stub.Hold, self.stub.Requeue, self.stub.Release):
            with self.assertRaises(grpc.RpcError) as error:
                call(queue_pb2.MessageRequest(queue_id=delivered), metadata=admin)
            self.assertEqual(error.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        with self.assertRaises(grpc.RpcError) as error:
            list(self.stub.GetMessageContent(queue_pb2.GetMessageContentRequest(queue_id=delivered), metadata=admin))
        self.assertEqual(error.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        with self.assertRaises(grpc.RpcError) as error:
            self.stub.Delete(queue_pb2.MessageRequest(queue_id="0000000000000"), metadata=admin)
        self.assertEqual(error.exception.code(), grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(grpc.RpcError) as error:
            self.stub.Hold(queue_pb2.MessageRequest(queue_id="nope"), metadata=admin)
        self.assertEqual(error.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(self.queuectl("cat", delivered).returncode, 2)
        refused = self.queuectl("delete", "ALL")
        self.assertEqual(refused.returncode, 64)
        self.assertIn("--yes", refused.stderr)

    def test_list_filters_and_postqueue_json(self):
        first = self.deferred_message("filter1@example.org")
        second = self.deferred_message("filter2@example.net")
        by_domain = self.queuectl("--json", "list", "--recipient", "@example.net")
        entries = [json.loads(line) for line in by_domain.stdout.splitlines()]
        self.assertEqual([e["queue_id"] for e in entries], [second])
        self.assertEqual(entries[0]["queue_name"], "deferred")
        self.assertEqual(entries[0]["sender"], "foo@mail169.com")
        self.assertEqual(entries[0]["recipients"], [{"address": "filter2@example.net", "delay_reason": "deferred transport"}])
        self.assertIsInstance(entries[0]["arrival_time"], (int, float))
        newest = self.stub.ListMessages(queue_pb2.ListMessagesRequest(recipient_contains="filter", newest_first=True))
        self.assertEqual([m.queue_id for m in newest.messages], [second, first])
        young = self.stub.ListMessages(queue_pb2.ListMessagesRequest(recipient_contains="filter", min_age_seconds=3600))
        self.assertEqual(list(young.messages), [])
        for queue_id in (first, second):
            self.stub.Delete(queue_pb2.MessageRequest(queue_id=queue_id), metadata=self.postgate.admin_metadata())

    def test_admin_calls_need_the_token(self):
        queue_id = self.deferred_message("auth@example.org")
        for metadata in ((), (("authorization", "Bearer wrong"),), (("authorization", "Basic x"),)):
            for call, request in ((self.stub.Hold, queue_pb2.MessageRequest(queue_id=queue_id)),
                                  (self.stub.Delete, queue_pb2.MessageRequest(queue_id=queue_id))):
                with self.assertRaises(grpc.RpcError) as error:
                    call(request, metadata=metadata)
                self.assertEqual(error.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        with self.assertRaises(grpc.RpcError) as error:
            list(self.stub.GetMessageContent(queue_pb2.GetMessageContentRequest(queue_id=queue_id)))
        self.assertEqual(error.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        refused = self.queuectl("hold", queue_id, token=False)
        self.assertEqual(refused.returncode, 1)
        self.assertIn("missing bearer token", refused.stderr)
        self.assertEqual(self.message(queue_id).state, queue_pb2.MESSAGE_STATE_DEFERRED, "nothing changed")
        # Reads stay open; the refusals are logged and counted.
        self.assertEqual(self.queuectl("show", queue_id, token=False).returncode, 0)
        self.postgate.queue.wait_log(r"warning: admin call Hold from ipv4:127\.0\.0\.1:\d+ refused: wrong bearer token")
        with urllib.request.urlopen(f"http://127.0.0.1:{self.postgate.queue_metrics_port}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        self.assertRegex(metrics, r'postgate_queue_admin_denied_total\{method="Hold"\} [4-9]')
        # A rotated token file is picked up without a restart.
        with open(self.postgate.token_file, "w") as f:
            f.write("rotated-token\n")
        with self.assertRaises(grpc.RpcError):
            self.stub.Hold(queue_pb2.MessageRequest(queue_id=queue_id), metadata=self.postgate.admin_metadata())
        self.stub.Delete(queue_pb2.MessageRequest(queue_id=queue_id), metadata=(("authorization", "Bearer rotated-token"),))
        with open(self.postgate.token_file, "w") as f:
            f.write(self.postgate.admin_token + "\n")


if __name__ == "__main__":
    unittest.main()
