#include "smtp-gateway/session/smtp_session.h"

#include <sys/socket.h>

#include <algorithm>
#include <memory>
#include <tuple>
#include <variant>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "asio/co_spawn.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/experimental/awaitable_operators.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/ssl/stream.hpp"
#include "asio/steady_timer.hpp"
#include "asio/use_awaitable.hpp"
#include "asio/write.hpp"
#include "core/io/awaitable_callback.h"
#include "core/smtp/address.h"
#include "core/smtp/command.h"
#include "core/smtp/data_decoder.h"
#include "core/smtp/header_body_separator.h"
#include "core/smtp/line_endings.h"
#include "core/smtp/line_reader.h"
#include "core/smtp/proxy_protocol.h"
#include "smtp-gateway/policy/network.h"
#include "smtp-gateway/cleanup/message_cleanup.h"
#include "smtp-gateway/dkim/dkim_signer.h"
#include "smtp-gateway/milter/session_milters.h"
#include "smtp-gateway/protocol/received_header.h"
#include "smtp-gateway/session/client_name.h"
#include "smtp-gateway/session/milter_support.h"
#include "core/base/absl_fmt.h"
#include "spdlog/spdlog.h"

namespace postgate::gateway {
namespace {

using namespace asio::experimental::awaitable_operators;
using asio::ip::tcp;

constexpr auto kAsTuple = asio::experimental::as_tuple(asio::use_awaitable);
// Commands are read 4 KiB at a time: an idle session holds no more (10,000 of them at once). A
// message's content is read in 64 KiB pieces, which takes a 100 KiB message in 2 reads, not 25.
constexpr size_t kReadSize = 4096;
constexpr size_t kContentReadSize = 64 * 1024;
// Content goes to the queue in pieces of this size: a session never holds more of a message.
constexpr size_t kChunkSize = 64 * 1024;

// Per-verb counts for Postfix's "disconnect from … ehlo=1 mail=1 rcpt=0/1 … commands=3/4".
class CommandTally {
 public:
  void Count(smtp::Verb verb, bool ok) {
    for (Entry& entry : entries_) {
      if (entry.verb == verb) {
        entry.ok += ok;
        entry.total++;
        return;
      }
    }
    entries_.push_back({verb, ok ? 1 : 0, 1});
  }
  std::string Summary() const {
    std::string out;
    int ok = 0, total = 0;
    for (const Entry& entry : entries_) {
      absl::StrAppend(&out, " ", absl::AsciiStrToLower(smtp::VerbName(entry.verb)), "=",
                      Fraction(entry.ok, entry.total));
      ok += entry.ok;
      total += entry.total;
    }
    // Postfix writes "0/0" for a session without commands: any "/" marks an unusual session.
    absl::StrAppend(&out, " commands=", total == 0 ? "0/0" : Fraction(ok, total));
    return out;
  }

 private:
  struct Entry {
    smtp::Verb verb;
    int ok, total;
  };
  static std::string Fraction(int ok, int total) {
    return ok == total ? absl::StrCat(ok) : absl::StrCat(ok, "/", total);
  }
  std::vector<Entry> entries_;
};

class SmtpSession {
 public:
  SmtpSession(tcp::socket socket, const SessionEnvironment& environment)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        watchdog_(socket_.get_executor()),
        env_(environment),
        log_(environment.log ? *environment.log : *spdlog::default_logger()),
        cleanup_log_(environment.cleanup_log ? *environment.cleanup_log : *spdlog::default_logger()),
        reader_(environment.line_length_limit) {}

  ~SmtpSession() {
    *alive_ = false;
    if (admitted_) env_.client_limiter->Release(LimiterKey());
    if (drain_handle_ != 0) env_.drain->Unregister(drain_handle_);
  }

  asio::awaitable<void> Run() {
    // A drain nudge runs on this session's executor, so it never races the coroutine.
    auto executor = socket_.get_executor();
    std::shared_ptr<bool> alive = alive_;
    drain_handle_ = env_.drain->Register([this, executor, alive] {
      asio::post(executor, [this, alive] {
        if (*alive && !busy()) socket_.cancel();  // Wakes the idle read; ReadMore says 421.
      });
    });
    std::error_code ignored;
    tcp::endpoint peer = socket_.remote_endpoint(ignored);
    address_ = peer.address().is_v6() && peer.address().to_v6().is_v4_mapped()
                   ? asio::ip::make_address_v4(asio::ip::v4_mapped, peer.address().to_v6()).to_string()
                   : peer.address().to_string();
    socket_.set_option(tcp::no_delay(true), ignored);
    socket_.non_blocking(true, ignored);  // Flush writes at once and never blocks the thread.
    if (env_.proxy_networks != nullptr && !co_await ReadProxyHeader()) {
      socket_.close(ignored);
      co_return;
    }
    // No co_await inside ?: – g++ 12 miscompiles that (the temporary string dangles).
    hostname_ = "unknown";
    if (env_.peername_lookup) {
      // The client's address: from the PROXY header when a load balancer sent one.
      asio::ip::address client = asio::ip::make_address(address_, ignored);
      hostname_ = co_await LookUpName(client);
    }
    client_ = absl::StrCat(hostname_, "[", address_, "]");
    log_.info("connect from {}", client_);
    env_.metrics->connections.Increment();
    env_.metrics->active_sessions.Increment();

    bare_newline_ = BareNewlineForClient();
    decider_ = env_.policy->ForClient(address_);
    machine_.emplace(env_.limits, *decider_);
    // smtpd_tls_wrappermode: the handshake comes first; everything after, the greeting too, is
    // inside TLS. A client that cannot finish it is logged and dropped, as Postfix does.
    bool handshake_failed = false;
    if (env_.tls_wrappermode) handshake_failed = !co_await Handshake();
    if (handshake_failed) {
      log_.info("disconnect from {}{}", client_, tally_.Summary());
      env_.metrics->active_sessions.Decrement();
      socket_.close(ignored);
      co_return;
    }
    if (std::optional<std::string> refusal = AdmitClient()) {
      co_await SayAndClose(*refusal);
    } else if (env_.drain->draining()) {
      co_await SayShuttingDown();  // Instead of the greeting: come back to another instance.
    } else {
      std::optional<smtp::Reply> greeting = co_await MilterConnect(peer.port());
      if (greeting && greeting->code == 421) {
        co_await SayAndClose(greeting->Format());
      } else {
        greeting.value_or(machine_->Greeting()).AppendTo(&output_);
        co_await Serve();
      }
    }
    if (milters_) co_await milters_->Quit();

    if (tls_) {
      // close_notify, as Postfix's SSL_shutdown: clients treat a bare TCP close as truncation.
      timer_.expires_after(std::chrono::seconds(2));
      co_await (tls_->async_shutdown(kAsTuple) || timer_.async_wait(kAsTuple));
    }
    env_.metrics->active_sessions.Decrement();
    log_.info("disconnect from {}{}{}", client_, tally_.Summary(), noted_bare_lf_ ? " notes=bare_lf" : "");
    socket_.close(ignored);
  }

