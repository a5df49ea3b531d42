"""Remote delivery over SMTP with Postfix's smtp-sink as the remote (on loopback, routed by
transport_maps): delivered with the remote's reply recorded; 4xx deferred with the reply quoted and
retried after the backoff; 5xx bounced with a report to the sender quoting the remote; no listener
and a stalled server deferred; three recipients with three outcomes, only the deferred retried."""
import email
import email.policy
import os
import re
import signal
import socket
import subprocess
import tempfile
import unittest
import urllib.request


from postgate.queue.v1 import queue_pb2, queue_pb2_grpc
from postgate_harness import QUEUE_ID, Postgate, Sink, SmtpConnection, free_port, send_message, wait_for

def report_parts(text):
    """A DSN's human-readable part and its one recipient's delivery-status fields."""
    report = email.message_from_string(text, policy=email.policy.compat32)
    notification, status, _ = report.get_payload()
    per_recipient = status.get_payload()[1]
    return notification.get_payload(), dict(per_recipient.items())


class RemoteDeliveryTest(unittest.TestCase):
    def setUp(self):
        self.ports = {name: free_port() for name in ("ok", "soft", "hard", "closed", "stall", "nodsn")}
        self.transport = tempfile.NamedTemporaryFile("w", suffix=".transport", delete=False)
        for name, port in self.ports.items():
            self.transport.write(f"{name}.example smtp:[127.0.0.1]:{port}\n")
        self.transport.close()
        self.stall = socket.socket()
        self.stall.bind(("127.0.0.1", self.ports["stall"]))
        self.stall.listen(8)  # Accepts (the kernel does) and never says a word.
        self.sinks = {}
        self.postgate = Postgate({"defer_transports": "", "transport_maps": f"texthash:{self.transport.name}",
                                  "queue_run_delay": "1s", "minimal_backoff_time": "1s",
                                  "maximal_backoff_time": "2s", "smtp_helo_timeout": "6s",
                                  "smtp_connect_timeout": "2s"})
        self.postgate.start()
        self.stub = queue_pb2_grpc.QueueServiceStub(self.postgate.grpc_channel())

    def tearDown(self):
        self.postgate.cleanup()
        for sink in self.sinks.values():
            sink.stop()
        self.stall.close()
        os.unlink(self.transport.name)

    def sink(self, name, options=()):
        self.sinks[name] = Sink(self.ports[name], options)
        return self.sinks[name]

    def send(self, *recipients, subject="remote"):
        reply = send_message(self.postgate.smtp_port, recipients=recipients,
                             body=f"Subject: {subject}\r\n\r\n..leading dot\r\nbody of {subject}\r\n")
        self.assertRegex(reply, r"^250 2\.0\.0 Ok: queued as " + QUEUE_ID)
        return re.search(QUEUE_ID, reply).group(0)

    def message(self, queue_id):
        return self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=queue_id))

    def recipient(self, queue_id, address):
        return next(r for r in self.message(queue_id).recipients if r.address == address)

    def wait_state(self, queue_id, address, state, timeout=20):
        return wait_for(lambda: (r := self.recipient(queue_id, address)).state == state and r, timeout=timeout,
                        what=f"{address} of {queue_id} in state {state}")

    def test_delivered_to_the_next_hop_with_its_reply(self):
        sink = self.sink("ok")
        queue_id = self.send("user@ok.example", subject="to the sink")
        recipient = self.wait_state(queue_id, "user@ok.example", queue_pb2.RECIPIENT_STATE_DELIVERED)
        self.assertEqual(recipient.smtp_code, 250)
        self.assertEqual(recipient.relay, f"127.0.0.1[127.0.0.1]:{self.ports['ok']}")
        texts = wait_for(lambda: sink.messages(), what="the message in smtp-sink's dump")
        self.assertIn("Subject: to the sink", texts[0])
        self.assertIn("\n.leading dot", texts[0].replace("\r\n", "\n"))  # Dot-stuffing undone by the peer.
        self.postgate.queue.wait_log(re.escape(queue_id) + r": to=<user@ok\.example>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:"
                                     + str(self.ports["ok"]) + r", .*status=sent \(250 ")

    def test_soft_failure_is_retried_after_the_backoff(self):
        self.sink("soft", ["-r", "rcpt"])
        queue_id = self.send("user@soft.example")
        recipient = self.wait_state(queue_id, "user@soft.example", queue_pb2.RECIPIENT_STATE_DEFERRED)
        self.assertEqual(recipient.smtp_code // 100, 4)
        # As Postfix: the server as host[address], without the port (which relay= shows).
        self.assertRegex(recipient.reason, r"^host 127\.0\.0\.1\[127\.0\.0\.1\] said: 4\d\d .*\(in reply to RCPT TO command\)$")
        message = self.message(queue_id)
        self.assertEqual(message.state, queue_pb2.MESSAGE_STATE_DEFERRED)
        self.assertTrue(message.HasField("next_attempt_time"))
        # The remote recovers: the next queue run after the backoff delivers.
        self.sinks.pop("soft").stop()
        self.sink("soft")
        recipient = self.wait_state(queue_id, "user@soft.example", queue_pb2.RECIPIENT_STATE_DELIVERED)
        self.assertGreaterEqual(recipient.attempts, 2)

    def test_hard_failure_bounces_with_the_remote_text(self):
        self.sink("hard", ["-f", "rcpt", "-B", "550 5.1.1 no such user here"])
        queue_id = self.send("user@hard.example")
        recipient = self.wait_state(queue_id, "user@hard.example", queue_pb2.RECIPIENT_STATE_BOUNCED)
        self.assertEqual((recipient.smtp_code, recipient.dsn_status), (550, "5.1.1"))
        self.assertIn("said: 550 5.1.1 no such user here (in reply to RCPT TO command)", recipient.reason)
        reports = wait_for(lambda: [t for t in self.postgate.read_maildir("foo") if "no such user here" in t],
                           what="the non-delivery report in the sender's mailbox")
        # Field by field what Debian's Postfix 3.7.11 sends for the same refusal by smtp-sink.
        human, fields = report_parts(reports[0])
        self.assertIn("<user@hard.example>: host 127.0.0.1[127.0.0.1] said: 550 5.1.1 no such user here "
                      "(in reply to RCPT TO command)\n", human)
        self.assertEqual(fields, {"Final-Recipient": "rfc822; user@hard.example",
                                  "Original-Recipient": "rfc822;user@hard.example", "Action": "failed",
                                  "Status": "5.1.1", "Remote-MTA": "dns; 127.0.0.1",
                                  "Diagnostic-Code": "smtp; 550 5.1.1 no such user here"})

    def test_success_notice_is_left_to_a_dsn_server_and_relayed_past_one_without(self):
        # RFC 3461 §4.2, as Postfix: NOTIFY=SUCCESS passed on to a server that announced DSN makes
        # its report that server's to send; to one without DSN the report says "relayed".
        self.sink("ok")
        self.sink("nodsn", ["-N"])
        passed_on = self.send_with_notify("user@ok.example", "passed on")
        relayed = self.send_with_notify("user@nodsn.example", "relayed")
        recipient = self.wait_state(passed_on, "user@ok.example", queue_pb2.RECIPIENT_STATE_DELIVERED)
        self.assertEqual(recipient.dsn_queue_id, "")  # Set in the same step as the result, had one gone out.
        recipient = self.wait_state(relayed, "user@nodsn.example", queue_pb2.RECIPIENT_STATE_DELIVERED)
        self.assertRegex(recipient.dsn_queue_id, QUEUE_ID)
        report = wait_for(lambda: [t for t in self.postgate.read_maildir("foo") if relayed in t],
                          what="the success report in the sender's mailbox")[0]
        human, fields = report_parts(report)
        port = self.ports["nodsn"]
        self.assertIn(f"<user@nodsn.example>: delivery via 127.0.0.1[127.0.0.1]:{port}: 250 2.0.0 Ok", human)
        self.assertEqual(fields, {"Final-Recipient": "rfc822; user@nodsn.example",
                                  "Original-Recipient": "rfc822;user@nodsn.example", "Action": "relayed",
                                  "Status": "2.0.0", "Remote-MTA": "dns; 127.0.0.1",
                                  "Diagnostic-Code": "smtp; 250 2.0.0 Ok"})
        self.assertEqual([t for t in self.postgate.read_maildir("foo") if passed_on in t], [])

    def send_raw(self, recipient, body, mail_params="", rcpt_params=""):
        """One message with the given MAIL and RCPT parameters; returns its queue ID."""
        connection = SmtpConnection(self.postgate.smtp_port)
        try:
            connection.read_reply()
            connection.command("EHLO client.test")
            self.assertTrue(connection.command(f"MAIL FROM:<foo@mail169.com>{mail_params}").startswith("250"))
            self.assertTrue(connection.command(f"RCPT TO:<{recipient}>{rcpt_params}").startswith("250"))
            self.assertTrue(connection.command("DATA").startswith("354"))
            connection.send((body + ".\r\n").encode())
            reply = connection.read_reply()
        finally:
            connection.close()
        return re.search(QUEUE_ID, reply).group(0)

    def send_with_notify(self, recipient, subject):
        return self.send_raw(recipient, f"Subject: {subject}\r\n\r\nbody\r\n", rcpt_params=" NOTIFY=SUCCESS")

    def send_utf8(self, recipient, body):
        return self.send_raw(recipient, body, mail_params=" SMTPUTF8")

    def test_smtputf8_request_alone_does_not_bounce_ascii_mail(self):
        # smtp-sink announces no SMTPUTF8. As Postfix: ASCII envelope and headers go on without
        # the flag (UTF-8 in the body is 8BITMIME's concern); UTF-8 where it matters bounces 5.6.7.
        sink = self.sink("ok")
        ascii_mail = self.send_utf8("user@ok.example", "Subject: plain\r\n\r\nbody d\u00e9j\u00e0 vu\r\n")
        utf8_header = self.send_utf8("user@ok.example", "Subject: d\u00e9j\u00e0 vu\r\n\r\nbody\r\n")
        utf8_recipient = self.send_utf8("j\u00f6rg@ok.example", "Subject: plain\r\n\r\nbody\r\n")
        self.wait_state(ascii_mail, "user@ok.example", queue_pb2.RECIPIENT_STATE_DELIVERED)
        text = wait_for(lambda: [t for t in sink.messages() if ascii_mail in t], what="the ASCII message at the sink")[0]
        self.assertIn("X-Mail-Args: <foo@mail169.com>\n", text.replace("\r\n", "\n"))  # No SMTPUTF8 sent.
        for queue_id, address in ((utf8_header, "user@ok.example"), (utf8_recipient, "j\u00f6rg@ok.example")):
            recipient = self.wait_state(queue_id, address, queue_pb2.RECIPIENT_STATE_BOUNCED)
            self.assertEqual(recipient.dsn_status, "5.6.7")
            self.assertIn("SMTPUTF8 is required, but was not offered by host", recipient.reason)

    def test_no_listener_and_stalled_server_defer(self):
        closed = self.send("user@closed.example")
        recipient = self.wait_state(closed, "user@closed.example", queue_pb2.RECIPIENT_STATE_DEFERRED)
        self.assertEqual(recipient.reason, f"connect to 127.0.0.1[127.0.0.1]:{self.ports['closed']}: Connection refused")
        stalled = self.send("user@stall.example")
        recipient = self.wait_state(stalled, "user@stall.example", queue_pb2.RECIPIENT_STATE_DEFERRED)
        self.assertRegex(recipient.reason, r"timed out while receiving the initial server greeting$")

    def test_recipients_per_conversation_are_limited(self):
        self.postgate.cleanup()
        self.postgate = Postgate({"defer_transports": "", "transport_maps": f"texthash:{self.transport.name}",
                                  "default_destination_recipient_limit": "2"}).start()
        self.stub = queue_pb2_grpc.QueueServiceStub(self.postgate.grpc_channel())
        sink = self.sink("ok")
        queue_id = self.send("a@ok.example", "b@ok.example", "c@ok.example")
        for address in ("a@ok.example", "b@ok.example", "c@ok.example"):
            self.wait_state(queue_id, address, queue_pb2.RECIPIENT_STATE_DELIVERED)
        texts = wait_for(lambda: len(t := sink.messages()) == 2 and t, what="two transactions at the sink")
        self.assertEqual(sorted(len(re.findall(r"^X-Rcpt-Args:", t, re.M)) for t in texts), [1, 2])

    def test_three_recipients_three_outcomes_only_the_deferred_retried(self):
        ok = self.sink("ok")
        self.sink("hard", ["-f", "rcpt"])
        queue_id = self.send("a@ok.example", "b@closed.example", "c@hard.example")
        self.wait_state(queue_id, "a@ok.example", queue_pb2.RECIPIENT_STATE_DELIVERED)
        self.wait_state(queue_id, "c@hard.example", queue_pb2.RECIPIENT_STATE_BOUNCED)
        deferred = self.wait_state(queue_id, "b@closed.example", queue_pb2.RECIPIENT_STATE_DEFERRED)
        wait_for(lambda: self.recipient(queue_id, "b@closed.example").attempts >= deferred.attempts + 1, timeout=20,
                 what="another attempt for the deferred recipient")
        self.assertEqual(self.recipient(queue_id, "a@ok.example").attempts, 1)
        self.assertEqual(self.recipient(queue_id, "c@hard.example").attempts, 1)
        self.assertEqual(len(ok.messages()), 1)

    def test_a_stalled_destination_holds_up_nobody_else(self):
        self.sink("ok")
        stalled = [self.send("user@stall.example", subject=f"stalled {i}") for i in range(3)]
        local = self.send("bar@mail169.com", subject="local meanwhile")
        remote = self.send("user@ok.example", subject="remote meanwhile")
        self.wait_state(local, "bar@mail169.com", queue_pb2.RECIPIENT_STATE_DELIVERED)
        self.wait_state(remote, "user@ok.example", queue_pb2.RECIPIENT_STATE_DELIVERED)
        # Delivered while the stalled conversations were still waiting for a greeting (6s timeout).
        self.assertEqual([self.recipient(i, "user@stall.example").attempts for i in stalled], [0, 0, 0])
        for queue_id in stalled:
            self.wait_state(queue_id, "user@stall.example", queue_pb2.RECIPIENT_STATE_DEFERRED)

    def test_dsn_and_body_parameters_are_passed_on(self):
        sink = self.sink("ok")
        connection = SmtpConnection(self.postgate.smtp_port)
        try:
            connection.read_reply()
            connection.command("EHLO client.test")
            self.assertTrue(connection.command("MAIL FROM:<foo@mail169.com> RET=HDRS ENVID=env+2Bid BODY=8BITMIME")
                            .startswith("250"))
            self.assertTrue(connection.command("RCPT TO:<user@ok.example> NOTIFY=SUCCESS,FAILURE "
                                               "ORCPT=rfc822;user+2Btag@ok.example").startswith("250"))
            self.assertTrue(connection.command("DATA").startswith("354"))
            connection.send("Subject: dsn\r\n\r\nd\xc3\xa9j\xc3\xa0\r\n.\r\n".encode("latin-1"))
            self.assertTrue(connection.read_reply().startswith("250"))
        finally:
            connection.close()
        text = wait_for(lambda: sink.messages(), what="the message at the sink")[0]
        # smtp-sink announces no SIZE, so no SIZE= (RFC 1870); DSN and 8BITMIME it does announce.
        self.assertIn("X-Mail-Args: <foo@mail169.com> BODY=8BITMIME RET=HDRS ENVID=env+2Bid\n", text)
        self.assertIn("X-Rcpt-Args: <user@ok.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;user+2Btag@ok.example\n", text)

    def test_the_schedule_survives_a_restart(self):
        queue_id = self.send("user@ok.example")  # No sink yet: connection refused, deferred.
        wait_for(lambda: self.recipient(queue_id, "user@ok.example").attempts >= 2, timeout=20, what="two attempts")
        before = self.message(queue_id)
        self.postgate.queue.stop(signal.SIGKILL)
        self.postgate.start_queue()
        self.stub = queue_pb2_grpc.QueueServiceStub(self.postgate.grpc_channel())
        after = self.message(queue_id)
        self.assertEqual(after.state, queue_pb2.MESSAGE_STATE_DEFERRED)
        self.assertGreaterEqual(after.recipients[0].attempts, before.recipients[0].attempts)
        self.assertTrue(after.HasField("next_attempt_time"))
        sink = self.sink("ok")
        recipient = self.wait_state(queue_id, "user@ok.example", queue_pb2.RECIPIENT_STATE_DELIVERED)
        self.assertGreater(recipient.attempts, before.recipients[0].attempts)
        self.assertEqual(len(sink.messages()), 1)

    def test_sigkill_during_delivery_costs_at_most_one_duplicate(self):
        # smtp-sink holds its reply to the end of DATA for 5 s: queue-service dies after the remote
        # has the message and before it heard "250" – the at-least-once window of every MTA.
        sink = self.sink("ok", ["-W", ".:5"])
        queue_id = self.send("user@ok.example", subject="in flight")
        wait_for(lambda: any("body of in flight" in t for t in sink.messages()), what="the body at the remote")
        self.postgate.queue.stop(signal.SIGKILL)
        self.postgate.start_queue()
        self.stub = queue_pb2_grpc.QueueServiceStub(self.postgate.grpc_channel())
        recipient = self.wait_state(queue_id, "user@ok.example", queue_pb2.RECIPIENT_STATE_DELIVERED, timeout=30)
        self.assertEqual(recipient.attempts, 1)  # The killed attempt was never recorded …
        self.assertEqual(len(sink.messages()), 2)  # … so it was repeated: one duplicate, nothing lost.


def scrape_metric(port, series):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    match = re.search(r"^" + re.escape(series) + r" ([0-9.e+-]+)$", text, re.M)
    return float(match.group(1)) if match else None


def connections_to(port, state):
    """Local TCP connections to 127.0.0.1:port in `state` (ss's names: established, close-wait)."""
    out = subprocess.run(["ss", "-Htn", "state", state, "dst", f"127.0.0.1:{port}"], capture_output=True, text=True,
                         check=True).stdout
    return len(out.splitlines())


class ConnectionCacheTest(unittest.TestCase):
    """Postfix's connection cache: one SMTP session carries consecutive messages to a next hop, is
    closed when idle for smtp_connection_cache_time_limit, and a cached session the server dropped
    is replaced without a failed delivery."""

    def setUp(self):
        self.port = free_port()
        self.transport = tempfile.NamedTemporaryFile("w", suffix=".transport", delete=False)
        self.transport.write(f"ok.example smtp:[127.0.0.1]:{self.port}\n")
        self.transport.close()
        self.postgate = Postgate({"defer_transports": "", "transport_maps": f"texthash:{self.transport.name}",
                                  "smtp_connection_cache_time_limit": "10s"}).start()
        self.stub = queue_pb2_grpc.QueueServiceStub(self.postgate.grpc_channel())
        self.sink = None

    def tearDown(self):
        self.postgate.cleanup()
        if self.sink:
            self.sink.stop()
        os.unlink(self.transport.name)

    def deliver(self, subject):
        reply = send_message(self.postgate.smtp_port, recipients=("user@ok.example",),
                             body=f"Subject: {subject}\r\n\r\nbody\r\n")
        queue_id = re.search(QUEUE_ID, reply).group(0)
        try:
            wait_for(lambda: self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=queue_id)).recipients[0].state
                     == queue_pb2.RECIPIENT_STATE_DELIVERED, what=f"{queue_id} delivered")
        except AssertionError as error:
            raise AssertionError(f"{error}; queue-service log ends:\n" + "\n".join(self.postgate.queue.log()[-15:]))
        return queue_id

    def cache(self, result):
        return scrape_metric(self.postgate.queue_metrics_port, f'postgate_queue_smtp_connection_cache_total{{result="{result}"}}')

    def test_consecutive_messages_share_a_connection_until_it_idles_out(self):
        self.sink = Sink(self.port)
        ids = [self.deliver(f"message {i}") for i in range(3)]
        self.assertEqual(len(self.sink.messages()), 3)
        self.assertEqual((self.cache("miss"), self.cache("hit")), (1, 2))
        relay = re.escape(f"relay=127.0.0.1[127.0.0.1]:{self.port}")
        self.postgate.queue.wait_log(re.escape(ids[1]) + r": to=<user@ok\.example>, " + relay + r", conn_use=2, ")
        self.postgate.queue.wait_log(re.escape(ids[2]) + r": to=<user@ok\.example>, " + relay + r", conn_use=3, ")
        self.assertNotRegex("\n".join(self.postgate.queue.log()), re.escape(ids[0]) + r": .*conn_use=")
        self.assertEqual(connections_to(self.port, "established"), 1)  # Kept open, idle.
        # After smtp_connection_cache_time_limit it is closed (QUIT), and the next message opens another.
        wait_for(lambda: connections_to(self.port, "established") == 0, timeout=25, what="the idle session closed")
        self.deliver("after the idle limit")
        self.assertEqual((self.cache("miss"), self.cache("hit")), (2, 2))

    def test_a_session_the_server_dropped_is_replaced(self):
        # smtp-sink hangs up after 3 s without a command (on the idle cached session, and on any
        # session whose client stalls that long: 1 s was outrun under a loaded CI machine).
        self.sink = Sink(self.port, ["-t", "3"])
        self.deliver("first")
        wait_for(lambda: connections_to(self.port, "close-wait") == 1, what="the server hanging up the idle session")
        second = self.deliver("second")  # Over the dropped session first, then a new one.
        self.postgate.queue.wait_log(r"cached connection to 127\.0\.0\.1\[127\.0\.0\.1\]:" + str(self.port) +
                                     r" was closed by the server; connecting again")
        message = self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=second))
        self.assertEqual(message.recipients[0].attempts, 1)  # No failed attempt was recorded.
        self.assertEqual(len(self.sink.messages()), 2)
        self.assertEqual((self.cache("miss"), self.cache("hit")), (2, 0))


