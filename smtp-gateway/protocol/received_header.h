// The Received: trace header the gateway prepends (RFC 5321 §4.4), laid out as Postfix's smtpd
// writes it so existing log and header tooling keeps working. Pure: the caller supplies the date.
#pragma once

#include <string>
#include <vector>

namespace postgate::gateway::protocol {

struct ReceivedFields {
  std::string helo;             // As the client sent it; "" if it never said HELO/EHLO.
  std::string client_hostname;  // "unknown" when the address has no verified name.
  std::string client_address;
  std::string by_hostname;      // $myhostname
  std::string mail_name;        // $mail_name
  std::string protocol;         // "SMTP" or "ESMTP".
  std::string queue_id;
  std::vector<std::string> recipients;  // "for <x>" only when there is exactly one, as Postfix.
  std::string date;             // RFC 5322 date-time, e.g. "Thu, 26 Nov 2026 16:23:51 +0000 (UTC)".
  // With TLS: "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"; "" without.
  std::string tls;
  // smtpd_sasl_authenticated_header: the SMTP AUTH user, as "(Authenticated sender: …)"; "" none.
  std::string authenticated_sender{};
};

// The whole header, folded over lines with a tab, each line ending in LF.
std::string FormatReceivedHeader(const ReceivedFields& fields);

}  // namespace postgate::gateway::protocol