 private:
  // The load balancer's PROXY header: the real client address replaces the connection's.
  // False (connection to be dropped) for an untrusted sender, a bad header or a timeout.
  asio::awaitable<bool> ReadProxyHeader() {
    absl::StatusOr<policy::IpAddress> peer = policy::IpAddress::Parse(address_);
    if (!peer.ok() || !env_.proxy_networks->Contains(*peer)) {
      log_.warn("connection from {} refused: not in postgate_proxy_networks", address_);
      co_return false;
    }
    const auto deadline = std::chrono::steady_clock::now() + env_.proxy_timeout;
    for (;;) {
      smtp::ProxyHeader header = smtp::ParseProxyHeader(input_);
      if (header.result == smtp::ProxyHeader::Result::kDone) {
        input_.erase(0, header.consumed);
        if (header.has_address) {
          absl::StatusOr<policy::IpAddress> client = policy::IpAddress::Parse(header.source_address);
          address_ = client.ok() ? client->ToString() : header.source_address;
        }
        co_return true;
      }
      if (header.result == smtp::ProxyHeader::Result::kInvalid) {
        log_.warn("haproxy read: {} from {}", header.error, address_);
        co_return false;
      }
      const auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::steady_clock::duration::zero()) {
        log_.warn("haproxy read: timeout error from {}", address_);
        co_return false;
      }
      const size_t old_size = input_.size();
      input_.resize(old_size + 256);
      timer_.expires_after(left);
      auto result = co_await (socket_.async_read_some(asio::buffer(input_.data() + old_size, 256), kAsTuple) ||
                              timer_.async_wait(kAsTuple));
      const size_t got = result.index() == 0 ? std::get<1>(std::get<0>(result)) : 0;
      input_.resize(old_size + got);
      if (result.index() != 0 || std::get<0>(std::get<0>(result))) {
        if (result.index() != 0) log_.warn("haproxy read: timeout error from {}", address_);
        co_return false;
      }
    }
  }

  // smtpd_client_connection_count_limit and _rate_limit, unless the client is one of
  // smtpd_client_event_limit_exceptions: nullopt, or Postfix's 421 to send instead of a greeting.
  std::optional<std::string> AdmitClient() {
    if (env_.client_limiter == nullptr) return std::nullopt;
    absl::StatusOr<policy::IpAddress> ip = policy::IpAddress::Parse(address_);
    if (ip.ok() && env_.limit_exceptions != nullptr && env_.limit_exceptions->Contains(*ip)) return std::nullopt;
    const policy::ClientLimiter::Admission admission =
        env_.client_limiter->Admit(LimiterKey(), env_.client_limits, absl::Now());
    if (admission.verdict == policy::ClientLimiter::Verdict::kAdmitted) {
      admitted_ = true;
      return std::nullopt;
    }
    const bool rate = admission.verdict == policy::ClientLimiter::Verdict::kTooFast;
    log_.warn("Connection {} limit exceeded: {} from {} for service {}", rate ? "rate" : "concurrency",
                 admission.count, client_, env_.service_name);
    env_.metrics->CountReject(rate ? "connection_rate" : "connection_count");
    return absl::StrCat("421 4.7.0 ", env_.limits.hostname, " Error: too many connections from ", address_, "\r\n");
  }

  // smtpd_forbid_bare_newline for this client: "no" for one in smtpd_forbid_bare_newline_exclusions.
  BareNewline BareNewlineForClient() const {
    if (env_.bare_newline == BareNewline::kAllow || env_.bare_newline_exclusions == nullptr) return env_.bare_newline;
    absl::StatusOr<policy::IpAddress> ip = policy::IpAddress::Parse(address_);
    return ip.ok() && env_.bare_newline_exclusions->Contains(*ip) ? BareNewline::kAllow : env_.bare_newline;
  }

  // Postfix's log line for a bare-LF refusal (its log_whatsup): "<queue id or NOQUEUE>: reject:
  // <stage> from host[addr]: bare <LF> received; from=<…> to=<…> proto=… helo=<…>", each of
  // from, to and helo only once known. Counted too; the reply's own log and count are skipped.
  void LogBareNewlineReject(absl::string_view queue_id, absl::string_view stage) {
    const protocol::Transaction& transaction = machine_->transaction();
    std::string line = absl::StrCat(queue_id, ": reject: ", stage, " from ", client_, ": bare <LF> received;");
    if (machine_->in_transaction()) absl::StrAppend(&line, " from=<", transaction.sender, ">");
    if (!transaction.recipients.empty()) absl::StrAppend(&line, " to=<", transaction.recipients.back(), ">");
    absl::StrAppend(&line, " proto=", machine_->esmtp() ? "ESMTP" : "SMTP");
    if (!machine_->helo().empty()) absl::StrAppend(&line, " helo=<", machine_->helo(), ">");
    log_.info("{}", line);
    env_.metrics->CountReject("bare_newline");
    reject_accounted_ = true;
  }

  // A message is being received (DATA, or BDAT chunks before LAST): a drain lets it finish.
  bool busy() const { return in_message_ || bdat_message_.has_value(); }

  // 421 and a graceful close: stop sending, then read (and drop) what the client still sends
  // until it closes, so unread input never turns our close into a reset that eats the 421.
  asio::awaitable<void> SayShuttingDown() { co_await SayAndClose("421 4.3.2 Service shutting down\r\n"); }

  asio::awaitable<void> SayAndClose(std::string reply) {
    output_.clear();
    output_ += reply;
    if (!co_await Flush() || tls_) co_return;
    std::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    char sink[1024];
    timer_.expires_after(std::chrono::seconds(2));
    for (;;) {
      auto result = co_await (socket_.async_read_some(asio::buffer(sink), kAsTuple) ||
                              timer_.async_wait(kAsTuple));
      if (result.index() != 0 || std::get<0>(std::get<0>(result))) break;
    }
  }

