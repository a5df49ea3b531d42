#include "smtp-gateway/session/milter_support.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace postgate::gateway {
namespace {

std::string Unbracketed(absl::string_view address) {
  address = absl::StripAsciiWhitespace(address);
  if (absl::StartsWith(address, "<") && absl::EndsWith(address, ">")) {
    address.remove_prefix(1);
    address.remove_suffix(1);
  }
  return std::string(address);
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
  const size_t close = command_line.find('>');
  if (close == absl::string_view::npos) return {};
  return absl::StrSplit(command_line.substr(close + 1), absl::ByAnyChar(" \t"), absl::SkipEmpty());
}

bool ApplyEnvelopeEdits(const milter::MilterEnvelope& edits, const MilterAddressRewriting& rewriting,
                        protocol::Transaction& transaction) {
  if (edits.sender_changed) transaction.sender = rewriting.sender(Unbracketed(edits.sender));
  bool changed = false;
  if (transaction.recipient_dsn.size() < transaction.recipients.size()) {
    transaction.recipient_dsn.resize(transaction.recipients.size());
  }
  for (const std::string& deleted : edits.deleted) {
    const std::string address = Unbracketed(deleted);
    for (size_t i = 0; i < transaction.recipients.size();) {
      absl::string_view given = transaction.recipient_dsn[i].original_recipient;
      const bool matches = absl::EqualsIgnoreCase(transaction.recipients[i], address) ||
                           (absl::ConsumePrefix(&given, "rfc822;") && absl::EqualsIgnoreCase(given, address));
      if (matches) {
        transaction.recipients.erase(transaction.recipients.begin() + static_cast<std::ptrdiff_t>(i));
        transaction.recipient_dsn.erase(transaction.recipient_dsn.begin() + static_cast<std::ptrdiff_t>(i));
        changed = true;
      } else {
        ++i;
      }
    }
  }
  for (const std::string& added : edits.added) {
    // SMFIR_ADDRCPT_PAR's ESMTP arguments ("<a@b> NOTIFY=…") are not kept: the address only.
    const std::string given = Unbracketed(std::vector<std::string>(absl::StrSplit(added, ' ')).front());
    if (given.empty()) continue;
    for (const std::string& address : rewriting.recipient(given)) {
      if (std::any_of(transaction.recipients.begin(), transaction.recipients.end(),
                      [&](const std::string& known) { return absl::EqualsIgnoreCase(known, address); })) {
        continue;
      }
      protocol::RecipientDsn options;
      if (address != given) options.original_recipient = absl::StrCat("rfc822;", given);
      transaction.recipients.push_back(address);
      transaction.recipient_dsn.push_back(std::move(options));
      changed = true;
    }
  }
  return changed;
}

}  // namespace postgate::gateway
