"""EnqueueMany, the long-lived stream smtp-gateway sends its messages over, as queue-service
answers it, driven by a real gRPC client: uploads interleaved on one stream each stored once
under the ID they were given, content one chunk at a time, an error ending one upload and not its
neighbours, abandoned and unfinished uploads keeping nothing, a retry with the key of a message
already stored answered with its ID; and smtp-gateway falling back to an Enqueue call per message
against a queue-service that has no EnqueueMany."""
import queue
import re
from concurrent import futures
import threading
import unittest
import urllib.request

import grpc

from postgate.queue.v1 import queue_pb2, queue_pb2_grpc
from enqueue_requests import QueueOnlyTest, commit, content, envelope
from postgate_harness import QUEUE_ID, Postgate, send_message, wait_for


class ManyStream:
    """One EnqueueMany call: frames go out as `send` is called; replies are kept per upload."""

    def __init__(self, stub):
        self._outgoing = queue.Queue()
        self._replies = {}
        self._condition = threading.Condition()
        self.ended = None  # The call's final status code, once it ended.
        self._call = stub.EnqueueMany(iter(self._outgoing.get, None), timeout=60)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        code = grpc.StatusCode.OK
        try:
            for frame in self._call:
                with self._condition:
                    for reply in frame.replies:
                        self._replies.setdefault(reply.upload, []).append(reply)
                    self._condition.notify_all()
        except grpc.RpcError as error:
            code = error.code()
        with self._condition:
            self.ended = code
            self._condition.notify_all()

    def send(self, *items):
        """items: (upload, request) pairs, or (upload, "abandon"); all in one frame."""
        frame = queue_pb2.EnqueueFrame()
        for upload, request in items:
            if request == "abandon":
                frame.items.add(upload=upload, abandon=True)
            else:
                frame.items.add(upload=upload, request=request)
        self._outgoing.put(frame)

    def close(self):
        self._outgoing.put(None)  # Half-close.

    def replies(self, upload, count, timeout=30):
        """The first `count` replies for `upload`, once they are in."""
        with self._condition:
            if not self._condition.wait_for(lambda: len(self._replies.get(upload, [])) >= count, timeout=timeout):
                raise AssertionError(f"upload {upload}: {self._replies.get(upload, [])} after {timeout} s")
            return self._replies[upload][:count]

    def wait_ended(self, timeout=30):
        with self._condition:
            if not self._condition.wait_for(lambda: self.ended is not None, timeout=timeout):
                raise AssertionError("the stream did not end")
            return self.ended


