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

// The ESMTP parameters of a MAIL or RCPT command line, as the client wrote them ("SIZE=100",
// "NOTIFY=NEVER"), parsed as the session machine parses the path.
std::vector<std::string> EsmtpArguments(absl::string_view command_line);

// The milters' sender change and recipient additions and deletions applied to `transaction` (the
// envelope as queued, after rewriting), each address parsed as a MAIL/RCPT path (a path that does
// not parse is ignored): a deleted recipient goes when it matches a recipient or the address the
// client gave for it (ORCPT), without case; the added ones and a new sender go through `rewrite`
// – the rewriting the client's envelope had (canonical maps, masquerading, virtual aliases), given
// an envelope of just them – and an added one is kept unless present. Returns whether the
// recipients changed.
bool ApplyEnvelopeEdits(const milter::MilterEnvelope& edits,
                        const std::function<void(protocol::Transaction&)>& rewrite,
                        protocol::Transaction& transaction);

}  // namespace postgate::gateway
