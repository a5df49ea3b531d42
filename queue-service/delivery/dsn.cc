#include "queue-service/delivery/dsn.h"

#include "absl/strings/str_cat.h"

namespace postgate::queue {
namespace {

std::string RfcDate(absl::Time t) {
  return absl::FormatTime("%a, %d %b %Y %H:%M:%S %z (%Z)", t, absl::LocalTimeZone());
}

// Postfix's subjects, its Postmaster-Subject variants for notify_classes copies included.
const char* Subject(const DsnReport& r) {
  if (r.success) return "Successful Mail Delivery Report";
  if (r.delay) return r.postmaster_copy ? "Postmaster Warning: Delayed Mail" : "Delayed Mail (still being retried)";
  return r.postmaster_copy ? "Postmaster Copy: Undelivered Mail" : "Undelivered Mail Returned to Sender";
}

}  // namespace

DsnText FormatDsn(const DsnReport& r) {
  const std::string boundary =
      absl::StrCat(r.original_queue_id, ".", absl::ToUnixSeconds(r.now), "/", r.myhostname);
  DsnText text;
  std::string& out = text.head;
  absl::StrAppend(&out, "Received: by ", r.myhostname, " (Postgate)\n\tid ", r.dsn_queue_id, "; ",
                  RfcDate(r.now), "\n");
  absl::StrAppend(&out, "Date: ", RfcDate(r.now), "\n",
                  "From: Mail Delivery System <MAILER-DAEMON@", r.myhostname, ">\n",
                  "Subject: ", Subject(r), "\n", "To: ", r.to.empty() ? r.original_sender : r.to, "\n",
                  "Auto-Submitted: auto-replied\n",
                  "MIME-Version: 1.0\n",
                  "Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"", boundary,
                  "\"\n", "Content-Transfer-Encoding: 8bit\n",
                  "Message-Id: <", absl::FormatTime("%Y%m%d%H%M%S", r.now, absl::UTCTimeZone()), ".",
                  r.dsn_queue_id, "@", r.myhostname, ">\n\n", "This is a MIME-encapsulated message.\n\n");

  // Part one: for people.
  absl::StrAppend(&out, "--", boundary, "\n", "Content-Description: Notification\n",
                  "Content-Type: text/plain; charset=utf-8\n", "Content-Transfer-Encoding: 8bit\n\n",
                  "This is the mail system at host ", r.myhostname, ".\n\n");
  if (r.delay) {
    absl::StrAppend(&out,
                    "####################################################################\n"
                    "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n"
                    "####################################################################\n\n"
                    "Your message could not be delivered for ",
                    absl::FormatDuration(absl::Trunc(r.now - r.arrival, absl::Minutes(1))),
                    ". It will be retried until\n", RfcDate(r.retry_until), ".\n");
  } else if (r.success) {
    absl::StrAppend(&out,
                    "Your message was successfully delivered to the destination(s)\n"
                    "listed below. If the message was delivered to mailbox you will\n"
                    "receive no further notifications. Otherwise you may still receive\n"
                    "notifications of mail delivery errors from other systems.\n");
  } else {
    absl::StrAppend(&out,
                    "I'm sorry to have to inform you that your message could not\n"
                    "be delivered to one or more recipients. It's attached below.\n\n"
                    "For further assistance, please send mail to postmaster.\n\n"
                    "If you do so, please include this problem report. You can\n"
                    "delete your own text from the attached returned message.\n");
  }
  absl::StrAppend(&out, "\n                   The mail system\n\n");
  for (const DsnRecipient& recipient : r.recipients) {
    absl::StrAppend(&out, "<", recipient.final_recipient, ">: ",
                    r.success ? absl::StrCat("delivery via ", recipient.relay, ": ") : "",
                    recipient.diagnostic, "\n");
  }

  // Part two: for programs (RFC 3464 §2.2 and §2.3).
  absl::StrAppend(&out, "\n--", boundary, "\n", "Content-Description: Delivery report\n",
                  "Content-Type: message/delivery-status\n\n", "Reporting-MTA: dns; ", r.myhostname, "\n");
  if (!r.envid.empty()) absl::StrAppend(&out, "Original-Envelope-Id: ", r.envid, "\n");
  absl::StrAppend(&out, "X-Postgate-Queue-ID: ", r.original_queue_id, "\n",
                  "X-Postgate-Sender: rfc822; ", r.original_sender, "\n",
                  "Arrival-Date: ", RfcDate(r.arrival), "\n");
  for (const DsnRecipient& recipient : r.recipients) {
    absl::StrAppend(&out, "\nFinal-Recipient: rfc822; ", recipient.final_recipient, "\n");
    // As Postfix, always an Original-Recipient: the ORCPT given, else the address itself.
    absl::StrAppend(&out, "Original-Recipient: ",
                    recipient.original_recipient.empty() ? absl::StrCat("rfc822;", recipient.final_recipient)
                                                         : recipient.original_recipient,
                    "\n");
    absl::StrAppend(&out, "Action: ", recipient.action, "\n", "Status: ", recipient.status, "\n");
    // What the remote server said, in the types RFC 3464 defines ("dns", "smtp"); otherwise our
    // own text, in our own type (Postfix's X-Postfix).
    if (!recipient.remote_mta.empty()) absl::StrAppend(&out, "Remote-MTA: dns; ", recipient.remote_mta, "\n");
    if (!recipient.remote_reply.empty()) {
      absl::StrAppend(&out, "Diagnostic-Code: smtp; ", recipient.remote_reply, "\n");
    } else {
      absl::StrAppend(&out, "Diagnostic-Code: X-Postgate; ",
                      r.success ? absl::StrCat("delivery via ", recipient.relay, ": ") : "", recipient.diagnostic,
                      "\n");
    }
    if (r.delay) absl::StrAppend(&out, "Will-Retry-Until: ", RfcDate(r.retry_until), "\n");
  }

  // Part three: what was sent.
  const bool full = !r.success && !r.delay && r.return_full_message;
  absl::StrAppend(&out, "\n--", boundary, "\n", "Content-Description: ",
                  full ? "Undelivered Message" : r.success || r.delay ? "Message Headers" : "Undelivered Message Headers",
                  "\n", "Content-Type: ", full ? "message/rfc822" : "text/rfc822-headers", "\n",
                  "Content-Transfer-Encoding: 8bit\n\n");
  text.tail = absl::StrCat("\n--", boundary, "--\n");
  return text;
}

}  // namespace postgate::queue
