#include "queue-service/delivery/local_delivery.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "queue-service/model/record.h"

namespace postgate::queue {
namespace {

constexpr int kMaxAliasDepth = 20;

DeliveryOutcome Outcome(rec::RecipientState state, uint32_t code, absl::string_view dsn,
                        std::string reason) {
  return DeliveryOutcome{state, code, std::string(dsn), std::move(reason), "local"};
}

// Stops ReadContent once the header section has been seen.
constexpr absl::string_view kHeaderEnd = "end of header";
// A header section longer than this is not read further for Delivered-To: (a loop adds its
// Delivered-To: at the top, where this delivery agent writes it).
constexpr size_t kMaxHeaderScan = 1 << 20;

// The addresses of the message's Delivered-To: headers, lower case, as Postfix's delivered_hdr
// collects them to break forwarding loops.
absl::StatusOr<std::vector<std::string>> DeliveredToAddresses(const ContentSource& content) {
  std::vector<std::string> addresses;
  std::string line;
  size_t scanned = 0;
  bool in_field = false;  // The current line belongs to a Delivered-To: field.
  auto finish_line = [&] {
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
      if (in_field) absl::StrAppend(&addresses.back(), absl::AsciiStrToLower(absl::StripAsciiWhitespace(line)));
    } else {
      const size_t colon = line.find(':');
      in_field = colon != std::string::npos &&
                 absl::EqualsIgnoreCase(absl::StripTrailingAsciiWhitespace(absl::string_view(line).substr(0, colon)),
                                        "Delivered-To");
      if (in_field) {
        addresses.push_back(absl::AsciiStrToLower(absl::StripAsciiWhitespace(absl::string_view(line).substr(colon + 1))));
      }
    }
    line.clear();
  };
  const absl::Status read = content([&](absl::string_view piece) -> absl::Status {
    for (char c : piece) {
      if (++scanned > kMaxHeaderScan) return absl::CancelledError(kHeaderEnd);
      if (c != '\n') {
        line.push_back(c);
        continue;
      }
      if (line.empty()) return absl::CancelledError(kHeaderEnd);  // The empty line.
      finish_line();
    }
    return absl::OkStatus();
  });
  if (!read.ok() && !(absl::IsCancelled(read) && read.message() == kHeaderEnd)) return read;
  return addresses;
}

// Postfix local(8): a message that already carries Delivered-To: <address> for an address it is
// being delivered to has been here before – mail forwarded out and back – and is bounced
// (5.4.6) rather than delivered again and again. nullopt when there is no loop.
std::optional<DeliveryOutcome> ForwardingLoop(const rec::Message& message, int index, const Expansion& expansion,
                                              const ContentSource& content) {
  absl::StatusOr<std::vector<std::string>> delivered = DeliveredToAddresses(content);
  if (!delivered.ok()) {
    return Outcome(rec::RECIPIENT_STATE_DEFERRED, 451, "4.3.0",
                   absl::StrCat("cannot read the message: ", delivered.status().message()));
  }
  if (delivered->empty()) return std::nullopt;
  std::vector<std::string> addresses = {message.recipients(index).address()};
  for (const LocalTarget& target : expansion.targets) addresses.push_back(target.delivered_to);
  for (const std::string& address : addresses) {
    if (std::find(delivered->begin(), delivered->end(), absl::AsciiStrToLower(address)) != delivered->end()) {
      return Outcome(rec::RECIPIENT_STATE_BOUNCED, 554, "5.4.6", absl::StrCat("mail forwarding loop for ", address));
    }
  }
  return std::nullopt;
}

}  // namespace

Expansion LocalDelivery::Expand(const std::string& address) const {
  Expansion expansion;
  std::vector<std::string> chain;
  ExpandInto(address, 0, chain, expansion);
  if (expansion.error) expansion.targets.clear();
  return expansion;
}

void LocalDelivery::ExpandInto(const std::string& address, int depth, std::vector<std::string>& chain,
                               Expansion& out) const {
  if (out.error) return;
  if (depth > kMaxAliasDepth) {
    out.error = Outcome(rec::RECIPIENT_STATE_BOUNCED, 554, "5.4.6",
                        absl::StrCat("alias expansion of <", address, "> is too deep"));
    return;
  }
  addressing::ClassifiedAddress classified = domain_.Classify(address);
  if (!classified.local) {
    out.error = Outcome(rec::RECIPIENT_STATE_DEFERRED, 450, "4.3.2",
                        absl::StrCat("alias target <", address,
                                     ">: remote delivery is not available in this version"));
    return;
  }
  if (!classified.routing_syntax) {
    for (const std::string* name : {&classified.local_part, &classified.base}) {
      const std::vector<std::string>* targets = domain_.aliases().Find(*name);
      if (targets == nullptr || std::find(chain.begin(), chain.end(), *name) != chain.end()) continue;
      chain.push_back(*name);
      for (const std::string& target : *targets) ExpandInto(target, depth + 1, chain, out);
      chain.pop_back();
      return;
    }
    if (domain_.IsUser(classified.base)) {
      std::string delivered_to = absl::StrCat(classified.local_part, "@", classified.domain);
      for (const LocalTarget& existing : out.targets) {
        if (existing.user == classified.base && existing.delivered_to == delivered_to) return;
      }
      out.targets.push_back({classified.base, std::move(delivered_to)});
      return;
    }
  }
  out.error = Outcome(rec::RECIPIENT_STATE_BOUNCED, 550, "5.1.1",
                      absl::StrCat("unknown user: \"", classified.local_part, "\""));
}

