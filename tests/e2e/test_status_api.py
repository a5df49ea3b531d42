"""The queue status API over real gRPC: status, list with pages, message details, errors,
health and reflection; and queuectl's human and JSON output."""
import json
import os
import re
import subprocess
import unittest

import grpc

import postgate_test_health_pb2 as health_pb2
import postgate_test_health_pb2_grpc as health_grpc
import postgate_test_reflection_pb2 as reflection_pb2
import postgate_test_reflection_pb2_grpc as reflection_grpc
from postgate.queue.v1 import queue_pb2, queue_pb2_grpc
from postgate_harness import BIN_DIR, QUEUE_ID, Postgate, send_message, wait_for


class StatusApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.postgate = Postgate().start()
        cls.channel = cls.postgate.grpc_channel()
        cls.stub = queue_pb2_grpc.QueueServiceStub(cls.channel)
        # One delivered locally, three held for the remote domain (defer_transports = smtp).
        cls.local_id = re.search(QUEUE_ID, send_message(cls.postgate.smtp_port)).group(0)
        cls.remote_ids = [
            re.search(QUEUE_ID, send_message(cls.postgate.smtp_port, recipients=(f"r{i}@example.org", "bar@mail169.com"))).group(0)
            for i in range(3)]

        def settled():
            messages = [cls.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=i)) for i in [cls.local_id] + cls.remote_ids]
            return all(m.state != queue_pb2.MESSAGE_STATE_ACTIVE for m in messages)

        wait_for(settled, what="all four messages attempted")

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.postgate.cleanup()

    def queuectl(self, *args):
        return subprocess.run([os.path.join(BIN_DIR, "queuectl"), "--server", f"127.0.0.1:{self.postgate.grpc_port}", *args],
                              capture_output=True, text=True, timeout=30)

    def test_get_message_reports_each_recipient(self):
        local = self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=self.local_id))
        self.assertEqual(local.state, queue_pb2.MESSAGE_STATE_DONE)
        self.assertEqual(local.envelope.sender, "foo@mail169.com")
        self.assertEqual(local.envelope.client.address, "127.0.0.1")
        self.assertEqual(local.envelope.client.helo, "client.test")
        self.assertEqual(local.envelope.client.protocol, "ESMTP")
        self.assertGreater(local.size, 0)
        self.assertGreater(local.completion_time.seconds, 0)
        [recipient] = local.recipients
        self.assertEqual((recipient.address, recipient.state, recipient.smtp_code, recipient.dsn_status, recipient.relay),
                         ("bar@mail169.com", queue_pb2.RECIPIENT_STATE_DELIVERED, 250, "2.0.0", "local"))
        mixed = self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=self.remote_ids[0]))
        self.assertEqual(mixed.state, queue_pb2.MESSAGE_STATE_DEFERRED)
        remote, local_copy = mixed.recipients
        self.assertEqual((remote.state, remote.dsn_status, remote.reason),
                         (queue_pb2.RECIPIENT_STATE_DEFERRED, "4.3.2", "deferred transport"))
        self.assertEqual(local_copy.state, queue_pb2.RECIPIENT_STATE_DELIVERED)
        self.assertEqual(remote.attempts, 1)

    def test_errors_use_grpc_codes(self):
        with self.assertRaises(grpc.RpcError) as missing:
            self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id="0000000000000"))
        self.assertEqual(missing.exception.code(), grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(grpc.RpcError) as bad:
            self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id="../etc"))
        self.assertEqual(bad.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("queue_id", bad.exception.details())
        with self.assertRaises(grpc.RpcError) as page:
            self.stub.ListMessages(queue_pb2.ListMessagesRequest(page_size=5000))
        self.assertEqual(page.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("page_size", page.exception.details())

    def test_queue_status_counts_by_state(self):
        status = self.stub.GetQueueStatus(queue_pb2.GetQueueStatusRequest())
        counts = {c.state: c.messages for c in status.by_state}
        self.assertEqual(counts[queue_pb2.MESSAGE_STATE_DEFERRED], 3)
        self.assertEqual(counts[queue_pb2.MESSAGE_STATE_DONE], 1)
        self.assertEqual(counts[queue_pb2.MESSAGE_STATE_ACTIVE], 0)
        self.assertEqual(status.total_messages, 3)
        self.assertGreater(status.total_bytes, 0)

    def test_list_pages_through_deferred_messages_in_arrival_order(self):
        seen, token = [], ""
        while True:
            page = self.stub.ListMessages(queue_pb2.ListMessagesRequest(
                state=queue_pb2.MESSAGE_STATE_DEFERRED, page_size=2, page_token=token))
            self.assertLessEqual(len(page.messages), 2)
            seen += [m.queue_id for m in page.messages]
            token = page.next_page_token
            if not token:
                break
        self.assertEqual(seen, self.remote_ids)
        done = self.stub.ListMessages(queue_pb2.ListMessagesRequest(state=queue_pb2.MESSAGE_STATE_DONE))
        self.assertEqual([m.queue_id for m in done.messages], [self.local_id])

    def test_health_and_reflection(self):
        health = health_grpc.HealthStub(self.channel).Check(health_pb2.HealthCheckRequest())
        self.assertEqual(health.status, health_pb2.HealthCheckResponse.SERVING)
        reflection = reflection_grpc.ServerReflectionStub(self.channel)
        responses = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = [s.name for r in responses for s in r.list_services_response.service]
        self.assertIn("postgate.queue.v1.QueueService", names)
        self.assertIn("grpc.health.v1.Health", names)

    def test_queuectl_output_matches_the_golden_layout(self):
        """queuectl list and status, with IDs, sizes and times masked (same widths), byte for byte."""
        def mask(text):
            text = re.sub(r"\b[0-9A-F]{13}\b", "Q" * 13, text)
            text = re.sub(r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d", "Www Mmm DD HH:MM:SS", text)
            text = re.sub(r"(?m)^(Q{13}[*! ]?\s+)(\d+)", lambda m: m.group(1) + "9" * len(m.group(2)), text)
            text = re.sub(r"(?m)^(\w+\s+\d+\s+)(\d+)$", lambda m: m.group(1) + "9" * len(m.group(2)), text)
            text = re.sub(r"-- \d+ Kbytes", "-- N Kbytes", text)
            return re.sub(r"(\d+) bytes; oldest \d+s", r"N bytes; oldest Ns", text)

        for command, golden in ((["list"], "queuectl-list.txt"), (["status"], "queuectl-status.txt")):
            result = self.queuectl(*command)
            self.assertEqual(result.returncode, 0, result.stderr)
            path = os.path.join(os.path.dirname(__file__), "golden", golden)
            if os.environ.get("POSTGATE_UPDATE_GOLDEN"):
                with open(path, "w") as f:
                    f.write(mask(result.stdout))
            with open(path) as f:
                self.assertEqual(mask(result.stdout), f.read(), golden)

    def test_queuectl_mailq_layout_status_and_json(self):
        listing = self.queuectl("list")
        self.assertEqual(listing.returncode, 0, listing.stderr)
        lines = listing.stdout.splitlines()
        self.assertEqual(lines[0], "-Queue ID-     --Size-- ----Arrival Time---- -Sender/Recipient-------")
        self.assertRegex(lines[1], rf"^{self.remote_ids[0]}\s+\d+ \w{{3}} \w{{3}} [ \d]\d \d\d:\d\d:\d\d  foo@mail169\.com$")
        self.assertRegex(lines[2], r"^\(next attempt \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d\)$")
        self.assertEqual(lines[3], "(deferred transport)")
        self.assertEqual(lines[4], " " * 45 + "r0@example.org")
        self.assertNotIn("bar@mail169.com", listing.stdout, "delivered recipients are not listed, as in mailq")
        self.assertRegex(lines[-1], r"^-- \d+ Kbytes in 3 Requests\.$")
        status = self.queuectl("status")
        self.assertRegex(status.stdout, r"deferred\s+3\s+\d+")
        as_json = self.queuectl("--json", "show", self.local_id)
        self.assertEqual(as_json.returncode, 0)
        parsed = json.loads(as_json.stdout)
        self.assertEqual(parsed["queue_id"], self.local_id)
        self.assertEqual(parsed["recipients"][0]["state"], "RECIPIENT_STATE_DELIVERED")
        lines_json = self.queuectl("--json", "list", "--state", "deferred").stdout.splitlines()
        self.assertEqual([json.loads(l)["queue_id"] for l in lines_json], self.remote_ids)
        missing = self.queuectl("show", "0000000000000")
        self.assertEqual(missing.returncode, 2)
        self.assertIn("not found", missing.stderr)
        unreachable = subprocess.run([os.path.join(BIN_DIR, "queuectl"), "--server", "127.0.0.1:1", "--timeout", "2", "status"],
                                     capture_output=True, text=True, timeout=30)
        self.assertEqual(unreachable.returncode, 1)


if __name__ == "__main__":
    unittest.main()
