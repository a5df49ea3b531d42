// One SMTP connection: the only place where the socket, the protocol state machine, the policy,
// the queue client and the metrics meet. Wiring only – every decision is made elsewhere.
// Replies to pipelined commands are collected and written when no complete command is left in
// the input (RFC 2920), and input that arrives early is kept, never dropped. One coroutine per
// connection; it runs on one single-threaded io_context, so nothing here needs a lock.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "asio/awaitable.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/thread_pool.hpp"
#include "core/config/regexp_table.h"
#include "core/io/mx_resolver.h"
#include "smtp-gateway/cleanup/address_rewriting.h"
#include "smtp-gateway/dkim/dkim_signer.h"
#include "smtp-gateway/milter/milter_config.h"
#include "smtp-gateway/metrics/gateway_metrics.h"
#include "smtp-gateway/policy/client_limiter.h"
#include "smtp-gateway/policy/client_match.h"
#include "smtp-gateway/policy/login_database.h"
#include "smtp-gateway/policy/relay_policy.h"
#include "smtp-gateway/protocol/session_machine.h"
#include "smtp-gateway/queue_client/queue_client.h"
#include "smtp-gateway/session/client_name.h"
#include "smtp-gateway/session/drain.h"
#include "smtp-gateway/session/tls_context.h"

namespace spdlog {
class logger;
}

namespace postgate::gateway {

// smtpd_forbid_bare_newline: what a line ending in LF without CR does. Every value but kAllow
// ends DATA only at <CR><LF>.<CR><LF>; clients in smtpd_forbid_bare_newline_exclusions get kAllow.
enum class BareNewline {
  kNormalize,  // "normalize" and "yes": taken as a line end (Postfix 3.9's default).
  kNote,       // "note": as normalize, and the disconnect line says notes=bare_lf.
  kReject,     // "reject": a command is refused and the session ends; a message is refused.
  kAllow,      // "no": a line end in every respect, so <LF>.<LF> ends DATA (smuggling-prone).
};

// What every session shares; read-only. A reload makes a new one for the sessions that follow.
struct SessionEnvironment {
  protocol::ProtocolLimits limits;
  const policy::RelayPolicy* policy = nullptr;
  QueueClient* queue = nullptr;
  GatewayMetrics* metrics = nullptr;
  std::string mail_name;
  size_t line_length_limit = 2048;
  std::chrono::seconds timeout{300};  // smtpd_timeout
  bool peername_lookup = true;        // smtpd_peername_lookup
  asio::thread_pool* name_lookups = nullptr;  // Runs the blocking client-name lookups; required.
  ClientNameCache* client_names = nullptr;    // Required.
  size_t soft_error_limit = 10;       // smtpd_soft_error_limit: past it, each error reply waits
  std::chrono::milliseconds error_sleep{1000};  // smtpd_error_sleep_time
  TlsContextProvider* tls = nullptr;  // STARTTLS offered when set.
  bool tls_wrappermode = false;       // smtpd_tls_wrappermode: TLS from the first byte (needs tls).
  // The master.cf service ("smtp", "submission", "2465"…) and its logger (syslog_name/smtpd);
  // a null logger logs through spdlog's default one.
  std::string service_name = "smtp";
  std::shared_ptr<spdlog::logger> log;
  // SMTP AUTH (limits.auth_enabled): who may log in, and the pool that checks passwords.
  policy::LoginDatabase* logins = nullptr;
  asio::thread_pool* password_checks = nullptr;
  bool sasl_authenticated_header = false;  // smtpd_sasl_authenticated_header
  bool tls_received_header = false;   // smtpd_tls_received_header
  bool forbid_unauth_pipelining = true;  // smtpd_forbid_unauth_pipelining (Postfix 3.9's default)
  BareNewline bare_newline = BareNewline::kNormalize;
  const policy::NetworkList* bare_newline_exclusions = nullptr;  // Null: nobody is excluded.
  DrainControl* drain = nullptr;      // Graceful shutdown; required.
  // smtpd_upstream_proxy_protocol = haproxy: a PROXY v1/v2 header comes first, only from these.
  const policy::NetworkList* proxy_networks = nullptr;  // Null: no PROXY protocol.
  std::chrono::milliseconds proxy_timeout{5000};        // smtpd_upstream_proxy_timeout
  // smtpd_client_connection_count_limit / _rate_limit; the limiter outlives reloads (its counts
  // carry on), the limits and smtpd_client_event_limit_exceptions come with each settings.
  policy::ClientLimiter* client_limiter = nullptr;  // Null: no per-client limits.
  policy::ClientLimits client_limits;
  const policy::NetworkList* limit_exceptions = nullptr;
  // What cleanup(8) does to the header section (smtp-gateway/cleanup/message_cleanup.h).
  const policy::ClientMatch* header_rewrite_clients = nullptr;  // Null: nobody's.
  bool always_add_missing_headers = false;
  int hopcount_limit = 50;
  size_t header_size_limit = 102400;
  std::string undisclosed_recipients_header;
  std::shared_ptr<spdlog::logger> cleanup_log;  // syslog_name/cleanup; null: spdlog's default.
  std::shared_ptr<const config::RegexpTable> header_checks;       // Null: none.
  std::shared_ptr<const config::RegexpTable> mime_header_checks;  // Null: none.
  std::shared_ptr<const config::RegexpTable> nested_header_checks;  // Null: none.
  // canonical_maps, masquerade_domains…: envelope addresses always, header addresses for
  // header_rewrite_clients. Null: none (tests).
  std::shared_ptr<const cleanup::AddressRewriting> address_rewriting;
  // DKIM signing of mail from postgate_dkim_signing_clients; null signer: none.
  const dkim::DkimSigner* dkim_signer = nullptr;
  const policy::ClientMatch* dkim_signing_clients = nullptr;
  // smtpd_milters: asked at each stage and at the end of each message; null or empty: none.
  const std::vector<milter::MilterConfig>* milters = nullptr;
  std::string milter_daemon_name;  // milter_macro_daemon_name ({daemon_name})
  std::string milter_v;            // milter_macro_v (v)
  std::string milter_spool_directory = "/tmp";  // postgate_milter_spool_directory
  // DNS for reject_unknown_sender_domain (postgate_dns_servers); null: such checks see no answer.
  const io::MxResolver* resolver = nullptr;
};

// `environment` stays alive (and unchanged) for the whole session, whatever a reload does.
asio::awaitable<void> RunSmtpSession(asio::ip::tcp::socket socket,
                                     std::shared_ptr<const SessionEnvironment> environment);

}  // namespace postgate::gateway
