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
#include "asio/strand.hpp"
#include "asio/this_coro.hpp"
#include "asio/use_awaitable.hpp"
#include "asio/write.hpp"
#include "core/addressing/header_addresses.h"
#include "core/addressing/header_section_rewriter.h"
#include "core/smtp/utf8.h"
#include "core/smtp/xtext.h"
#include "queue-service/delivery/smtp_session.h"
#include "spdlog/spdlog.h"
#include "queue-service/model/record.h"

namespace postgate::queue {
namespace {

DeliveryOutcome FromStop(const ConversationStop& stop, const SmtpSession& session) {
  DeliveryOutcome outcome{stop.state, stop.code, stop.dsn, stop.reason, session.relay()};
  if (!stop.remote_reply.empty()) {
    outcome.remote_mta = session.remote_host();
    outcome.remote_reply = stop.remote_reply;
  }
  return outcome;
}

// Whether this transaction needs SMTPUTF8: a UTF-8 envelope address, or UTF-8 in the header
// section (read up to its empty line; the body is 8BITMIME's business, not SMTPUTF8's).
absl::StatusOr<bool> NeedsSmtpUtf8(const rec::Message& message, const std::vector<int>& recipients,
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

// smtp_generic_maps: `address` as it leaves (one lookup, as Postfix's smtp_map11); "" stays "".
std::string Generic(const SmtpClientOptions& options, const std::string& address) {
  if (options.generic_maps == nullptr || address.empty()) return address;
  std::optional<std::vector<std::string>> mapped =
      options.generic_maps->Map(address, options.generic_propagate, options.generic_is_local);
  if (!mapped || mapped->empty()) return address;
  if (mapped->size() > 1) spdlog::warn("multi-valued smtp_generic_maps result for {}", address);
  return mapped->front();
}

// The addresses of a From:, To:… header field rewritten by smtp_generic_maps, or nullopt.
std::optional<std::string> GenericHeader(const SmtpClientOptions& options, absl::string_view field) {
  return addressing::RewriteAddressHeader(field, [&options](absl::string_view address, addressing::HeaderAddressRole) {
    return std::optional<std::string>(Generic(options, std::string(address)));
  });
}

// RCPT TO with the recipient's DSN options (RFC 3461) when the server announced DSN.
std::string RcptCommand(const rec::RecipientStatus& recipient, const SmtpClientOptions& client, bool dsn) {
  std::string command = absl::StrCat("RCPT TO:<", Generic(client, recipient.address()), ">");
  const rec::RecipientOptions& options = recipient.options();
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
asio::awaitable<std::optional<ConversationStop>> Open(SmtpSession& c, const std::vector<SmtpCandidate>& candidates,
                                                      absl::string_view sender) {
  const SmtpClientOptions& options = c.options();
  if (std::optional<ConversationStop> failed = co_await c.Connect(candidates)) co_return failed;
  if (options.tls_wrappermode) {
    if (std::optional<ConversationStop> failed = co_await c.StartTls(options, options.helo_timeout)) co_return failed;
    spdlog::info("{} TLS connection established to {}: {}",
                 options.tls_level == SmtpTlsLevel::kVerify ? "Verified" : "Anonymous", c.relay(), c.tls_description());
  }
  std::optional<ServerReply> reply = co_await c.Read(options.helo_timeout);
  if (!reply) co_return c.Lost("receiving the initial server greeting");
  if (reply->code / 100 != 2) co_return c.Said(*reply, "initial greeting");
  if (std::optional<ConversationStop> loop = c.LoopsBack(*reply, "greeted me with")) co_return loop;

  SmtpCapabilities& capabilities = c.capabilities();
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
  if (std::optional<ConversationStop> loop = c.LoopsBack(*reply, "replied to HELO/EHLO with")) co_return loop;
  auto learn = [&capabilities](const ServerReply& ehlo) {
    capabilities = SmtpCapabilities{.esmtp = capabilities.esmtp};
    for (size_t i = 1; capabilities.esmtp && i < ehlo.lines.size(); ++i) {
      std::string keyword = absl::AsciiStrToUpper(ehlo.lines[i]);
      if (keyword == "PIPELINING") capabilities.pipelining = true;
      else if (keyword == "8BITMIME") capabilities.eight_bit = true;
      else if (keyword == "SMTPUTF8") capabilities.smtputf8 = true;
      else if (keyword == "DSN") capabilities.dsn = true;
      else if (keyword == "STARTTLS") capabilities.starttls = true;
      else if (keyword == "AUTH" || absl::StartsWith(keyword, "AUTH ") || absl::StartsWith(keyword, "AUTH=")) {
        // "AUTH PLAIN LOGIN", or the old "AUTH=PLAIN LOGIN"; several lines add up.
        capabilities.auth = true;
        const std::string mechanisms = keyword.size() > 5 ? keyword.substr(5) : std::string();
        for (absl::string_view mechanism : absl::StrSplit(mechanisms, ' ', absl::SkipEmpty())) {
          capabilities.auth_mechanisms.emplace_back(mechanism);
        }
      }
      else if (keyword == "SIZE" || absl::StartsWith(keyword, "SIZE ")) {
        capabilities.size = true;
        if (keyword.size() > 5) (void)absl::SimpleAtoi(keyword.substr(5), &capabilities.size_limit);
      }
    }
  };
  learn(*reply);
  const bool tls_required = options.tls_level == SmtpTlsLevel::kEncrypt || options.tls_level == SmtpTlsLevel::kVerify;
  if (c.tls_active()) {
    // Wrapper mode: TLS from the start; a STARTTLS offered inside it means nothing.
  } else if (options.tls_level != SmtpTlsLevel::kNone && capabilities.starttls) {
    if (!co_await c.Send("STARTTLS\r\n", options.helo_timeout)) co_return c.Lost("sending STARTTLS");
    reply = co_await c.Read(options.helo_timeout);
    if (!reply) co_return c.Lost("receiving the STARTTLS reply");
    if (reply->code != 220) {
      if (tls_required) co_return c.Said(*reply, "STARTTLS command");
    } else {
      if (std::optional<ConversationStop> failed = co_await c.StartTls(options, options.helo_timeout)) co_return failed;
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
    co_return ConversationStop{rec::RECIPIENT_STATE_DEFERRED, 0, "4.7.4",
                   absl::StrCat("TLS is required, but was not offered by host ", c.relay())};
  }
  co_return co_await LogIn(c, sender);
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
asio::awaitable<After> Transact(SmtpSession& c, const rec::Message& message, const std::vector<int>& recipients,
                                const ContentPieces& content, std::vector<DeliveryOutcome>& outcomes, bool reused) {
  const SmtpClientOptions& options = c.options();
  const SmtpCapabilities& capabilities = c.capabilities();
  // Sets every recipient still without an answer to `stop`.
  auto finish = [&](const ConversationStop& stop) {
    for (DeliveryOutcome& outcome : outcomes) {
      if (outcome.smtp_code == 0 && outcome.reason.empty()) outcome = FromStop(stop, c);
    }
  };
  const rec::Envelope& envelope = message.envelope();
  if (envelope.smtputf8() && !capabilities.smtputf8) {
    // As Postfix: the request alone is no reason to bounce. Mail whose envelope and headers are
    // ASCII goes on without SMTPUTF8; only what really needs it is returned.
    absl::StatusOr<bool> needed = NeedsSmtpUtf8(message, recipients, content);
    if (!needed.ok()) {
      finish({rec::RECIPIENT_STATE_DEFERRED, 0, "4.3.0", absl::StrCat("queue file read error: ", needed.status().message())});
      co_return After::kReusable;
    }
    if (*needed) {
      finish(ConversationStop{rec::RECIPIENT_STATE_BOUNCED, 0, "5.6.7",
                  absl::StrCat("SMTPUTF8 is required, but was not offered by host ", c.relay())});
      co_return After::kReusable;
    }
  }
  if (capabilities.size_limit > 0 && message.size() > capabilities.size_limit) {
    finish(ConversationStop{rec::RECIPIENT_STATE_BOUNCED, 0, "5.3.4",
                absl::StrCat("message size ", message.size(), " exceeds size limit ", capabilities.size_limit,
                             " of server ", c.relay())});
    co_return After::kReusable;
  }

  std::string mail = absl::StrCat("MAIL FROM:<", Generic(options, envelope.sender()), ">");
  if (capabilities.size) absl::StrAppend(&mail, " SIZE=", message.size());  // RFC 1870: only where announced.
  if (capabilities.eight_bit && envelope.body_type() == rec::BODY_TYPE_8BITMIME) {
    absl::StrAppend(&mail, " BODY=8BITMIME");
  }
  if (envelope.smtputf8() && capabilities.smtputf8) absl::StrAppend(&mail, " SMTPUTF8");
  if (capabilities.dsn && envelope.dsn_return() != rec::DSN_RETURN_UNSPECIFIED) {
    absl::StrAppend(&mail, " RET=", envelope.dsn_return() == rec::DSN_RETURN_FULL ? "FULL" : "HDRS");
  }
  if (capabilities.dsn && !envelope.envid().empty()) {
    absl::StrAppend(&mail, " ENVID=", smtp::EncodeXtext(envelope.envid()));
  }
  mail += "\r\n";
  std::vector<std::string> rcpts;
  for (int index : recipients) rcpts.push_back(RcptCommand(message.recipients(index), options, capabilities.dsn));

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
  // Pieces are coalesced into writes of at least kWriteSize (the last one carries the final dot),
  // so a small message leaves in one segment: a short write after another waits for its ACK
  // (Nagle) and the peer delays that ACK, ~40 ms per message otherwise.
  constexpr size_t kWriteSize = 64 * 1024;
  WireDataEncoder encoder;
  std::string wire;
  std::optional<addressing::HeaderSectionRewriter> generic_headers;
  if (options.generic_maps != nullptr) {
    generic_headers.emplace([&options](absl::string_view field) { return GenericHeader(options, field); });
  }
  std::string rewritten;
  for (uint32_t index = 0;; ++index) {
    absl::StatusOr<std::optional<std::string>> piece = content(index);
    if (!piece.ok()) {
      finish({rec::RECIPIENT_STATE_DEFERRED, 0, "4.3.0", absl::StrCat("queue file read error: ", piece.status().message())});
      co_return After::kBroken;
    }
    const bool last = !piece->has_value();
    if (generic_headers) {
      rewritten.clear();
      if (last) {
        generic_headers->Finish(&rewritten);
      } else {
        generic_headers->Feed(**piece, &rewritten);
      }
      absl::StrAppend(&wire, encoder.Encode(rewritten));
      if (last) absl::StrAppend(&wire, encoder.Finish());
    } else {
      absl::StrAppend(&wire, last ? encoder.Finish() : encoder.Encode(**piece));
    }
    if (!last && wire.size() < kWriteSize) continue;
    // A reply before the final dot is not an answer to this message (it has not all been sent):
    // a broken or hostile server. Leave without the dot, so a sane one discards what it has.
    if (c.HasUnreadInput()) {
      finish(c.ProtocolError("sending message body", "the server replied before the end of data"));
      co_return After::kBroken;
    }
    if (!co_await c.Send(wire, options.data_xfer_timeout)) {
      finish(c.Lost("sending message body"));
      co_return After::kBroken;
    }
    wire.clear();
    if (last) break;
  }
  reply = co_await c.Read(options.data_done_timeout);
  if (!reply) {
    finish(c.Lost("receiving the end of data reply"));
    co_return After::kBroken;
  }
  for (size_t i : accepted) {
    if (reply->code / 100 == 2) {
      outcomes[i] = DeliveryOutcome{rec::RECIPIENT_STATE_DELIVERED, static_cast<uint32_t>(reply->code),
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

asio::awaitable<std::vector<DeliveryOutcome>> DeliverOverSmtpOrThrow(
    const NextHop& next_hop, const std::vector<SmtpCandidate>& candidates, const SmtpClientOptions& options,
    const rec::Message& message, const std::vector<int>& recipients, const ContentPieces& content,
    SmtpConnectionCache* cache) {
  const asio::any_io_executor executor = co_await asio::this_coro::executor;
  std::vector<DeliveryOutcome> outcomes(recipients.size());
  // Sessions are kept by next hop and, with sender-dependent logins, by the login the sender's
  // entry names: one sender's mail never goes over a session logged in for another.
  std::string key = next_hop.ToString();
  if (options.sasl.enabled && options.sasl.sender_dependent && options.sasl.passwords != nullptr) {
    if (std::optional<std::string> login = options.sasl.passwords->SenderUsername(message.envelope().sender())) {
      absl::StrAppend(&key, " as ", *login);
    }
  }

  std::unique_ptr<SmtpSession> session = cache != nullptr ? cache->Take(key) : nullptr;
  After after = After::kStale;
  bool opened_here = false;
  if (session != nullptr) {
    session->BeginConversation();
    session->CountUse();
    after = co_await Transact(*session, message, recipients, content, outcomes, /*reused=*/true);
    if (after == After::kStale) {
      spdlog::info("cached connection to {} was closed by the server; connecting again", session->relay());
      session->Close();
      outcomes.assign(recipients.size(), DeliveryOutcome{});
    }
  }
  if (after == After::kStale) {
    session = std::make_unique<SmtpSession>(executor, next_hop, options);
    std::optional<ConversationStop> failed = co_await Open(*session, candidates, message.envelope().sender());
    const bool waited = absl::Now() - absl::FromUnixSeconds(message.arrival_time().seconds()) >=
                        options.plaintext_fallback_after;
    // Never after a failed handshake where a login was due: a server that asks for AUTH only
    // over TLS would refuse the mail, and one that offers it in plaintext must not get it.
    auto would_log_in = [&] {
      return options.sasl.enabled && options.sasl.passwords != nullptr &&
             options.sasl.passwords->Find(message.envelope().sender(), options.sasl.sender_dependent, next_hop,
                                          session->remote_host());
    };
    if (failed && failed->tls_handshake_failed && options.tls_level == SmtpTlsLevel::kMay && waited &&
        !options.tls_wrappermode && !would_log_in()) {
      // Opportunistic TLS: plaintext is acceptable by definition. encrypt and verify never get here.
      spdlog::info("{}: {}; smtp_tls_security_level = may: delivering in plaintext on a new connection",
                   session->relay(), failed->reason);
      session->Close();
      SmtpClientOptions plaintext = options;
      plaintext.tls_level = SmtpTlsLevel::kNone;
      session = std::make_unique<SmtpSession>(executor, next_hop, plaintext);
      failed = co_await Open(*session, candidates, message.envelope().sender());
    }
    if (failed) {
      for (DeliveryOutcome& outcome : outcomes) {
        outcome = FromStop(*failed, *session);
        outcome.sasl_mechanism = session->login_mechanism();
        outcome.sasl_result = session->login_result();
        outcome.server_answered = session->answered();
      }
      session->Close();
      co_return outcomes;
    }
    opened_here = true;
    session->CountUse();
    after = co_await Transact(*session, message, recipients, content, outcomes, /*reused=*/false);
  }
  for (DeliveryOutcome& outcome : outcomes) {
    outcome.connection_use = session->uses();
    outcome.server_answered = session->answered();
    if (opened_here) {  // A cached session logged in when it was opened: not again now.
      outcome.sasl_mechanism = session->login_mechanism();
      outcome.sasl_result = session->login_result();
    }
  }
  switch (after) {
    case After::kReusable:
      if (cache != nullptr) {
        cache->Put(key, std::move(session));
        break;
      }
      [[fallthrough]];
    case After::kQuit:
      co_await session->Quit();
      break;
    default:
      session->Close();
  }
  co_return outcomes;
}

}  // namespace

asio::awaitable<std::vector<DeliveryOutcome>> DeliverOverSmtp(
    const NextHop& next_hop, const std::vector<SmtpCandidate>& candidates, const SmtpClientOptions& options,
    const rec::Message& message, const std::vector<int>& recipients, const ContentPieces& content,
    SmtpConnectionCache* cache) {
  std::string failure;
  try {
    co_return co_await DeliverOverSmtpOrThrow(next_hop, candidates, options, message, recipients, content, cache);
  } catch (const std::exception& error) {
    failure = error.what();
  }
  // Asio, OpenSSL set-up or a content reader threw: nothing on the pool would catch it and the
  // process would end. The connection is gone (closed as its session unwound); the recipients
  // wait for the next attempt, and the reason says what happened.
  spdlog::warn("{}: SMTP client error: {}; delivery deferred", next_hop.ToString(), failure);
  DeliveryOutcome deferred;
  deferred.state = rec::RECIPIENT_STATE_DEFERRED;
  deferred.dsn_status = "4.3.0";
  deferred.reason = absl::StrCat("SMTP client error: ", failure);
  deferred.relay = "none";
  co_return std::vector<DeliveryOutcome>(recipients.size(), deferred);
}

}  // namespace postgate::queue
