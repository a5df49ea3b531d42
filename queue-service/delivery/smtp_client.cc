#include "queue-service/delivery/smtp_client.h"

#include <algorithm>
#include <optional>
#include <tuple>
#include <variant>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "asio/co_spawn.hpp"
#include "asio/connect.hpp"
#include "asio/detached.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/experimental/awaitable_operators.hpp"
#include "asio/io_context.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/read_until.hpp"
#include "asio/ssl/context.hpp"
#include "asio/ssl/stream.hpp"
#include "asio/steady_timer.hpp"
#include "asio/use_awaitable.hpp"
#include "asio/write.hpp"
#include "core/smtp/utf8.h"
#include "core/smtp/xtext.h"
#include "spdlog/spdlog.h"

namespace postgate::queue {
namespace {

using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
constexpr auto kAsTuple = asio::experimental::as_tuple(asio::use_awaitable);

std::chrono::milliseconds Millis(absl::Duration d) {
  return std::chrono::milliseconds(absl::ToInt64Milliseconds(d));
}

// Why a conversation stopped before every recipient had an answer; applies to those left.
struct Stop {
  v1::RecipientState state = v1::RECIPIENT_STATE_DEFERRED;
  uint32_t code = 0;
  std::string dsn;
  std::string reason;
  std::string remote_reply{};  // What the server said, when it was the server that said no.
  bool tls_handshake_failed = false;  // At "may", plaintext is an option on a new connection.
};

// What the server announced in its EHLO reply (after STARTTLS: the second one).
struct Capabilities {
  bool esmtp = true, pipelining = false, eight_bit = false, smtputf8 = false, dsn = false, starttls = false;
  bool size = false;
  uint64_t size_limit = 0;  // 0 with `size`: announced without a limit.
};

}  // namespace

// One connection to a next hop. Owns its io_context, so a cached session can be picked up by
// any worker thread (one at a time) and run there.
class SmtpSession {
 public:
  SmtpSession(const NextHop& hop, const SmtpClientOptions& options)
      : io_(std::make_unique<asio::io_context>(1)), socket_(*io_), timer_(*io_), hop_(hop), options_(options),
        relay_(hop.ToString()), opened_(absl::Now()) {}

  const std::string& relay() const { return relay_; }
  // The server's name as its MX record or the next hop gave it (a DSN's Remote-MTA).
  const std::string& remote_host() const { return remote_host_; }
  // Bytes from the server that no Read has taken yet: held, or (without TLS) waiting in the
  // socket. Under TLS the socket may hold records that are not SMTP at all (TLS 1.3 session
  // tickets), so only what was decrypted counts.
  bool HasUnreadInput() {
    std::error_code error;
    return !input_.empty() || (!tls_ && socket_.available(error) > 0);
  }
  const SmtpClientOptions& options() const { return options_; }
  Capabilities& capabilities() { return capabilities_; }
  absl::Time opened() const { return opened_; }
  int uses() const { return uses_; }
  void CountUse() { ++uses_; }
  absl::Time idle_since() const { return idle_since_; }
  void MarkIdle() { idle_since_ = absl::Now(); }
  bool timed_out() const { return timed_out_; }

  // Runs `task` to completion on this session's io_context (on the calling thread).
  template <typename T>
  T Run(asio::awaitable<T> task) {
    timed_out_ = false;
    protocol_error_.clear();
    io_->restart();
    std::optional<T> result;
    std::exception_ptr failure;
    asio::co_spawn(*io_, std::move(task), [&](std::exception_ptr error, T value) {
      failure = error;
      if (!error) result = std::move(value);
    });
    io_->run();
    if (failure) std::rethrow_exception(failure);
    return *std::move(result);
  }

  // QUIT, its reply awaited briefly (RFC 5321 4.1.1.10), then close.
  void Quit() {
    if (socket_.is_open()) {
      Run(QuitNow());
    }
    Close();
  }

  // Tries each address in order (MX preference order, then each host's addresses) until one
  // answers; the last failure is the reason when none does.
  asio::awaitable<std::optional<Stop>> Connect(const std::vector<SmtpCandidate>& candidates) {
    Stop last{v1::RECIPIENT_STATE_DEFERRED, 0, "4.4.1", "no address to connect to"};
    for (const SmtpCandidate& candidate : candidates) {
      std::error_code parse_error;
      const asio::ip::address address = asio::ip::make_address(candidate.address, parse_error);
      const std::string where = absl::StrCat(candidate.host, "[", candidate.address, "]:", hop_.port);
      if (parse_error) {
        last.reason = absl::StrCat("connect to ", where, ": bad address");
        continue;
      }
      std::error_code closed;
      socket_.close(closed);
      auto connected = co_await (socket_.async_connect(tcp::endpoint(address, hop_.port), kAsTuple) ||
                                 Timeout(options_.connect_timeout));
      if (connected.index() == 1) {
        last.reason = absl::StrCat("connect to ", where, ": Connection timed out");
        continue;
      }
      if (auto [error] = std::get<0>(connected); error) {
        last.reason = absl::StrCat("connect to ", where, ": ", error.message());
        continue;
      }
      relay_ = where;
      remote_host_ = candidate.host;
      host_and_address_ = absl::StrCat(candidate.host, "[", candidate.address, "]");
      co_return std::nullopt;
    }
    co_return last;
  }

