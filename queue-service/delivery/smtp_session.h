// One SMTP connection to a next hop, for the SMTP client (smtp_client.cc) and its connection
// cache: connect, read bounded replies, write with timeouts, STARTTLS, QUIT, and the reasons a
// conversation stops, worded as Postfix words them. Internal to the delivery target.
#pragma once

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
#include "asio/strand.hpp"
#include "asio/this_coro.hpp"
#include "asio/use_awaitable.hpp"
#include "asio/write.hpp"
#include "core/smtp/utf8.h"
#include "core/smtp/xtext.h"
#include "spdlog/spdlog.h"
#include "queue-service/delivery/smtp_client.h"
#include "queue-service/model/record.h"

namespace postgate::queue {

// Only the delivery target's SMTP files include this header: the names below are theirs.
using namespace asio::experimental::awaitable_operators;
using tcp = asio::ip::tcp;
inline constexpr auto kAsTuple = asio::experimental::as_tuple(asio::use_awaitable);

inline std::chrono::milliseconds Millis(absl::Duration d) {
  return std::chrono::milliseconds(absl::ToInt64Milliseconds(d));
}

// Why a conversation stopped before every recipient had an answer; applies to those left.
struct ConversationStop {
  rec::RecipientState state = rec::RECIPIENT_STATE_DEFERRED;
  uint32_t code = 0;
  std::string dsn;
  std::string reason;
  std::string remote_reply{};  // What the server said, when it was the server that said no.
  bool tls_handshake_failed = false;  // At "may", plaintext is an option on a new connection.
};

// What the server announced in its EHLO reply (after STARTTLS: the second one).
struct SmtpCapabilities {
  bool esmtp = true, pipelining = false, eight_bit = false, smtputf8 = false, dsn = false, starttls = false;
  bool size = false;
  uint64_t size_limit = 0;  // 0 with `size`: announced without a limit.
  bool auth = false;        // AUTH announced (with or without mechanisms we know).
  std::vector<std::string> auth_mechanisms{};  // Upper case, as announced.
};

// One connection to a next hop, its socket on the delivery pool's executor. One conversation
// at a time uses it (a cached session is taken out of the cache first), from a coroutine on a
// strand of that pool, so its handlers never run at the same time.
class SmtpSession {
 public:
  SmtpSession(const asio::any_io_executor& executor, const NextHop& hop, const SmtpClientOptions& options)
      : socket_(executor), timer_(executor), hop_(hop), options_(options), relay_(hop.ToString()),
        opened_(absl::Now()) {}

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
  SmtpCapabilities& capabilities() { return capabilities_; }
  absl::Time opened() const { return opened_; }
  int uses() const { return uses_; }
  void CountUse() { ++uses_; }
  absl::Time idle_since() const { return idle_since_; }
  void MarkIdle() { idle_since_ = absl::Now(); }
  bool timed_out() const { return timed_out_; }

  // QUIT, its reply awaited briefly (RFC 5321 4.1.1.10), then close.
  asio::awaitable<void> Quit() {
    if (socket_.is_open()) {
      constexpr absl::Duration kQuitWait = absl::Seconds(2);  // A closing courtesy, not worth more.
      if (co_await Send("QUIT\r\n", kQuitWait)) (void)co_await Read(kQuitWait);
    }
    Close();
  }

  // Clears what the last conversation left: a timeout or a broken bound.
  void BeginConversation() {
    timed_out_ = false;
    protocol_error_.clear();
  }

