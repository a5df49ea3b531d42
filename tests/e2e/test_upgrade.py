"""A queue written by the release before the store's indexes (tests/fixtures/queue-before-indexes,
made by Postgate 33edc1b) is upgraded when the current queue-service opens it: the pending and
done indexes and the idempotency keys are built once, every message keeps its state, the held one
can be released, and a second start finds nothing to upgrade."""
import os
import shutil
import unittest

from postgate.queue.v1 import queue_pb2, queue_pb2_grpc
from postgate_harness import SOURCE_DIR, Postgate

FIXTURE = os.path.join(SOURCE_DIR, "tests", "fixtures", "queue-before-indexes")
DONE, DEFERRED, HELD = "661757FECD660", "661757FECF410", "661757FED0440"


class UpgradeTest(unittest.TestCase):
    def setUp(self):
        self.postgate = Postgate()
        shutil.copytree(FIXTURE, os.path.join(self.postgate.data_dir, "queue"))

    def tearDown(self):
        self.postgate.cleanup()

    def test_a_queue_from_the_release_before_the_indexes_keeps_every_message(self):
        self.postgate.start()
        self.postgate.queue.wait_log(r"queue layout upgraded: 3 records indexed")
        stub = queue_pb2_grpc.QueueServiceStub(self.postgate.grpc_channel())
        status = stub.GetQueueStatus(queue_pb2.GetQueueStatusRequest())
        counts = {entry.state: entry.messages for entry in status.by_state}
        self.assertEqual((counts[queue_pb2.MESSAGE_STATE_DEFERRED], counts[queue_pb2.MESSAGE_STATE_HOLD],
                          counts[queue_pb2.MESSAGE_STATE_DONE], counts[queue_pb2.MESSAGE_STATE_ACTIVE]), (1, 1, 1, 0))
        pending = [m.queue_id for m in stub.ListMessages(queue_pb2.ListMessagesRequest()).messages]
        self.assertEqual(pending, [DEFERRED, HELD])
        done = stub.ListMessages(queue_pb2.ListMessagesRequest(state=queue_pb2.MESSAGE_STATE_DONE)).messages
        self.assertEqual([m.queue_id for m in done], [DONE])
        self.assertEqual(done[0].recipients[0].state, queue_pb2.RECIPIENT_STATE_DELIVERED)
        held = stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=HELD))
        self.assertEqual((held.state, held.hold_reason), (queue_pb2.MESSAGE_STATE_HOLD, "fixture"))
        released = stub.Release(queue_pb2.MessageRequest(queue_id=HELD), metadata=self.postgate.admin_metadata())
        self.assertNotEqual(released.state, queue_pb2.MESSAGE_STATE_HOLD)
        content = b"".join(chunk.data for chunk in stub.GetMessageContent(
            queue_pb2.GetMessageContentRequest(queue_id=DEFERRED), metadata=self.postgate.admin_metadata()))
        self.assertIn(b"Subject: fixture deferred", content)

        self.postgate.stop()
        self.postgate.start()
        stub = queue_pb2_grpc.QueueServiceStub(self.postgate.grpc_channel())
        self.assertEqual(stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=DONE)).state, queue_pb2.MESSAGE_STATE_DONE)
        self.assertFalse([line for line in self.postgate.queue.log() if "queue layout upgraded" in line])


if __name__ == "__main__":
    unittest.main()