MailboxWrite LocalDelivery::MakeWrite(const rec::Message& message, int index, const LocalTarget& target,
                                     const ContentSource& content) const {
  MailboxWrite write;
  write.headers = absl::StrCat("Return-Path: <", message.envelope().sender(), ">\nX-Original-To: ",
                               message.recipients(index).address(), "\nDelivered-To: ", target.delivered_to, "\n");
  write.content = content;
  write.content_size = message.size();
  write.size_limit = options_.mailbox_size_limit;
  return write;
}

std::string LocalDelivery::MaildirOf(const LocalTarget& target) const {
  return absl::StrCat(options_.mail_directory, "/", target.user);
}

std::string LocalDelivery::MaildirName(const rec::Message& message, int index, size_t target) const {
  // <arrival seconds>.Q<queue id>R<recipient>T<target>.<host>: unique and the same on retry.
  return absl::StrCat(message.arrival_time().seconds(), ".Q", message.queue_id(), "R", index, "T", target, ".",
                      options_.myhostname);
}

void LocalDelivery::Prewrite(const rec::Message& message, int index, const ContentSource& content, bool recovered,
                             MaildirBatch& batch) const {
  if (options_.format != MailboxFormat::kMaildir) return;
  Expansion expansion = Expand(message.recipients(index).address());
  if (ForwardingLoop(message, index, expansion, content)) return;  // Deliver bounces (or defers) it.
  for (size_t t = 0; t < expansion.targets.size(); ++t) {
    const std::string maildir = MaildirOf(expansion.targets[t]);
    const std::string name = MaildirName(message, index, t);
    if (MaildirHasMessage(maildir, name, recovered)) continue;
    // A failure here is left to Deliver, which writes the file again and reports it.
    batch.Stage(maildir, name, MakeWrite(message, index, expansion.targets[t], content)).IgnoreError();
  }
}

DeliveryOutcome LocalDelivery::Deliver(const rec::Message& message, int index,
                                       const ContentSource& content, bool recovered) const {
  Expansion expansion = Expand(message.recipients(index).address());
  if (expansion.error) return *expansion.error;

  const std::string& sender = message.envelope().sender();
  const absl::Time arrival = absl::FromUnixSeconds(message.arrival_time().seconds());
  bool loop_checked = false;
  for (size_t t = 0; t < expansion.targets.size(); ++t) {
    const LocalTarget& target = expansion.targets[t];
    const MailboxWrite write = MakeWrite(message, index, target, content);
    absl::Status status;
    const bool maildir = options_.format == MailboxFormat::kMaildir;
    // A file Prewrite staged (or an attempt before a crash wrote) is in place: not written again.
    const bool in_place = maildir && MaildirHasMessage(MaildirOf(target), MaildirName(message, index, t), recovered);
    // Checked before the first write only: files Prewrite staged passed it, and are not read again.
    if (!loop_checked && !in_place) {
      loop_checked = true;
      if (std::optional<DeliveryOutcome> loop = ForwardingLoop(message, index, expansion, content)) return *loop;
    }
    if (maildir) {
      if (in_place) continue;
      status = WriteMaildir(MaildirOf(target), MaildirName(message, index, t), write);
    } else {
      std::string from_line =
          absl::StrCat("From ", sender.empty() ? "MAILER-DAEMON" : sender, "  ",
                       absl::FormatTime("%a %b %e %H:%M:%S %Y", arrival, absl::LocalTimeZone()));
      status = AppendMbox(absl::StrCat(options_.mail_directory, "/", target.user, ".mbox"),
                          from_line, write);
    }
    if (status.code() == absl::StatusCode::kFailedPrecondition) {
      return Outcome(rec::RECIPIENT_STATE_BOUNCED, 552, "5.2.2",
                     absl::StrCat("cannot update mailbox for user ", target.user, ": ",
                                  status.message()));
    }
    if (!status.ok()) {
      return Outcome(rec::RECIPIENT_STATE_DEFERRED, 451, "4.3.0",
                     absl::StrCat("cannot update mailbox for user ", target.user, ": ",
                                  status.message()));
    }
  }
  return Outcome(rec::RECIPIENT_STATE_DELIVERED, 250, "2.0.0",
                 options_.format == MailboxFormat::kMaildir ? "delivered to maildir"
                                                            : "delivered to mailbox");
}

}  // namespace postgate::queue
