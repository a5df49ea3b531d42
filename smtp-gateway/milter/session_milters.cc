// g++ 12 at -O1 with AddressSanitizer: see queue-service/delivery/smtp_deliverer.cc.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include "smtp-gateway/milter/session_milters.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "spdlog/spdlog.h"

namespace postgate::gateway::milter {
namespace {

constexpr absl::string_view kRejected = "550 5.7.1 Command rejected";
constexpr absl::string_view kTempfailed = "451 4.7.1 Service unavailable - try again later";

absl::string_view EventName(char command) {
  switch (command) {
    case 'O': return "SMFIC_OPTNEG";
    case 'C': return "SMFIC_CONNECT";
    case 'H': return "SMFIC_HELO";
    case 'M': return "SMFIC_MAIL";
    case 'R': return "SMFIC_RCPT";
    case 'T': return "SMFIC_DATA";
    case 'L': return "SMFIC_HEADER";
    case 'N': return "SMFIC_EOH";
    case 'B': return "SMFIC_BODY";
    case 'E': return "SMFIC_BODYEOB";
    default: return "SMFIC_UNKNOWN";
  }
}

bool ConnectStage(char command) { return command == 'C' || command == 'H'; }

// The metrics' reason for a failed exchange: a timeout, a malformed or unexpected reply
// ("protocol"), or the connection itself ("io").
absl::string_view FailureReason(const absl::Status& status) {
  if (absl::IsDeadlineExceeded(status)) return "timeout";
  if (absl::IsDataLoss(status) || absl::IsFailedPrecondition(status)) return "protocol";
  return "io";
}

// What went wrong with a milter's reply to `command`, in Postfix's words where a log reader looks
// for them: "can't read SMFIC_BODYEOB reply packet header: Connection timed out", "unexpected
// filter response after event SMFIC_CONNECT: …".
std::string ReadFailure(char command, const absl::Status& status) {
  if (FailureReason(status) == "protocol") {
    return absl::StrCat("unexpected filter response after event ", EventName(command), ": ", status.message());
  }
  return absl::StrCat("can't read ", EventName(command), " reply packet header: ",
                      absl::IsDeadlineExceeded(status) ? "Connection timed out" : status.message());
}

// A milter's SMFIR_REPLYCODE text as an SMTP reply: "550 5.7.1 text", lines joined by CR LF.
// Postfix refuses a code that is not 4xx or 5xx, or lines that do not all start with it.
std::optional<std::string> CheckedReply(absl::string_view text) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, absl::ByAnyChar("\r\n"), absl::SkipEmpty());
  if (lines.empty()) return std::nullopt;
  const absl::string_view first = lines.front();
  if (first.size() < 3 || (first[0] != '4' && first[0] != '5') || !absl::ascii_isdigit(first[1]) ||
      !absl::ascii_isdigit(first[2]) || (first.size() > 3 && first[3] != ' ' && first[3] != '-')) {
    return std::nullopt;
  }
  std::string reply;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!absl::StartsWith(lines[i], first.substr(0, 3))) return std::nullopt;
    absl::string_view rest = lines[i].size() > 4 ? lines[i].substr(4) : absl::string_view();
    if (i > 0) reply += "\r\n";
    absl::StrAppend(&reply, first.substr(0, 3), i + 1 < lines.size() ? "-" : " ", rest);
  }
  return reply;
}

}  // namespace

struct SessionMilters::Milter {
  const MilterConfig* config = nullptr;
  std::unique_ptr<MilterConnection> connection;
  enum class Phase { kActive, kAcceptedSession, kAcceptedMessage, kDecided } phase = Phase::kActive;
  // kDecided: what every later event of the session gets – a reply, a hold, or nothing
  // (kContinue: default_action = accept).
  Verdict standing;
};