  // The command loop; returns when the session is over for any reason.
  asio::awaitable<void> Serve() {
    for (;;) {
      if (env_.drain->draining() && !busy()) {
        co_await Flush();  // Replies already owed go out first.
        co_await SayShuttingDown();
        co_return;
      }
      size_t consumed = 0;
      std::optional<smtp::CommandLine> line = reader_.Next(input_, &consumed);
      if (!line) {
        input_.erase(0, consumed);
        // Nothing complete left: answer the whole pipelined group, then wait for more.
        if (!co_await Flush()) co_return;
        if (!co_await ReadMore(/*within_record=*/!input_.empty())) co_return;
        continue;
      }
      if (line->bare_lf && !line->too_long) {  // Postfix checks the length first, too.
        if (bare_newline_ == BareNewline::kReject) {
          LogBareNewlineReject("NOQUEUE", machine_->stage());
          machine_->BareNewlineInCommand().reply->AppendTo(&output_);
          co_await Flush();
          co_return;
        }
        noted_bare_lf_ |= bare_newline_ == BareNewline::kNote;
      }
      if (ImproperPipelining(*line, consumed)) {
        Answer(protocol::Step{protocol::ProtocolSynchronizationError(), protocol::Action::kClose});
        co_await Flush();
        co_return;
      }
      if (machine_->in_transaction() && absl::StartsWithIgnoreCase(line->text, "RCPT")) {
        // reject_unknown_sender_domain: DNS answers before the checks run (they are pure).
        if (std::optional<std::string> domain = decider_->DomainToLookUp()) {
          const protocol::DomainLookup answer = co_await LookUpDomain(*domain);
          decider_->DomainLookedUp(*domain, answer);
        }
      }
      const std::string command_text = milters_ ? std::string(line->text) : std::string();
      protocol::Step step = machine_->OnLine(*line);
      input_.erase(0, consumed);  // `line` points into input_: only now may it move.
      if (step.action == protocol::Action::kCheckLogin) step = co_await CheckLogin();
      if (milters_) step = co_await AskMilters(std::move(step), command_text);
      if (step.reply && step.reply->code >= 400 && step.reply->code != 421 &&
          machine_->error_count() > env_.soft_error_limit) {
        // Postfix's tarpit: a client past smtpd_soft_error_limit waits before each error reply.
        timer_.expires_after(env_.error_sleep);
        co_await timer_.async_wait(kAsTuple);
      }
      if (step.action == protocol::Action::kOpenQueue || step.action == protocol::Action::kReadChunk) {
        const smtp::Verb verb = machine_->last_verb();
        in_message_ = true;
        // No co_await inside ?: – g++ 12 miscompiles it (see Run()).
        if (verb == smtp::Verb::kBdat) {
          step = co_await ReceiveChunk();
        } else {
          step = co_await ReceiveData();
        }
        in_message_ = false;
        if (!step.reply) {  // The client went away in the middle of the message.
          tally_.Count(verb, false);
          co_return;
        }
      }
      // RSET, EHLO, QUIT… ended a BDAT message under way: drop (cancel) its upload.
      if (bdat_message_ && !machine_->bdat_in_progress()) bdat_message_.reset();
      // A transaction that ended without its message: the milters forget it (SMFIC_ABORT).
      if (milters_ && !machine_->in_transaction()) co_await milters_->Abort();
      if (std::exchange(milter_shutdown_, false)) step.action = protocol::Action::kClose;
      Answer(step);
      if (step.action == protocol::Action::kClose) {
        co_await Flush();
        co_return;
      }
      if (step.action == protocol::Action::kStartTls && !co_await StartTls()) co_return;
      if (step.action == protocol::Action::kFlushQueue) {
        const protocol::SessionMachine::EtrnRequest& etrn = machine_->etrn_request();
        absl::StatusOr<uint32_t> flushed = co_await env_.queue->Flush(etrn.domain, etrn.include_subdomains);
        if (!flushed.ok()) {
          log_.warn("ETRN {} from {}: {}", etrn.domain, client_, flushed.status().ToString());
        }
        Answer(machine_->EtrnFinished(flushed.ok()));
      }
    }
  }

  // Client input for a log line, cut at an AUTH command's mechanism: a client that pipelines its
  // credentials – in the AUTH line or in the lines of the exchange after it – must not find them
  // in our logs.
  static std::string WithoutCredentials(absl::string_view input) {
    std::string out;
    bool first = true;
    for (absl::string_view line : absl::StrSplit(input, '\n')) {
      if (!std::exchange(first, false)) out += '\n';
      const absl::string_view text = absl::StripSuffix(line, "\r");
      if (absl::StartsWithIgnoreCase(text, "AUTH ")) {
        const size_t mechanism_end = text.find(' ', 5);
        absl::StrAppend(&out, text.substr(0, mechanism_end), " ***");
        break;
      }
      out.append(line.data(), line.size());
    }
    return out;
  }

  // A command that must end its pipelined group (RFC 2920) with more input behind it: logged as
  // Postfix logs it, and – with smtpd_forbid_unauth_pipelining, unless the client has logged
  // in – refused. Pending input is what the line reader holds beyond `line` and, without TLS, what
  // waits in the socket.
  bool ImproperPipelining(const smtp::CommandLine& line, size_t consumed) {
    if (line.too_long) return false;
    const smtp::Command command = smtp::ParseCommand(line.text);
    if (!protocol::EndsPipelineGroup(command.verb)) return false;
    std::error_code error;
    const size_t waiting = tls_ ? 0 : socket_.available(error);
    if (input_.size() <= consumed && waiting == 0) return false;
    std::string pending = input_.substr(consumed, 100);
    if (pending.size() < 100 && waiting > 0) {
      std::string more(std::min<size_t>(waiting, 100 - pending.size()), '\0');
      const ssize_t n = ::recv(socket_.native_handle(), more.data(), more.size(), MSG_PEEK | MSG_DONTWAIT);
      if (n > 0) pending.append(more.data(), static_cast<size_t>(n));
    }
    log_.info("improper command pipelining after {} from {}: {}",
                 smtp::VerbName(command.verb), client_, absl::CEscape(WithoutCredentials(pending)));
    return env_.forbid_unauth_pipelining && machine_->sasl_username().empty();  // "unauth": not once logged in.
  }

  // After "220 Ready to start TLS": the handshake, then a fresh session inside TLS.
  asio::awaitable<bool> StartTls() {
    if (!input_.empty()) {
      // Sent before the client could have seen our 220: never execute it inside TLS
      // (CVE-2011-0411, the STARTTLS command injection).
      log_.warn("{}: discarding {} bytes pipelined after STARTTLS", client_, input_.size());
      input_.clear();
    }
    if (!co_await Flush()) co_return false;
    // Two statements: "co_return co_await Handshake();" built by g++ 12 dies with SIGILL at the
    // handshake (every test_starttls case; seen 2026-11-30).
    const bool established = co_await Handshake();
    co_return established;
  }

  // The server side of a TLS handshake (after STARTTLS, or at once in wrapper mode); false, logged
  // as Postfix does, when it fails or times out.
  asio::awaitable<bool> Handshake() {
    tls_context_ = env_.tls->Current();
    tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket_, *tls_context_);
    timer_.expires_after(env_.timeout);
    auto result = co_await (tls_->async_handshake(asio::ssl::stream_base::server, kAsTuple) ||
                            timer_.async_wait(kAsTuple));
    if (result.index() != 0 || std::get<0>(std::get<0>(result))) {
      log_.info("SSL_accept error from {}: {}", client_,
                   result.index() == 0 ? std::get<0>(std::get<0>(result)).message() : "timeout");
      co_return false;
    }
    SSL* ssl = tls_->native_handle();
    const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
    int algorithm_bits = 0;
    const int bits = SSL_CIPHER_get_bits(cipher, &algorithm_bits);
    tls_description_ = absl::StrCat(SSL_get_version(ssl), " with cipher ", SSL_CIPHER_get_name(cipher),
                                    " (", bits, "/", algorithm_bits, " bits)");
    log_.info("Anonymous TLS connection established from {}: {}", client_, tls_description_);
    machine_->TlsStarted();
    co_return true;
  }

