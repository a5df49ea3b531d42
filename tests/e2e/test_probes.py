"""Probes as Kubernetes calls them (grpc.health.v1 Check): queue-service is SERVING once recovered;
the gateway's liveness ("") stays SERVING through a queue outage while "readiness" follows the
queue's reachability and turns NOT_SERVING when draining. A Watch of the gateway's readiness
streams each change; its health port answers nothing else."""
import queue
import signal
import threading
import unittest

import grpc

import postgate_test_health_pb2 as health_pb2
import postgate_test_health_pb2_grpc as health_grpc
from postgate_harness import Postgate, SmtpConnection, wait_for

SERVING = health_pb2.HealthCheckResponse.SERVING


def check(port, service=""):
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            return health_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=2).status
        except grpc.RpcError as error:
            return error.code()


def watch(port, service, statuses):
    """grpc.health.v1 Watch (not in the test stub: called by its method name); each status the
    stream sends goes to `statuses`, the stream's end as its gRPC code."""
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stream = channel.unary_stream("/grpc.health.v1.Health/Watch",
                                  request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                                  response_deserializer=health_pb2.HealthCheckResponse.FromString)
    call = stream(health_pb2.HealthCheckRequest(service=service), timeout=120)

    def read():
        try:
            for response in call:
                statuses.put(response.status)
        except grpc.RpcError as error:
            statuses.put(error.code())
        channel.close()

    threading.Thread(target=read, daemon=True).start()
    return call


def next_status(statuses, timeout=15):
    try:
        return statuses.get(timeout=timeout)
    except queue.Empty:
        return f"no status within {timeout} s"


class ProbesTest(unittest.TestCase):
    def setUp(self):
        self.postgate = Postgate({"postgate_drain_timeout": "10s"}).start()

    def tearDown(self):
        self.postgate.cleanup()

    def test_readiness_follows_the_queue_and_liveness_does_not(self):
        gateway = self.postgate.gateway_health_port
        self.assertEqual(check(self.postgate.grpc_port), SERVING)
        wait_for(lambda: check(gateway, "readiness") == SERVING, what="gateway ready")
        self.assertEqual(check(gateway), SERVING)
        self.postgate.queue.stop()
        wait_for(lambda: check(gateway, "readiness") == health_pb2.HealthCheckResponse.NOT_SERVING,
                 what="gateway not ready without its queue")
        self.assertEqual(check(gateway), SERVING, "liveness must not fail because the queue is down")
        self.postgate.start_queue()
        wait_for(lambda: check(gateway, "readiness") == SERVING, timeout=30, what="ready again")
        self.assertEqual(check(gateway, "nosuch"), grpc.StatusCode.NOT_FOUND)

    def test_watch_streams_readiness_and_other_methods_are_unimplemented(self):
        gateway = self.postgate.gateway_health_port
        wait_for(lambda: check(gateway, "readiness") == SERVING, what="gateway ready")
        statuses = queue.Queue()
        call = watch(gateway, "readiness", statuses)
        self.assertEqual(next_status(statuses), SERVING)
        self.postgate.queue.stop()
        self.assertEqual(next_status(statuses), health_pb2.HealthCheckResponse.NOT_SERVING)
        self.postgate.start_queue()
        self.assertEqual(next_status(statuses, timeout=30), SERVING)  # As long as "ready again" above.
        call.cancel()
        self.assertEqual(next_status(statuses), grpc.StatusCode.CANCELLED)
        # The health port serves nothing else: any other method is UNIMPLEMENTED, as gRPC answers.
        with grpc.insecure_channel(f"127.0.0.1:{gateway}") as channel:
            other = channel.unary_unary("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
            with self.assertRaises(grpc.RpcError) as raised:
                other(b"", timeout=5)
            self.assertEqual(raised.exception.code(), grpc.StatusCode.UNIMPLEMENTED)

    def test_not_ready_while_draining(self):
        gateway = self.postgate.gateway_health_port
        wait_for(lambda: check(gateway, "readiness") == SERVING)
        busy = SmtpConnection(self.postgate.smtp_port)  # Holds the drain open mid-DATA.
        busy.read_reply()
        for line in ("EHLO busy", "MAIL FROM:<foo@mail169.com>", "RCPT TO:<bar@mail169.com>", "DATA"):
            busy.command(line)
        self.postgate.gateway.process.send_signal(signal.SIGTERM)
        wait_for(lambda: check(gateway, "readiness") == health_pb2.HealthCheckResponse.NOT_SERVING,
                 what="not ready while draining")
        self.assertEqual(check(gateway), SERVING)
        busy.send("Subject: x\r\n\r\nx\r\n.\r\n")
        self.assertTrue(busy.read_reply().startswith("250 2.0.0 Ok: queued as"))
        busy.close()
        self.assertEqual(self.postgate.gateway.process.wait(timeout=30), 0)


if __name__ == "__main__":
    unittest.main()