SessionMilters::SessionMilters(asio::any_io_executor executor, const std::vector<MilterConfig>& configs,
                               MacroValues macros, spdlog::logger& log, FailureCounter count_failure)
    : executor_(std::move(executor)), macros_(std::move(macros)), log_(log), count_failure_(std::move(count_failure)) {
  for (const MilterConfig& config : configs) {
    auto milter = std::make_unique<Milter>();
    milter->config = &config;
    milters_.push_back(std::move(milter));
  }
}

SessionMilters::~SessionMilters() = default;

Verdict SessionMilters::Fail(Milter& milter, absl::string_view what) {
  if (milter.connection) milter.connection->Close();
  if (!what.empty()) log_.warn("milter {}: {}", milter.config->name, std::string(what));
  milter.phase = Milter::Phase::kDecided;
  switch (milter.config->default_action) {
    case DefaultAction::kAccept:
      milter.standing = Verdict{};
      break;
    case DefaultAction::kReject:
      milter.standing = Verdict{Verdict::Kind::kReply, "550 5.5.0 Service unavailable", ""};
      break;
    case DefaultAction::kTempfail:
      milter.standing = Verdict{Verdict::Kind::kReply, std::string(kTempfailed), ""};
      break;
    case DefaultAction::kShutdown:
      milter.standing = Verdict{Verdict::Kind::kReply, "421 4.7.1 Service unavailable - try again later", ""};
      break;
    case DefaultAction::kQuarantine:
      milter.standing = Verdict{Verdict::Kind::kHold, "", "default_action"};
      break;
  }
  return milter.standing;
}

Verdict SessionMilters::ExchangeFailed(Milter& milter, char command, const absl::Status& status) {
  count_failure_(milter.config->name, FailureReason(status));
  return Fail(milter, ReadFailure(command, status));
}

std::string SessionMilters::MacroPacket(const Milter& milter, char command, MacroStage stage) const {
  const std::vector<std::pair<std::string, std::string>> pairs =
      MacroPairs(MacroNames(stage, milter.config->macros, milter.connection->negotiated()), macros_);
  return pairs.empty() ? std::string() : Macros(command, pairs);
}

Verdict SessionMilters::Decide(Milter& milter, const Reply& reply, char command) {
  using Kind = Reply::Kind;
  const bool connect_stage = ConnectStage(command);
  switch (reply.kind) {
    case Kind::kContinue:
      return Verdict{};
    case Kind::kAccept:
      milter.phase = connect_stage ? Milter::Phase::kAcceptedSession : Milter::Phase::kAcceptedMessage;
      return Verdict{};
    case Kind::kReject:
    case Kind::kTempfail: {
      Verdict verdict{Verdict::Kind::kReply, std::string(reply.kind == Kind::kReject ? kRejected : kTempfailed), ""};
      if (connect_stage) {  // Final for the session (Sendmail changes its receiver state).
        milter.phase = Milter::Phase::kDecided;
        milter.standing = verdict;
      }
      return verdict;
    }
    case Kind::kReplyCode: {
      std::optional<std::string> checked = CheckedReply(reply.text);
      if (!checked) return Fail(milter, absl::StrCat("malformed reply: ", reply.text));
      Verdict verdict{Verdict::Kind::kReply, *std::move(checked), ""};
      if (connect_stage) {
        milter.phase = Milter::Phase::kDecided;
        milter.standing = verdict;
      }
      return verdict;
    }
    case Kind::kDiscard:
      if (connect_stage) return Fail(milter, "DISCARD action is not allowed for connect or helo");
      milter.phase = Milter::Phase::kAcceptedMessage;
      return Verdict{Verdict::Kind::kDiscard, "", ""};
    case Kind::kConnectionFailure:  // SMFIR_SHUTDOWN
      milter.phase = Milter::Phase::kDecided;
      milter.standing = Verdict{Verdict::Kind::kReply, "421 4.7.0 Server closing connection", ""};
      return milter.standing;
    case Kind::kSkip:
      return Verdict{};  // Handled by the body loop; elsewhere the same as continue.
    default:
      return Fail(milter, absl::StrCat("unexpected filter response after event ", EventName(command)));
  }
}