class NotifyTestCase(unittest.TestCase):
    """A Postgate with notify_classes from OVERRIDES; the postmaster is aliased to bar.
    hard.example refuses every recipient (smtp-sink), closed.example has no listener."""
    OVERRIDES = {}

    def setUp(self):
        self.hard_port, self.closed_port = free_port(), free_port()
        self.transport = tempfile.NamedTemporaryFile("w", suffix=".transport", delete=False)
        self.transport.write(f"hard.example smtp:[127.0.0.1]:{self.hard_port}\n"
                             f"closed.example smtp:[127.0.0.1]:{self.closed_port}\n")
        self.transport.close()
        self.sink = Sink(self.hard_port, ["-f", "rcpt", "-B", "550 5.1.1 no such user here"])
        self.postgate = Postgate({"defer_transports": "", "transport_maps": f"texthash:{self.transport.name}",
                                  "queue_run_delay": "1s", "minimal_backoff_time": "1s", "maximal_backoff_time": "1s",
                                  "delay_warning_time": "2s", **self.OVERRIDES}).start()

    def tearDown(self):
        self.postgate.cleanup()
        self.sink.stop()
        os.unlink(self.transport.name)

    def send(self, sender, recipient, subject):
        reply = send_message(self.postgate.smtp_port, sender=sender, recipients=(recipient,),
                             body=f"Subject: {subject}\r\n\r\nsecret body of {subject}\r\n")
        self.assertRegex(reply, r"^250 ")

    def postmaster_mail(self, subject):
        return [t for t in self.postgate.read_maildir("bar") if f"\nSubject: {subject}\n" in t]

    def wait_queue_empty(self):
        """Until every message is done: whatever notices there were have been delivered."""
        stub = queue_pb2_grpc.QueueServiceStub(self.postgate.grpc_channel())
        wait_for(lambda: not stub.ListMessages(queue_pb2.ListMessagesRequest()).messages, what="an empty queue")