  asio::awaitable<bool> Send(const std::string& data, absl::Duration timeout) {
    if (tls_) {
      auto written = co_await (asio::async_write(*tls_, asio::buffer(data), kAsTuple) || Timeout(timeout));
      co_return written.index() == 0 && !std::get<0>(std::get<0>(written));
    }
    auto written = co_await (asio::async_write(socket_, asio::buffer(data), kAsTuple) ||
                             Timeout(timeout));
    co_return written.index() == 0 && !std::get<0>(std::get<0>(written));
  }

  // After "220 Ready to start TLS". nullopt on success; the description is kept for the logs.
  asio::awaitable<std::optional<Stop>> StartTls(const SmtpClientOptions& options, absl::Duration timeout) {
    tls_context_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    tls_context_->set_options(asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                              asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    if (options.tls_level == SmtpTlsLevel::kVerify) {
      std::error_code error;
      tls_context_->load_verify_file(options.tls_ca_file, error);
      if (error) {
        co_return Stop{v1::RECIPIENT_STATE_DEFERRED, 0, "4.7.5",
                       absl::StrCat("cannot load smtp_tls_CAfile ", options.tls_ca_file, ": ", error.message())};
      }
      tls_context_->set_verify_mode(asio::ssl::verify_peer);
    } else {
      tls_context_->set_verify_mode(asio::ssl::verify_none);
    }
    tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket_, *tls_context_);
    // SNI names the server we connected to (its MX name, or the relay host's name); never an
    // address, which RFC 6066 §3 forbids there.
    std::error_code not_an_address;
    (void)asio::ip::make_address(remote_host_, not_an_address);
    if (not_an_address && !remote_host_.empty()) SSL_set_tlsext_host_name(tls_->native_handle(), remote_host_.c_str());
    if (options.tls_level == SmtpTlsLevel::kVerify) {
      SSL_set1_host(tls_->native_handle(), hop_.host.c_str());
    }
    auto shaken = co_await (tls_->async_handshake(asio::ssl::stream_base::client, kAsTuple) || Timeout(timeout));
    if (shaken.index() == 1 || std::get<0>(std::get<0>(shaken))) {
      const std::string why = shaken.index() == 1 ? "timed out" : std::get<0>(std::get<0>(shaken)).message();
      Stop failed{v1::RECIPIENT_STATE_DEFERRED, 0, "4.7.5", absl::StrCat("TLS handshake with ", relay_, " failed: ", why)};
      failed.tls_handshake_failed = true;
      co_return failed;
    }
    SSL* ssl = tls_->native_handle();
    tls_description_ = absl::StrCat(SSL_get_version(ssl), " with cipher ",
                                    SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)));
    co_return std::nullopt;
  }
  const std::string& tls_description() const { return tls_description_; }

  // Bounds on what a server may send as one reply: a hostile one (any domain's MX can be made
  // to point at it) must not grow our memory. Longer lines or replies are a protocol error that
  // defers (Postfix's line_length_limit for a line).
  static constexpr size_t kMaxReplyLine = 2048;
  static constexpr size_t kMaxReplyLines = 1000;
  static constexpr size_t kMaxReplyBytes = 64 * 1024;

  // One complete reply, or nullopt when the connection broke, the reply broke a bound
  // (protocol_error() says how) or `timeout` passed – a deadline for the whole reply, so a
  // server dripping a byte at a time cannot hold the conversation open.
  asio::awaitable<std::optional<ServerReply>> Read(absl::Duration timeout) {
    std::vector<std::string> lines;
    size_t reply_bytes = 0;
    timer_.expires_after(Millis(timeout));
    for (;;) {
      // (No co_await inside ?: – g++ 12 miscompiles it.) The buffer may hold a little more than
      // a line: what the server pipelined behind it.
      auto buffer = asio::dynamic_buffer(input_, kMaxReplyLine + 2);
      std::variant<std::tuple<std::error_code, size_t>, std::tuple<std::error_code>> read;
      if (tls_) {
        read = co_await (asio::async_read_until(*tls_, buffer, "\n", kAsTuple) || timer_.async_wait(kAsTuple));
      } else {
        read = co_await (asio::async_read_until(socket_, buffer, "\n", kAsTuple) || timer_.async_wait(kAsTuple));
      }
      if (read.index() == 1) {
        timed_out_ = true;
        co_return std::nullopt;
      }
      auto [error, length] = std::get<0>(read);
      if (error == asio::error::not_found) {  // The buffer is full and holds no line end.
        protocol_error_ = absl::StrCat("reply line longer than ", kMaxReplyLine, " bytes");
        co_return std::nullopt;
      }
      if (error) co_return std::nullopt;
      std::string line = input_.substr(0, length);
      input_.erase(0, length);
      while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
      reply_bytes += line.size();
      lines.push_back(std::move(line));
      if (std::optional<ServerReply> reply = ParseServerReply(lines)) co_return reply;
      if (lines.size() >= kMaxReplyLines || reply_bytes > kMaxReplyBytes) {
        protocol_error_ = lines.size() >= kMaxReplyLines
                              ? absl::StrCat("multi-line reply longer than ", kMaxReplyLines, " lines")
                              : absl::StrCat("multi-line reply longer than ", kMaxReplyBytes, " bytes");
        co_return std::nullopt;
      }
    }
  }

  // Postfix's wording for a lost or silent peer while waiting for `what` (host[address], no port);
  // a reply that broke our bounds is a protocol error, said as such.
  Stop Lost(absl::string_view what) const {
    if (!protocol_error_.empty()) return ProtocolError(what, protocol_error_);
    return Stop{v1::RECIPIENT_STATE_DEFERRED, 0, "4.4.2",
                absl::StrCat(timed_out_ ? "conversation with " : "lost connection with ", host_and_address_,
                             timed_out_ ? " timed out while " : " while ", what)};
  }
  bool protocol_error() const { return !protocol_error_.empty(); }

  // The server broke the protocol (or our bounds on it) while we were `what`: deferred.
  Stop ProtocolError(absl::string_view what, absl::string_view why) const {
    return Stop{v1::RECIPIENT_STATE_DEFERRED, 0, "4.5.0",
                absl::StrCat("protocol error with ", host_and_address_, " while ", what, ": ", why)};
  }

  // A greeting or EHLO reply naming our own host: the next hop is this very MTA (a relayhost
  // pointed at our own Service), and trying again would only loop. Bounced, as Postfix does.
  std::optional<Stop> LoopsBack(const ServerReply& reply, absl::string_view how) const {
    if (options_.myhostname.empty() || reply.lines.empty()) return std::nullopt;
    const absl::string_view first = absl::string_view(reply.lines.front()).substr(0, reply.lines.front().find(' '));
    if (!absl::EqualsIgnoreCase(first, options_.myhostname)) return std::nullopt;
    return Stop{v1::RECIPIENT_STATE_BOUNCED, 0, "5.4.6",
                absl::StrCat("host ", host_and_address_, " ", how, " my own hostname ", options_.myhostname,
                             ": mail for ", hop_.host, " loops back to myself")};
  }

  // "host x[1.2.3.4] said: 550 5.1.1 … (in reply to RCPT TO command)", deferred or bounced by code.
  Stop Said(const ServerReply& reply, absl::string_view command) const {
    Stop stop;
    stop.state = reply.code >= 500 ? v1::RECIPIENT_STATE_BOUNCED : v1::RECIPIENT_STATE_DEFERRED;
    stop.code = static_cast<uint32_t>(reply.code);
    stop.dsn = !reply.enhanced.empty() ? reply.enhanced : reply.code >= 500 ? "5.0.0" : "4.0.0";
    stop.reason = absl::StrCat("host ", host_and_address_, " said: ", reply.text, " (in reply to ", command, ")");
    stop.remote_reply = reply.text;
    return stop;
  }

  void Close() {
    std::error_code ignored;
    socket_.close(ignored);
  }

 private:
  asio::awaitable<bool> QuitNow() {
    constexpr absl::Duration kQuitWait = absl::Seconds(2);  // A closing courtesy, not worth more.
    if (co_await Send("QUIT\r\n", kQuitWait)) (void)co_await Read(kQuitWait);
    co_return true;
  }

  asio::awaitable<void> Timeout(absl::Duration timeout) {
    timer_.expires_after(Millis(timeout));
    co_await timer_.async_wait(kAsTuple);
  }

  std::unique_ptr<asio::io_context> io_;  // First: the socket and timer live on it.
  tcp::socket socket_;
  std::unique_ptr<asio::ssl::context> tls_context_;
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls_;  // After STARTTLS.
  std::string tls_description_;
  asio::steady_timer timer_;
  const NextHop hop_;
  const SmtpClientOptions options_;
  std::string relay_;             // host[address]:port, as Postfix logs relay=.
  std::string remote_host_;
  std::string host_and_address_;  // host[address], as Postfix names the server in a reason.
  std::string input_;
  bool timed_out_ = false;
  std::string protocol_error_;  // Why the last Read broke off, when the server broke a bound.
  Capabilities capabilities_;
  const absl::Time opened_;
  absl::Time idle_since_;
  int uses_ = 0;
};

