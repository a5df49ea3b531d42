#include "smtp-gateway/protocol/session_machine.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/escaping.h"
#include "core/sasl/sasl.h"
#include "core/smtp/address.h"
#include "core/smtp/utf8.h"
#include "core/smtp/xtext.h"

namespace postgate::gateway::protocol {

bool EndsPipelineGroup(smtp::Verb verb) {
  switch (verb) {
    case smtp::Verb::kHelo:
    case smtp::Verb::kEhlo:
    case smtp::Verb::kData:
    case smtp::Verb::kVrfy:
    case smtp::Verb::kNoop:
    case smtp::Verb::kStarttls:
      return true;
    default:
      return false;
  }
}

smtp::Reply ProtocolSynchronizationError() {
  return smtp::Reply::Make(554, "5.5.0", "Error: SMTP protocol synchronization");
}

namespace {

using smtp::Reply;

Step Say(int code, absl::string_view enhanced, absl::string_view text) {
  return Step{Reply::Make(code, enhanced, text), Action::kNone};
}

// NOTIFY=NEVER or a list of SUCCESS, FAILURE, DELAY (RFC 3461 §4.1), any case, no repeats.
bool ParseNotify(absl::string_view value, RecipientDsn& dsn) {
  dsn.notify_given = true;
  std::vector<std::string> words = absl::StrSplit(absl::AsciiStrToUpper(value), ',');
  if (words.size() == 1 && words[0] == "NEVER") return true;
  for (const std::string& word : words) {
    bool* flag = word == "SUCCESS" ? &dsn.success
                 : word == "FAILURE" ? &dsn.failure
                 : word == "DELAY"   ? &dsn.delay
                                     : nullptr;
    if (flag == nullptr || *flag) return false;
    *flag = true;
  }
  return true;
}

Step UnsupportedOption(const smtp::EsmtpParameter& parameter) {
  return Say(555, "5.5.4", absl::StrCat("Unsupported option: ", parameter.text));
}

}  // namespace

SessionMachine::SessionMachine(ProtocolLimits limits, Decider& decider)
    : limits_(std::move(limits)), decider_(decider) {}

Reply SessionMachine::Greeting() const { return Reply::Plain(220, limits_.banner); }

void SessionMachine::ResetTransaction() {
  in_transaction_ = false;
  any_recipient_tried_ = false;
  transaction_ = Transaction{};
  bdat_active_ = false;
  bdat_failed_ = false;
  bdat_error_.reset();
}

std::optional<Step> SessionMachine::CheckUtf8Address(const std::string& address, bool smtputf8) const {
  if (limits_.strict_smtputf8 && !smtputf8 && !smtp::IsAscii(address)) {
    return Say(553, "5.6.7", "Must declare SMTPUTF8 to send unicode address");
  }
  return std::nullopt;
}

Step SessionMachine::OnLine(const smtp::CommandLine& line) {
  if (error_count_ >= limits_.hard_error_limit) {
    return Step{Reply::Make(421, "4.7.0", absl::StrCat(limits_.hostname, " Error: too many errors")),
                Action::kClose};
  }
  Step step = in_auth_exchange() ? OnAuthResponse(line) : Dispatch(line);
  if (step.reply && step.reply->code >= 400) ++error_count_;
  switch (last_verb_) {
    case smtp::Verb::kNoop:
    case smtp::Verb::kRset:
    case smtp::Verb::kVrfy:
    case smtp::Verb::kEtrn:
      // Harmless one at a time; a flood of them is a client wasting the server's time. Counted
      // as Postfix does: the first smtpd_junk_command_limit + 1 are free.
      if (junk_count_++ > limits_.junk_command_limit && !(step.reply && step.reply->code >= 400)) {
        ++error_count_;
      }
      break;
    default:
      break;
  }
  return step;
}

Step SessionMachine::Dispatch(const smtp::CommandLine& line) {
  any_command_ = true;
  after_message_ = false;
  if (line.too_long) {
    last_verb_ = smtp::Verb::kUnknown;
    return Say(500, "5.5.2", "Error: line too long");
  }
  smtp::Command command = smtp::ParseCommand(line.text);
  last_verb_ = command.verb;
  if (!smtp::IsValidUtf8(line.text)) return Say(500, "5.5.2", "Error: bad UTF-8 syntax");
  switch (command.verb) {
    case smtp::Verb::kHelo:
      return OnHelo(command, false);
    case smtp::Verb::kEhlo:
      return OnHelo(command, true);
    case smtp::Verb::kMail:
      return OnMail(command);
    case smtp::Verb::kRcpt:
      return OnRcpt(command);
    case smtp::Verb::kData:
      return OnData(command);
    case smtp::Verb::kRset:
      if (!command.argument.empty()) return Say(501, "5.5.4", "Syntax: RSET");
      ResetTransaction();
      return Say(250, "2.0.0", "Ok");
    case smtp::Verb::kNoop:
      return Say(250, "2.0.0", "Ok");
    case smtp::Verb::kQuit:
      return Step{Reply::Make(221, "2.0.0", "Bye"), Action::kClose};
    case smtp::Verb::kHelp:
      return Step{Reply{214,
                        {"2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY",
                         "2.0.0 See RFC 5321; extensions are listed in the EHLO reply"}},
                  Action::kNone};
    case smtp::Verb::kVrfy:
      return OnVrfy(command);
    case smtp::Verb::kBdat:
      return OnBdat(command);
    case smtp::Verb::kStarttls:
      return OnStartTls(command);
    case smtp::Verb::kEtrn:
      return OnEtrn(command);
    case smtp::Verb::kAuth:
      return OnAuth(command);
    case smtp::Verb::kUnknown:
      if (command.verb_text.empty()) return Say(500, "5.5.2", "Error: bad syntax");
      return Say(500, "5.5.2", "Error: command not recognized");
  }
  return Say(500, "5.5.2", "Error: command not recognized");
}

Step SessionMachine::OnHelo(const smtp::Command& command, bool extended) {
  if (command.argument.empty()) {
    return Step{Reply::Plain(501, extended ? "Syntax: EHLO hostname" : "Syntax: HELO hostname"),
                Action::kNone};
  }
  helo_ = std::string(command.argument);
  esmtp_ = extended;
  ResetTransaction();
  if (!extended) return Step{Reply::Plain(250, limits_.hostname), Action::kNone};
  Reply reply{250, {limits_.hostname, "PIPELINING"}};
  reply.lines.push_back(limits_.message_size_limit > 0
                            ? absl::StrCat("SIZE ", limits_.message_size_limit)
                            : std::string("SIZE"));
  reply.lines.insert(reply.lines.end(), {"VRFY", "ETRN"});
  if (limits_.tls_available && !tls_active_) reply.lines.push_back("STARTTLS");
  if (auth_offered()) {
    reply.lines.push_back("AUTH PLAIN LOGIN");
    if (limits_.auth_broken_clients) reply.lines.push_back("AUTH=PLAIN LOGIN");
  }
  reply.lines.insert(reply.lines.end(),
                     {"ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8", "CHUNKING"});
  return Step{std::move(reply), Action::kNone};
}

Step SessionMachine::OnMail(const smtp::Command& command) {
  // Like Postfix with smtpd_helo_required = no, MAIL is accepted before HELO/EHLO.
  if (auto refused = RequireTls()) return *refused;
  if (bdat_active_ || bdat_failed_) return Say(503, "5.5.1", "Error: MAIL after BDAT");
  if (in_transaction_) return Say(503, "5.5.1", "Error: nested MAIL command");
  smtp::ParsedPath parsed = smtp::ParsePathArgument(command.argument, "FROM:");
  switch (parsed.error) {
    case smtp::PathError::kNone:
      break;
    case smtp::PathError::kMissingPrefix:
      return Say(501, "5.5.4", "Syntax: MAIL FROM:<address>");
    case smtp::PathError::kBadAddress:
    case smtp::PathError::kBadParameter:
      return Say(501, "5.1.7", "Bad sender address syntax");
  }
  Transaction transaction;
  bool auth_parameter_seen = false;
  for (const smtp::EsmtpParameter& parameter : parsed.path.parameters) {
    if (parameter.keyword == "SIZE" && parameter.has_value) {
      uint64_t size = 0;
      if (!absl::SimpleAtoi(parameter.value, &size) || !absl::ascii_isdigit(parameter.value[0])) {
        return Say(501, "5.5.4", "Bad message size syntax");
      }
      if (limits_.message_size_limit > 0 && size > limits_.message_size_limit) {
        return Say(552, "5.3.4", "Message size exceeds fixed limit");
      }
      transaction.declared_size = size;
    } else if (parameter.keyword == "BODY" && parameter.has_value) {
      std::string body = absl::AsciiStrToUpper(parameter.value);
      if (body == "7BIT") {
        transaction.body_type = BodyType::k7Bit;
      } else if (body == "8BITMIME") {
        transaction.body_type = BodyType::k8BitMime;
      } else {
        return UnsupportedOption(parameter);
      }
    } else if (parameter.keyword == "SMTPUTF8" && !parameter.has_value) {
      transaction.smtputf8 = true;
    } else if (parameter.keyword == "RET") {
      const std::string ret = absl::AsciiStrToUpper(parameter.value);
      if (transaction.dsn_return != DsnReturn::kUnspecified || (ret != "FULL" && ret != "HDRS")) {
        return Say(501, "5.5.4", "Bad RET parameter syntax");
      }
      transaction.dsn_return = ret == "FULL" ? DsnReturn::kFull : DsnReturn::kHeaders;
    } else if (parameter.keyword == "AUTH" && auth_offered()) {
      // RFC 4954 §5: who submitted the message originally. Accepted and not kept, as Postfix
      // does unless it logs it; a second one is an error.
      if (auth_parameter_seen) return Say(503, "5.5.4", "Error: multiple AUTH= options");
      auth_parameter_seen = true;
    } else if (parameter.keyword == "ENVID") {
      std::optional<std::string> envid = smtp::DecodeXtext(parameter.value);
      if (!transaction.envid.empty() || !envid || envid->empty() || envid->size() > 100 ||
          !std::all_of(envid->begin(), envid->end(), [](char c) { return c >= ' ' && c <= '~'; })) {
        return Say(501, "5.5.4", "Bad ENVID parameter syntax");
      }
      transaction.envid = *std::move(envid);
    } else {
      return UnsupportedOption(parameter);
    }
  }
  if (auto refused = CheckUtf8Address(parsed.path.address, transaction.smtputf8)) return *refused;
  Verdict verdict = decider_.CheckSender(parsed.path.address);
  if (!verdict.accepted) return Step{verdict.reply, Action::kNone};
  transaction.sender = verdict.address;
  transaction_ = std::move(transaction);
  in_transaction_ = true;
  return Say(250, "2.1.0", "Ok");
}

Step SessionMachine::OnRcpt(const smtp::Command& command) {
  if (bdat_active_) return Say(503, "5.5.1", "Error: RCPT after BDAT");
  if (!in_transaction_) return Say(503, "5.5.1", "Error: need MAIL command");
  smtp::ParsedPath parsed = smtp::ParsePathArgument(command.argument, "TO:");
  switch (parsed.error) {
    case smtp::PathError::kNone:
      break;
    case smtp::PathError::kMissingPrefix:
      return Say(501, "5.5.4", "Syntax: RCPT TO:<address>");
    case smtp::PathError::kBadAddress:
    case smtp::PathError::kBadParameter:
      return Say(501, "5.1.3", "Bad recipient address syntax");
  }
  if (parsed.path.address.empty()) return Say(501, "5.1.3", "Bad recipient address syntax");
  last_recipient_ = parsed.path.address;
  RecipientDsn dsn;
  bool orcpt_given = false;
  for (const smtp::EsmtpParameter& parameter : parsed.path.parameters) {
    if (parameter.keyword == "NOTIFY") {
      if (dsn.notify_given || !ParseNotify(parameter.value, dsn)) {
        return Say(501, "5.5.4", "Error: Bad NOTIFY parameter syntax");
      }
    } else if (parameter.keyword == "ORCPT") {
      const size_t semicolon = parameter.value.find(';');
      std::optional<std::string> address =
          semicolon == std::string::npos ? std::nullopt
                                         : smtp::DecodeXtext(absl::string_view(parameter.value).substr(semicolon + 1));
      if (orcpt_given || semicolon == 0 || !address || address->empty() ||
          !std::all_of(parameter.value.begin(), parameter.value.begin() + semicolon,
                       [](char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-'; })) {
        return Say(501, "5.5.4", "Error: Bad ORCPT parameter syntax");
      }
      orcpt_given = true;
      dsn.original_recipient = absl::StrCat(parameter.value.substr(0, semicolon), ";", *address);
    } else {
      return UnsupportedOption(parameter);
    }
  }
  if (auto refused = CheckUtf8Address(parsed.path.address, transaction_.smtputf8)) return *refused;
  if (transaction_.recipients.size() >= limits_.recipient_limit) {
    return Say(452, "4.5.3", "Error: too many recipients");
  }
  any_recipient_tried_ = true;
  Verdict verdict = decider_.CheckRecipient(parsed.path.address);
  if (!verdict.accepted) return Step{verdict.reply, Action::kNone};
  transaction_.recipients.push_back(verdict.address);
  transaction_.recipient_dsn.push_back(std::move(dsn));
  return Say(250, "2.1.5", "Ok");
}

void SessionMachine::MilterRefusedSender() {
  ResetTransaction();
  ++error_count_;
}

void SessionMachine::MilterRefusedRecipient() {
  if (!transaction_.recipients.empty()) {
    transaction_.recipients.pop_back();
    transaction_.recipient_dsn.pop_back();
  }
  ++error_count_;
}

Step SessionMachine::OnData(const smtp::Command& command) {
  if (!command.argument.empty()) return Say(501, "5.5.4", "Syntax: DATA");
  if (bdat_active_ || bdat_failed_) return Say(503, "5.5.1", "Error: DATA after BDAT");
  if (!in_transaction_) return Say(503, "5.5.1", "Error: need RCPT command");
  if (transaction_.recipients.empty()) {
    return any_recipient_tried_ ? Say(554, "5.5.1", "Error: no valid recipients")
                                : Say(503, "5.5.1", "Error: need RCPT command");
  }
  return Step{std::nullopt, Action::kOpenQueue};
}

Step SessionMachine::QueueOpened(bool ok, bool no_storage) {
  if (!ok) {
    ResetTransaction();
    return no_storage ? Say(452, "4.3.1", "Insufficient system storage")
                      : Say(451, "4.3.0", "Error: queue file write error");
  }
  return Step{Reply::Plain(354, "End data with <CR><LF>.<CR><LF>"), Action::kReadData};
}

Step SessionMachine::DataFinished(DataOutcome outcome, const std::string& queue_id, const smtp::Reply* rejection) {
  ResetTransaction();
  after_message_ = true;
  switch (outcome) {
    case DataOutcome::kQueued:
      return Say(250, "2.0.0", absl::StrCat("Ok: queued as ", queue_id));
    case DataOutcome::kTooBig:
      return Say(552, "5.3.4", "Message size exceeds fixed limit");
    case DataOutcome::kNoStorage:
      return Say(452, "4.3.1", "Insufficient system storage");
    case DataOutcome::kBareNewline:
      return Step{BareNewlineReply(), Action::kNone};
    case DataOutcome::kTooManyHops:
      return Say(554, "5.4.0", "Error: too many hops");
    case DataOutcome::kContentRejected:
      if (rejection != nullptr) return Step{*rejection, Action::kNone};
      return Say(550, "5.7.1", "message content rejected");
    case DataOutcome::kQueueError:
      break;
  }
  return Say(451, "4.3.0", "Error: queue file write error");
}

smtp::Reply SessionMachine::BareNewlineReply() const {
  return Reply::Make(limits_.bare_newline_reject_code, "5.5.2",
                     absl::StrCat(limits_.hostname, " Error: bare <LF> received"));
}

Step SessionMachine::BareNewlineInCommand() const { return Step{BareNewlineReply(), Action::kClose}; }

absl::string_view SessionMachine::stage() const {
  if (!any_command_) return "CONNECT";
  if (after_message_) return "END-OF-MESSAGE";
  return smtp::VerbName(last_verb_);
}

Step SessionMachine::OnVrfy(const smtp::Command& command) {
  if (command.argument.empty()) return Say(501, "5.5.4", "Syntax: VRFY address [SMTPUTF8]");
  if (auto refused = RequireTls()) return *refused;
  absl::string_view address = command.argument;
  // RFC 6531 §3.7.4.2: "VRFY address SMTPUTF8".
  if (size_t space = address.find_last_of(" \t"); space != absl::string_view::npos &&
      absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(address.substr(space)), "SMTPUTF8")) {
    address = absl::StripTrailingAsciiWhitespace(address.substr(0, space));
  }
  const absl::string_view as_given = address;  // Postfix echoes it, brackets and all.
  if (address.size() >= 2 && address.front() == '<' && address.back() == '>') {
    address = address.substr(1, address.size() - 2);
  }
  if (address.empty() || !smtp::IsValidMailbox(address)) {
    return Say(501, "5.1.3", "Bad recipient address syntax");
  }
  Verdict verdict = decider_.Verify(std::string(address));
  if (!verdict.accepted) return Step{verdict.reply, Action::kNone};
  return Say(252, "2.0.0", as_given);
}

std::optional<Step> SessionMachine::RequireTls() const {
  if (limits_.tls_required && !tls_active_) {
    return Say(530, "5.7.0", "Must issue a STARTTLS command first");
  }
  return std::nullopt;
}

Step SessionMachine::OnStartTls(const smtp::Command& command) {
  if (!command.argument.empty()) return Say(501, "5.5.4", "Syntax: STARTTLS");
  if (tls_active_) return Say(554, "5.5.1", "Error: TLS already active");
  if (!limits_.tls_available) return Say(502, "5.5.1", "Error: command not implemented");
  if (in_transaction_ || bdat_active_ || bdat_failed_) {
    return Say(503, "5.5.1", "Error: MAIL transaction in progress");
  }
  return Step{Reply::Make(220, "2.0.0", "Ready to start TLS"), Action::kStartTls};
}

Step SessionMachine::OnEtrn(const smtp::Command& command) {
  // RFC 1985 predates enhanced status codes; Postfix answers ETRN without them.
  if (command.argument.empty()) return Step{Reply::Plain(500, "Syntax: ETRN domain"), Action::kNone};
  if (auto refused = RequireTls()) return *refused;
  if (in_transaction_ || bdat_active_ || bdat_failed_) {
    return Step{Reply::Plain(503, "Error: MAIL transaction in progress"), Action::kNone};
  }
  absl::string_view argument = command.argument;
  bool subdomains = false;
  if (argument.front() == '#') {  // A named queue: Postgate has none.
    return Step{Reply::Plain(459, absl::StrCat("<", argument.substr(1), ">: service unavailable")),
                Action::kNone};
  }
  if (argument.front() == '@') {
    subdomains = true;
    argument.remove_prefix(1);
  }
  std::string domain = absl::AsciiStrToLower(argument);
  while (!domain.empty() && domain.back() == '.') domain.pop_back();
  if (!smtp::IsValidDomain(domain)) {
    return Step{Reply::Plain(501, "Error: invalid parameter syntax"), Action::kNone};
  }
  if (!decider_.MayFlush(domain)) {
    return Step{Reply::Plain(459, absl::StrCat("<", domain, ">: service unavailable")), Action::kNone};
  }
  etrn_request_ = {domain, subdomains};
  return Step{std::nullopt, Action::kFlushQueue};
}

Step SessionMachine::EtrnFinished(bool ok) {
  return Step{ok ? Reply::Plain(250, "Queuing started") : Reply::Plain(458, "Unable to queue messages"),
              Action::kNone};
}

Step SessionMachine::OnAuth(const smtp::Command& command) {
  // Postfix's checks, in its order (smtpd_sasl_auth_cmd).
  if (!auth_offered()) return Say(503, "5.5.1", "Error: authentication not enabled");
  if (in_transaction_ || bdat_active_ || bdat_failed_) return Say(503, "5.5.1", "Error: MAIL transaction in progress");
  if (!sasl_username_.empty()) return Say(503, "5.5.1", "Error: already authenticated");
  if (std::optional<size_t> rate = decider_.AuthRateExceeded()) {
    auth_rate_exceeded_ = rate;
    return Say(450, "4.7.1", absl::StrCat("Error: too many AUTH commands from ", decider_.ClientAddress()));
  }
  std::vector<absl::string_view> words = absl::StrSplit(command.argument, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (words.empty() || words.size() > 2) return Say(501, "5.5.4", "Syntax: AUTH mechanism");
  login_ = LoginAttempt{absl::AsciiStrToUpper(words[0]), {}, {}};
  if (login_.mechanism != "PLAIN" && login_.mechanism != "LOGIN") {
    return AuthRefused("no mechanism available");
  }
  const bool initial = words.size() == 2;
  if (login_.mechanism == "PLAIN") {
    if (initial) return AuthMessage(words[1] == "=" ? "" : words[1]);  // "=": an empty response.
    auth_stage_ = AuthStage::kPlainResponse;
    return Step{Reply{334, {""}}, Action::kNone};
  }
  auth_stage_ = AuthStage::kLoginUser;
  if (initial && words[1] == "=") return AuthRefused("bad protocol / cancel");  // As Postfix with Cyrus.
  if (initial) return AuthMessage(words[1]);
  return Step{Reply{334, {"VXNlcm5hbWU6"}}, Action::kNone};  // "Username:"
}

Step SessionMachine::OnAuthResponse(const smtp::CommandLine& line) {
  last_verb_ = smtp::Verb::kAuth;
  if (line.too_long) return AuthRefused("bad protocol / cancel");
  const absl::string_view response = absl::StripAsciiWhitespace(line.text);
  if (response == "*") {
    auth_failure_ = AuthFailure{login_.mechanism, "", true};
    auth_stage_ = AuthStage::kNone;
    login_ = {};
    return Say(501, "5.7.0", "Authentication aborted");
  }
  return AuthMessage(response);
}

// The reasons below are the ones Debian's Postfix 3.7 with Cyrus SASL gives for the same input
// (compared side by side; tests/README.md).
Step SessionMachine::AuthMessage(absl::string_view base64) {
  if (login_.mechanism == "PLAIN") {
    std::string decoded;
    const bool readable = absl::Base64Unescape(base64, &decoded) && !decoded.empty();
    sasl::Secret wipe(std::move(decoded));
    if (!readable) return AuthRefused("another step is needed in authentication");
    absl::StatusOr<sasl::PlainMessage> plain = sasl::DecodePlain(base64);
    if (!plain.ok() || plain->user.empty()) return AuthRefused("bad protocol / cancel");
    // An authorization identity other than the user itself: acting as someone else, refused.
    if (!plain->authzid.empty() && plain->authzid != plain->user) {
      return AuthRefused("authentication failure", plain->authzid);
    }
    login_.user = plain->user;
    login_.password = std::move(plain->password);
  } else {
    std::string decoded;
    if (!absl::Base64Unescape(base64, &decoded)) {
      sasl::Secret wipe(std::move(decoded));
      return AuthRefused("bad protocol / cancel");
    }
    if (auth_stage_ == AuthStage::kLoginUser) {
      // An empty line is an empty user name: asked for a password, then refused.
      login_.user = std::move(decoded);
      auth_stage_ = AuthStage::kLoginPassword;
      return Step{Reply{334, {"UGFzc3dvcmQ6"}}, Action::kNone};  // "Password:"
    }
    login_.password = sasl::Secret(std::move(decoded));
  }
  auth_stage_ = AuthStage::kChecking;
  return Step{std::nullopt, Action::kCheckLogin};
}

Step SessionMachine::LoginChecked(bool ok, bool temporary) {
  auth_stage_ = AuthStage::kNone;
  LoginAttempt attempt = std::exchange(login_, LoginAttempt{});
  if (ok) {
    sasl_username_ = attempt.user;
    sasl_method_ = attempt.mechanism;
    decider_.LoggedIn(sasl_username_);
    return Say(235, "2.7.0", "Authentication successful");
  }
  login_.mechanism = attempt.mechanism;  // For the failure's warning line.
  ++error_count_;  // The AUTH command failed, as an error reply from OnLine would count.
  if (temporary) {
    auth_failure_ = AuthFailure{attempt.mechanism, "temporary failure", false, attempt.user};
    return Say(454, "4.7.0", "Temporary authentication failure: temporary failure");
  }
  return AuthRefused("authentication failure", attempt.user);
}

Step SessionMachine::AuthRefused(absl::string_view reason, std::string user) {
  auth_failure_ = AuthFailure{login_.mechanism, std::string(reason), false, std::move(user)};
  auth_stage_ = AuthStage::kNone;
  login_ = {};
  return Say(535, "5.7.8", absl::StrCat("Error: authentication failed: ", reason));
}

void SessionMachine::TlsStarted() {
  // RFC 3207 §4.2: forget everything learned from the client before the handshake.
  tls_active_ = true;
  helo_.clear();
  esmtp_ = false;
  sasl_username_.clear();
  sasl_method_.clear();
  ResetTransaction();
}

Step SessionMachine::OnBdat(const smtp::Command& command) {
  std::vector<absl::string_view> words =
      absl::StrSplit(command.argument, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  uint64_t size = 0;
  // Without a valid count the server cannot find the next command in the stream: it must close.
  if (words.empty() || words.size() > 2 || words[0].size() > 19 ||
      !std::all_of(words[0].begin(), words[0].end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(words[0], &size) ||
      (words.size() == 2 && !absl::EqualsIgnoreCase(words[1], "LAST"))) {
    return Step{Reply::Make(521, "5.5.4", "Syntax: BDAT count [LAST]"), Action::kClose};
  }
  bdat_chunk_ = BdatChunk{size, words.size() == 2, false, false};
  if (bdat_failed_) {
    bdat_chunk_.discard = true;
  } else if (!in_transaction_ || transaction_.recipients.empty()) {
    bdat_chunk_.discard = true;
    bdat_error_ = in_transaction_ && any_recipient_tried_
                      ? Reply::Make(554, "5.5.1", "Error: no valid recipients")
                      : Reply::Make(503, "5.5.1", "Error: need RCPT command");
  } else {
    bdat_chunk_.open_queue = !bdat_active_;
    bdat_active_ = true;
  }
  return Step{std::nullopt, Action::kReadChunk};
}

Step SessionMachine::BdatChunkRead(BdatOutcome outcome, uint64_t message_bytes,
                                   const std::string& queue_id, const smtp::Reply* rejection) {
  const bool last = bdat_chunk_.last;
  Step step;
  switch (outcome) {
    case BdatOutcome::kKept:
      return Say(250, "2.0.0", absl::StrCat("Ok: ", message_bytes, " bytes"));
    case BdatOutcome::kQueued:
      step = Say(250, "2.0.0", absl::StrCat("Ok: ", message_bytes, " bytes queued as ", queue_id));
      break;
    case BdatOutcome::kTooBig:
      step = Say(552, "5.3.4", "Message size exceeds fixed limit");
      break;
    case BdatOutcome::kQueueError:
      step = Say(451, "4.3.0", "Error: queue file write error");
      break;
    case BdatOutcome::kNoStorage:
      step = Say(452, "4.3.1", "Insufficient system storage");
      break;
    case BdatOutcome::kBareNewline:
      step = Step{BareNewlineReply(), Action::kNone};
      break;
    case BdatOutcome::kTooManyHops:
      step = Say(554, "5.4.0", "Error: too many hops");
      break;
    case BdatOutcome::kContentRejected:
      step = rejection != nullptr ? Step{*rejection, Action::kNone} : Say(550, "5.7.1", "message content rejected");
      break;
    case BdatOutcome::kDiscarded:
      step = bdat_error_ ? Step{*bdat_error_, Action::kNone}
                         : Say(551, "5.0.0", absl::StrCat("Discarded ", bdat_chunk_.size,
                                                          " bytes after earlier error"));
      break;
  }
  bdat_error_.reset();
  if (last) {
    ResetTransaction();
    after_message_ = true;
  } else if (outcome != BdatOutcome::kQueued) {
    bdat_failed_ = true;  // Discard every further chunk of this message until LAST or RSET.
  }
  return step;
}

}  // namespace postgate::gateway::protocol