  // AUTH: the password is checked on the password pool (a hash takes milliseconds by design),
  // then the machine answers 235 or 535.
  asio::awaitable<protocol::Step> CheckLogin() {
    const protocol::LoginAttempt& attempt = machine_->login_attempt();
    policy::LoginDatabase* logins = env_.logins;
    const bool ok = co_await asio::co_spawn(
        *env_.password_checks,
        [logins, &attempt]() -> asio::awaitable<bool> { co_return logins->Verify(attempt.user, attempt.password); },
        asio::use_awaitable);
    const std::string mechanism = attempt.mechanism;
    protocol::Step step = machine_->LoginChecked(ok);
    if (ok) env_.metrics->CountLogin(mechanism, "success");
    co_return step;
  }

  // Postfix's warning lines for a failed or abandoned AUTH (fail2ban's postfix-sasl filter reads
  // them), and the metric.
  void NoteLoginFailure() {
    std::optional<protocol::AuthFailure> failure = machine_->TakeAuthFailure();
    if (!failure) return;
    if (failure->aborted) {
      log_.warn("{}: SASL {} authentication aborted", client_, failure->mechanism);
    } else {
      log_.warn("{}: SASL {} authentication failed: {}, sasl_username={}", client_, failure->mechanism,
                   failure->reason, failure->user.empty() ? "(unavailable)" : absl::CEscape(failure->user));
    }
    env_.metrics->CountLogin(failure->mechanism, failure->aborted ? "aborted" : "failed");
  }

  // smtpd_client_auth_rate_limit refused an AUTH: Postfix's warning (fail2ban reads it) and the
  // reject counter.
  void NoteAuthRateLimit() {
    std::optional<size_t> rate = machine_->TakeAuthRateExceeded();
    if (!rate) return;
    log_.warn("AUTH command rate limit exceeded: {} from {} for service {}", *rate, client_, env_.service_name);
    env_.metrics->CountReject("auth_rate");
  }

  // The client as anvil keys it: the service and the address (each master.cf service counts alone).
  std::string LimiterKey() const { return absl::StrCat(env_.service_name, ":", address_); }

  void Answer(const protocol::Step& step) {
    if (!step.reply) return;
    const smtp::Reply& reply = *step.reply;
    const smtp::Verb verb = machine_->last_verb();
    reply.AppendTo(&output_);
    NoteLoginFailure();
    NoteAuthRateLimit();
    // DATA is counted once, by its final reply; AUTH likewise, not each challenge of its exchange.
    if (reply.code == 354 || reply.code == 334) return;
    env_.metrics->CountCommand(verb, reply.code);
    tally_.Count(verb, reply.code < 400);
    if (std::exchange(reject_accounted_, false)) return;
    if (reply.code >= 400 && (verb == smtp::Verb::kRcpt || verb == smtp::Verb::kData ||
                              verb == smtp::Verb::kMail)) {
      absl::string_view text = reply.lines.empty() ? "" : absl::string_view(reply.lines.front());
      env_.metrics->CountReject(GatewayMetrics::RejectReason(reply.code, text));
      // Postfix's log_whatsup: to=<…> for a recipient's refusal, helo=<…> once the client gave one.
      const std::string to =
          verb == smtp::Verb::kRcpt ? absl::StrCat(" to=<", machine_->last_recipient(), ">") : std::string();
      const std::string helo =
          machine_->helo().empty() ? std::string() : absl::StrCat(" helo=<", machine_->helo(), ">");
      log_.info("NOQUEUE: reject: {} from {}: {} {}; from=<{}>{} proto={}{}", smtp::VerbName(verb), client_, reply.code,
                text, machine_->transaction().sender, to, machine_->esmtp() ? "ESMTP" : "SMTP", helo);
    }
  }

  // One message on its way to the queue, for DATA and for a run of BDAT chunks alike.
  struct MessageInProgress {
    std::unique_ptr<MessageUpload> upload;  // Reset (= cancelled) once the message failed.
    std::string queue_id;
    std::string pending;            // Content not yet written to the queue.
    uint64_t client_bytes = 0;      // Counted against message_size_limit.
    uint64_t stored_bytes = 0;      // Written to the queue.
    bool too_big = false;
    bool bare_newline = false;      // smtpd_forbid_bare_newline = reject, and a bare LF came.
    absl::Status queue_status;      // The first queue failure.
    smtp::CrlfToLf crlf;            // BDAT only: CRLF → LF across chunks.
    // What cleanup(8) does to the header section; the Received: header went through it first.
    std::unique_ptr<cleanup::MessageCleanup> cleanup;
    std::unique_ptr<dkim::MessageSignature> signature;  // Observes cleanup's output; null: unsigned.
    bool too_many_hops = false;     // Refused at the end: hopcount_limit reached.
    std::optional<smtp::Reply> content_rejection;  // header_checks REJECT, a milter's refusal.
    // With smtpd_milters: the content waits here (body spooled) until the milters have seen it,
    // and the envelope as the queue got it (rewritten), which their edits change.
    std::unique_ptr<milter::MilterMessage> milter_message;
    protocol::Transaction queued_envelope;
    bool failed() const { return too_big || bare_newline || !queue_status.ok() || content_rejection.has_value(); }
  };

  // "ESMTP", "UTF8SMTP"… as Postfix's Received: header and logs name the protocol.
  // RFC 3848 as Postfix writes it: ESMTPS with TLS, ESMTPA logged in, ESMTPSA both.
  std::string ProtocolName() const {
    std::string name = machine_->transaction().smtputf8 ? "UTF8SMTP" : machine_->esmtp() ? "ESMTP" : "SMTP";
    if (machine_->tls_active()) name += "S";
    if (name.rfind("ESMTP", 0) == 0 && !machine_->sasl_username().empty()) name += "A";
    return name;
  }