namespace {


std::string Enhanced(absl::string_view text) {
  // "2.1.5 Ok" → "2.1.5".
  size_t end = text.find(' ');
  absl::string_view word = text.substr(0, end);
  std::vector<absl::string_view> parts = absl::StrSplit(word, '.');
  if (parts.size() != 3 || word.size() > 11) return "";
  for (absl::string_view part : parts) {
    int value = 0;
    if (part.empty() || !absl::SimpleAtoi(part, &value)) return "";
  }
  if (word[0] != '2' && word[0] != '4' && word[0] != '5') return "";
  return std::string(word);
}

DeliveryOutcome FromStop(const Stop& stop, const SmtpSession& session) {
  DeliveryOutcome outcome{stop.state, stop.code, stop.dsn, stop.reason, session.relay()};
  if (!stop.remote_reply.empty()) {
    outcome.remote_mta = session.remote_host();
    outcome.remote_reply = stop.remote_reply;
  }
  return outcome;
}

// What a server said, safe for logs, the API (protobuf strings must be UTF-8) and reports:
// bytes other than printable ASCII become '?', as Postfix's printable() does.
std::string Printable(absl::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  }
  return out;
}

// Whether this transaction needs SMTPUTF8: a UTF-8 envelope address, or UTF-8 in the header
// section (read up to its empty line; the body is 8BITMIME's business, not SMTPUTF8's).
absl::StatusOr<bool> NeedsSmtpUtf8(const v1::Message& message, const std::vector<int>& recipients,
                                   const ContentPieces& content) {
  if (!smtp::IsAscii(message.envelope().sender())) return true;
  for (int index : recipients) {
    if (!smtp::IsAscii(message.recipients(index).address())) return true;
  }
  bool at_line_start = true;
  for (uint32_t index = 0;; ++index) {
    absl::StatusOr<std::optional<std::string>> piece = content(index);
    if (!piece.ok()) return piece.status();
    if (!piece->has_value()) return false;
    for (char c : **piece) {
      if (c == '\n') {
        if (at_line_start) return false;  // The empty line: the header section has ended.
        at_line_start = true;
        continue;
      }
      if (static_cast<unsigned char>(c) >= 0x80) return true;
      at_line_start = false;
    }
  }
}

