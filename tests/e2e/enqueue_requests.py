"""The EnqueueRequests smtp-gateway sends (envelope, content chunk, commit), for tests that speak
Enqueue and EnqueueMany to queue-service directly."""
from postgate.queue.v1 import queue_pb2


def envelope(key=""):
    return queue_pb2.EnqueueRequest(envelope=queue_pb2.Envelope(
        sender="foo@mail169.com", recipients=["bar@mail169.com"], idempotency_key=key))


def content(data):
    return queue_pb2.EnqueueRequest(content=data)


def commit(size, data=b""):
    return queue_pb2.EnqueueRequest(commit=queue_pb2.Commit(size=size, content=data))
