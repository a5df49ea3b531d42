#include "smtp-gateway/session/milter_support.h"

#include <algorithm>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/smtp/address.h"
#include "core/smtp/command.h"

namespace postgate::gateway {
namespace {

// The address of a path a milter gave ("<a@b>", "a@b", "<a@b> NOTIFY=…": its ESMTP arguments are
// not kept), parsed as a client's MAIL/RCPT path is; nullopt when it is not one.
std::optional<std::string> MilterPath(absl::string_view path) {
  smtp::ParsedPath parsed = smtp::ParsePathArgument(path, "");
  if (parsed.error != smtp::PathError::kNone) return std::nullopt;
  return std::move(parsed.path.address);
}

}  // namespace

smtp::Reply MilterReply(const std::string& text) {
  smtp::Reply reply;
  for (absl::string_view line : absl::StrSplit(text, "\r\n", absl::SkipEmpty())) {
    if (reply.code == 0) (void)absl::SimpleAtoi(line.substr(0, 3), &reply.code);
    reply.lines.emplace_back(line.size() > 4 ? line.substr(4) : absl::string_view());
  }
  if (reply.code == 0) reply = smtp::Reply::Make(451, "4.3.5", "Server configuration problem - try again later");
  return reply;
}

std::vector<std::string> EsmtpArguments(absl::string_view command_line) {
  const smtp::Command command = smtp::ParseCommand(command_line);
  smtp::ParsedPath parsed =
      smtp::ParsePathArgument(command.argument, command.verb == smtp::Verb::kMail ? "FROM:" : "TO:");
  std::vector<std::string> arguments;
  for (smtp::EsmtpParameter& parameter : parsed.path.parameters) arguments.push_back(std::move(parameter.text));
  return arguments;
}

bool ApplyEnvelopeEdits(const milter::MilterEnvelope& edits,
                        const std::function<void(protocol::Transaction&)>& rewrite,
                        protocol::Transaction& transaction) {
  // What the milters gave, rewritten as the client's envelope was.
  protocol::Transaction given;
  std::optional<std::string> sender = edits.sender_changed ? MilterPath(edits.sender) : std::nullopt;
  if (sender) given.sender = *sender;
  for (const std::string& added : edits.added) {
    if (std::optional<std::string> address = MilterPath(added); address && !address->empty()) {
      given.recipients.push_back(*std::move(address));
      given.recipient_dsn.emplace_back();
    }
  }
  if (sender || !given.recipients.empty()) rewrite(given);
  if (sender) transaction.sender = given.sender;

  bool changed = false;
  if (transaction.recipient_dsn.size() < transaction.recipients.size()) {
    transaction.recipient_dsn.resize(transaction.recipients.size());
  }
  for (const std::string& deleted : edits.deleted) {
    const std::optional<std::string> address = MilterPath(deleted);
    if (!address || address->empty()) continue;
    for (size_t i = 0; i < transaction.recipients.size();) {
      absl::string_view original = transaction.recipient_dsn[i].original_recipient;
      const bool matches = absl::EqualsIgnoreCase(transaction.recipients[i], *address) ||
                           (absl::ConsumePrefix(&original, "rfc822;") && absl::EqualsIgnoreCase(original, *address));
      if (matches) {
        transaction.recipients.erase(transaction.recipients.begin() + static_cast<std::ptrdiff_t>(i));
        transaction.recipient_dsn.erase(transaction.recipient_dsn.begin() + static_cast<std::ptrdiff_t>(i));
        changed = true;
      } else {
        ++i;
      }
    }
  }
  for (size_t i = 0; i < given.recipients.size(); ++i) {
    const std::string& address = given.recipients[i];
    if (std::any_of(transaction.recipients.begin(), transaction.recipients.end(),
                    [&](const std::string& known) { return absl::EqualsIgnoreCase(known, address); })) {
      continue;
    }
    transaction.recipients.push_back(address);
    transaction.recipient_dsn.push_back(i < given.recipient_dsn.size() ? given.recipient_dsn[i]
                                                                       : protocol::RecipientDsn{});
    changed = true;
  }
  return changed;
}

}  // namespace postgate::gateway
