// The SMTP server state machine of one session (RFC 5321 §4.1.4 command order, Postfix's replies).
// Input: command lines; output: the reply and an Action for the caller (session/) to perform –
// opening the queue, reading DATA, closing. Whether a sender or recipient is *allowed* is not
// decided here but by a Decider (implemented in policy/); this file only knows the protocol.
// Pure: no sockets, clocks or threads. One instance per connection, not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/smtp/command.h"
#include "core/smtp/line_reader.h"
#include "core/smtp/reply.h"
#include "core/sasl/secret.h"

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

// What DNS said about a domain (reject_unknown_sender_domain's question).
enum class DomainLookup { kExists, kNullMx, kNotFound, kTempFail };

// The questions the state machine asks about one session's addresses.
class Decider {
 public:
  virtual ~Decider() = default;
  virtual Verdict CheckSender(const std::string& address) = 0;     // "" is the null sender.
  virtual Verdict CheckRecipient(const std::string& address) = 0;
  // VRFY: accept means "252 <as given>"; a reject carries the reply.
  virtual Verdict Verify(const std::string& address) = 0;
  // ETRN: may this client ask to flush mail for `domain` (Postfix's fast_flush_domains)?
  virtual bool MayFlush(const std::string& domain) = 0;
  // The client logged in with SMTP AUTH as `user` (permit_sasl_authenticated, sender login maps).
  virtual void LoggedIn(const std::string& user) { (void)user; }
  // An AUTH command: how many this client has sent in the current time unit, this one included,
  // when that is over smtpd_client_auth_rate_limit; otherwise (or no limit) nullopt.
  virtual std::optional<size_t> AuthRateExceeded() { return std::nullopt; }
  // The client's address, as Postfix's replies quote it ("too many AUTH commands from …").
  virtual std::string ClientAddress() const { return "unknown"; }
  // A domain the next RCPT's checks need DNS's word on (reject_unknown_sender_domain: the
  // sender's), or nullopt. The session looks it up, without blocking, and tells DomainLookedUp
  // before it hands that RCPT to the state machine.
  virtual std::optional<std::string> DomainToLookUp() { return std::nullopt; }
  virtual void DomainLookedUp(const std::string& domain, DomainLookup answer) {
    (void)domain;
    (void)answer;
  }
};

struct ProtocolLimits {
  std::string hostname;                  // $myhostname, first line of the EHLO reply.
  std::string banner;                    // $smtpd_banner, after "220 ".
  uint64_t message_size_limit = 10240000;  // 0: no limit.
  size_t recipient_limit = 1000;         // smtpd_recipient_limit.
  bool strict_smtputf8 = false;          // strict_smtputf8: non-ASCII addresses need SMTPUTF8.
  size_t hard_error_limit = 20;          // smtpd_hard_error_limit: then 421 and disconnect.
  size_t junk_command_limit = 100;       // smtpd_junk_command_limit: then NOOP/RSET/VRFY/ETRN count as errors.
  bool tls_available = false;            // A certificate is loaded: STARTTLS is offered.
  bool tls_required = false;             // smtpd_tls_security_level = encrypt.
  int bare_newline_reject_code = 550;    // smtpd_forbid_bare_newline_reject_code.
  // SMTP AUTH (RFC 4954) with PLAIN and LOGIN: smtpd_sasl_auth_enable, smtpd_tls_auth_only (offered
  // and accepted only inside TLS), broken_sasl_auth_clients (also announced as "AUTH=…").
  bool auth_enabled = false;
  bool auth_tls_only = false;
  bool auth_broken_clients = false;
};

// A login the client completed, for the session to check (a password hash takes milliseconds:
// not on the I/O thread). Holds the password until LoginChecked.
struct LoginAttempt {
  std::string mechanism;  // "PLAIN" or "LOGIN"
  std::string user;
  sasl::Secret password;
};

// Why the last AUTH did not log in, for Postfix's warning line ("SASL PLAIN authentication
// failed: authentication failure, sasl_username=foo" / "SASL LOGIN authentication aborted").
struct AuthFailure {
  std::string mechanism;
  std::string reason;
  bool aborted = false;
  std::string user{};  // "" when the client never got as far as naming one: "(unavailable)".
};

enum class BodyType { kUnspecified, k7Bit, k8BitMime };

// DSN requests (RFC 3461).
enum class DsnReturn { kUnspecified, kFull, kHeaders };  // MAIL … RET=

struct RecipientDsn {  // RCPT … NOTIFY= ORCPT=
  bool notify_given = false;  // Without NOTIFY the server chooses (failures and delays).
  bool success = false, failure = false, delay = false;  // NOTIFY=NEVER: all false, given.
  std::string original_recipient;  // ORCPT decoded: "rfc822;bar@mail169.com", or "".
};

