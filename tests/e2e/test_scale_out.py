"""Several queue-service replicas behind one gateway, addressed the way the Helm chart addresses
them (one gRPC target naming every replica; round_robin over the gateway's streams, each moving on
every half second): messages spread over the replicas, the
replica is the last digit of the queue ID, a replica that dies is skipped without a 451, and an
Enqueue retried with the same idempotency key is stored once."""
import os
import re
import signal
import subprocess
import unittest
import urllib.request

import grpc

from postgate.queue.v1 import queue_pb2, queue_pb2_grpc
from postgate_harness import BIN_DIR, QUEUE_ID, Postgate, free_port, send_message, wait_for

REPLICAS = 3


def fnv1a(text):
    """queuectl/replica_choice.cc's hash, to predict where `move` sends a message."""
    value = 14695981039346656037
    for byte in text.encode():
        value = ((value ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return value


def replica_of(queue_id):
    return int(queue_id[-1], 16)


class ScaleOutTest(unittest.TestCase):
    def setUp(self):
        self.replicas = []
        try:
            for number in range(REPLICAS):
                replica = Postgate()
                self.replicas.append(replica)
                replica.start_queue(["-o", f"postgate_queue_replica_id={number}"])
            target = "ipv4:" + ",".join(f"127.0.0.1:{r.grpc_port}" for r in self.replicas)
            self.replicas[0].start_gateway(queue_address=target)
        except BaseException:
            self.tearDown()
            raise
        self.smtp_port = self.replicas[0].smtp_port

    def tearDown(self):
        for replica in self.replicas:
            replica.cleanup()

    def send(self, count, tag):
        ids = []
        for i in range(count):
            reply = send_message(self.smtp_port, body=f"Subject: {tag} {i}\r\n\r\n{tag} {i}\r\n")
            match = re.search(r"^250 2\.0\.0 Ok: queued as (" + QUEUE_ID + r")\r\n$", reply)
            self.assertIsNotNone(match, f"message {i} of {tag}: {reply!r}")
            ids.append(match.group(1))
        return ids

    def delivered(self):
        return sum(len(r.maildir_files("bar")) for r in self.replicas)

    def send_until_spread(self, tag, minimum=5, limit=2000):
        """Sends messages, ten at a time, until every replica took `minimum`: the gateway's
        shared streams move to the next replica every half second or 256 messages."""
        ids = []
        while len(ids) < limit:
            ids += self.send(10, f"{tag} {len(ids)}")
            per_replica = [sum(1 for i in ids if replica_of(i) == n) for n in range(REPLICAS)]
            if all(count >= minimum for count in per_replica):
                return ids, per_replica
        self.fail(f"{limit} messages did not reach every replica: {per_replica}")

    def test_spread_failover_and_exactly_once(self):
        ids, per_replica = self.send_until_spread("spread")
        self.assertEqual(len(set(ids)), len(ids))
        wait_for(lambda: self.delivered() == len(ids), what="the messages delivered across the replicas")
        # Each replica delivered exactly the messages whose IDs name it.
        for number, replica in enumerate(self.replicas):
            self.assertEqual(len(replica.maildir_files("bar")), per_replica[number])
            for queue_id in (i for i in ids if replica_of(i) == number):
                replica.queue.wait_log(re.escape(queue_id) + r": to=<bar@mail169\.com>.*status=sent")

        # Replica 1 dies: every message still gets a 250, from the other two.
        self.replicas[1].queue.stop(signal.SIGKILL)
        later = self.send(20, "failover")
        self.assertFalse([i for i in later if replica_of(i) == 1])
        self.assertTrue({replica_of(i) for i in later} <= {0, 2})
        wait_for(lambda: self.delivered() == len(ids) + 20, what="the messages delivered after the failover")

    def test_retry_with_the_same_idempotency_key_is_stored_once(self):
        replica = self.replicas[2]
        stub = queue_pb2_grpc.QueueServiceStub(grpc.insecure_channel(f"127.0.0.1:{replica.grpc_port}"))
        content = b"Subject: once\n\nonly once\n"

        def enqueue():
            envelope = queue_pb2.Envelope(sender="foo@mail169.com", recipients=["bar@mail169.com"],
                                          idempotency_key="e2e-key-1")
            requests = [queue_pb2.EnqueueRequest(envelope=envelope), queue_pb2.EnqueueRequest(content=content),
                        queue_pb2.EnqueueRequest(commit=queue_pb2.Commit(size=len(content)))]
            responses = list(stub.Enqueue(iter(requests), timeout=10))
            return responses[-1].committed_queue_id

        first = enqueue()
        self.assertEqual(replica_of(first), 2)
        self.assertEqual(enqueue(), first)
        replica.wait_delivered("bar", 1)
        with urllib.request.urlopen(f"http://127.0.0.1:{replica.queue_metrics_port}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        self.assertRegex(metrics, r"(?m)^postgate_queue_enqueue_duplicates_total 1$")
        self.assertRegex(metrics, r"(?m)^postgate_queue_messages_stored_total 1$")
        replica.queue.wait_log(re.escape(first) + r": retry with the same idempotency key: already stored")
        self.assertEqual(len(replica.maildir_files("bar")), 1)

    def queuectl(self, server, *args, check=True):
        result = subprocess.run([os.path.join(BIN_DIR, "queuectl"), "--server", server,
                                 "--token-file", self.replicas[0].token_file, *args],
                                capture_output=True, text=True, timeout=60)
        if check:
            self.assertEqual(result.returncode, 0, result.stderr)
        return result

    def test_queuectl_sees_every_replica_and_move_empties_one(self):
        # The admin token is per Postgate instance here; give every replica the first one's.
        addresses = [f"127.0.0.1:{r.grpc_port}" for r in self.replicas]
        for replica in self.replicas[1:]:
            with open(replica.token_file, "w") as f:
                f.write(self.replicas[0].admin_token + "\n")
        # Until replica 1 holds some (the gateway's streams move to the next replica every half
        # second or 256 messages).
        ids = self.send_remote(12, "deferred")
        while not any(replica_of(i) == 1 for i in ids) and len(ids) < 2000:
            ids += self.send_remote(12, "deferred")
        total = len(ids)
        wait_for(lambda: f"{total} Requests" in self.queuectl(",".join(addresses), "list").stdout,
                 what=f"all {total} deferred messages in one listing")
        listing = self.queuectl(",".join(addresses), "list").stdout
        self.assertEqual(sorted(re.findall(r"^(" + QUEUE_ID + r")\s", listing, re.M)), sorted(ids))
        status = self.queuectl(",".join(addresses), "status").stdout
        self.assertRegex(status, rf"deferred\s+{total}\s")
        for number in range(REPLICAS):
            self.assertIn(f"replica {number} ({addresses[number]}): ", status)
        # A command on one ID finds the replica that holds it.
        on_replica_1 = [i for i in ids if replica_of(i) == 1]
        self.assertTrue(on_replica_1)
        shown = self.queuectl(",".join(addresses), "show", on_replica_1[0]).stdout
        self.assertIn("x@example.org", shown)
        self.queuectl(",".join(addresses), "hold", on_replica_1[0])

        # Empty replica 1 into the others.
        moved = self.queuectl(addresses[1], "move", "--to", ",".join(addresses))
        pairs = dict(re.findall(r"^(" + QUEUE_ID + r") -> (" + QUEUE_ID + r") ", moved.stdout, re.M))
        self.assertEqual(sorted(pairs), sorted(on_replica_1))
        self.assertTrue(all(replica_of(new) in (0, 2) for new in pairs.values()))
        self.assertIn("Mail queue is empty", self.queuectl(addresses[1], "list").stdout)
        self.assertIn("not accepting (draining)", self.queuectl(",".join(addresses), "status").stdout)
        listing = self.queuectl(",".join(addresses), "list").stdout
        self.assertIn(f"{total} Requests", listing)
        held_copy = pairs[on_replica_1[0]]
        self.assertRegex(listing, re.escape(held_copy) + r"!")  # Still held after the move.
        shown = self.queuectl(",".join(addresses), "show", held_copy).stdout
        self.assertIn("Sender:     <foo@mail169.com>", shown)
        self.assertIn("x@example.org", shown)
        # Running it again moves nothing; new mail now goes to the other replicas only.
        self.assertIn("moved 0 messages", self.queuectl(addresses[1], "move", "--to", ",".join(addresses)).stdout)
        self.assertFalse([i for i in self.send(9, "after-move") if replica_of(i) == 1])

    def test_an_interrupted_move_is_finished_by_a_rerun_without_a_second_copy(self):
        addresses = [f"127.0.0.1:{r.grpc_port}" for r in self.replicas]
        for replica in self.replicas[1:]:
            with open(replica.token_file, "w") as f:
                f.write(self.replicas[0].admin_token + "\n")
        # round_robin spreads the gateway's streams over the replicas it finds ready, a stream
        # moving on every half second or 256 messages; one replica slow to start (under a
        # sanitizer) may get fewer of the first messages. More are sent until replica 1 has two.
        ids = self.send_remote(12, "interrupted")
        while sum(1 for i in ids if replica_of(i) == 1) < 2 and len(ids) < 2000:
            ids += self.send_remote(12, "interrupted")
        on_replica_1 = [i for i in ids if replica_of(i) == 1]
        self.assertGreaterEqual(len(on_replica_1), 2, ids)
        copied, held_by_operator = on_replica_1[0], on_replica_1[1]
        targets = [addresses[0], addresses[2]]
        source = queue_pb2_grpc.QueueServiceStub(grpc.insecure_channel(addresses[1]))
        token = self.replicas[0].admin_metadata()
        # What a run cut short after copying `copied` leaves: the original held by the move, the
        # copy stored on the replica the move picks (the same rendezvous hash as queuectl).
        source.Hold(queue_pb2.MessageRequest(queue_id=copied, reason="queuectl move"), metadata=token)
        chosen = max(targets, key=lambda address: fnv1a(copied + "\n" + address))
        original = source.GetMessage(queue_pb2.GetMessageRequest(queue_id=copied))
        content = b"".join(c.data for c in source.GetMessageContent(
            queue_pb2.GetMessageContentRequest(queue_id=copied), metadata=token))
        envelope = queue_pb2.Envelope()
        envelope.CopyFrom(original.envelope)
        envelope.ClearField("requested_queue_id")
        envelope.idempotency_key = "move:" + copied
        first_copy = list(queue_pb2_grpc.QueueServiceStub(grpc.insecure_channel(chosen)).Enqueue(iter([
            queue_pb2.EnqueueRequest(envelope=envelope), queue_pb2.EnqueueRequest(content=content),
            queue_pb2.EnqueueRequest(commit=queue_pb2.Commit(size=len(content)))]), timeout=10))[-1].committed_queue_id
        # And a hold of the operator's, which the copy must keep.
        source.Hold(queue_pb2.MessageRequest(queue_id=held_by_operator, reason="investigating"), metadata=token)

        # The rerun, with the targets in the other order.
        moved = self.queuectl(addresses[1], "move", "--to", ",".join(reversed(targets)))
        pairs = dict(re.findall(r"^(" + QUEUE_ID + r") -> (" + QUEUE_ID + r") ", moved.stdout, re.M))
        self.assertEqual(sorted(pairs), sorted(on_replica_1))
        self.assertEqual(pairs[copied], first_copy, "the rerun found the copy it had made, on the same replica")
        listing = self.queuectl(",".join(addresses), "list").stdout
        self.assertIn(f"{len(ids)} Requests", listing)  # No message twice.
        self.assertNotRegex(listing, re.escape(first_copy) + r"!", "the move's own hold is not passed on")
        self.assertRegex(listing, re.escape(pairs[held_by_operator]) + r"!")
        shown = self.queuectl(",".join(addresses), "show", pairs[held_by_operator]).stdout
        self.assertIn("State:      hold (investigating)", shown)

    def send_remote(self, count, tag):
        ids = []
        for i in range(count):
            reply = send_message(self.smtp_port, recipients=("x@example.org",),
                                 body=f"Subject: {tag} {i}\r\n\r\n{tag} {i}\r\n")
            ids.append(re.search(QUEUE_ID, reply).group(0))
        return ids


class DnsScaleOutTest(unittest.TestCase):
    """As in the cluster: the gateway's postgate_queue_address is dns:///<headless Service>:port,
    whose name has one A record per replica. Here a dnsmasq on loopback answers for the name with
    127.0.0.1, .2 and .3, where the three replicas listen on one port."""

    def setUp(self):
        self.replicas, self.dnsmasq = [], None
        try:
            dns_port = free_port("127.0.0.1")
            self.dnsmasq = subprocess.Popen(
                ["dnsmasq", "--keep-in-foreground", "--no-daemon", "--no-resolv", "--no-hosts", "--bind-interfaces",
                 "--listen-address", "127.0.0.1", "--port", str(dns_port), "--log-queries", "--log-facility=-"]
                + [f"--host-record=queue.postgate.test,127.0.0.{n + 1}" for n in range(REPLICAS)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            grpc_port = free_port("127.0.0.1")
            for number in range(REPLICAS):
                replica = Postgate()
                self.replicas.append(replica)
                replica.grpc_port = grpc_port
                replica.start_queue(["-o", f"postgate_queue_replica_id={number}"], host=f"127.0.0.{number + 1}")
            # gRPC's dns resolver, pointed at the test's DNS server (the authority part of the URI).
            self.replicas[0].start_gateway(queue_address=f"dns://127.0.0.1:{dns_port}/queue.postgate.test:{grpc_port}")
        except BaseException:
            self.tearDown()
            raise

    def tearDown(self):
        for replica in self.replicas:
            replica.cleanup()
        if self.dnsmasq:
            self.dnsmasq.terminate()
            self.dnsmasq.wait(timeout=10)

    def test_messages_spread_over_every_address_the_name_has(self):
        ids = []
        # Until every replica took one (the gateway's streams move on every half second or 256
        # messages, each to the replica round_robin picks next).
        while len(ids) < 2000 and {replica_of(i) for i in ids} != {0, 1, 2}:
            reply = send_message(self.replicas[0].smtp_port, body=f"Subject: dns {len(ids)}\r\n\r\ndns\r\n")
            self.assertRegex(reply, r"^250 2\.0\.0 Ok: queued as " + QUEUE_ID)
            ids.append(re.search(QUEUE_ID, reply).group(0))
        self.assertEqual({replica_of(i) for i in ids}, {0, 1, 2})
        wait_for(lambda: sum(len(r.maildir_files("bar")) for r in self.replicas) == len(ids),
                 what=f"{len(ids)} deliveries")


if __name__ == "__main__":
    unittest.main()