class NotifyClassesTest(NotifyTestCase):
    """bounce (implying 2bounce): the postmaster gets the headers of each bounce and every
    undeliverable bounce whole, from double_bounce_sender."""
    OVERRIDES = {"notify_classes": "bounce, resource, software"}

    def test_postmaster_gets_the_headers_of_a_bounce(self):
        self.send("foo@mail169.com", "user@hard.example", "bounced")
        wait_for(lambda: [t for t in self.postgate.read_maildir("foo") if "Undelivered Mail Returned" in t],
                 what="the sender's bounce")
        copy = wait_for(lambda: self.postmaster_mail("Postmaster Copy: Undelivered Mail"), what="the postmaster copy")
        self.assertEqual(len(copy), 1)
        self.assertTrue(copy[0].startswith("Return-Path: <double-bounce@mail169.com>\n"), copy[0][:200])
        self.assertIn("\nTo: postmaster@mail169.com\n", copy[0])
        self.assertIn("said: 550 5.1.1 no such user here (in reply to RCPT TO command)", copy[0])
        self.assertIn("Content-Type: text/rfc822-headers", copy[0])
        self.assertIn("Subject: bounced", copy[0])
        self.assertNotIn("secret body", copy[0])  # Headers only: the postmaster does not read the mail.

    def test_an_undeliverable_bounce_goes_to_the_postmaster(self):
        # From a relay client in mynetworks: the bounce to x@hard.example cannot be delivered either.
        self.send("x@hard.example", "y@hard.example", "double")
        double = wait_for(lambda: [t for t in self.postmaster_mail("Postmaster Copy: Undelivered Mail")
                                   if "Content-Type: message/rfc822" in t], what="the double bounce")
        self.assertEqual(len(double), 1)
        self.assertIn("X-Postgate-Sender: rfc822; \n", double[0])  # It was about a bounce (null sender) …
        self.assertIn("Subject: Undelivered Mail Returned to Sender", double[0])  # … returned whole.
        self.assertIn("Final-Recipient: rfc822; x@hard.example", double[0])