// RCPT TO with the recipient's DSN options (RFC 3461) when the server announced DSN.
std::string RcptCommand(const v1::RecipientStatus& recipient, bool dsn) {
  std::string command = absl::StrCat("RCPT TO:<", recipient.address(), ">");
  const v1::RecipientOptions& options = recipient.options();
  if (dsn && options.notify_given()) {
    std::vector<const char*> notify;
    if (options.notify_success()) notify.push_back("SUCCESS");
    if (options.notify_failure()) notify.push_back("FAILURE");
    if (options.notify_delay()) notify.push_back("DELAY");
    absl::StrAppend(&command, " NOTIFY=", notify.empty() ? "NEVER" : absl::StrJoin(notify, ","));
  }
  if (dsn && !options.original_recipient().empty()) {
    const std::string& original = options.original_recipient();  // "rfc822;bar@example.org"
    size_t semicolon = original.find(';');
    if (semicolon != std::string::npos) {
      absl::StrAppend(&command, " ORCPT=", original.substr(0, semicolon), ";",
                      smtp::EncodeXtext(original.substr(semicolon + 1)));
    }
  }
  return command + "\r\n";
}

// Connects (each candidate in turn), reads the greeting, says EHLO (HELO when refused) and, per
// smtp_tls_security_level, STARTTLS and EHLO again. nullopt when the session is ready for mail.
asio::awaitable<std::optional<Stop>> Open(SmtpSession& c, const std::vector<SmtpCandidate>& candidates) {
  const SmtpClientOptions& options = c.options();
  if (std::optional<Stop> failed = co_await c.Connect(candidates)) co_return failed;
  std::optional<ServerReply> reply = co_await c.Read(options.helo_timeout);
  if (!reply) co_return c.Lost("receiving the initial server greeting");
  if (reply->code / 100 != 2) co_return c.Said(*reply, "initial greeting");
  if (std::optional<Stop> loop = c.LoopsBack(*reply, "greeted me with")) co_return loop;

  Capabilities& capabilities = c.capabilities();
  if (!co_await c.Send(absl::StrCat("EHLO ", options.helo_name, "\r\n"), options.helo_timeout)) {
    co_return c.Lost("sending EHLO");
  }
  reply = co_await c.Read(options.helo_timeout);
  if (!reply) co_return c.Lost("receiving the EHLO reply");
  if (reply->code / 100 == 5) {
    capabilities.esmtp = false;
    if (!co_await c.Send(absl::StrCat("HELO ", options.helo_name, "\r\n"), options.helo_timeout)) {
      co_return c.Lost("sending HELO");
    }
    reply = co_await c.Read(options.helo_timeout);
    if (!reply) co_return c.Lost("receiving the HELO reply");
  }
  if (reply->code / 100 != 2) co_return c.Said(*reply, capabilities.esmtp ? "EHLO command" : "HELO command");
  if (std::optional<Stop> loop = c.LoopsBack(*reply, "replied to HELO/EHLO with")) co_return loop;
  auto learn = [&capabilities](const ServerReply& ehlo) {
    capabilities = Capabilities{.esmtp = capabilities.esmtp};
    for (size_t i = 1; capabilities.esmtp && i < ehlo.lines.size(); ++i) {
      std::string keyword = absl::AsciiStrToUpper(ehlo.lines[i]);
      if (keyword == "PIPELINING") capabilities.pipelining = true;
      else if (keyword == "8BITMIME") capabilities.eight_bit = true;
      else if (keyword == "SMTPUTF8") capabilities.smtputf8 = true;
      else if (keyword == "DSN") capabilities.dsn = true;
      else if (keyword == "STARTTLS") capabilities.starttls = true;
      else if (keyword == "SIZE" || absl::StartsWith(keyword, "SIZE ")) {
        capabilities.size = true;
        if (keyword.size() > 5) (void)absl::SimpleAtoi(keyword.substr(5), &capabilities.size_limit);
      }
    }
  };
  learn(*reply);
  const bool tls_required = options.tls_level == SmtpTlsLevel::kEncrypt || options.tls_level == SmtpTlsLevel::kVerify;
  if (options.tls_level != SmtpTlsLevel::kNone && capabilities.starttls) {
    if (!co_await c.Send("STARTTLS\r\n", options.helo_timeout)) co_return c.Lost("sending STARTTLS");
    reply = co_await c.Read(options.helo_timeout);
    if (!reply) co_return c.Lost("receiving the STARTTLS reply");
    if (reply->code != 220) {
      if (tls_required) co_return c.Said(*reply, "STARTTLS command");
    } else {
      if (std::optional<Stop> failed = co_await c.StartTls(options, options.helo_timeout)) co_return failed;
      spdlog::info("{} TLS connection established to {}: {}",
                   options.tls_level == SmtpTlsLevel::kVerify ? "Verified" : "Anonymous", c.relay(),
                   c.tls_description());
      // RFC 3207: forget what was learnt before TLS and ask again.
      if (!co_await c.Send(absl::StrCat("EHLO ", options.helo_name, "\r\n"), options.helo_timeout)) {
        co_return c.Lost("sending EHLO");
      }
      reply = co_await c.Read(options.helo_timeout);
      if (!reply) co_return c.Lost("receiving the EHLO reply");
      if (reply->code / 100 != 2) co_return c.Said(*reply, "EHLO command");
      learn(*reply);
    }
  } else if (tls_required) {
    co_return Stop{v1::RECIPIENT_STATE_DEFERRED, 0, "4.7.4",
                   absl::StrCat("TLS is required, but was not offered by host ", c.relay())};
  }
  co_return std::nullopt;
}