// What MAIL … DATA gathered: one mail transaction.
struct Transaction {
  std::string sender;
  std::vector<std::string> recipients;
  BodyType body_type = BodyType::kUnspecified;
  uint64_t declared_size = 0;
  bool smtputf8 = false;  // MAIL FROM … SMTPUTF8 (RFC 6531).
  DsnReturn dsn_return = DsnReturn::kUnspecified;
  std::string envid;                       // ENVID decoded; "" when absent.
  std::vector<RecipientDsn> recipient_dsn;  // Parallel to recipients.
};

enum class Action {
  kNone,
  kOpenQueue,  // DATA accepted by the protocol: open the queue, then call QueueOpened().
  kReadData,   // 354 was sent: decode the body, then call DataFinished().
  kReadChunk,  // BDAT: read bdat_chunk().size bytes (keep or discard them), then BdatChunkRead().
  kClose,      // Send the reply, then close the connection.
  kStartTls,   // Drop unread input (CVE-2011-0411), send the 220, handshake, call TlsStarted().
  kFlushQueue, // ETRN: ask the queue to flush etrn_request(), then call EtrnFinished().
  kCheckLogin, // AUTH: check login_attempt()'s password, then call LoginChecked().
};

struct Step {
  std::optional<smtp::Reply> reply;
  Action action = Action::kNone;
};

enum class DataOutcome {
  kQueued,       // The queue has the message on disk.
  kTooBig,       // More than message_size_limit bytes arrived.
  kQueueError,   // The queue failed or was unreachable; nothing was kept.
  kNoStorage,    // The queue's disk is (nearly) full; nothing was kept.
  kBareNewline,  // smtpd_forbid_bare_newline = reject and a line ended in a bare LF.
  kTooManyHops,  // hopcount_limit Received: headers or more (a mail loop); nothing was kept.
  kContentRejected,  // header_checks REJECT: the reply given to DataFinished; nothing was kept.
};

// The BDAT chunk the session must read next (RFC 3030). The bytes are read in every case – the
// client has sent them – but kept only when `discard` is false.
struct BdatChunk {
  uint64_t size = 0;
  bool last = false;
  bool discard = false;     // Refused or after an earlier error: read and drop.
  bool open_queue = false;  // First chunk of the message: open the queue before keeping bytes.
};

enum class BdatOutcome {
  kKept,        // Chunk stored (not LAST).
  kQueued,      // LAST chunk: the queue has the message on disk.
  kTooBig,      // message_size_limit passed; the rest of the message is discarded.
  kQueueError,  // The queue failed; the rest of the message is discarded.
  kNoStorage,   // The queue's disk is (nearly) full; the rest of the message is discarded.
  kBareNewline, // smtpd_forbid_bare_newline = reject: the chunk had a bare LF; the rest is discarded.
  kTooManyHops, // LAST chunk: hopcount_limit Received: headers or more; nothing was kept.
  kContentRejected,  // LAST chunk: header_checks REJECT (the reply given); nothing was kept.
  kDiscarded,   // The session dropped the bytes as bdat_chunk().discard asked.
};

// RFC 2920 §3.1: EHLO, HELO, DATA, VRFY, NOOP and STARTTLS may only end a pipelined group –
// the client must wait for their reply (Postfix's SMTPD_CMD_FLAG_LAST). A client that sent
// more behind one is not speaking SMTP, or is trying to smuggle (smtpd_forbid_unauth_pipelining).
bool EndsPipelineGroup(smtp::Verb verb);

// Postfix's reply to such a client, after which the session ends.
smtp::Reply ProtocolSynchronizationError();

class SessionMachine {
 public:
  SessionMachine(ProtocolLimits limits, Decider& decider);

  smtp::Reply Greeting() const;
  Step OnLine(const smtp::CommandLine& line);
  // `no_storage`: the queue refused for want of disk space (452 4.3.1 rather than 451 4.3.0).
  Step QueueOpened(bool ok, bool no_storage = false);
  // `rejection`: the reply for kContentRejected.
  Step DataFinished(DataOutcome outcome, const std::string& queue_id, const smtp::Reply* rejection = nullptr);
  // smtpd_forbid_bare_newline = reject, for a command line that ended in a bare LF: Postfix's
  // reply, after which the session ends. The line itself is not a command.
  Step BareNewlineInCommand() const;
  // After kReadChunk. `message_bytes` counts every byte of this message so far.
  Step BdatChunkRead(BdatOutcome outcome, uint64_t message_bytes, const std::string& queue_id,
                     const smtp::Reply* rejection = nullptr);

  // A milter refused the MAIL, or the RCPT, just accepted: the transaction, or that recipient, is
  // undone (the session answers with the milter's reply instead of the 250).
  void MilterRefusedSender();
  void MilterRefusedRecipient();

  // The TLS handshake after kStartTls succeeded: back to the state after the greeting.
  void TlsStarted();
  bool tls_active() const { return tls_active_; }

  struct EtrnRequest {
    std::string domain;
    bool include_subdomains = false;
  };
  const EtrnRequest& etrn_request() const { return etrn_request_; }
  Step EtrnFinished(bool ok);