class UndeliverablePostmasterNoticeTest(NotifyTestCase):
    """A postmaster who cannot be reached: the double bounce to them fails and is dropped – no loop."""
    OVERRIDES = {"notify_classes": "2bounce", "2bounce_notice_recipient": "postmaster@hard.example"}

    def test_a_failed_postmaster_notice_ends_the_chain(self):
        self.send("x@hard.example", "y@hard.example", "triple")
        self.postgate.queue.wait_log(r": dropping undeliverable postmaster notification")
        self.postgate.queue.wait_log(r": from=<double-bounce@mail169\.com>, size=")
        self.wait_queue_empty()  # Nothing left to retry: the chain ended.
        self.assertEqual(self.postgate.read_maildir("bar"), [])


class NoDoubleBounceTest(NotifyTestCase):
    """Postfix's default notify_classes (resource, software): no copies, an undeliverable bounce is discarded."""

    def test_no_postmaster_copy(self):
        self.send("foo@mail169.com", "user@hard.example", "bounced")
        wait_for(lambda: [t for t in self.postgate.read_maildir("foo") if "Undelivered Mail Returned" in t],
                 what="the sender's bounce")
        self.wait_queue_empty()
        self.assertEqual(self.postgate.read_maildir("bar"), [])  # No bounce class: no copy.

    def test_an_undeliverable_bounce_is_discarded(self):
        self.send("x@hard.example", "y@hard.example", "discarded")
        self.postgate.queue.wait_log(r": discarding undeliverable bounce \(no 2bounce in notify_classes\)")
        self.wait_queue_empty()
        self.assertEqual(self.postgate.read_maildir("bar"), [])