// How a transaction left its session.
enum class After {
  kReusable,  // Between transactions: fit for the next message.
  kQuit,      // Sound, but not worth keeping (a refused envelope): QUIT.
  kBroken,    // Lost, timed out or closing (421): close without a word.
  kStale,     // A cached session the server had closed before MAIL FROM got an answer: nothing was
              // sent on it, so the caller starts again on a new connection.
};

// MAIL FROM, RCPT TO per recipient and DATA (pipelined when offered), filling `outcomes`.
asio::awaitable<After> Transact(SmtpSession& c, const v1::Message& message, const std::vector<int>& recipients,
                                const ContentPieces& content, std::vector<DeliveryOutcome>& outcomes, bool reused) {
  const SmtpClientOptions& options = c.options();
  const Capabilities& capabilities = c.capabilities();
  // Sets every recipient still without an answer to `stop`.
  auto finish = [&](const Stop& stop) {
    for (DeliveryOutcome& outcome : outcomes) {
      if (outcome.smtp_code == 0 && outcome.reason.empty()) outcome = FromStop(stop, c);
    }
  };
  const v1::Envelope& envelope = message.envelope();
  if (envelope.smtputf8() && !capabilities.smtputf8) {
    // As Postfix: the request alone is no reason to bounce. Mail whose envelope and headers are
    // ASCII goes on without SMTPUTF8; only what really needs it is returned.
    absl::StatusOr<bool> needed = NeedsSmtpUtf8(message, recipients, content);
    if (!needed.ok()) {
      finish({v1::RECIPIENT_STATE_DEFERRED, 0, "4.3.0", absl::StrCat("queue file read error: ", needed.status().message())});
      co_return After::kReusable;
    }
    if (*needed) {
      finish(Stop{v1::RECIPIENT_STATE_BOUNCED, 0, "5.6.7",
                  absl::StrCat("SMTPUTF8 is required, but was not offered by host ", c.relay())});
      co_return After::kReusable;
    }
  }
  if (capabilities.size_limit > 0 && message.size() > capabilities.size_limit) {
    finish(Stop{v1::RECIPIENT_STATE_BOUNCED, 0, "5.3.4",
                absl::StrCat("message size ", message.size(), " exceeds size limit ", capabilities.size_limit,
                             " of server ", c.relay())});
    co_return After::kReusable;
  }

  std::string mail = absl::StrCat("MAIL FROM:<", envelope.sender(), ">");
  if (capabilities.size) absl::StrAppend(&mail, " SIZE=", message.size());  // RFC 1870: only where announced.
  if (capabilities.eight_bit && envelope.body_type() == v1::BODY_TYPE_8BITMIME) {
    absl::StrAppend(&mail, " BODY=8BITMIME");
  }
  if (envelope.smtputf8() && capabilities.smtputf8) absl::StrAppend(&mail, " SMTPUTF8");
  if (capabilities.dsn && envelope.dsn_return() != v1::DSN_RETURN_UNSPECIFIED) {
    absl::StrAppend(&mail, " RET=", envelope.dsn_return() == v1::DSN_RETURN_FULL ? "FULL" : "HDRS");
  }
  if (capabilities.dsn && !envelope.envid().empty()) {
    absl::StrAppend(&mail, " ENVID=", smtp::EncodeXtext(envelope.envid()));
  }
  mail += "\r\n";
  std::vector<std::string> rcpts;
  for (int index : recipients) rcpts.push_back(RcptCommand(message.recipients(index), capabilities.dsn));

  // With PIPELINING: MAIL, every RCPT and DATA in one write, then the replies in order.
  const bool pipelining = capabilities.pipelining;
  bool sent = false;
  if (pipelining) {
    std::string batch = mail;
    for (const std::string& rcpt : rcpts) batch += rcpt;
    batch += "DATA\r\n";
    sent = co_await c.Send(batch, options.mail_timeout);
  } else {
    sent = co_await c.Send(mail, options.mail_timeout);
  }
  if (!sent) {
    if (reused) co_return After::kStale;
    finish(c.Lost("sending MAIL FROM"));
    co_return After::kBroken;
  }
  std::optional<ServerReply> reply = co_await c.Read(options.mail_timeout);
  // A cached session the server dropped (closed, or said 421 on its way out) is not a failure.
  if (reused && ((!reply && !c.timed_out() && !c.protocol_error()) || (reply && reply->code == 421))) {
    co_return After::kStale;
  }
  if (!reply) {
    finish(c.Lost("receiving the MAIL FROM reply"));
    co_return After::kBroken;
  }
  if (reply->code / 100 != 2) {
    finish(c.Said(*reply, "MAIL FROM command"));
    co_return reply->code == 421 ? After::kBroken : After::kQuit;
  }

  std::vector<size_t> accepted;
  for (size_t i = 0; i < rcpts.size(); ++i) {
    if (!pipelining && !co_await c.Send(rcpts[i], options.rcpt_timeout)) {
      finish(c.Lost("sending RCPT TO"));
      co_return After::kBroken;
    }
    reply = co_await c.Read(options.rcpt_timeout);
    if (!reply) {
      finish(c.Lost("receiving the RCPT TO reply"));
      co_return After::kBroken;
    }
    if (reply->code / 100 == 2) {
      accepted.push_back(i);
    } else {
      outcomes[i] = FromStop(c.Said(*reply, "RCPT TO command"), c);
    }
  }
  if (!pipelining) {
    if (accepted.empty()) co_return After::kQuit;
    if (!co_await c.Send("DATA\r\n", options.data_init_timeout)) {
      finish(c.Lost("sending DATA"));
      co_return After::kBroken;
    }
  }
  reply = co_await c.Read(options.data_init_timeout);
  if (!reply) {
    finish(c.Lost("receiving the DATA reply"));
    co_return After::kBroken;
  }
  if (accepted.empty()) co_return After::kQuit;  // Pipelined DATA after no accepted recipient: refused.
  if (reply->code != 354) {
    finish(c.Said(*reply, "DATA command"));
    co_return After::kQuit;
  }
  // The content goes out as it is read (smtp_data_xfer_timeout applies to each write, as in
  // Postfix). If the queue cannot read it, the connection is dropped before the final dot, so
  // the server discards what it got.
  WireDataEncoder encoder;
  for (uint32_t index = 0;; ++index) {
    absl::StatusOr<std::optional<std::string>> piece = content(index);
    if (!piece.ok()) {
      finish({v1::RECIPIENT_STATE_DEFERRED, 0, "4.3.0", absl::StrCat("queue file read error: ", piece.status().message())});
      co_return After::kBroken;
    }
    // A reply before the final dot is not an answer to this message (it has not all been sent):
    // a broken or hostile server. Leave without the dot, so a sane one discards what it has.
    if (c.HasUnreadInput()) {
      finish(c.ProtocolError("sending message body", "the server replied before the end of data"));
      co_return After::kBroken;
    }
    const std::string wire = piece->has_value() ? encoder.Encode(**piece) : encoder.Finish();
    if (!co_await c.Send(wire, options.data_xfer_timeout)) {
      finish(c.Lost("sending message body"));
      co_return After::kBroken;
    }
    if (!piece->has_value()) break;
  }
  reply = co_await c.Read(options.data_done_timeout);
  if (!reply) {
    finish(c.Lost("receiving the end of data reply"));
    co_return After::kBroken;
  }
  for (size_t i : accepted) {
    if (reply->code / 100 == 2) {
      outcomes[i] = DeliveryOutcome{v1::RECIPIENT_STATE_DELIVERED, static_cast<uint32_t>(reply->code),
                                    reply->enhanced.empty() ? "2.0.0" : reply->enhanced, reply->text, c.relay()};
      outcomes[i].remote_mta = c.remote_host();
      outcomes[i].remote_reply = reply->text;
      outcomes[i].notify_passed_on = capabilities.dsn;
    } else {
      outcomes[i] = FromStop(c.Said(*reply, "end of DATA command"), c);
    }
  }
  co_return reply->code == 421 ? After::kBroken : After::kReusable;
}

}  // namespace