asio::awaitable<Verdict> SessionMilters::Event(Milter& milter, char command, MacroStage stage,
                                               const std::string& packet, uint32_t no_send, uint32_t no_reply,
                                               bool content) {
  if (milter.phase == Milter::Phase::kDecided) co_return milter.standing;
  if (milter.phase == Milter::Phase::kAcceptedSession) co_return Verdict{};
  if (milter.phase == Milter::Phase::kAcceptedMessage && !ConnectStage(command)) co_return Verdict{};
  if (!milter.connection || milter.connection->broken()) co_return Fail(milter, "not connected");
  const Negotiated& negotiated = milter.connection->negotiated();
  if (no_send != 0 && !negotiated.Sends(no_send)) co_return Verdict{};
  const bool await_reply = negotiated.AwaitsReply(no_reply);
  const std::chrono::milliseconds timeout = content ? milter.config->content_timeout : milter.config->command_timeout;
  std::string bytes = MacroPacket(milter, command, stage);
  bytes += packet;
  absl::StatusOr<std::vector<Reply>> replies = co_await milter.connection->Exchange(bytes, await_reply, timeout);
  if (!replies.ok()) co_return ExchangeFailed(milter, command, replies.status());
  if (replies->empty()) co_return Verdict{};
  if (replies->size() > 1) {
    count_failure_(milter.config->name, "protocol");
    co_return Fail(milter, absl::StrCat("unexpected filter response after event ", EventName(command)));
  }
  Verdict verdict = Decide(milter, replies->front(), command);
  if (milter.phase == Milter::Phase::kDecided && milter.connection && milter.connection->broken()) {
    count_failure_(milter.config->name, "protocol");
  }
  co_return verdict;
}

asio::awaitable<Verdict> SessionMilters::Broadcast(char command, MacroStage stage, const std::string& packet,
                                                   uint32_t no_send, uint32_t no_reply) {
  for (const std::unique_ptr<Milter>& milter : milters_) {
    Verdict verdict = co_await Event(*milter, command, stage, packet, no_send, no_reply, false);
    if (verdict.kind != Verdict::Kind::kContinue) co_return verdict;
  }
  co_return Verdict{};
}

asio::awaitable<Verdict> SessionMilters::Connect(const std::string& client_name, const std::string& client_address,
                                                 uint16_t client_port) {
  const bool v6 = absl::StrContains(client_address, ':');
  // An unknown client name in Sendmail's form, as milter8 sends it: "[address]".
  const std::string name = client_name == "unknown" ? absl::StrCat("[", client_address, "]") : client_name;
  const std::string packet = milter::Connect(name, v6 ? Family::kInet6 : Family::kInet, client_port, client_address);
  for (const std::unique_ptr<Milter>& milter : milters_) {
    absl::StatusOr<std::unique_ptr<MilterConnection>> opened =
        co_await MilterConnection::Connect(executor_, *milter->config);
    if (!opened.ok()) {
      count_failure_(milter->config->name, absl::IsDeadlineExceeded(opened.status()) ? "timeout" : "connect");
      log_.warn("connect to Milter service {}: {}", milter->config->name, std::string(opened.status().message()));
      Fail(*milter, "");
      continue;
    }
    milter->connection = *std::move(opened);
    if (absl::Status negotiated = co_await milter->connection->Negotiate(*milter->config); !negotiated.ok()) {
      ExchangeFailed(*milter, 'O', negotiated);
    }
  }
  co_return co_await Broadcast('C', MacroStage::kConnect, packet, kNoConnect, kNoConnectReply);
}

asio::awaitable<Verdict> SessionMilters::Helo(const std::string& name) {
  co_return co_await Broadcast('H', MacroStage::kHelo, milter::Helo(name), kNoHelo, kNoHeloReply);
}