class PostmasterDelayNoticeTest(NotifyTestCase):
    """delay: the postmaster gets the headers of each delay warning."""
    OVERRIDES = {"notify_classes": "delay"}

    def test_postmaster_copy_of_a_delay_warning(self):
        self.send("foo@mail169.com", "user@closed.example", "slow")
        wait_for(lambda: [t for t in self.postgate.read_maildir("foo") if "Subject: Delayed Mail" in t], timeout=20,
                 what="the sender's delay warning")
        copy = wait_for(lambda: self.postmaster_mail("Postmaster Warning: Delayed Mail"), what="the postmaster's copy")
        self.assertIn("Action: delayed", copy[0])
        self.assertNotIn("secret body", copy[0])


class ClosedDestinationTestCase(unittest.TestCase):
    """A Postgate whose closed.example goes to a loopback port nobody listens on; OVERRIDES adds
    main.cf settings."""
    OVERRIDES = {}

    def setUp(self):
        self.port = free_port()
        self.transport = tempfile.NamedTemporaryFile("w", suffix=".transport", delete=False)
        self.transport.write(f"closed.example smtp:[127.0.0.1]:{self.port}\n")
        self.transport.close()
        self.postgate = Postgate({"defer_transports": "", "transport_maps": f"texthash:{self.transport.name}",
                                  **self.OVERRIDES}).start()
        self.stub = queue_pb2_grpc.QueueServiceStub(self.postgate.grpc_channel())

    def tearDown(self):
        self.postgate.cleanup()
        os.unlink(self.transport.name)