  // AUTH. While an exchange is under way the next line is the client's SASL response, not a
  // command: OnLine takes it as such (it must never be logged).
  bool in_auth_exchange() const { return auth_stage_ != AuthStage::kNone && auth_stage_ != AuthStage::kChecking; }
  const LoginAttempt& login_attempt() const { return login_; }
  // After kCheckLogin: `ok` logs the client in; `temporary` (the user table could not be read)
  // answers 454 instead of 535. The password is wiped either way.
  Step LoginChecked(bool ok, bool temporary = false);
  // Whether AUTH is offered now: enabled, and inside TLS when smtpd_tls_auth_only.
  bool auth_offered() const { return limits_.auth_enabled && (!limits_.auth_tls_only || tls_active_); }
  // Postfix's sasl_username and sasl_method once logged in ("" before).
  const std::string& sasl_username() const { return sasl_username_; }
  const std::string& sasl_method() const { return sasl_method_; }
  // The failure of the AUTH just answered, once (for the session's warning line).
  std::optional<AuthFailure> TakeAuthFailure() { return std::exchange(auth_failure_, std::nullopt); }
  // The count of an AUTH command refused by smtpd_client_auth_rate_limit, once (for Postfix's
  // "AUTH command rate limit exceeded" warning).
  std::optional<size_t> TakeAuthRateExceeded() { return std::exchange(auth_rate_exceeded_, std::nullopt); }

  const BdatChunk& bdat_chunk() const { return bdat_chunk_; }
  // A BDAT message is under way (chunks were sent, LAST not yet): the session keeps its upload.
  bool bdat_in_progress() const { return bdat_active_ && !bdat_failed_; }

  const Transaction& transaction() const { return transaction_; }
  const std::string& helo() const { return helo_; }
  // The address of the last RCPT command, accepted or not ("to=<…>" in a reject's log line).
  const std::string& last_recipient() const { return last_recipient_; }
  bool esmtp() const { return esmtp_; }
  // Verb of the last line, for logs and per-verb metrics.
  smtp::Verb last_verb() const { return last_verb_; }
  // Where the session is, as Postfix's logs name it: "CONNECT" before any command, then the
  // last command's verb, "END-OF-MESSAGE" after a message's final reply.
  absl::string_view stage() const;
  // Between MAIL and the end of the message (transaction().sender is meaningful).
  bool in_transaction() const { return in_transaction_; }
  // Error replies so far (Postfix's error count; the session slows down past the soft limit).
  size_t error_count() const { return error_count_; }

 private:
  Step Dispatch(const smtp::CommandLine& line);
  Step OnHelo(const smtp::Command& command, bool extended);
  Step OnMail(const smtp::Command& command);
  Step OnRcpt(const smtp::Command& command);
  Step OnData(const smtp::Command& command);
  Step OnVrfy(const smtp::Command& command);
  Step OnBdat(const smtp::Command& command);
  Step OnStartTls(const smtp::Command& command);
  Step OnEtrn(const smtp::Command& command);
  Step OnAuth(const smtp::Command& command);
  Step OnAuthResponse(const smtp::CommandLine& line);
  // Takes one base64 SASL message of the exchange (PLAIN's, or LOGIN's user name or password).
  Step AuthMessage(absl::string_view base64);
  Step AuthRefused(absl::string_view reason, std::string user = "");
  // 530 5.7.0 while TLS is required and not yet active.
  std::optional<Step> RequireTls() const;
  // 553 5.6.7 when `address` is not ASCII in a transaction without SMTPUTF8 (strict_smtputf8).
  std::optional<Step> CheckUtf8Address(const std::string& address, bool smtputf8) const;
  void ResetTransaction();
  smtp::Reply BareNewlineReply() const;

  ProtocolLimits limits_;
  Decider& decider_;
  std::string helo_;
  std::string last_recipient_;
  bool esmtp_ = false;
  bool tls_active_ = false;
  bool in_transaction_ = false;
  bool any_recipient_tried_ = false;
  Transaction transaction_;
  bool bdat_active_ = false;  // At least one BDAT in this transaction.
  bool bdat_failed_ = false;  // An earlier BDAT failed: discard until LAST or RSET.
  std::optional<smtp::Reply> bdat_error_;  // Reply owed for the chunk being discarded.
  BdatChunk bdat_chunk_;
  EtrnRequest etrn_request_;
  smtp::Verb last_verb_ = smtp::Verb::kUnknown;
  bool any_command_ = false;
  bool after_message_ = false;  // The last reply ended a message (stage() "END-OF-MESSAGE").
  size_t error_count_ = 0;
  size_t junk_count_ = 0;
  enum class AuthStage { kNone, kPlainResponse, kLoginUser, kLoginPassword, kChecking };
  AuthStage auth_stage_ = AuthStage::kNone;
  LoginAttempt login_;
  std::string sasl_username_, sasl_method_;
  std::optional<AuthFailure> auth_failure_;
  std::optional<size_t> auth_rate_exceeded_;
};

}  // namespace postgate::gateway::protocol