asio::awaitable<Verdict> SessionMilters::Mail(const std::string& sender, const std::vector<std::string>& parameters) {
  in_message_ = true;
  for (const std::unique_ptr<Milter>& milter : milters_) {
    if (milter->phase == Milter::Phase::kAcceptedMessage) milter->phase = Milter::Phase::kActive;  // A new message.
  }
  co_return co_await Broadcast('M', MacroStage::kMail, milter::Mail(sender, parameters), kNoMail, kNoMailReply);
}

asio::awaitable<Verdict> SessionMilters::Recipient(const std::string& recipient,
                                                   const std::vector<std::string>& parameters) {
  co_return co_await Broadcast('R', MacroStage::kRecipient, milter::Recipient(recipient, parameters), kNoRecipient,
                               kNoRecipientReply);
}

asio::awaitable<Verdict> SessionMilters::Data() {
  co_return co_await Broadcast('T', MacroStage::kData, milter::Data(), kNoData, kNoDataReply);
}

asio::awaitable<Verdict> SessionMilters::MessageToOne(Milter& milter, MilterMessage& message,
                                                      MilterEnvelope& envelope) {
  if (milter.phase == Milter::Phase::kDecided) co_return milter.standing;
  if (milter.phase != Milter::Phase::kActive) co_return Verdict{};
  if (!milter.connection || milter.connection->broken()) co_return Fail(milter, "not connected");
  const Negotiated& negotiated = milter.connection->negotiated();
  // SMFIP_HDR_LEADSPC: the milter sees, and gives, the space after the colon itself; without it
  // Sendmail's convention drops one space going out and puts one back coming in.
  const bool milter_keeps_space = !negotiated.Sends(kHeaderLeadingSpace);
  // Header fields (our own Received: hidden), each awaited unless the milter said not to.
  for (size_t i = 0; i < message.fields().size(); ++i) {
    if (!message.ShownToMilters(i)) continue;
    const MilterMessage::Field& field = message.fields()[i];
    absl::string_view value = field.value;
    if (!milter_keeps_space && absl::StartsWith(value, " ")) value.remove_prefix(1);
    Verdict verdict =
        co_await Event(milter, 'L', MacroStage::kEndOfHeaders, Header(field.name, value), kNoHeaders, kNoHeaderReply, true);
    if (verdict.kind != Verdict::Kind::kContinue || milter.phase != Milter::Phase::kActive) co_return verdict;
  }
  {
    Verdict verdict =
        co_await Event(milter, 'N', MacroStage::kEndOfHeaders, EndOfHeaders(), kNoEndOfHeaders, kNoEndOfHeadersReply, true);
    if (verdict.kind != Verdict::Kind::kContinue || milter.phase != Milter::Phase::kActive) co_return verdict;
  }
  // The body in chunks read from the spool file: never whole in memory.
  if (negotiated.Sends(kNoBody)) {
    // One piece of the spool at a time, each answered before the next is read.
    uint64_t offset = 0;
    for (;;) {
      absl::StatusOr<std::string> chunk = message.BodyPieceForMilter(&offset, kBodyChunk);
      if (!chunk.ok()) co_return Fail(milter, chunk.status().message());
      if (chunk->empty()) break;
      absl::StatusOr<std::vector<Reply>> replies = co_await milter.connection->Exchange(
          Body(*chunk), negotiated.AwaitsReply(kNoBodyReply), milter.config->content_timeout);
      if (!replies.ok()) co_return ExchangeFailed(milter, 'B', replies.status());
      if (replies->empty()) continue;
      if (replies->front().kind == Reply::Kind::kSkip) break;  // SMFIR_SKIP: no more body.
      Verdict verdict = Decide(milter, replies->front(), 'B');
      if (verdict.kind != Verdict::Kind::kContinue || milter.phase != Milter::Phase::kActive) co_return verdict;
    }
  }
  // End of message: the edits, then the decision.
  message.BeginEdits();
  std::string bytes = MacroPacket(milter, 'E', MacroStage::kEndOfMessage);
  bytes += milter::EndOfMessage();
  absl::StatusOr<std::vector<Reply>> replies =
      co_await milter.connection->Exchange(bytes, true, milter.config->content_timeout);
  if (!replies.ok()) co_return ExchangeFailed(milter, 'E', replies.status());
  Verdict hold;
  for (const Reply& reply : *replies) {
    const auto allowed = [&](uint32_t action) { return (negotiated.actions & action) != 0; };
    const std::string space = milter_keeps_space ? "" : " ";
    switch (reply.kind) {
      case Reply::Kind::kAddHeader:
        if (!allowed(kAddHeaders)) break;
        message.AddHeader(reply.name, absl::StrCat(space, reply.value));
        continue;
      case Reply::Kind::kInsertHeader:
        if (!allowed(kAddHeaders)) break;
        message.InsertHeader(reply.index, reply.name, absl::StrCat(space, reply.value));
        continue;
      case Reply::Kind::kChangeHeader:
        if (!allowed(kChangeHeaders)) break;
        message.ChangeHeader(reply.index, reply.name, reply.value.empty() ? "" : absl::StrCat(space, reply.value));
        continue;
      case Reply::Kind::kReplaceBody:
        if (!allowed(kChangeBody)) break;
        if (absl::Status replaced = message.ReplaceBody(reply.text); !replaced.ok()) {
          co_return Fail(milter, replaced.message());
        }
        continue;
      case Reply::Kind::kAddRecipient:
        if (!allowed(kAddRecipient) && !allowed(kAddRecipientWithArgs)) break;
        envelope.added.push_back(reply.address);
        continue;
      case Reply::Kind::kDeleteRecipient:
        if (!allowed(kDeleteRecipient)) break;
        envelope.deleted.push_back(reply.address);
        continue;
      case Reply::Kind::kChangeSender:
        if (!allowed(kChangeSender)) break;
        envelope.sender = reply.address;
        envelope.sender_changed = true;
        continue;
      case Reply::Kind::kQuarantine:
        if (!allowed(kQuarantine)) break;
        hold = Verdict{Verdict::Kind::kHold, "", reply.text};
        continue;
      default: {
        message.EndOfEdits();
        Verdict verdict = Decide(milter, reply, 'E');
        milter.phase = milter.phase == Milter::Phase::kDecided ? milter.phase : Milter::Phase::kAcceptedMessage;
        if (verdict.kind == Verdict::Kind::kContinue) co_return hold;
        co_return verdict;
      }
    }
    count_failure_(milter.config->name, "protocol");
    co_return Fail(milter, "request for an action that was not negotiated");
  }
  co_return Fail(milter, "no reply to SMFIC_BODYEOB");
}