class DeadDestinationTest(ClosedDestinationTestCase):
    """After a connection failure a next hop is suspended (Postfix's dead destination) until the
    backoff passes or a flush: its other mail is deferred at once, without hammering it."""

    OVERRIDES = {"queue_run_delay": "300s", "minimal_backoff_time": "300s"}

    def reason(self, queue_id):
        message = self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=queue_id))
        return message.recipients[0].reason if message.recipients[0].attempts else None

    def test_second_message_is_deferred_without_a_connection(self):
        first = re.search(QUEUE_ID, send_message(self.postgate.smtp_port, recipients=("a@closed.example",))).group(0)
        wait_for(lambda: self.reason(first), what="the first attempt")
        self.assertEqual(self.reason(first), f"connect to 127.0.0.1[127.0.0.1]:{self.port}: Connection refused")
        second = re.search(QUEUE_ID, send_message(self.postgate.smtp_port, recipients=("b@closed.example",))).group(0)
        wait_for(lambda: self.reason(second), what="the second attempt")
        self.assertEqual(self.reason(second), "delivery temporarily suspended: connect to 127.0.0.1[127.0.0.1]:"
                                              f"{self.port}: Connection refused")
        # A flush (ETRN, queuectl flush) lifts the suspension: the destination is tried for real again
        # (by whichever of the two messages goes first; the other may find it suspended anew).
        self.stub.Flush(queue_pb2.FlushRequest())
        attempts = lambda queue_id: self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=queue_id)).recipients[0].attempts
        wait_for(lambda: attempts(first) == 2 and attempts(second) == 2, what="the flushed attempts")
        refused = f"connect to 127.0.0.1[127.0.0.1]:{self.port}: Connection refused"
        self.assertIn(refused, (self.reason(first), self.reason(second)))