  // Tries each address in order (MX preference order, then each host's addresses) until one
  // answers; the last failure is the reason when none does.
  asio::awaitable<std::optional<ConversationStop>> Connect(const std::vector<SmtpCandidate>& candidates) {
    ConversationStop last{rec::RECIPIENT_STATE_DEFERRED, 0, "4.4.1", "no address to connect to"};
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
      // Every write is a whole command batch or a coalesced piece of content: nothing gains from
      // waiting for more (Nagle), and a reply would wait on the peer's delayed ACK.
      std::error_code ignored;
      socket_.set_option(tcp::no_delay(true), ignored);
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
  asio::awaitable<std::optional<ConversationStop>> StartTls(const SmtpClientOptions& options, absl::Duration timeout) {
    tls_context_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    tls_context_->set_options(asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                              asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    if (options.tls_level == SmtpTlsLevel::kVerify) {
      std::error_code error;
      tls_context_->load_verify_file(options.tls_ca_file, error);
      if (error) {
        co_return ConversationStop{rec::RECIPIENT_STATE_DEFERRED, 0, "4.7.5",
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
      ConversationStop failed{rec::RECIPIENT_STATE_DEFERRED, 0, "4.7.5", absl::StrCat("TLS handshake with ", relay_, " failed: ", why)};
      failed.tls_handshake_failed = true;
      co_return failed;
    }
    SSL* ssl = tls_->native_handle();
    tls_description_ = absl::StrCat(SSL_get_version(ssl), " with cipher ",
                                    SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)));
    co_return std::nullopt;
  }
  const std::string& tls_description() const { return tls_description_; }
  bool tls_active() const { return tls_ != nullptr; }
  // Whether the server has sent a complete reply on this connection (it is there, whatever it said).
  bool answered() const { return answered_; }
  const NextHop& hop() const { return hop_; }
  const std::string& host_and_address() const { return host_and_address_; }
  // The SASL login this session made when it was opened (for the metric): mechanism, result.
  void NoteLogin(std::string mechanism, std::string result) {
    login_mechanism_ = std::move(mechanism);
    login_result_ = std::move(result);
  }
  const std::string& login_mechanism() const { return login_mechanism_; }
  const std::string& login_result() const { return login_result_; }

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
      if (std::optional<ServerReply> reply = ParseServerReply(lines)) {
        answered_ = true;
        co_return reply;
      }
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
  ConversationStop Lost(absl::string_view what) const {
    if (!protocol_error_.empty()) return ProtocolError(what, protocol_error_);
    return ConversationStop{rec::RECIPIENT_STATE_DEFERRED, 0, "4.4.2",
                absl::StrCat(timed_out_ ? "conversation with " : "lost connection with ", host_and_address_,
                             timed_out_ ? " timed out while " : " while ", what)};
  }
  bool protocol_error() const { return !protocol_error_.empty(); }

  // The server broke the protocol (or our bounds on it) while we were `what`: deferred.
  ConversationStop ProtocolError(absl::string_view what, absl::string_view why) const {
    return ConversationStop{rec::RECIPIENT_STATE_DEFERRED, 0, "4.5.0",
                absl::StrCat("protocol error with ", host_and_address_, " while ", what, ": ", why)};
  }

  // A greeting or EHLO reply naming our own host: the next hop is this very MTA (a relayhost
  // pointed at our own Service), and trying again would only loop. Bounced, as Postfix does.
  std::optional<ConversationStop> LoopsBack(const ServerReply& reply, absl::string_view how) const {
    if (options_.myhostname.empty() || reply.lines.empty()) return std::nullopt;
    const absl::string_view first = absl::string_view(reply.lines.front()).substr(0, reply.lines.front().find(' '));
    if (!absl::EqualsIgnoreCase(first, options_.myhostname)) return std::nullopt;
    return ConversationStop{rec::RECIPIENT_STATE_BOUNCED, 0, "5.4.6",
                absl::StrCat("host ", host_and_address_, " ", how, " my own hostname ", options_.myhostname,
                             ": mail for ", hop_.host, " loops back to myself")};
  }

  // "host x[1.2.3.4] said: 550 5.1.1 … (in reply to RCPT TO command)", deferred or bounced by code.
  ConversationStop Said(const ServerReply& reply, absl::string_view command) const {
    ConversationStop stop;
    stop.state = reply.code >= 500 ? rec::RECIPIENT_STATE_BOUNCED : rec::RECIPIENT_STATE_DEFERRED;
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
  asio::awaitable<void> Timeout(absl::Duration timeout) {
    timer_.expires_after(Millis(timeout));
    co_await timer_.async_wait(kAsTuple);
  }

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
  SmtpCapabilities capabilities_;
  const absl::Time opened_;
  absl::Time idle_since_;
  int uses_ = 0;
  std::string login_mechanism_, login_result_;
  bool answered_ = false;
};

// SMTP AUTH after EHLO (and STARTTLS), as Postfix's smtp_sasl_helo_login: when smtp_sasl_auth_enable
// is on, the server announced AUTH and smtp_sasl_password_maps has credentials for `sender` or
// this server. nullopt when the session may go on (logged in, or no login to make); otherwise
// why not, for every recipient. smtp_auth.cc.
asio::awaitable<std::optional<ConversationStop>> LogIn(SmtpSession& c, absl::string_view sender);

}  // namespace postgate::queue
