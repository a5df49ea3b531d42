"""Delivery status notifications (RFC 3461/3464): what was asked for is carried and shown, and
the reports queue-service sends parse as multipart/report with the right fields."""
import email
import email.policy
import re
import smtplib
import unittest

from postgate.queue.v1 import queue_pb2, queue_pb2_grpc
from postgate_harness import QUEUE_ID, Postgate, SmtpConnection, wait_for

BODY = "Subject: dsn test {tag}\r\nFrom: foo@mail169.com\r\n\r\nbody of {tag}\r\n"


class DsnTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # "ghost" is accepted at RCPT (it is an alias) but its target does not exist: a bounce.
        cls.postgate = Postgate(aliases="ghost: nosuchuser\n").start()
        cls.stub = queue_pb2_grpc.QueueServiceStub(cls.postgate.grpc_channel())

    @classmethod
    def tearDownClass(cls):
        cls.postgate.cleanup()

    def send(self, tag, mail_params="", rcpts=(("bar@mail169.com", ""),), sender="foo@mail169.com"):
        connection = SmtpConnection(self.postgate.smtp_port)
        try:
            connection.read_reply()
            connection.command("EHLO dsn.test")
            self.assertEqual(connection.command(f"MAIL FROM:<{sender}> {mail_params}".strip()), "250 2.1.0 Ok\r\n")
            for address, params in rcpts:
                self.assertEqual(connection.command(f"RCPT TO:<{address}> {params}".strip()), "250 2.1.5 Ok\r\n")
            connection.command("DATA")
            connection.send(BODY.format(tag=tag) + ".\r\n")
            reply = connection.read_reply()
        finally:
            connection.close()
        return re.search(QUEUE_ID, reply).group(0)

    def message(self, queue_id):
        return self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=queue_id))

    def report_for(self, queue_id):
        """The DSN in foo's mailbox about `queue_id`, parsed."""
        def find():
            for text in self.postgate.read_maildir("foo"):
                if f"X-Postgate-Queue-ID: {queue_id}" in text:
                    return email.message_from_string(text, policy=email.policy.compat32)
            return None
        return wait_for(find, what=f"a DSN about {queue_id} in foo's mailbox")

    @staticmethod
    def parts(report):
        notification, status, returned = report.get_payload()
        fields = status.get_payload()  # message/delivery-status: per-message, then per-recipient.
        return notification, fields, returned

    def test_failure_report_with_full_message_envid_and_orcpt(self):
        queue_id = self.send("failure", "RET=FULL ENVID=env+2B42",
                             (("ghost@mail169.com", "NOTIFY=FAILURE ORCPT=rfc822;Ghost+2Bx@mail169.com"),))
        report = self.report_for(queue_id)
        self.assertEqual(report.get_content_type(), "multipart/report")
        self.assertEqual(report.get_param("report-type"), "delivery-status")
        self.assertEqual(report["Subject"], "Undelivered Mail Returned to Sender")
        self.assertEqual(report["Return-Path"], "<>")
        self.assertEqual(report["Auto-Submitted"], "auto-replied")
        notification, fields, returned = self.parts(report)
        self.assertIn('<ghost@mail169.com>: unknown user: "nosuchuser"', notification.get_payload())
        self.assertEqual(fields[0]["Original-Envelope-Id"], "env+42")
        self.assertEqual(fields[0]["Reporting-MTA"], "dns; mail169.com")
        self.assertEqual(fields[1]["Final-Recipient"], "rfc822; ghost@mail169.com")
        self.assertEqual(fields[1]["Original-Recipient"], "rfc822;Ghost+x@mail169.com")
        self.assertEqual(fields[1]["Action"], "failed")
        self.assertEqual(fields[1]["Status"], "5.1.1")
        self.assertEqual(returned.get_content_type(), "message/rfc822")
        original = returned.get_payload()[0]
        self.assertEqual(original["Subject"], "dsn test failure")
        self.assertIn("body of failure", original.get_payload())

        # The status API shows what was asked, and which queue ID the report got.
        message = self.message(queue_id)
        recipient = message.recipients[0]
        self.assertEqual(message.envelope.dsn_return, queue_pb2.DSN_RETURN_FULL)
        self.assertEqual(message.envelope.envid, "env+42")
        self.assertTrue(recipient.options.notify_given and recipient.options.notify_failure)
        self.assertEqual(recipient.options.original_recipient, "rfc822;Ghost+x@mail169.com")
        self.assertEqual(recipient.state, queue_pb2.RECIPIENT_STATE_BOUNCED)
        self.assertRegex(recipient.dsn_queue_id, QUEUE_ID)
        dsn = self.message(recipient.dsn_queue_id)
        self.assertEqual(dsn.envelope.sender, "")
        self.assertEqual(list(dsn.envelope.recipients), ["foo@mail169.com"])
        wait_for(lambda: self.message(recipient.dsn_queue_id).state == queue_pb2.MESSAGE_STATE_DONE)

    def test_failure_report_headers_only_with_ret_hdrs(self):
        queue_id = self.send("headers", "RET=HDRS", (("ghost@mail169.com", ""),))  # No NOTIFY: failures.
        _, _, returned = self.parts(self.report_for(queue_id))
        self.assertEqual(returned.get_content_type(), "text/rfc822-headers")
        self.assertIn("Subject: dsn test headers", returned.get_payload())
        self.assertNotIn("body of headers", returned.get_payload())

    def test_success_report_for_notify_success(self):
        queue_id = self.send("success", "", (("bar@mail169.com", "NOTIFY=SUCCESS,FAILURE"),))
        report = self.report_for(queue_id)
        self.assertEqual(report["Subject"], "Successful Mail Delivery Report")
        notification, fields, returned = self.parts(report)
        self.assertIn("<bar@mail169.com>: delivery via local: delivered to maildir", notification.get_payload())
        self.assertEqual(fields[1]["Action"], "delivered")
        self.assertEqual(fields[1]["Status"], "2.0.0")
        self.assertEqual(returned.get_content_type(), "text/rfc822-headers")
        self.assertNotIn("body of success", returned.get_payload())

    def test_smtplib_rcpt_options(self):
        message = email.message_from_string("From: foo@mail169.com\nTo: bar@mail169.com\nSubject: smtplib dsn\n\nhi\n")
        with smtplib.SMTP("127.0.0.1", self.postgate.smtp_port) as client:
            client.ehlo("smtplib.dsn")
            self.assertTrue(client.has_extn("dsn"))
            refused = client.send_message(message, "foo@mail169.com", ["bar@mail169.com"],
                                          mail_options=["RET=HDRS", "ENVID=smtplib+2B1"],
                                          rcpt_options=["NOTIFY=SUCCESS,FAILURE"])
            self.assertEqual(refused, {})
        def report():
            for text in self.postgate.read_maildir("foo"):
                if "Original-Envelope-Id: smtplib+1" in text:
                    return email.message_from_string(text, policy=email.policy.compat32)
            return None
        _, fields, _ = self.parts(wait_for(report, what="the success report for smtplib's message"))
        self.assertEqual(fields[1]["Action"], "delivered")
        self.assertEqual(fields[1]["Final-Recipient"], "rfc822; bar@mail169.com")

    def test_no_report_for_never_null_sender_or_plain_success(self):
        quiet = [self.send("never", "", (("ghost@mail169.com", "NOTIFY=NEVER"),)),
                 self.send("nullsender", "", (("ghost@mail169.com", ""),), sender=""),
                 self.send("plain", "", (("bar@mail169.com", ""),))]
        # A marker message sent after them: once its report is in, theirs would be too.
        marker = self.send("marker", "", (("ghost@mail169.com", ""),))
        self.report_for(marker)
        for queue_id in quiet:
            wait_for(lambda: self.message(queue_id).state == queue_pb2.MESSAGE_STATE_DONE)
            self.assertEqual(self.message(queue_id).recipients[0].dsn_queue_id, "")
            self.assertFalse(any(f"X-Postgate-Queue-ID: {queue_id}" in t for t in self.postgate.read_maildir("foo")))


if __name__ == "__main__":
    unittest.main()