class EnqueueManyTest(QueueOnlyTest):

    def metric(self, name, labels=""):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.postgate.queue_metrics_port}/metrics",
                                    timeout=10) as response:
            text = response.read().decode()
        pattern = r"(?m)^" + re.escape(name) + (r"\{[^}]*" + re.escape(labels) + r"[^}]*\}" if labels else
                                                 r"(?:\{[^}]*\})?") + r" (\S+)$"
        return sum(float(v) for v in re.findall(pattern, text))

    def delivered_with(self, marker):
        return [t for t in self.postgate.read_maildir("bar") if marker in t]

    def stream(self):
        stream = ManyStream(self.stub)
        self.addCleanup(stream.close)
        return stream

    def test_interleaved_uploads_are_each_stored_once_under_their_own_id(self):
        stream = self.stream()
        uploads = range(1, 41)
        stream.send(*[(n, envelope()) for n in uploads])  # Forty envelopes in one frame.
        ids = {n: stream.replies(n, 1)[0].response.queue_id for n in uploads}
        for queue_id in ids.values():
            self.assertRegex(queue_id, "^" + QUEUE_ID + "$")
        self.assertEqual(len(set(ids.values())), 40)
        bodies = {n: f"Subject: many {n}\n\nmany-{n}-end\n".encode() for n in uploads}
        stream.send(*[(n, commit(len(bodies[n]), bodies[n])) for n in reversed(uploads)])
        for n in uploads:
            (_, done) = stream.replies(n, 2)
            self.assertEqual((done.error_code, done.response.committed_queue_id), (0, ids[n]), n)
        wait_for(lambda: all(self.delivered_with(f"many-{n}-end") for n in uploads), timeout=60,
                 what="forty messages delivered")
        for n in uploads:
            (text,) = self.delivered_with(f"many-{n}-end")
            message = self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=ids[n]), timeout=10)
            self.assertEqual(message.size, len(bodies[n]))
        stream.close()
        self.assertEqual(stream.wait_ended(), grpc.StatusCode.OK)

    def test_content_goes_one_chunk_at_a_time(self):
        stream = self.stream()
        stream.send((1, envelope()))
        queue_id = stream.replies(1, 1)[0].response.queue_id
        pieces = [b"Subject: chunked\n\n", b"x" * 40000 + b"\n", b"y" * 40000 + b"\n"]
        for count, piece in enumerate(pieces, start=2):
            stream.send((1, content(piece)))
            self.assertTrue(stream.replies(1, count)[-1].chunk_stored)
        last = b"chunked-end\n"
        stream.send((1, commit(sum(map(len, pieces)) + len(last), last)))
        self.assertEqual(stream.replies(1, 5)[-1].response.committed_queue_id, queue_id)
        wait_for(lambda: self.delivered_with("chunked-end"), what="the chunked message delivered")
        (text,) = self.delivered_with("chunked-end")
        self.assertIn("x" * 40000 + "\ny" * 1, text.replace("\r\n", "\n"))

    def test_an_error_ends_one_upload_and_not_its_neighbours(self):
        stream = self.stream()
        stored = self.metric("postgate_queue_messages_stored_total")
        stream.send((1, envelope()), (2, envelope()), (3, content(b"no envelope first")))
        stream.replies(1, 1)
        stream.replies(2, 1)
        stream.send((1, commit(3, b"abcdef")))  # Wrong size: upload 1 fails.
        (_, failed) = stream.replies(1, 2)
        self.assertEqual((failed.error_code, failed.error_message),
                         (grpc.StatusCode.INVALID_ARGUMENT.value[0], "commit.size: says 3 bytes, received 6"))
        stream.send((2, envelope()))  # Upload 2 is under way: refused, and it goes on.
        (_, refused) = stream.replies(2, 2)
        self.assertEqual((refused.error_code, refused.error_message),
                         (grpc.StatusCode.INVALID_ARGUMENT.value[0], "upload 2 is under way"))
        body = b"Subject: neighbour\n\nneighbour-end\n"
        stream.send((2, commit(len(body), body)))
        self.assertTrue(stream.replies(2, 3)[-1].response.committed_queue_id)
        wait_for(lambda: self.delivered_with("neighbour-end"), what="the neighbour delivered")
        stream.send((3, commit(0)))  # Upload 3 never began: what it sends is ignored.
        stream.close()
        self.assertEqual(stream.wait_ended(), grpc.StatusCode.OK)
        self.assertEqual(self.metric("postgate_queue_messages_stored_total"), stored + 1)
        with self.assertRaises(AssertionError):
            stream.replies(3, 1, timeout=0.5)

    def test_abandoned_and_unfinished_uploads_keep_nothing(self):
        stream = self.stream()
        stored = self.metric("postgate_queue_messages_stored_total")
        cancelled = self.metric("postgate_queue_enqueue_failures_total", 'reason="cancelled"')
        stream.send((1, envelope()), (2, envelope()))
        stream.replies(1, 1)
        stream.replies(2, 1)
        stream.send((1, content(b"Subject: abandoned\n\n")))
        self.assertTrue(stream.replies(1, 2)[-1].chunk_stored)
        stream.send((1, "abandon"))
        (_, _, ended) = stream.replies(1, 3)
        self.assertEqual((ended.error_code, ended.error_message),
                         (grpc.StatusCode.CANCELLED.value[0], "stream ended before commit"))
        stream.send((2, content(b"Subject: unfinished\n\n")))
        self.assertTrue(stream.replies(2, 2)[-1].chunk_stored)
        stream.close()  # Upload 2 never commits.
        self.assertEqual(stream.wait_ended(), grpc.StatusCode.OK)
        wait_for(lambda: self.metric("postgate_queue_enqueue_failures_total", 'reason="cancelled"') == cancelled + 2,
                 what="both uploads counted as cancelled")
        self.assertEqual(self.metric("postgate_queue_messages_stored_total"), stored)

    def test_a_retry_of_a_stored_message_gets_its_id_and_stores_nothing(self):
        body = b"Subject: keyed\n\nkeyed-end\n"
        first = list(self.stub.Enqueue(iter([envelope("many-key-1"), commit(len(body), body)]), timeout=30))
        queue_id = first[-1].committed_queue_id
        duplicates = self.metric("postgate_queue_enqueue_duplicates_total")
        stream = self.stream()
        stream.send((7, envelope("many-key-1")))
        self.assertEqual(stream.replies(7, 1)[0].response.queue_id, queue_id)
        stream.send((7, commit(len(body), body)))
        self.assertEqual(stream.replies(7, 2)[-1].response.committed_queue_id, queue_id)
        self.assertEqual(self.metric("postgate_queue_enqueue_duplicates_total"), duplicates + 1)
        wait_for(lambda: self.delivered_with("keyed-end"), what="the keyed message delivered")
        self.assertEqual(len(self.delivered_with("keyed-end")), 1)