  // Opens the queue for the current transaction and queues the Received: header.
  asio::awaitable<std::optional<MessageInProgress>> OpenMessage() {
    const protocol::Transaction& transaction = machine_->transaction();
    OutgoingEnvelope envelope{transaction, address_, hostname_, machine_->helo(), ProtocolName()};
    // canonical_maps and masquerading, then virtual_alias_maps, as Postfix's cleanup: the checks
    // above saw the addresses the client gave.
    std::vector<std::string> rewrite_warnings;
    if (env_.address_rewriting != nullptr && !env_.address_rewriting->empty()) {
      RewriteEnvelope(*env_.address_rewriting, envelope.transaction, rewrite_warnings);
    }
    // virtual_alias_maps, as Postfix's cleanup: the queue gets the addresses the recipients expand
    // to, each remembering the original (ORCPT) for DSNs and logs.
    std::string expansion_error;
    if (const policy::VirtualAliases* aliases = env_.policy->virtual_aliases(); aliases != nullptr && !aliases->empty()) {
      expansion_error = ExpandVirtualAliases(*aliases, envelope.transaction);
    }
    absl::StatusOr<std::unique_ptr<MessageUpload>> opened = co_await env_.queue->Open(envelope);
    open_status_ = opened.status();
    if (!opened.ok()) {
      log_.warn("queue file write error opening a message for {}: {}", client_,
                   opened.status().ToString());
      co_return std::nullopt;
    }
    MessageInProgress message;
    message.upload = *std::move(opened);
    message.queue_id = message.upload->queue_id();
    if (machine_->sasl_username().empty()) {
      log_.info("{}: client={}", message.queue_id, client_);
    } else {
      log_.info("{}: client={}, sasl_method={}, sasl_username={}", message.queue_id, client_,
                   machine_->sasl_method(), absl::CEscape(machine_->sasl_username()));
    }
    for (const std::string& warning : rewrite_warnings) cleanup_log_.warn("{}: {}", message.queue_id, warning);
    const absl::Time arrival = absl::Now();
    const std::string received = protocol::FormatReceivedHeader(
        {machine_->helo(), hostname_, address_, env_.limits.hostname, env_.mail_name, ProtocolName(),
         message.queue_id, transaction.recipients,
         absl::FormatTime("%a, %d %b %Y %H:%M:%S %z (%Z)", arrival, absl::LocalTimeZone()),
         env_.tls_received_header ? tls_description_ : std::string(),
         env_.sasl_authenticated_header ? machine_->sasl_username() : std::string()});
    const bool logged_in = !machine_->sasl_username().empty();
    const bool in_mynetworks = env_.policy->RelayPermitted(address_);
    const bool rewrite_headers = env_.header_rewrite_clients != nullptr &&
                                 env_.header_rewrite_clients->Matches(address_, in_mynetworks, logged_in);
    cleanup::CleanupOptions options{
        .add_missing_headers = env_.always_add_missing_headers || rewrite_headers,
        .myhostname = env_.limits.hostname,
        .queue_id = message.queue_id,
        .arrival = arrival,
        .sender = envelope.transaction.sender,
        .hopcount_limit = env_.hopcount_limit,
        .header_size_limit = env_.header_size_limit,
        .undisclosed_recipients_header = env_.undisclosed_recipients_header,
        .header_checks = env_.header_checks.get(),
        .mime_header_checks = env_.mime_header_checks.get(),
        .nested_header_checks = env_.nested_header_checks.get(),
        .header_rewriting = rewrite_headers ? env_.address_rewriting.get() : nullptr};
    if (env_.dkim_signer != nullptr && env_.dkim_signing_clients->Matches(address_, in_mynetworks, logged_in)) {
      message.signature = env_.dkim_signer->Start(message.queue_id);
    }
    if (milters_) {
      message.queued_envelope = envelope.transaction;
      absl::StatusOr<std::unique_ptr<milter::MilterMessage>> spooled =
          milter::MilterMessage::Create(env_.milter_spool_directory);
      if (spooled.ok()) {
        message.milter_message = *std::move(spooled);
      } else {
        log_.warn("{}: {}", message.queue_id, spooled.status().message());
        message.queue_status = spooled.status();
      }
    }
    // With milters the signature is made after their edits, from the spooled message (Commit).
    message.cleanup = std::make_unique<cleanup::MessageCleanup>(
        std::move(options), message.milter_message ? nullptr : message.signature.get());
    message.cleanup->Feed(received, &message.pending);
    if (!expansion_error.empty()) {
      cleanup_log_.warn("{}: {} -- message not accepted, try again later", message.queue_id, expansion_error);
      message.upload.reset();  // The queue keeps nothing; the content is read and dropped.
      message.pending.clear();
      message.content_rejection = smtp::Reply::Make(451, "4.6.0", "Alias expansion error");
      env_.metrics->CountReject("other");
      reject_accounted_ = true;  // The warning above is the log line, as with Postfix's cleanup.
    }
    co_return message;
  }

  // The sender and recipients as canonical_maps and masquerade_domains rewrite them; a rewritten
  // recipient remembers the one given (ORCPT) for DSNs and logs.
  static void RewriteEnvelope(const cleanup::AddressRewriting& rewriting, protocol::Transaction& transaction,
                              std::vector<std::string>& warnings) {
    transaction.sender = rewriting.Rewrite(transaction.sender, cleanup::kEnvelopeSender, &warnings);
    for (size_t i = 0; i < transaction.recipients.size(); ++i) {
      std::string rewritten = rewriting.Rewrite(transaction.recipients[i], cleanup::kEnvelopeRecipient, &warnings);
      if (rewritten == transaction.recipients[i]) continue;
      if (transaction.recipient_dsn.size() < transaction.recipients.size()) {
        transaction.recipient_dsn.resize(transaction.recipients.size());
      }
      if (transaction.recipient_dsn[i].original_recipient.empty()) {
        transaction.recipient_dsn[i].original_recipient = absl::StrCat("rfc822;", transaction.recipients[i]);
      }
      transaction.recipients[i] = std::move(rewritten);
    }
  }

  // Whether `domain` can receive mail, as DNS says (MX, A or AAAA records); a DNS failure, or no
  // resolver, is kTempFail.
  asio::awaitable<protocol::DomainLookup> LookUpDomain(const std::string& domain) {
    if (env_.resolver == nullptr) co_return protocol::DomainLookup::kTempFail;
    using Answer = absl::StatusOr<io::MxResolver::MailDomain>;
    const Answer answer = co_await io::AwaitCallback<Answer>([&](auto done) {
      env_.resolver->CheckMailDomain(domain, [done](Answer result) { done(std::move(result)); });
    });
    if (answer.ok()) {
      co_return *answer == io::MxResolver::MailDomain::kNullMx ? protocol::DomainLookup::kNullMx
                                                                : protocol::DomainLookup::kExists;
    }
    // Postfix logs nothing more than the reject line for a DNS failure either.
    co_return absl::IsNotFound(answer.status()) ? protocol::DomainLookup::kNotFound : protocol::DomainLookup::kTempFail;
  }

  // Replaces the recipients of `transaction` with what virtual_alias_maps expands them to.
  // Returns Postfix's warning when an expansion fails (a loop, too many addresses), else "".
  static std::string ExpandVirtualAliases(const policy::VirtualAliases& aliases, protocol::Transaction& transaction) {
    std::vector<std::string> recipients;
    std::vector<protocol::RecipientDsn> dsn;
    for (size_t i = 0; i < transaction.recipients.size(); ++i) {
      const std::string& original = transaction.recipients[i];
      policy::VirtualAliases::Expansion expansion = aliases.Expand(original);
      if (!expansion.error.empty()) return expansion.error;
      for (std::string& address : expansion.addresses) {
        if (std::find(recipients.begin(), recipients.end(), address) != recipients.end()) continue;
        protocol::RecipientDsn options = i < transaction.recipient_dsn.size() ? transaction.recipient_dsn[i]
                                                                               : protocol::RecipientDsn{};
        if (address != original && options.original_recipient.empty()) {
          options.original_recipient = absl::StrCat("rfc822;", original);
        }
        recipients.push_back(std::move(address));
        dsn.push_back(std::move(options));
      }
    }
    transaction.recipients = std::move(recipients);
    transaction.recipient_dsn = std::move(dsn);
    return "";
  }

  // Passes the client content appended to message.pending since `from` through cleanup (a copy
  // only while in the header section).
  static void Separate(MessageInProgress& message, size_t from) {
    if (message.cleanup->body_passes_through()) {
      message.cleanup->ObserveBody(absl::string_view(message.pending).substr(from));
      return;
    }
    const std::string fresh = message.pending.substr(from);
    message.pending.resize(from);
    message.cleanup->Feed(fresh, &message.pending);
  }

