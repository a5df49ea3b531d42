// Delivery status notifications (RFC 3464, "multipart/report; report-type=delivery-status"),
// laid out like Postfix's bounce(8) so people and filters recognise them. Builds the text around
// the returned content; the caller streams the original message (or its headers) in between, so
// a large message is never held in memory. Pure: the caller supplies IDs and times.
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace postgate::queue {

struct DsnRecipient {
  std::string final_recipient;     // The address delivery was attempted to.
  std::string original_recipient;  // ORCPT as "type;address", or "".
  std::string action;              // "failed", "delivered", "relayed", "delayed".
  std::string status;              // Enhanced status code, e.g. "5.1.1".
  std::string diagnostic;          // e.g. "unknown user: \"nobody\"".
  std::string relay;               // e.g. "local".
  std::string remote_mta{};        // The server that answered ("" if none): Remote-MTA: dns; …
  std::string remote_reply{};      // Its reply, e.g. "550 5.1.1 …": Diagnostic-Code: smtp; …
};

struct DsnReport {
  bool success = false;            // Success report (NOTIFY=SUCCESS) rather than a bounce.
  bool delay = false;              // Delay warning (delay_warning_time): still being retried.
  absl::Time retry_until;          // With `delay`: when the message will be given up.
  bool return_full_message = true; // Bounce with RET=FULL or no RET; else headers only.
  std::string myhostname;
  std::string original_queue_id;
  std::string original_sender;
  // A notice for the postmaster (notify_classes): addressed to `to`, "Postmaster Copy:" subject.
  bool postmaster_copy = false;
  std::string to;                  // The To: header; "" = the original sender.
  absl::Time arrival;
  std::string envid;               // ENVID, "" when none.
  std::string dsn_queue_id;        // Queue ID the notification itself gets.
  absl::Time now;
  std::vector<DsnRecipient> recipients;
};

struct DsnText {
  std::string head;  // Headers, notification, delivery status, and the headers of part three.
  std::string tail;  // Closes the MIME structure after the returned content.
};

DsnText FormatDsn(const DsnReport& report);

}  // namespace postgate::queue
