"""Mail loops end instead of running forever: a relayhost pointed at the gateway itself is caught
by the SMTP client ("loops back to myself", bounced at once), and two Postgates routed at each
other – each greets with its own name, so only the hop count can tell – pass the message back and
forth until hopcount_limit Received: headers make the next one refuse it (554 5.4.0 Error: too
many hops), which bounces it to the sender. Without either check these tests would loop until
their deadline."""
import os
import re
import subprocess
import unittest

from postgate_harness import BIN_DIR, Postgate, QUEUE_ID, free_port, send_message, wait_for

RELAY = {"defer_transports": "", "smtp_tls_security_level": "none", "queue_run_delay": "1s",
         "minimal_backoff_time": "1s", "maximal_backoff_time": "1s"}


def bounce_in(postgate, user="foo"):
    return next((m for m in postgate.read_maildir(user) if "Undelivered Mail Returned to Sender" in m), None)


class LoopTest(unittest.TestCase):
    def test_a_relayhost_that_is_the_gateway_itself_bounces_at_once(self):
        port = free_port()
        postgate = Postgate({**RELAY, "relayhost": f"[127.0.0.1]:{port}"})
        self.addCleanup(postgate.cleanup)
        postgate.start_queue().start_gateway(listen=f"127.0.0.1:{port}")
        reply = send_message(port, recipients=("someone@example.org",), body="Subject: to myself\r\n\r\nx\r\n")
        queue_id = re.search(QUEUE_ID, reply).group(0)
        postgate.queue.wait_log(rf"{queue_id}: to=<someone@example\.org>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:{port}, "
                                rf".*dsn=5\.4\.6, status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] greeted me with "
                                r"my own hostname mail169\.com: mail for 127\.0\.0\.1 loops back to myself\)",
                                timeout=30)
        bounce = wait_for(lambda: bounce_in(postgate), timeout=30, what="the bounce to foo")
        self.assertIn("loops back to myself", bounce)
        self.assertEqual(sum("Subject: to myself" in m for m in postgate.read_maildir("foo")), 1,
                         "only the bounce (with the original) came back")

    def test_two_gateways_routed_at_each_other_stop_at_the_hop_limit(self):
        ports = [free_port(), free_port()]
        instances = []
        for name, other in (("a", ports[1]), ("b", ports[0])):
            postgate = Postgate({**RELAY, "myhostname": f"{name}.mail169.com", "mydestination": "mail169.com",
                                 "relayhost": f"[127.0.0.1]:{other}"})
            self.addCleanup(postgate.cleanup)
            instances.append(postgate)
        for postgate, port in zip(instances, ports):
            postgate.start_queue().start_gateway(listen=f"127.0.0.1:{port}")
        send_message(ports[0], recipients=("someone@example.org",), body="Subject: ping-pong\r\n\r\nx\r\n")

        def bounced():
            for postgate in instances:
                if bounce_in(postgate):
                    return postgate
            return None

        bouncer = wait_for(bounced, timeout=120, what="the bounce after the hop limit")
        bounce = bounce_in(bouncer)
        self.assertIn("554 5.4.0 Error: too many hops", bounce)
        # The original returned inside the bounce carries the hops it made: 49 Received: headers.
        self.assertGreaterEqual(bounce.count("\nReceived: from "), 49)
        # The refusing side logged it as Postfix's cleanup does, and the loop is over: nothing is
        # queued on either side any more.
        refused = [p for p in instances if any("message rejected: hopcount exceeded" in l for l in p.gateway.log())]
        self.assertEqual(len(refused), 1)
        for postgate in instances:
            wait_for(lambda: self.pending(postgate) == 0, timeout=30, what="an empty queue")

    @staticmethod
    def pending(postgate):
        listing = subprocess.run([os.path.join(BIN_DIR, "queuectl"), "--server", f"127.0.0.1:{postgate.grpc_port}",
                                  "list"], capture_output=True, text=True, timeout=30).stdout
        return 0 if "Mail queue is empty" in listing else len(re.findall(rf"^{QUEUE_ID}", listing, re.M))


if __name__ == "__main__":
    unittest.main()