std::optional<ServerReply> ParseServerReply(const std::vector<std::string>& lines) {
  if (lines.empty()) return std::nullopt;
  const std::string& last = lines.back();
  if (last.size() >= 4 && last[3] == '-') return std::nullopt;  // More lines follow.
  ServerReply reply;
  int code = 0;
  if (last.size() < 3 || !absl::SimpleAtoi(last.substr(0, 3), &code) || code < 200 || code > 599) {
    reply.code = 0;  // Not SMTP: treated as a protocol error (a 4xx-like deferral).
    reply.text = Printable(last);
    reply.lines = {reply.text};
    return reply;
  }
  reply.code = code;
  for (const std::string& line : lines) reply.lines.push_back(line.size() > 4 ? Printable(line.substr(4)) : "");
  reply.enhanced = Enhanced(reply.lines.back());
  reply.text = absl::StrCat(code, " ", absl::StrJoin(reply.lines, " "));
  return reply;
}

std::string WireDataEncoder::Encode(absl::string_view piece) {
  std::string wire;
  wire.reserve(piece.size() + piece.size() / 40 + 8);
  for (char ch : piece) {
    if (line_start_ && ch == '.') wire += '.';
    if (ch == '\n') {
      wire += "\r\n";
      line_start_ = true;
      continue;
    }
    wire += ch;
    line_start_ = false;
  }
  return wire;
}