class DelayWarningTest(ClosedDestinationTestCase):
    """delay_warning_time: one "delayed" notice per recipient to the sender, the message still queued."""

    OVERRIDES = {"queue_run_delay": "1s", "minimal_backoff_time": "1s", "maximal_backoff_time": "1s",
                 "delay_warning_time": "2s"}

    def test_one_delay_warning_while_retrying(self):
        queue_id = re.search(QUEUE_ID, send_message(self.postgate.smtp_port, recipients=("a@closed.example",))).group(0)
        warnings = wait_for(lambda: [t for t in self.postgate.read_maildir("foo") if "Delayed Mail" in t],
                            timeout=20, what="the delay warning in the sender's mailbox")
        self.assertIn("Subject: Delayed Mail (still being retried)", warnings[0])
        self.assertIn("THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE.", warnings[0])
        self.assertIn("Action: delayed", warnings[0])
        self.assertIn("Will-Retry-Until: ", warnings[0])
        self.assertIn(f"connect to 127.0.0.1[127.0.0.1]:{self.port}: Connection refused", warnings[0])
        message = self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=queue_id))
        self.assertEqual(message.state, queue_pb2.MESSAGE_STATE_DEFERRED)
        self.assertTrue(message.recipients[0].delay_warning_sent)
        # Later attempts send no second warning.
        attempts = message.recipients[0].attempts
        wait_for(lambda: self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=queue_id)).recipients[0].attempts
                 >= attempts + 2, timeout=20, what="two more attempts")
        self.assertEqual(len([t for t in self.postgate.read_maildir("foo") if "Delayed Mail" in t]), 1)


class LifetimeTest(ClosedDestinationTestCase):
    """maximal_queue_lifetime returns mail to its sender; bounces give up after bounce_queue_lifetime
    and are never bounced again."""
    OVERRIDES = {"queue_run_delay": "1s", "minimal_backoff_time": "1s", "maximal_backoff_time": "1s",
                 "maximal_queue_lifetime": "3s", "bounce_queue_lifetime": "2s"}

    def final(self, queue_id):
        return wait_for(lambda: (r := self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=queue_id)).recipients[0])
                        .state == queue_pb2.RECIPIENT_STATE_BOUNCED and r, timeout=20, what=f"{queue_id} expired")

    def test_expiry(self):
        normal = re.search(QUEUE_ID, send_message(self.postgate.smtp_port, recipients=("a@closed.example",))).group(0)
        bounce = re.search(QUEUE_ID, send_message(self.postgate.smtp_port, sender="",
                                                  recipients=("b@closed.example",))).group(0)
        expired = self.final(normal)
        # The last attempt either connected (refused) or found the next hop still suspended after
        # the other message's attempt: both are the last reason, and the one the sender is told.
        self.assertRegex(expired.reason, rf"^(delivery temporarily suspended: )?connect to 127\.0\.0\.1\[127\.0\.0\.1\]:"
                                         rf"{self.port}: Connection refused \(message expired after 3s in the queue\)$")
        reports = wait_for(lambda: [t for t in self.postgate.read_maildir("foo") if "Undelivered Mail" in t],
                           what="the expiry report to the sender")
        self.assertIn("message expired after 3s in the queue", reports[0])
        self.assertIn("(message expired after 2s in the queue)", self.final(bounce).reason)
        # The expired bounce produced no report of its own (null sender): only the one above exists.
        self.assertEqual(len([t for t in self.postgate.read_maildir("foo") if "Undelivered Mail" in t]), 1)


class MxRoutingTest(unittest.TestCase):
    """Next hops found by MX lookup, from a dnsmasq the test runs on loopback: the preferred MX
    has no listener, so the next one is used; a domain without MX falls back to its address; a
    domain that does not exist bounces."""

    def setUp(self):
        self.dns_port, self.smtp_port = free_port(), free_port()
        self.dnsmasq = subprocess.Popen(
            ["dnsmasq", "--keep-in-foreground", "--no-daemon", "--no-resolv", "--no-hosts", "--bind-interfaces",
             "--listen-address", "127.0.0.1", "--port", str(self.dns_port), "--log-facility=-",
             "--local=/example/",  # Authoritative for the test zone: NODATA, not REFUSED, where a type is missing.
             "--mx-host=mx.example,mx1.mx.example,10", "--mx-host=mx.example,mx2.mx.example,20",
             "--host-record=mx1.mx.example,127.0.0.2", "--host-record=mx2.mx.example,127.0.0.1",
             "--host-record=plain.example,127.0.0.1", "--address=/nowhere.example/"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.transport = tempfile.NamedTemporaryFile("w", suffix=".transport", delete=False)
        # Unbracketed next hops: look up MX records; the port still comes from here.
        for domain in ("mx.example", "plain.example", "nowhere.example"):
            self.transport.write(f"{domain} smtp:{domain}:{self.smtp_port}\n")
        self.transport.close()
        self.sink = Sink(self.smtp_port)
        self.postgate = Postgate({"defer_transports": "", "transport_maps": f"texthash:{self.transport.name}",
                                  "postgate_dns_servers": f"127.0.0.1:{self.dns_port}", "queue_run_delay": "1s",
                                  "minimal_backoff_time": "1s", "smtp_connect_timeout": "2s"}).start()
        self.stub = queue_pb2_grpc.QueueServiceStub(self.postgate.grpc_channel())

    def tearDown(self):
        self.postgate.cleanup()
        self.sink.stop()
        self.dnsmasq.terminate()
        self.dnsmasq.wait(timeout=10)
        os.unlink(self.transport.name)

    def final(self, address):
        queue_id = re.search(QUEUE_ID, send_message(self.postgate.smtp_port, recipients=(address,))).group(0)
        return wait_for(lambda: (r := self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=queue_id)).recipients[0])
                        .state in (queue_pb2.RECIPIENT_STATE_DELIVERED, queue_pb2.RECIPIENT_STATE_BOUNCED) and r,
                        timeout=20, what=f"a final state for {address}")

    def test_mx_preference_fallback_and_missing_domain(self):
        via_mx = self.final("user@mx.example")
        self.assertEqual(via_mx.state, queue_pb2.RECIPIENT_STATE_DELIVERED)
        self.assertEqual(via_mx.relay, f"mx2.mx.example[127.0.0.1]:{self.smtp_port}")  # mx1 refused the connection.
        plain = self.final("user@plain.example")
        self.assertEqual(plain.state, queue_pb2.RECIPIENT_STATE_DELIVERED)
        self.assertEqual(plain.relay, f"plain.example[127.0.0.1]:{self.smtp_port}")
        missing = self.final("user@nowhere.example")
        self.assertEqual((missing.state, missing.dsn_status), (queue_pb2.RECIPIENT_STATE_BOUNCED, "5.4.4"))
        self.assertIn("Host or domain name not found. Name service error for name=nowhere.example type=MX", missing.reason)
        self.assertEqual(len(self.sink.messages()), 2)


