// The SMTP server state machine of one session (RFC 5321 §4.1.4 command order, Postfix's replies).
// Input: command lines; output: the reply and an Action for the caller (session/) to perform –
// opening the queue, reading DATA, closing. Whether a sender or recipient is *allowed* is not
// decided here but by a Decider (implemented in policy/); this file only knows the protocol.
// Pure: no sockets, clocks or threads. One instance per connection, not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/smtp/command.h"
#include "core/smtp/line_reader.h"
#include "core/smtp/reply.h"

namespace postgate::gateway::protocol {

// A policy answer: accept (possibly with the address rewritten, e.g. "bar" → "bar@mail169.com")
// or reject with the reply to send.
struct Verdict {
  bool accepted = true;
  std::string address;  // Canonical address when accepted.
  smtp::Reply reply;    // When rejected.

  static Verdict Accept(std::string address) { return {true, std::move(address), {}}; }
  static Verdict Reject(smtp::Reply reply) { return {false, {}, std::move(reply)}; }
};

// The questions the state machine asks about one session's addresses.
class Decider {
 public:
  virtual ~Decider() = default;
  virtual Verdict CheckSender(const std::string& address) = 0;     // "" is the null sender.
  virtual Verdict CheckRecipient(const std::string& address) = 0;
  // VRFY: accept means "252 <as given>"; a reject carries the reply.
  virtual Verdict Verify(const std::string& address) = 0;
};

struct ProtocolLimits {
  std::string hostname;                  // $myhostname, first line of the EHLO reply.
  std::string banner;                    // $smtpd_banner, after "220 ".
  uint64_t message_size_limit = 10240000;  // 0: no limit.
  size_t recipient_limit = 1000;         // smtpd_recipient_limit.
};

enum class BodyType { kUnspecified, k7Bit, k8BitMime };

// What MAIL … DATA gathered: one mail transaction.
struct Transaction {
  std::string sender;
  std::vector<std::string> recipients;
  BodyType body_type = BodyType::kUnspecified;
  uint64_t declared_size = 0;
};

enum class Action {
  kNone,
  kOpenQueue,  // DATA accepted by the protocol: open the queue, then call QueueOpened().
  kReadData,   // 354 was sent: decode the body, then call DataFinished().
  kClose,      // Send the reply, then close the connection.
};

struct Step {
  std::optional<smtp::Reply> reply;
  Action action = Action::kNone;
};

enum class DataOutcome {
  kQueued,       // The queue has the message on disk.
  kTooBig,       // More than message_size_limit bytes arrived.
  kQueueError,   // The queue failed or was unreachable; nothing was kept.
};

class SessionMachine {
 public:
  SessionMachine(ProtocolLimits limits, Decider& decider);

  smtp::Reply Greeting() const;
  Step OnLine(const smtp::CommandLine& line);
  Step QueueOpened(bool ok);
  Step DataFinished(DataOutcome outcome, const std::string& queue_id);

  const Transaction& transaction() const { return transaction_; }
  const std::string& helo() const { return helo_; }
  bool esmtp() const { return esmtp_; }
  // Verb of the last line, for logs and per-verb metrics.
  smtp::Verb last_verb() const { return last_verb_; }

 private:
  Step OnHelo(const smtp::Command& command, bool extended);
  Step OnMail(const smtp::Command& command);
  Step OnRcpt(const smtp::Command& command);
  Step OnData(const smtp::Command& command);
  Step OnVrfy(const smtp::Command& command);
  void ResetTransaction();

  ProtocolLimits limits_;
  Decider& decider_;
  std::string helo_;
  bool esmtp_ = false;
  bool in_transaction_ = false;
  bool any_recipient_tried_ = false;
  Transaction transaction_;
  smtp::Verb last_verb_ = smtp::Verb::kUnknown;
};

}  // namespace postgate::gateway::protocol
