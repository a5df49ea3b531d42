// The milters of one SMTP session (smtpd_milters), asked in order at each stage as Postfix's
// milter8 asks them: connect, HELO, MAIL, RCPT, DATA, and at the end of a message the header
// fields, end of headers, body and end of message, with the edits each milter asks for applied
// before the next one sees the message. The first milter that rejects, tempfails, discards or
// replies decides; one that accepts is not asked again for this message (or this session, when
// it accepted the connection). A milter that cannot be reached, times out, or breaks the
// protocol stands from then on for its milter_default_action, logged as Postfix logs it.
// Runs on the session's executor.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "asio/any_io_executor.hpp"
#include "asio/awaitable.hpp"
#include "smtp-gateway/milter/macros.h"
#include "smtp-gateway/milter/milter_config.h"
#include "smtp-gateway/milter/milter_connection.h"
#include "smtp-gateway/milter/milter_message.h"

namespace spdlog {
class logger;
}

namespace postgate::gateway::milter {

// What the milters decided at one stage.
struct Verdict {
  enum class Kind {
    kContinue,  // Go on (every milter continued or accepted).
    kReply,     // Refuse with `reply` (a complete SMTP reply, "550 5.7.1 Command rejected";
                // lines separated by CR LF when multi-line; 421 ends the session).
    kDiscard,   // Accept the message and keep nothing.
    kHold,      // Keep the message on hold; `reason` says why.
  };
  Kind kind = Kind::kContinue;
  std::string reply;
  std::string reason;
};

// The envelope a milter may change at the end of a message.
struct MilterEnvelope {
  std::string sender;
  std::vector<std::string> recipients;
  bool sender_changed = false;
  std::vector<std::string> added{};    // In the order milters added them.
  std::vector<std::string> deleted{};  // As the milters named them.
};

// Counts a milter failure (unreachable, timeout, protocol) for metrics; `stage` is the event.
using FailureCounter = std::function<void(const std::string& milter, absl::string_view reason)>;

class SessionMilters {
 public:
  SessionMilters(asio::any_io_executor executor, const std::vector<MilterConfig>& configs, MacroValues macros,
                 spdlog::logger& log, FailureCounter count_failure);
  ~SessionMilters();

  asio::awaitable<Verdict> Connect(const std::string& client_name, const std::string& client_address,
                                   uint16_t client_port);
  asio::awaitable<Verdict> Helo(const std::string& name);
  // `parameters`: the ESMTP parameters as the client gave them ("SIZE=100").
  asio::awaitable<Verdict> Mail(const std::string& sender, const std::vector<std::string>& parameters);
  asio::awaitable<Verdict> Recipient(const std::string& recipient, const std::vector<std::string>& parameters);
  asio::awaitable<Verdict> Data();
  // The message: header fields, end of headers, body, end of message, to each milter in turn;
  // the edits asked for are applied to `message` and `envelope` as they come.
  asio::awaitable<Verdict> EndOfMessage(MilterMessage& message, MilterEnvelope& envelope);
  // The transaction ended without a message (RSET, a refusal, a new MAIL): SMFIC_ABORT.
  asio::awaitable<void> Abort();
  // End of the session: SMFIC_QUIT to each connected milter.
  asio::awaitable<void> Quit();

 private:
  struct Milter;
  // Sends one event to one milter; the milter's verdict (kContinue when it continues or accepts).
  asio::awaitable<Verdict> Event(Milter& milter, char command, MacroStage stage, const std::string& packet,
                                 uint32_t no_send, uint32_t no_reply, bool content);
  asio::awaitable<Verdict> Broadcast(char command, MacroStage stage, const std::string& packet, uint32_t no_send,
                                     uint32_t no_reply);
  asio::awaitable<Verdict> MessageToOne(Milter& milter, MilterMessage& message, MilterEnvelope& envelope);
  Verdict Fail(Milter& milter, absl::string_view what);
  Verdict Decide(Milter& milter, const Reply& reply, char command);
  // A failed exchange: counted by its reason, logged in Postfix's words, default action.
  Verdict ExchangeFailed(Milter& milter, char command, const absl::Status& status);
  std::string MacroPacket(const Milter& milter, char command, MacroStage stage) const;

  asio::any_io_executor executor_;
  std::vector<std::unique_ptr<Milter>> milters_;
  MacroValues macros_;
  spdlog::logger& log_;
  FailureCounter count_failure_;
  bool in_message_ = false;     // Between MAIL and the end of the message (for ABORT).
};

}  // namespace postgate::gateway::milter
