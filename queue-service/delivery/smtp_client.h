// Remote delivery over SMTP to one next hop, like Postfix's smtp(8): connect (smtp_connect_timeout),
// greeting and EHLO (smtp_helo_timeout; HELO when EHLO is refused), MAIL FROM with SIZE=, BODY= and
// SMTPUTF8 as the server offers them, RCPT TO per recipient, DATA; with PIPELINING the envelope
// goes in one write; STARTTLS per smtp_tls_security_level. Each step has Postfix's timeout. Every recipient comes back with its own
// outcome: 2xx delivered, 4xx and network trouble deferred, 5xx bounced, with the server's reply
// quoted as Postfix does ("host x[1.2.3.4] said: 550 … (in reply to RCPT TO command)").
// Runs as an Asio coroutine on its own io_context per call, so a delivery worker just calls it.
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "postgate/queue/v1/queue.pb.h"
#include "queue-service/delivery/local_delivery.h"
#include "queue-service/routing/router.h"

namespace postgate::queue {

// smtp_tls_security_level: none; may (STARTTLS when offered, certificate not checked); encrypt
// (TLS required, certificate not checked); verify (TLS required, certificate chain checked
// against smtp_tls_CAfile and the next hop's name).
enum class SmtpTlsLevel { kNone, kMay, kEncrypt, kVerify };

struct SmtpClientOptions {
  std::string helo_name = "localhost";        // smtp_helo_name
  SmtpTlsLevel tls_level = SmtpTlsLevel::kNone;
  std::string tls_ca_file;                    // smtp_tls_CAfile (verify)
  absl::Duration connect_timeout = absl::Seconds(30);
  absl::Duration helo_timeout = absl::Seconds(300);
  absl::Duration mail_timeout = absl::Seconds(300);
  absl::Duration rcpt_timeout = absl::Seconds(300);
  absl::Duration data_init_timeout = absl::Seconds(120);
  absl::Duration data_xfer_timeout = absl::Seconds(180);
  absl::Duration data_done_timeout = absl::Seconds(600);
};

// One reply from the server: code, enhanced status ("" if none) and the full text, lines joined.
struct ServerReply {
  int code = 0;
  std::string enhanced;
  std::string text;  // "250-a\n250 b" → "250 a / b"-like single line as Postfix logs it.
  std::vector<std::string> lines;  // Texts after the code, for EHLO keywords.
};

// Pure: parses complete reply lines ("250-x", "250 y"); nullopt until the last line has come.
std::optional<ServerReply> ParseServerReply(const std::vector<std::string>& lines);
// Pure: the message as it goes on the wire after DATA: LF → CRLF, dot-stuffed, ending CRLF.CRLF.
std::string ToWireData(absl::string_view stored);

// One address to try for a next hop: the mail exchanger's name and one of its addresses.
struct SmtpCandidate {
  std::string host;
  std::string address;
};

// Delivers `message` (its envelope, content via `content`) to `recipients` (indices into the
// message's recipients) at `next_hop`, trying `candidates` in order until one answers. One outcome
// per recipient, in the same order.
std::vector<DeliveryOutcome> DeliverOverSmtp(const NextHop& next_hop, const std::vector<SmtpCandidate>& candidates,
                                             const SmtpClientOptions& options, const v1::Message& message,
                                             const std::vector<int>& recipients, const ContentSource& content);

}  // namespace postgate::queue
