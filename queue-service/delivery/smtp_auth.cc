// SMTP AUTH on the client side (RFC 4954), with Postfix's reasons when it fails:
//   "SASL authentication failed; server host[addr] said: 535 5.7.8 …" (a refused login; 5xx
//   deferred with smtp_sasl_auth_soft_bounce = yes, Postfix's default),
//   "SASL authentication failed; cannot authenticate to server host[addr]: no mechanism available"
//   (the security options exclude every mechanism offered: e.g. PLAIN before TLS),
//   "SASL authentication failed: server host[addr] offered no compatible authentication
//   mechanisms for this type of connection security" (the mechanism filter leaves none).
// Nothing sent here is logged: AUTH lines carry the password (base64 is no protection).

// g++ 12 at -O1 with AddressSanitizer: see smtp_deliverer.cc.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include "queue-service/delivery/smtp_session.h"

namespace postgate::queue {
namespace {

ConversationStop CannotAuthenticate(const SmtpSession& c, absl::string_view why) {
  return ConversationStop{rec::RECIPIENT_STATE_DEFERRED, 0, "4.7.0",
                          absl::StrCat("SASL authentication failed; cannot authenticate to server ",
                                       c.host_and_address(), ": ", why)};
}

// Sends `line` (which holds the secret) and wipes it.
asio::awaitable<bool> SendSecret(SmtpSession& c, std::string line, absl::Duration timeout) {
  const bool sent = co_await c.Send(line, timeout);
  sasl::Secret wipe(std::move(line));
  co_return sent;
}

}  // namespace

asio::awaitable<std::optional<ConversationStop>> LogIn(SmtpSession& c, absl::string_view sender) {
  const SmtpClientOptions& options = c.options();
  const SmtpSaslOptions& sasl_options = options.sasl;
  // Without AUTH in the EHLO reply, or without credentials, client and server talk like
  // strangers (Postfix): the server decides whether that is enough.
  if (!sasl_options.enabled || sasl_options.passwords == nullptr || !c.capabilities().auth) co_return std::nullopt;
  std::optional<SaslCredentials> credentials =
      sasl_options.passwords->Find(sender, sasl_options.sender_dependent, c.hop(), c.remote_host());
  if (!credentials) co_return std::nullopt;

  std::vector<std::string> offered;
  for (const std::string& mechanism : c.capabilities().auth_mechanisms) {
    const bool wanted = sasl_options.mechanism_filter.empty() ||
                        std::any_of(sasl_options.mechanism_filter.begin(), sasl_options.mechanism_filter.end(),
                                    [&](const std::string& name) { return absl::EqualsIgnoreCase(name, mechanism); });
    if (wanted) offered.push_back(mechanism);
  }
  if (offered.empty()) {
    c.NoteLogin("none", "failed");
    co_return ConversationStop{rec::RECIPIENT_STATE_DEFERRED, 0, "4.7.0",
                               absl::StrCat("SASL authentication failed: server ", c.host_and_address(),
                                            " offered no compatible authentication mechanisms for this type of "
                                            "connection security")};
  }
  const sasl::SecurityOptions& security = !c.tls_active() ? sasl_options.without_tls
                                          : options.tls_level == SmtpTlsLevel::kVerify ? sasl_options.with_verified_tls
                                                                                        : sasl_options.with_tls;
  absl::StatusOr<std::string> mechanism = sasl::ChooseMechanism(offered, {}, security);
  if (!mechanism.ok()) {
    c.NoteLogin("none", "failed");
    co_return CannotAuthenticate(c, mechanism.status().message());
  }
  sasl::ClientExchange exchange(*mechanism, credentials->username, std::move(credentials->password));
  c.NoteLogin(*mechanism, "failed");  // Until the server says otherwise.
  if (!co_await SendSecret(c, exchange.Command(), options.helo_timeout)) co_return c.Lost("sending AUTH");
  std::optional<ServerReply> reply = co_await c.Read(options.helo_timeout);
  // Each 334 challenge gets the mechanism's next line; a mechanism with nothing more to say
  // ends the exchange (a server asking for ever cannot keep us).
  while (reply && reply->code == 334) {
    absl::StatusOr<std::string> response = exchange.Respond(reply->lines.empty() ? "" : reply->lines.front());
    if (!response.ok()) co_return CannotAuthenticate(c, response.status().message());
    if (!co_await SendSecret(c, *std::move(response), options.helo_timeout)) co_return c.Lost("sending AUTH");
    reply = co_await c.Read(options.helo_timeout);
  }
  if (!reply) co_return c.Lost("receiving the AUTH reply");
  if (reply->code / 100 == 2) {
    c.NoteLogin(*mechanism, "success");
    co_return std::nullopt;
  }
  ConversationStop refused;
  const bool permanent = reply->code >= 500 && !sasl_options.soft_bounce;
  refused.state = permanent ? rec::RECIPIENT_STATE_BOUNCED : rec::RECIPIENT_STATE_DEFERRED;
  refused.code = static_cast<uint32_t>(reply->code);
  refused.dsn = !reply->enhanced.empty() ? reply->enhanced : reply->code >= 500 ? "5.7.0" : "4.7.0";
  if (!permanent) refused.dsn[0] = '4';  // smtp_sasl_auth_soft_bounce: try again later.
  refused.reason = absl::StrCat("SASL authentication failed; server ", c.host_and_address(), " said: ", reply->text);
  refused.remote_reply = reply->text;
  co_return refused;
}

}  // namespace postgate::queue