std::string WireDataEncoder::Finish() { return line_start_ ? ".\r\n" : "\r\n.\r\n"; }

std::string ToWireData(absl::string_view stored) {
  WireDataEncoder encoder;
  std::string wire = encoder.Encode(stored);  // Before Finish: the operands of + are unsequenced.
  return wire + encoder.Finish();
}

namespace {

std::vector<DeliveryOutcome> DeliverOverSmtpOrThrow(const NextHop& next_hop, const std::vector<SmtpCandidate>& candidates,
                                                    const SmtpClientOptions& options, const v1::Message& message,
                                                    const std::vector<int>& recipients, const ContentPieces& content,
                                                    SmtpConnectionCache* cache) {
  std::vector<DeliveryOutcome> outcomes(recipients.size());
  const std::string key = next_hop.ToString();

  std::unique_ptr<SmtpSession> session = cache != nullptr ? cache->Take(key) : nullptr;
  After after = After::kStale;
  if (session != nullptr) {
    session->CountUse();
    after = session->Run(Transact(*session, message, recipients, content, outcomes, /*reused=*/true));
    if (after == After::kStale) {
      spdlog::info("cached connection to {} was closed by the server; connecting again", session->relay());
      session->Close();
      outcomes.assign(recipients.size(), DeliveryOutcome{});
    }
  }
  if (after == After::kStale) {
    session = std::make_unique<SmtpSession>(next_hop, options);
    std::optional<Stop> failed = session->Run(Open(*session, candidates));
    const bool waited = absl::Now() - absl::FromUnixSeconds(message.arrival_time().seconds()) >=
                        options.plaintext_fallback_after;
    if (failed && failed->tls_handshake_failed && options.tls_level == SmtpTlsLevel::kMay && waited) {
      // Opportunistic TLS: plaintext is acceptable by definition. encrypt and verify never get here.
      spdlog::info("{}: {}; smtp_tls_security_level = may: delivering in plaintext on a new connection",
                   session->relay(), failed->reason);
      session->Close();
      SmtpClientOptions plaintext = options;
      plaintext.tls_level = SmtpTlsLevel::kNone;
      session = std::make_unique<SmtpSession>(next_hop, plaintext);
      failed = session->Run(Open(*session, candidates));
    }
    if (failed) {
      for (DeliveryOutcome& outcome : outcomes) outcome = FromStop(*failed, *session);
      session->Close();
      return outcomes;
    }
    session->CountUse();
    after = session->Run(Transact(*session, message, recipients, content, outcomes, /*reused=*/false));
  }
  for (DeliveryOutcome& outcome : outcomes) outcome.connection_use = session->uses();
  switch (after) {
    case After::kReusable:
      if (cache != nullptr) {
        cache->Put(key, std::move(session));
      } else {
        session->Quit();
      }
      break;
    case After::kQuit:
      session->Quit();
      break;
    default:
      session->Close();
  }
  return outcomes;
}

}  // namespace