class PostgateToPostgateTest(unittest.TestCase):
    """A second Postgate as the remote: STARTTLS (smtp_tls_security_level) on the way."""

    def setUp(self):
        self.remote = Postgate().start()  # The reference lab: mail169.com, STARTTLS offered.
        self.transport = tempfile.NamedTemporaryFile("w", suffix=".transport", delete=False)
        self.transport.write(f"mail169.com smtp:[127.0.0.1]:{self.remote.smtp_port}\n")
        self.transport.close()
        self.sender = None

    def tearDown(self):
        for postgate in (self.sender, self.remote):
            if postgate:
                postgate.cleanup()
        os.unlink(self.transport.name)

    def start_sender(self, level, ca_file=None):
        overrides = {"myhostname": "sender.test", "mydomain": "sender.test", "mydestination": "sender.test",
                     "fast_flush_domains": "", "defer_transports": "", "smtp_tls_security_level": level,
                     "transport_maps": f"texthash:{self.transport.name}", "queue_run_delay": "1s",
                     "minimal_backoff_time": "1s", "postgate_local_users": "foo"}
        if ca_file:
            overrides["smtp_tls_CAfile"] = ca_file
        self.sender = Postgate(overrides).start()

    def test_starttls_when_offered(self):
        self.start_sender("encrypt")
        reply = send_message(self.sender.smtp_port, sender="foo@sender.test", recipients=("bar@mail169.com",),
                             body="Subject: across\r\n\r\nover TLS\r\n")
        self.assertRegex(reply, r"^250 2\.0\.0 Ok: queued as " + QUEUE_ID)
        delivered = self.remote.wait_delivered("bar", 1)[0]
        self.assertIn("Subject: across", delivered)
        self.assertRegex(delivered, r"by mail169\.com \(Postgate\) with ESMTPS id [0-9A-F]{13}")  # TLS at the remote.
        self.assertRegex(delivered, r"\(using TLSv1\.[23] with cipher ")
        self.sender.queue.wait_log(r"Anonymous TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:\d+: TLSv1\.[23]")

    def test_a_large_message_arrives_whole(self):
        # Several stored chunks, streamed to the remote as they are read: dot lines (stuffed on the
        # way, unstuffed at the other end) and line ends at every position across chunk borders.
        self.start_sender("may")
        lines = [f"{'.' if i % 7 == 0 else ''}line {i} " + "x" * (i % 97) for i in range(12000)]
        stuffed = ["." + line if line.startswith(".") else line for line in lines]  # As a client must.
        body = "Subject: large\r\n\r\n" + "\r\n".join(stuffed) + "\r\n"
        self.assertGreater(len(body), 600_000)
        reply = send_message(self.sender.smtp_port, sender="foo@sender.test", recipients=("bar@mail169.com",),
                             body=body)
        self.assertRegex(reply, r"^250 2\.0\.0 Ok: queued as " + QUEUE_ID)
        delivered = self.remote.wait_delivered("bar", 1)[0]
        self.assertTrue(delivered.endswith("\n".join(lines) + "\n"), "the body arrived changed")

    def test_verify_refuses_an_unverifiable_certificate(self):
        other_ca = os.path.join(self.remote.dir, "other-ca")
        subprocess.run([os.path.join(os.environ.get("POSTGATE_SOURCE_DIR", "."), "scripts/make-snakeoil-cert.sh"),
                        other_ca], check=True, capture_output=True)
        self.start_sender("verify", os.path.join(other_ca, "snakeoil.pem"))
        reply = send_message(self.sender.smtp_port, sender="foo@sender.test", recipients=("bar@mail169.com",))
        queue_id = re.search(QUEUE_ID, reply).group(0)
        self.sender.queue.wait_log(re.escape(queue_id) + r": to=<bar@mail169\.com>, relay=.*dsn=4\.7\.5, "
                                   r"status=deferred \(TLS handshake with 127\.0\.0\.1\[127\.0\.0\.1\]:\d+ failed")
        self.assertEqual(self.remote.maildir_files("bar"), [])


if __name__ == "__main__":
    unittest.main()
