// What the session needs around its milters (smtpd_milters) that is not I/O: their replies as
// SMTP replies, the ESMTP arguments they are told, and their envelope edits applied to the
// recipients the queue gets. Pure.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/smtp/reply.h"
#include "smtp-gateway/milter/session_milters.h"
#include "smtp-gateway/protocol/session_machine.h"

namespace postgate::gateway {

// "550 5.7.1 text" or "550-5.7.1 a\r\n550 5.7.1 b" (as milter::Verdict holds it) as a Reply.
smtp::Reply MilterReply(const std::string& text);

// The ESMTP parameters of a MAIL or RCPT command line, as the client wrote them: the words after
// the path's closing '>' ("SIZE=100", "NOTIFY=NEVER").
std::vector<std::string> EsmtpArguments(absl::string_view command_line);

// How addresses a milter gives are rewritten before the queue gets them, as Postfix's cleanup
// rewrites them (canonical maps, masquerading; virtual aliases for recipients).
struct MilterAddressRewriting {
  std::function<std::string(const std::string&)> sender;
  std::function<std::vector<std::string>(const std::string&)> recipient;  // One or more addresses.
};

// The milters' sender change and recipient additions and deletions applied to `transaction` (the
// envelope as queued, after rewriting): a deleted recipient goes when it matches a recipient or
// the address the client gave for it (ORCPT), without case, angle brackets removed; an added one
// is rewritten and comes with default DSN options (ORCPT: the address the milter gave, when
// rewriting changed it) unless present. Returns whether the recipients changed.
bool ApplyEnvelopeEdits(const milter::MilterEnvelope& edits, const MilterAddressRewriting& rewriting,
                        protocol::Transaction& transaction);

}  // namespace postgate::gateway