  // Accounts for `added` client bytes just appended to message.pending and ships full chunks.
  asio::awaitable<void> Ship(MessageInProgress& message, uint64_t added) {
    message.client_bytes += added;
    if (env_.limits.message_size_limit > 0 && message.client_bytes > env_.limits.message_size_limit) {
      message.too_big = true;
    }
    if (message.failed()) {
      message.upload.reset();  // Cancels the upload: the queue keeps nothing. Read on regardless.
      message.pending.clear();
    } else if (message.pending.size() >= kChunkSize && message.milter_message) {
      message.queue_status = message.milter_message->Append(std::exchange(message.pending, std::string()));
    } else if (message.pending.size() >= kChunkSize) {
      message.stored_bytes += message.pending.size();
      message.queue_status = co_await message.upload->Write(std::exchange(message.pending, std::string()));
    }
  }

  // Sends what is left and commits; OK once the queue has the message on disk.
  asio::awaitable<absl::Status> Commit(MessageInProgress& message) {
    const absl::Time end_of_data = absl::Now();
    absl::Status status = message.queue_status;
    message.cleanup->Finish(&message.pending);
    if (message.cleanup->too_many_hops()) {
      message.too_many_hops = true;
      message.upload.reset();  // The queue keeps nothing.
      // Postfix's cleanup logs this line and its smtpd no reject line for the reply.
      cleanup_log_.warn("{}: message rejected: hopcount exceeded", message.queue_id);
      env_.metrics->CountReject("too_many_hops");
      reject_accounted_ = true;
      co_return absl::FailedPreconditionError("too many hops");
    }
    for (const std::string& warning : message.cleanup->warnings()) {
      cleanup_log_.warn("{}: {}", message.queue_id, warning);
    }
    cleanup_log_.info("{}: message-id={}", message.queue_id, message.cleanup->message_id());
    const protocol::Transaction& transaction = machine_->transaction();
    for (const cleanup::HeaderAction& action : message.cleanup->actions()) {
      // Postfix's cleanup_act_log line, which log tools read.
      cleanup_log_.info("{}: {}: header {} from {}; from=<{}> to=<{}> proto={} helo=<{}>{}{}", message.queue_id,
                        action.action, action.header, client_, transaction.sender,
                        transaction.recipients.empty() ? "" : transaction.recipients.front(),
                        machine_->esmtp() ? "ESMTP" : "SMTP", machine_->helo(), action.text.empty() ? "" : ": ",
                        action.text);
    }
    if (const std::optional<cleanup::MessageCleanup::Rejection>& rejection = message.cleanup->rejection()) {
      message.upload.reset();  // The queue keeps nothing.
      message.content_rejection = smtp::Reply::Make(rejection->code, rejection->enhanced, rejection->text);
      env_.metrics->CountReject("content");
      reject_accounted_ = true;  // Logged above, as Postfix's cleanup logs it.
      co_return absl::FailedPreconditionError("content rejected");
    }
    if (message.cleanup->discard()) {
      // Postfix answers as if queued, and keeps nothing.
      message.upload.reset();
      co_return absl::OkStatus();
    }
    CommitExtras milter_extras;
    if (status.ok() && message.milter_message) {
      status = co_await FilterAndUpload(message, milter_extras);
      if (!status.ok() || !message.upload) co_return status;  // Refused, discarded, or failed.
    }
    std::string signatures;
    if (status.ok() && message.signature) {
      absl::StatusOr<std::string> signed_fields = message.signature->Finish();
      if (!signed_fields.ok()) {
        // Never sent unsigned: the client is told to try again (451) and the operator why.
        env_.metrics->dkim_signatures.Add({{"result", "error"}}).Increment();
        cleanup_log_.error("{}: DKIM signing for <{}> failed: {}", message.queue_id, message.signature->author(),
                           signed_fields.status().message());
        message.upload.reset();  // The queue keeps nothing.
        co_return signed_fields.status();
      } else {
        signatures = *std::move(signed_fields);
      }
    }
    if (status.ok()) {
      message.stored_bytes += message.pending.size();
      CommitExtras extras = std::move(milter_extras);
      extras.header_prefix = std::move(signatures);
      if (message.cleanup->hold()) {  // header_checks HOLD; else a milter's quarantine, if any.
        extras.hold = true;
        extras.hold_reason = *message.cleanup->hold();
      }
      extras.redirect_to = message.cleanup->redirect();
      status = co_await message.upload->Commit(std::exchange(message.pending, std::string()), message.stored_bytes,
                                               extras);
    }
    if (status.ok() && message.signature) {
      for (const std::string& signature : message.signature->signatures()) {
        env_.metrics->dkim_signatures.Add({{"result", "signed"}}).Increment();
        cleanup_log_.info("{}: DKIM-Signature field added ({})", message.queue_id, signature);
      }
    }
    if (status.ok()) message.queue_id = message.upload->queue_id();  // A replayed upload may have a new one.
    if (!status.ok()) {
      log_.warn("{}: queue file write error: {}", message.queue_id, status.ToString());
      co_return status;
    }
    env_.metrics->enqueue_seconds.Observe(absl::ToDoubleSeconds(absl::Now() - end_of_data));
    env_.metrics->messages_accepted.Increment();
    env_.metrics->accepted_bytes.Increment(static_cast<double>(message.stored_bytes));
    env_.metrics->message_bytes.Observe(static_cast<double>(message.stored_bytes));
    co_return absl::OkStatus();
  }

  // DATA: open the queue, say 354, decode and stream the content, commit. Returns the final
  // reply; a step without a reply means the connection is gone.
  asio::awaitable<protocol::Step> ReceiveData() {
    std::optional<MessageInProgress> message = co_await OpenMessage();
    if (message && milters_) {
      if (std::optional<smtp::Reply> refused = co_await MilterData(*message)) {
        message.reset();  // Cancels the upload; the transaction stays, as with Postfix.
        co_return protocol::Step{*std::move(refused), protocol::Action::kNone};
      }
    }
    protocol::Step step = machine_->QueueOpened(message.has_value(), absl::IsResourceExhausted(open_status_));
    if (step.action != protocol::Action::kReadData) co_return step;
    Answer(step);
    if (!co_await Flush()) co_return protocol::Step{};
    smtp::DataDecoder decoder(bare_newline_ == BareNewline::kAllow ? smtp::DataDecoder::EndOfData::kAnyLineEnd
                                                                   : smtp::DataDecoder::EndOfData::kCrLfOnly);
    for (;;) {
      const size_t before = message->pending.size();
      input_.erase(0, decoder.Decode(input_, &message->pending));
      const size_t decoded = message->pending.size() - before;
      // Refused at the end, as Postfix does; the upload is cancelled at once (Ship).
      message->bare_newline |= bare_newline_ == BareNewline::kReject && decoder.saw_bare_lf();
      Separate(*message, before);
      co_await Ship(*message, decoded);
      if (decoder.done()) break;
      if (!co_await ReadMore(/*within_record=*/!decoder.at_line_start(), kContentReadSize)) {
        co_return protocol::Step{};
      }
    }
    noted_bare_lf_ |= bare_newline_ == BareNewline::kNote && decoder.saw_bare_lf();
    protocol::DataOutcome outcome = protocol::DataOutcome::kTooBig;
    if (message->bare_newline) {
      LogBareNewlineReject(message->queue_id, "END-OF-MESSAGE");
      outcome = protocol::DataOutcome::kBareNewline;
    } else if (message->content_rejection) {
      outcome = protocol::DataOutcome::kContentRejected;  // Refused before its content (alias expansion).
    } else if (!message->too_big) {
      absl::Status committed = co_await Commit(*message);
      outcome = committed.ok()                         ? protocol::DataOutcome::kQueued
                : message->too_many_hops               ? protocol::DataOutcome::kTooManyHops
                : message->content_rejection           ? protocol::DataOutcome::kContentRejected
                : absl::IsResourceExhausted(committed) ? protocol::DataOutcome::kNoStorage
                                                       : protocol::DataOutcome::kQueueError;
    }
    co_return machine_->DataFinished(outcome, message->queue_id,
                                     message->content_rejection ? &*message->content_rejection : nullptr);
  }

