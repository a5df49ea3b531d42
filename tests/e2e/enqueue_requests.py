"""The EnqueueRequests smtp-gateway sends (envelope, content chunk, commit), and a queue-service
of their own, for tests that speak Enqueue and EnqueueMany to it directly."""
import unittest

import grpc

from postgate.queue.v1 import queue_pb2, queue_pb2_grpc
from postgate_harness import Postgate


def envelope(key=""):
    return queue_pb2.EnqueueRequest(envelope=queue_pb2.Envelope(
        sender="foo@mail169.com", recipients=["bar@mail169.com"], idempotency_key=key))


def content(data):
    return queue_pb2.EnqueueRequest(content=data)


def commit(size, data=b""):
    return queue_pb2.EnqueueRequest(commit=queue_pb2.Commit(size=size, content=data))


class QueueOnlyTest(unittest.TestCase):
    """A queue-service of its own (no gateway) for the class, and a stub on it."""

    @classmethod
    def setUpClass(cls):
        # 64 KiB message_size_limit: the queue allows it plus 64 KiB for the trace header.
        cls.postgate = Postgate({"message_size_limit": "65536"}).start_queue()
        cls.channel = grpc.insecure_channel(f"127.0.0.1:{cls.postgate.grpc_port}")
        cls.stub = queue_pb2_grpc.QueueServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.postgate.cleanup()
