"""The Enqueue stream as queue-service answers it on gRPC's callback API, driven by a real gRPC
client (the way smtp-gateway uses it, and the ways it must not be used): a commit that carries
the last chunk, the size check counting that chunk, the limits, a stream that ends early, and
200 streams at once through the one store writer — every committed message delivered exactly
once, nothing stored for a refused one."""
import concurrent.futures
import re
import unittest
import urllib.request

import grpc

from postgate.queue.v1 import queue_pb2
from enqueue_requests import QueueOnlyTest, commit, content, envelope
from postgate_harness import QUEUE_ID, wait_for


class EnqueueStreamTest(QueueOnlyTest):

    def enqueue(self, requests):
        return list(self.stub.Enqueue(iter(requests), timeout=30))

    def refused(self, requests):
        with self.assertRaises(grpc.RpcError) as caught:
            self.enqueue(requests)
        return caught.exception

    def metric(self, name):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.postgate.queue_metrics_port}/metrics",
                                    timeout=10) as response:
            text = response.read().decode()
        values = [float(v) for v in re.findall(r"(?m)^" + re.escape(name) + r"(?:\{[^}]*\})? (\S+)$", text)]
        return sum(values)

    def delivered_with(self, marker):
        return [t for t in self.postgate.read_maildir("bar") if marker in t]

    def test_commit_carrying_the_last_chunk_stores_the_whole_message(self):
        first = b"Subject: carried\n\nfirst part, "
        last = b"last part carried by the commit\n"
        responses = self.enqueue([envelope(), content(first), commit(len(first) + len(last), last)])
        self.assertRegex(responses[0].queue_id, "^" + QUEUE_ID + "$")
        self.assertEqual(responses[-1].committed_queue_id, responses[0].queue_id)
        wait_for(lambda: self.delivered_with("carried by the commit"), what="the message in bar's Maildir")
        (text,) = self.delivered_with("carried by the commit")
        self.assertTrue(text.endswith((first + last).decode()), text)
        # A one-piece message: everything rides on the commit.
        only = b"Subject: one piece\n\nall in the commit\n"
        self.enqueue([envelope(), commit(len(only), only)])
        wait_for(lambda: self.delivered_with("all in the commit"), what="the one-piece message")

    def test_size_counts_the_carried_chunk(self):
        stored = self.metric("postgate_queue_messages_stored_total")
        error = self.refused([envelope(), content(b"abc"), commit(3, b"def")])
        self.assertEqual(error.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("commit.size: says 3 bytes, received 6", error.details())
        # message_size_limit plus 64 KiB is 128 KiB: the carried chunk is what crosses it.
        error = self.refused([envelope(), content(b"y" * 100 * 1024), commit(130 * 1024, b"z" * 30 * 1024)])
        self.assertEqual(error.code(), grpc.StatusCode.OUT_OF_RANGE)
        self.assertEqual(error.details(), "message too big")
        self.assertEqual(self.metric("postgate_queue_messages_stored_total"), stored)

    def test_envelope_edits_at_commit_replace_the_envelope_and_are_checked(self):
        # What smtp-gateway sends when milters changed the sender and the recipients.
        body = b"Subject: edited envelope\n\nedited\n"
        edited = queue_pb2.EnqueueRequest(commit=queue_pb2.Commit(
            size=len(body), content=body, sender_changed=True, sender="changed@mail169.com",
            recipients_changed=True, recipients=["foo@mail169.com"],
            recipient_options=[queue_pb2.RecipientOptions(original_recipient="rfc822;team@mail169.com")]))
        responses = self.enqueue([envelope(), edited])
        queue_id = responses[-1].committed_queue_id
        message = self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=queue_id), timeout=10)
        self.assertEqual(message.envelope.sender, "changed@mail169.com")
        self.assertEqual(list(message.envelope.recipients), ["foo@mail169.com"])
        self.assertEqual(message.envelope.recipient_options[0].original_recipient, "rfc822;team@mail169.com")
        stored = self.metric("postgate_queue_messages_stored_total")
        # One options entry per recipient, and addresses the envelope check accepts.
        mismatched = queue_pb2.EnqueueRequest(commit=queue_pb2.Commit(
            size=len(body), content=body, recipients_changed=True, recipients=["foo@mail169.com", "bar@mail169.com"],
            recipient_options=[queue_pb2.RecipientOptions()]))
        error = self.refused([envelope(), mismatched])
        self.assertEqual((error.code(), error.details()),
                         (grpc.StatusCode.INVALID_ARGUMENT, "commit.recipient_options: one entry per recipient needed"))
        none_left = queue_pb2.EnqueueRequest(commit=queue_pb2.Commit(size=len(body), content=body,
                                                                     recipients_changed=True))
        self.assertEqual(self.refused([envelope(), none_left]).code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(self.metric("postgate_queue_messages_stored_total"), stored)

    def test_malformed_streams_store_nothing(self):
        stored = self.metric("postgate_queue_messages_stored_total")
        error = self.refused([content(b"no envelope first")])
        self.assertEqual((error.code(), error.details()),
                         (grpc.StatusCode.INVALID_ARGUMENT, "envelope: must be the first message"))
        error = self.refused([envelope(), content(b"a"), envelope()])
        self.assertEqual((error.code(), error.details()),
                         (grpc.StatusCode.INVALID_ARGUMENT, "part: expected content or commit"))
        # The client half-closes without a commit: the queue ID was given, nothing is kept.
        error = self.refused([envelope(), content(b"Subject: unfinished\n\n")])
        self.assertEqual((error.code(), error.details()),
                         (grpc.StatusCode.CANCELLED, "stream ended before commit"))
        self.assertEqual(self.metric("postgate_queue_messages_stored_total"), stored)
        self.assertGreaterEqual(self.metric("postgate_queue_enqueue_failures_total"), 2)

    def test_concurrent_streams_are_each_stored_and_delivered_once(self):
        count = 200
        before = len(self.postgate.maildir_files("bar"))

        def one(n):
            body = f"Subject: concurrent {n}\n\nconcurrent-{n}-end\n".encode()
            head, tail = body[:10], body[10:]
            responses = self.enqueue([envelope(key=f"concurrent-{n}"), content(head), commit(len(body), tail)])
            return n, responses[0].queue_id, responses[-1].committed_queue_id

        with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(one, range(count)))
        self.assertTrue(all(given == committed for _, given, committed in results))
        self.assertEqual(len({given for _, given, _ in results}), count)
        wait_for(lambda: len(self.postgate.maildir_files("bar")) >= before + count, timeout=60,
                 what=f"{count} concurrent messages delivered")
        texts = self.postgate.read_maildir("bar")
        for n, _, _ in results:
            self.assertEqual(len([t for t in texts if f"concurrent-{n}-end" in t]), 1, n)


if __name__ == "__main__":
    unittest.main()
