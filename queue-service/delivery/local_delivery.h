// Final delivery to local users, like Postfix's local(8): alias expansion (alias_maps, recursive,
// loop-safe), recipient_delimiter extensions (bar+tag → bar), mailbox_size_limit, and the
// Return-Path:, X-Original-To: and Delivered-To: headers. Maildir or mbox per
// postgate_mailbox_format, under <data_directory>/mail/. Each (message, recipient, target) has a
// deterministic Maildir file name, so a delivery retried after a crash is not made twice.
// Thread-safe: concurrent deliveries to the same mbox serialise on its lock.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/addressing/local_domain.h"
#include "queue-service/model/record.h"
#include "queue-service/delivery/mailbox_writer.h"

namespace postgate::queue {

// What one delivery attempt for one recipient came to.
struct DeliveryOutcome {
  rec::RecipientState state = rec::RECIPIENT_STATE_DEFERRED;
  uint32_t smtp_code = 0;
  std::string dsn_status;
  std::string reason;
  std::string relay;
  // SMTP: which transaction on its connection this was (Postfix's conn_use): 1 on a new
  // connection, n > 1 on a cached one; 0 when no connection got as far as a transaction.
  int connection_use = 0;
  // SMTP, when a server answered: its host name and its reply as it said it ("550 5.1.1 …"),
  // a DSN's Remote-MTA and "Diagnostic-Code: smtp; …" (RFC 3464 §2.3.5, §2.3.6).
  std::string remote_mta{};
  std::string remote_reply{};
  // The server announced DSN and took the recipient's NOTIFY with it (RFC 3461 §4.2): any
  // success report is now its to send, not ours.
  bool notify_passed_on = false;
  // SMTP: the AUTH login this conversation made on a new session ("" when it made none), and
  // how it went ("success", "failed"), for the metric.
  std::string sasl_mechanism{};
  std::string sasl_result{};
  // SMTP: a server of the next hop replied in this conversation, whatever it said (it is up).
  bool server_answered = false;
};

enum class MailboxFormat { kMaildir, kMbox };

struct LocalDeliveryOptions {
  std::string mail_directory;  // <data_directory>/mail
  MailboxFormat format = MailboxFormat::kMaildir;
  uint64_t mailbox_size_limit = 0;
  std::string myhostname;
};

// One mailbox a recipient address leads to after alias expansion.
struct LocalTarget {
  std::string user;           // Mailbox owner, e.g. "bar".
  std::string delivered_to;   // Address written to Delivered-To:, e.g. "bar+tag@mail169.com".
};

// Either targets (all local) or a final error outcome (unknown user, alias loop, remote target).
struct Expansion {
  std::vector<LocalTarget> targets;
  std::optional<DeliveryOutcome> error;
};

class LocalDelivery {
 public:
  LocalDelivery(const addressing::LocalDomain& domain, LocalDeliveryOptions options)
      : domain_(domain), options_(std::move(options)) {}

  Expansion Expand(const std::string& address) const;

  // True when deliveries can share their durable steps (Maildir: a retried write finds its file
  // and writes nothing twice). mbox appends cannot be undone by a retry, so they are not batched.
  bool BatchesWrites() const { return options_.format == MailboxFormat::kMaildir; }

  // Delivers recipient `index` of `message`. `recovered` widens the already-delivered check to
  // cur/ (a reader may have moved the file since the crash).
  DeliveryOutcome Deliver(const rec::Message& message, int index, const ContentSource& content,
                          bool recovered) const;

  // Stages the Maildir files Deliver would write for recipient `index` into `batch` (nothing for
  // mbox, or for files already delivered – `recovered` as for Deliver). Once the batch is
  // finished, Deliver finds them in place and only records the delivery: many deliveries then
  // share their fsyncs.
  void Prewrite(const rec::Message& message, int index, const ContentSource& content, bool recovered,
                MaildirBatch& batch) const;

 private:
  MailboxWrite MakeWrite(const rec::Message& message, int index, const LocalTarget& target,
                         const ContentSource& content) const;
  std::string MaildirOf(const LocalTarget& target) const;
  std::string MaildirName(const rec::Message& message, int index, size_t target) const;
  void ExpandInto(const std::string& address, int depth, std::vector<std::string>& chain,
                  Expansion& out) const;

  const addressing::LocalDomain& domain_;
  LocalDeliveryOptions options_;
};

}  // namespace postgate::queue