  // BDAT: read exactly the announced bytes (RFC 3030: no dot-stuffing, no end marker), keeping
  // them in the message under way or dropping them, and commit on LAST.
  asio::awaitable<protocol::Step> ReceiveChunk() {
    const protocol::BdatChunk chunk = machine_->bdat_chunk();
    bool open_failed = false;
    if (!chunk.discard && chunk.open_queue) {
      bdat_message_ = co_await OpenMessage();
      open_failed = !bdat_message_;
      if (bdat_message_ && milters_) {
        if (std::optional<smtp::Reply> refused = co_await MilterData(*bdat_message_)) {
          bdat_message_->upload.reset();
          bdat_message_->pending.clear();
          bdat_message_->content_rejection = *std::move(refused);
        }
      }
    }
    const bool keep = !chunk.discard && bdat_message_ && !bdat_message_->failed();
    uint64_t remaining = chunk.size;
    for (;;) {
      const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining, input_.size()));
      if (take > 0 && keep) {
        const size_t before = bdat_message_->pending.size();
        bdat_message_->crlf.Convert(absl::string_view(input_.data(), take), &bdat_message_->pending);
        // RFC 3030 §3 wants text in canonical form; Postfix's reject refuses this chunk's command.
        bdat_message_->bare_newline |= bare_newline_ == BareNewline::kReject && bdat_message_->crlf.saw_bare_lf();
        noted_bare_lf_ |= bare_newline_ == BareNewline::kNote && bdat_message_->crlf.saw_bare_lf();
        Separate(*bdat_message_, before);
        co_await Ship(*bdat_message_, take);
      }
      input_.erase(0, take);  // Dropped bytes are never held beyond one read.
      remaining -= take;
      if (remaining == 0) break;
      if (!co_await ReadMore(/*within_record=*/false, kContentReadSize)) co_return protocol::Step{};
    }
    protocol::BdatOutcome outcome = protocol::BdatOutcome::kKept;
    const auto failure = [](const absl::Status& status) {
      return absl::IsResourceExhausted(status) ? protocol::BdatOutcome::kNoStorage : protocol::BdatOutcome::kQueueError;
    };
    if (open_failed) {
      outcome = failure(open_status_);
    } else if (!chunk.discard && bdat_message_ && bdat_message_->content_rejection) {
      outcome = protocol::BdatOutcome::kContentRejected;  // Refused before its content (alias expansion).
    } else if (!keep) {
      outcome = protocol::BdatOutcome::kDiscarded;
    } else if (bdat_message_->bare_newline) {
      LogBareNewlineReject(bdat_message_->queue_id, chunk.last ? "END-OF-MESSAGE" : "BDAT content");
      outcome = protocol::BdatOutcome::kBareNewline;
    } else if (bdat_message_->too_big) {
      outcome = protocol::BdatOutcome::kTooBig;
    } else if (!bdat_message_->queue_status.ok()) {
      outcome = failure(bdat_message_->queue_status);
    } else if (chunk.last) {
      const size_t before = bdat_message_->pending.size();
      bdat_message_->crlf.Finish(&bdat_message_->pending);
      Separate(*bdat_message_, before);
      const absl::Status committed = co_await Commit(*bdat_message_);
      outcome = committed.ok()                         ? protocol::BdatOutcome::kQueued
                : bdat_message_->too_many_hops         ? protocol::BdatOutcome::kTooManyHops
                : bdat_message_->content_rejection     ? protocol::BdatOutcome::kContentRejected
                                                       : failure(committed);
    }
    const uint64_t total = bdat_message_ ? bdat_message_->client_bytes : 0;
    const std::string queue_id = bdat_message_ ? bdat_message_->queue_id : "";
    const std::optional<smtp::Reply> rejection = bdat_message_ ? bdat_message_->content_rejection : std::nullopt;
    // Done or failed: the state machine discards the failed message's later chunks itself.
    if (outcome != protocol::BdatOutcome::kKept) bdat_message_.reset();
    co_return machine_->BdatChunkRead(outcome, total, queue_id, rejection ? &*rejection : nullptr);
  }

  // Reads what the client sent next into input_. False when the client is gone or timed out
  // (then the 421 has been sent). smtpd_timeout is a deadline for a whole record – a command
  // line or a content line (Postfix's smtpd_per_record_deadline = yes) – so a client trickling
  // a byte at a time is cut when it runs out, however often it sends. `within_record`: the
  // caller holds part of a record; it started in the last read if that read brought a line end.
  asio::awaitable<bool> ReadMore(bool within_record, size_t read_size = kReadSize) {
    // Waiting for a command, a session keeps a small buffer, whatever its content reads needed.
    if (read_size == kReadSize && input_.empty() && input_.capacity() > 4 * kReadSize) input_.shrink_to_fit();
    const size_t old_size = input_.size();
    if (!within_record || line_end_in_last_read_) {
      record_deadline_ = std::chrono::steady_clock::now() + env_.timeout;
    }
    WatchRead(record_deadline_);
    std::tuple<std::error_code, size_t> result;
    if (tls_) {
      input_.resize(old_size + read_size);
      result = co_await tls_->async_read_some(asio::buffer(input_.data() + old_size, read_size), kAsTuple);
      input_.resize(old_size + std::get<1>(result));
    } else {
      result = co_await ReadPlain(read_size);
    }
    reading_ = false;
    const auto [error, bytes] = result;
    if (error == asio::error::operation_aborted && read_timed_out_) {
      log_.info("timeout after {} from {}", smtp::VerbName(machine_->last_verb()), client_);
      output_.clear();
      absl::StrAppend(&output_, "421 4.4.2 ", env_.limits.hostname, " Error: timeout exceeded\r\n");
      co_await Flush();
      co_return false;
    }
    line_end_in_last_read_ = absl::string_view(input_.data() + old_size, bytes).find('\n') != absl::string_view::npos;
    if (error == asio::error::operation_aborted && env_.drain->draining()) {
      co_await SayShuttingDown();  // Nudged while idle.
      co_return false;
    }
    if (error) co_return false;
    co_return true;
  }

  // Appends up to `read_size` bytes from the plain socket to input_: reads into this thread's
  // scratch buffer (once the socket is readable) and copies what came. Reading straight into
  // input_ would first have to grow it by `read_size` zeroed bytes (64 KiB for content) and
  // shrink it again: measured as the gateway's largest memset and malloc cost at 1 KiB.
  asio::awaitable<std::tuple<std::error_code, size_t>> ReadPlain(size_t read_size) {
    thread_local std::unique_ptr<char[]> scratch(new char[kContentReadSize]);
    read_size = std::min(read_size, kContentReadSize);
    // A command usually comes only after our reply, so reading before waiting would mostly
    // cost a failed recv; content usually is there already.
    bool wait = read_size <= kReadSize;
    for (;; wait = true) {
      if (wait) {
        const std::tuple<std::error_code> waited = co_await socket_.async_wait(tcp::socket::wait_read, kAsTuple);
        if (std::get<0>(waited)) co_return std::make_tuple(std::get<0>(waited), size_t{0});
      }
      std::error_code error;
      const size_t bytes = socket_.read_some(asio::buffer(scratch.get(), read_size), error);
      if (error != asio::error::would_block && error != asio::error::try_again) {
        input_.append(scratch.get(), bytes);
        co_return std::make_tuple(error, bytes);
      }
    }
  }

  // smtpd_timeout for reads without a timer operation per read: one watchdog wait per session,
  // at the deadline of the read under way or earlier, wakes, and cancels the read once its
  // deadline has passed (else waits again for the later one). Starting a read then only stores
  // its deadline. (A `read || timer` group per read – two coroutines, a timer set and cancelled –
  // showed as 6 % of the gateway's profile at 1 KiB, and without it the gateway spent ~20 % less
  // CPU per message; bench/README.md, round 3.)
  void WatchRead(std::chrono::steady_clock::time_point deadline) {
    read_deadline_ = deadline;
    reading_ = true;
    read_timed_out_ = false;
    if (watchdog_waiting_ && watchdog_.expiry() <= deadline) return;
    watchdog_waiting_ = true;
    watchdog_.expires_at(deadline);  // A later wait still pending ends as cancelled.
    watchdog_.async_wait([this, alive = alive_](std::error_code error) {
      if (error || !*alive) return;  // Moved earlier by the line above, or the session is gone.
      watchdog_waiting_ = false;
      if (!reading_) return;  // The next read starts a new wait.
      if (std::chrono::steady_clock::now() < read_deadline_) return WatchRead(read_deadline_);
      read_timed_out_ = true;
      std::error_code ignored;
      socket_.cancel(ignored);  // The read ends with operation_aborted; ReadMore says 421.
    });
  }

  asio::awaitable<bool> Flush() {
    if (output_.empty()) co_return true;
    if (!tls_) {
      // A reply almost always fits the socket's send buffer: write it now, and wait (with the
      // timer) only for what did not fit. Saves the timer and the wait for nearly every reply.
      std::error_code error;
      const size_t written = socket_.write_some(asio::buffer(output_), error);
      if (!error && written == output_.size()) {
        output_.clear();
        co_return true;
      }
      if (error && error != asio::error::would_block && error != asio::error::try_again) {
        output_.clear();
        co_return false;
      }
      output_.erase(0, written);
    }
    timer_.expires_after(env_.timeout);
    std::variant<std::tuple<std::error_code, size_t>, std::tuple<std::error_code>> result;
    if (tls_) {
      result = co_await (asio::async_write(*tls_, asio::buffer(output_), kAsTuple) ||
                         timer_.async_wait(kAsTuple));
    } else {
      result = co_await (asio::async_write(socket_, asio::buffer(output_), kAsTuple) ||
                         timer_.async_wait(kAsTuple));
    }
    output_.clear();
    co_return result.index() == 0 && !std::get<0>(std::get<0>(result));
  }

  // Postfix's client name (client_name.h): remembered for a while, else looked up on the pool.
  asio::awaitable<std::string> LookUpName(const asio::ip::address& client) {
    if (std::optional<std::string> known = env_.client_names->Find(client, absl::Now())) co_return *known;
    std::string name = co_await asio::co_spawn(
        *env_.name_lookups, [client]() -> asio::awaitable<std::string> { co_return LookUpClientName(client); },
        asio::use_awaitable);
    env_.client_names->Remember(client, name, absl::Now());
    co_return name;
  }