asio::awaitable<Verdict> SessionMilters::EndOfMessage(MilterMessage& message, MilterEnvelope& envelope) {
  in_message_ = false;
  Verdict hold;
  for (const std::unique_ptr<Milter>& milter : milters_) {
    Verdict verdict = co_await MessageToOne(*milter, message, envelope);
    if (verdict.kind == Verdict::Kind::kHold) {
      if (hold.kind != Verdict::Kind::kHold) hold = verdict;  // The first reason is kept.
      continue;
    }
    if (verdict.kind != Verdict::Kind::kContinue) co_return verdict;
  }
  co_return hold;
}

asio::awaitable<void> SessionMilters::Abort() {
  if (!std::exchange(in_message_, false)) co_return;
  for (const std::unique_ptr<Milter>& milter : milters_) {
    if (milter->phase == Milter::Phase::kAcceptedMessage) milter->phase = Milter::Phase::kActive;
    if (milter->phase != Milter::Phase::kActive || !milter->connection || milter->connection->broken()) continue;
    (void)co_await milter->connection->Send(milter::Abort(), milter->config->command_timeout);
  }
}

asio::awaitable<void> SessionMilters::Quit() {
  for (const std::unique_ptr<Milter>& milter : milters_) {
    if (!milter->connection || milter->connection->broken()) continue;
    (void)co_await milter->connection->Send(milter::Quit(), milter->config->command_timeout);
    milter->connection->Close();
  }
}

}  // namespace postgate::gateway::milter