std::vector<DeliveryOutcome> DeliverOverSmtp(const NextHop& next_hop, const std::vector<SmtpCandidate>& candidates,
                                             const SmtpClientOptions& options, const v1::Message& message,
                                             const std::vector<int>& recipients, const ContentPieces& content,
                                             SmtpConnectionCache* cache) {
  try {
    return DeliverOverSmtpOrThrow(next_hop, candidates, options, message, recipients, content, cache);
  } catch (const std::exception& error) {
    // Asio, OpenSSL set-up or a content reader threw: on a delivery thread nothing would catch it
    // and the process would end. The connection is gone (closed as its session unwound); the
    // recipients wait for the next attempt, and the reason says what happened.
    spdlog::warn("{}: SMTP client error: {}; delivery deferred", next_hop.ToString(), error.what());
    DeliveryOutcome deferred;
    deferred.state = v1::RECIPIENT_STATE_DEFERRED;
    deferred.dsn_status = "4.3.0";
    deferred.reason = absl::StrCat("SMTP client error: ", error.what());
    deferred.relay = "none";
    return std::vector<DeliveryOutcome>(recipients.size(), deferred);
  }
}

SmtpConnectionCache::SmtpConnectionCache(SmtpConnectionCacheOptions options)
    : options_(options), closer_([this] { CloseIdleLoop(); }) {}

SmtpConnectionCache::~SmtpConnectionCache() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  closer_.join();
  for (auto& [next_hop, sessions] : idle_) {
    for (std::unique_ptr<SmtpSession>& session : sessions) session->Quit();
  }
}

std::unique_ptr<SmtpSession> SmtpConnectionCache::Take(const std::string& next_hop) {
  absl::MutexLock lock(&mu_);
  auto it = idle_.find(next_hop);
  if (it == idle_.end()) return nullptr;
  std::unique_ptr<SmtpSession> session = std::move(it->second.back());  // The most recently used.
  it->second.pop_back();
  if (it->second.empty()) idle_.erase(it);
  return session;
}

void SmtpConnectionCache::Put(const std::string& next_hop, std::unique_ptr<SmtpSession> session) {
  const bool worn_out = (options_.reuse_count_limit > 0 && session->uses() >= options_.reuse_count_limit) ||
                        absl::Now() - session->opened() >= options_.reuse_time_limit;
  if (!options_.enabled || worn_out) {
    session->Quit();
    return;
  }
  session->MarkIdle();
  absl::MutexLock lock(&mu_);
  idle_[next_hop].push_back(std::move(session));
}

size_t SmtpConnectionCache::IdleSessions() {
  absl::MutexLock lock(&mu_);
  size_t count = 0;
  for (const auto& [next_hop, sessions] : idle_) count += sessions.size();
  return count;
}

void SmtpConnectionCache::CloseIdleLoop() {
  const absl::Duration tick = std::clamp(options_.idle_limit / 4, absl::Milliseconds(50), absl::Seconds(1));
  for (;;) {
    std::vector<std::unique_ptr<SmtpSession>> expired;
    {
      absl::MutexLock lock(&mu_);
      auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping), tick)) return;
      const absl::Time now = absl::Now();
      for (auto it = idle_.begin(); it != idle_.end();) {
        std::vector<std::unique_ptr<SmtpSession>>& sessions = it->second;
        for (auto session = sessions.begin(); session != sessions.end();) {
          if (now - (*session)->idle_since() >= options_.idle_limit) {
            expired.push_back(std::move(*session));
            session = sessions.erase(session);
          } else {
            ++session;
          }
        }
        if (sessions.empty()) {
          idle_.erase(it++);
        } else {
          ++it;
        }
      }
    }
    for (std::unique_ptr<SmtpSession>& session : expired) session->Quit();  // Outside the lock.
  }
}

}  // namespace postgate::queue