#include "smtp-gateway/session/smtp_session_milters.inc"

  tcp::socket socket_;
  std::shared_ptr<asio::ssl::context> tls_context_;  // Outlives tls_, even across a reload.
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls_;
  std::string tls_description_;  // "TLSv1.3 with cipher … (256/256 bits)".
  asio::steady_timer timer_;
  asio::steady_timer watchdog_;  // Read deadlines (WatchRead).
  std::chrono::steady_clock::time_point read_deadline_;
  bool watchdog_waiting_ = false;
  bool reading_ = false;
  bool read_timed_out_ = false;
  const SessionEnvironment& env_;
  spdlog::logger& log_;  // The service's syslog_name; lives as long as env_.
  spdlog::logger& cleanup_log_;  // syslog_name/cleanup, as Postfix's cleanup(8) logs.
  smtp::LineReader reader_;
  std::unique_ptr<protocol::Decider> decider_;
  std::optional<protocol::SessionMachine> machine_;
  std::string input_;
  std::string output_;
  std::string address_;
  std::string hostname_;
  std::string client_;
  CommandTally tally_;
  BareNewline bare_newline_ = BareNewline::kNormalize;  // For this client (BareNewlineForClient).
  bool noted_bare_lf_ = false;     // smtpd_forbid_bare_newline = note: a bare LF came.
  bool reject_accounted_ = false;  // The next reply's reject is already logged and counted.
  std::optional<MessageInProgress> bdat_message_;  // Across the BDAT commands of one message.
  // smtpd_milters (milter glue in smtp_session_milters.inc); null without milters.
  std::unique_ptr<milter::SessionMilters> milters_;
  std::string milter_queue_id_;        // The message's queue ID once known (macro i).
  bool milter_discard_ = false;        // A milter said DISCARD before the end of the message.
  std::optional<std::string> milter_hold_;  // A milter said HOLD (quarantine) before the end.
  bool milter_shutdown_ = false;       // A milter's 421: the session ends after this reply.
  uint16_t client_port_ = 0;           // {client_port}
  bool in_message_ = false;
  bool admitted_ = false;
  absl::Status open_status_;  // How the last Open of the queue went.
  std::chrono::steady_clock::time_point record_deadline_;  // See ReadMore.
  bool line_end_in_last_read_ = false;  // Counted by the client limiter: released at the end.
  // False once the session is gone; drain nudges posted earlier check it before touching `this`.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  uint64_t drain_handle_ = 0;
};

}  // namespace

asio::awaitable<void> RunSmtpSession(tcp::socket socket, std::shared_ptr<const SessionEnvironment> environment) {
  SmtpSession session(std::move(socket), *environment);
  co_await session.Run();
}

}  // namespace postgate::gateway