def enqueue_calls(postgate):
    with urllib.request.urlopen(f"http://127.0.0.1:{postgate.queue_metrics_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(
        r'(?m)^postgate_queue_enqueue_calls_total\{rpc="(\w+)"\} (\S+)$', text)}


class OlderQueue(queue_pb2_grpc.QueueServiceServicer):
    """A queue-service from before EnqueueMany: Enqueue passed on to a real one; EnqueueMany is
    left to gRPC, which answers UNIMPLEMENTED."""

    def __init__(self, target):
        self.channel = grpc.insecure_channel(target)
        self.stub = queue_pb2_grpc.QueueServiceStub(self.channel)

    def Enqueue(self, request_iterator, context):
        return self.stub.Enqueue(request_iterator, timeout=30)


class GatewayStreamsTest(unittest.TestCase):
    """smtp-gateway's side: its messages ride on a few shared streams, and a queue-service
    without EnqueueMany (an older release) still gets every message, by calls."""

    def send(self, postgate, count, tag):
        for i in range(count):
            self.assertRegex(send_message(postgate.smtp_port, body=f"Subject: {tag} {i}\r\n\r\n{tag} {i}\r\n"),
                             r"^250 2\.0\.0 Ok: queued as " + QUEUE_ID)

    def test_messages_ride_on_shared_streams(self):
        postgate = Postgate().start()
        self.addCleanup(postgate.cleanup)
        self.send(postgate, 20, "shared")
        postgate.wait_delivered("bar", 20)
        calls = enqueue_calls(postgate)
        self.assertEqual(calls["Enqueue"], 0, calls)
        self.assertGreaterEqual(calls["EnqueueMany"], 1, calls)
        self.assertLess(calls["EnqueueMany"], 20, calls)

    def test_streams_zero_means_a_call_per_message(self):
        postgate = Postgate({"postgate_queue_streams": "0"}).start()
        self.addCleanup(postgate.cleanup)
        self.send(postgate, 5, "calls")
        postgate.wait_delivered("bar", 5)
        self.assertEqual(enqueue_calls(postgate), {"Enqueue": 5, "EnqueueMany": 0})

    def test_a_queue_without_enqueue_many_gets_every_message_by_calls(self):
        postgate = Postgate().start_queue()
        self.addCleanup(postgate.cleanup)
        older = OlderQueue(f"127.0.0.1:{postgate.grpc_port}")
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        queue_pb2_grpc.add_QueueServiceServicer_to_server(older, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self.addCleanup(server.stop, None)
        postgate.start_gateway(queue_address=f"127.0.0.1:{port}")
        self.send(postgate, 10, "older")
        postgate.wait_delivered("bar", 10)
        self.assertEqual(enqueue_calls(postgate), {"Enqueue": 10, "EnqueueMany": 0})


if __name__ == "__main__":
    unittest.main()
