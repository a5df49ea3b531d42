"""postgate_done_retention: a finished message stays readable (GetMessage, ListMessages with the
DONE state, the DONE count) until its retention passes, then the queue run purges it from the
store's done index – the record, the count and the listing all go."""
import re
import unittest

import grpc

from postgate.queue.v1 import queue_pb2, queue_pb2_grpc
from postgate_harness import QUEUE_ID, PostgateTestCase, send_message, wait_for


class RetentionTest(PostgateTestCase):
    overrides = {"postgate_done_retention": "3s", "queue_run_delay": "1s"}

    def done_count(self, stub):
        status = stub.GetQueueStatus(queue_pb2.GetQueueStatusRequest())
        return {entry.state: entry.messages for entry in status.by_state}[queue_pb2.MESSAGE_STATE_DONE]

    def test_finished_mail_is_kept_for_the_retention_then_purged(self):
        stub = queue_pb2_grpc.QueueServiceStub(self.postgate.grpc_channel())
        queue_id = re.search(QUEUE_ID, send_message(self.postgate.smtp_port)).group(0)
        request = queue_pb2.GetMessageRequest(queue_id=queue_id)
        wait_for(lambda: stub.GetMessage(request).state == queue_pb2.MESSAGE_STATE_DONE, what="delivered")
        self.assertEqual(self.done_count(stub), 1)
        listed = stub.ListMessages(queue_pb2.ListMessagesRequest(state=queue_pb2.MESSAGE_STATE_DONE))
        self.assertEqual([m.queue_id for m in listed.messages], [queue_id])

        def purged():
            try:
                stub.GetMessage(request)
                return False
            except grpc.RpcError as error:
                return error.code() == grpc.StatusCode.NOT_FOUND
        wait_for(purged, timeout=20, what="the retention purge")
        self.assertEqual(self.done_count(stub), 0)
        self.assertEqual(list(stub.ListMessages(queue_pb2.ListMessagesRequest(state=queue_pb2.MESSAGE_STATE_DONE)).messages), [])


if __name__ == "__main__":
    unittest.main()
