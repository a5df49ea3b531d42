#include "core/config/parameters.h"

#include <array>

namespace postgate::config {
namespace {

using K = ValueKind;

// Computed defaults (myhostname, config_directory) are filled in by MainCf.
constexpr std::array kParameters = {
    // Identity, as in Postfix.
    ParameterSpec{"mail_name", "Postgate", K::kString},
    ParameterSpec{"myhostname", "", K::kString},
    ParameterSpec{"mydomain", "", K::kString},
    ParameterSpec{"myorigin", "$myhostname", K::kString},
    ParameterSpec{"mydestination", "$myhostname, localhost.$mydomain, localhost", K::kList},
    ParameterSpec{"mynetworks", "127.0.0.0/8 [::1]/128", K::kList},
    ParameterSpec{"inet_interfaces", "all", K::kList},
    ParameterSpec{"inet_protocols", "all", K::kList},
    ParameterSpec{"config_directory", "", K::kString},
    ParameterSpec{"smtpd_banner", "$myhostname ESMTP $mail_name", K::kString},
    // Limits, as in Postfix.
    ParameterSpec{"message_size_limit", "10240000", K::kInteger},
    ParameterSpec{"mailbox_size_limit", "51200000", K::kInteger},
    ParameterSpec{"line_length_limit", "2048", K::kInteger},
    ParameterSpec{"smtpd_recipient_limit", "1000", K::kInteger},
    ParameterSpec{"smtpd_timeout", "300s", K::kTime, 's'},
    ParameterSpec{"smtpd_hard_error_limit", "20", K::kInteger},
    ParameterSpec{"smtpd_soft_error_limit", "10", K::kInteger},
    ParameterSpec{"smtpd_error_sleep_time", "1s", K::kTime, 's'},
    ParameterSpec{"smtpd_junk_command_limit", "100", K::kInteger},
    ParameterSpec{"smtpd_client_connection_count_limit", "50", K::kInteger},
    ParameterSpec{"smtpd_client_connection_rate_limit", "0", K::kInteger},
    ParameterSpec{"smtpd_client_auth_rate_limit", "0", K::kInteger},
    ParameterSpec{"smtpd_client_event_limit_exceptions", "$mynetworks", K::kList},
    ParameterSpec{"anvil_rate_time_unit", "60s", K::kTime, 's'},
    ParameterSpec{"smtpd_peername_lookup", "yes", K::kBool},
    ParameterSpec{"strict_smtputf8", "no", K::kBool},
    ParameterSpec{"smtpd_upstream_proxy_protocol", "", K::kString},
    ParameterSpec{"smtpd_upstream_proxy_timeout", "5s", K::kTime, 's'},
    ParameterSpec{"postgate_proxy_networks", "", K::kList},
    // Kubernetes: the pod and node ranges, and whether the Service keeps client addresses
    // (externalTrafficPolicy: Local). Used to refuse the classic accidental open relay.
    ParameterSpec{"postgate_cluster_networks", "", K::kList},
    ParameterSpec{"postgate_client_address_preserved", "no", K::kBool},
    // TLS, as in Postfix.
    ParameterSpec{"smtpd_tls_security_level", "", K::kString},
    ParameterSpec{"smtpd_tls_cert_file", "", K::kString},
    ParameterSpec{"smtpd_tls_key_file", "$smtpd_tls_cert_file", K::kString},
    ParameterSpec{"smtpd_tls_received_header", "no", K::kBool},
    ParameterSpec{"smtpd_forbid_unauth_pipelining", "yes", K::kBool},  // Postfix 3.9's default
    ParameterSpec{"smtpd_forbid_bare_newline", "normalize", K::kString},  // Postfix 3.9's default
    ParameterSpec{"smtpd_forbid_bare_newline_exclusions", "$mynetworks", K::kList},
    ParameterSpec{"smtpd_forbid_bare_newline_reject_code", "550", K::kInteger},
    ParameterSpec{"local_destination_concurrency_limit", "2", K::kInteger},
    // cleanup(8), as in Postfix.
    ParameterSpec{"local_header_rewrite_clients", "permit_inet_interfaces", K::kList},
    ParameterSpec{"always_add_missing_headers", "no", K::kBool},
    ParameterSpec{"hopcount_limit", "50", K::kInteger},
    ParameterSpec{"header_size_limit", "102400", K::kInteger},
    ParameterSpec{"undisclosed_recipients_header", "", K::kString},
    ParameterSpec{"header_checks", "", K::kString},
    ParameterSpec{"virtual_alias_maps", "", K::kList},
    ParameterSpec{"virtual_alias_domains", "$virtual_alias_maps", K::kList},
    ParameterSpec{"virtual_alias_recursion_limit", "1000", K::kInteger},
    ParameterSpec{"virtual_alias_expansion_limit", "1000", K::kInteger},
    ParameterSpec{"mime_header_checks", "$header_checks", K::kString},
    ParameterSpec{"nested_header_checks", "$header_checks", K::kString},
    ParameterSpec{"canonical_maps", "", K::kList},
    ParameterSpec{"sender_canonical_maps", "", K::kList},
    ParameterSpec{"recipient_canonical_maps", "", K::kList},
    ParameterSpec{"canonical_classes", "envelope_sender, envelope_recipient, header_sender, header_recipient",
                  K::kList},
    ParameterSpec{"sender_canonical_classes", "envelope_sender, header_sender", K::kList},
    ParameterSpec{"recipient_canonical_classes", "envelope_recipient, header_recipient", K::kList},
    ParameterSpec{"masquerade_domains", "", K::kList},
    ParameterSpec{"masquerade_exceptions", "", K::kList},
    ParameterSpec{"masquerade_classes", "envelope_sender, header_sender, header_recipient", K::kList},
    ParameterSpec{"propagate_unmatched_extensions", "canonical, virtual", K::kList},
    // DKIM signing (Postgate's own; OpenDKIM's KeyTable/SigningTable shapes and defaults).
    ParameterSpec{"postgate_dkim_key_table", "", K::kString},
    ParameterSpec{"postgate_dkim_signing_table", "", K::kString},
    ParameterSpec{"postgate_dkim_signing_clients", "permit_mynetworks, permit_sasl_authenticated", K::kList},
    ParameterSpec{"postgate_dkim_signed_headers",
                  "From, Reply-To, Subject, Date, Message-Id, To, Cc, MIME-Version, Content-Type, "
                  "Content-Transfer-Encoding, In-Reply-To, References, List-Id, List-Unsubscribe, "
                  "List-Unsubscribe-Post, Sender, Resent-From, Resent-Date, Resent-To, Resent-Cc",
                  K::kList},
    ParameterSpec{"postgate_dkim_oversigned_headers", "From", K::kList},
    ParameterSpec{"postgate_dkim_canonicalization", "relaxed/relaxed", K::kString},
    // Milters (Sendmail/Postfix content filters), Postfix's names and defaults. smtpd_milters is
    // a string: its "{ … }" groups hold commas.
    ParameterSpec{"smtpd_milters", "", K::kString},
    ParameterSpec{"non_smtpd_milters", "", K::kString},
    ParameterSpec{"milter_protocol", "6", K::kString},
    ParameterSpec{"milter_default_action", "tempfail", K::kString},
    ParameterSpec{"milter_connect_timeout", "30s", K::kTime, 's'},
    ParameterSpec{"milter_command_timeout", "30s", K::kTime, 's'},
    ParameterSpec{"milter_content_timeout", "300s", K::kTime, 's'},
    ParameterSpec{"milter_connect_macros", "j {daemon_name} {daemon_addr} v _", K::kList},
    ParameterSpec{"milter_helo_macros", "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}", K::kList},
    ParameterSpec{"milter_mail_macros", "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}",
                  K::kList},
    ParameterSpec{"milter_rcpt_macros", "i {rcpt_addr} {rcpt_host} {rcpt_mailer}", K::kList},
    ParameterSpec{"milter_data_macros", "i", K::kList},
    ParameterSpec{"milter_end_of_header_macros", "i", K::kList},
    ParameterSpec{"milter_end_of_data_macros", "i", K::kList},
    ParameterSpec{"milter_macro_daemon_name", "$myhostname", K::kString},
    ParameterSpec{"milter_macro_v", "$mail_name", K::kString},
    // Where a message waits while milters inspect it (an unlinked file; never fsync'd).
    ParameterSpec{"postgate_milter_spool_directory", "/tmp", K::kString},
    // Free bytes the queue's file system must keep; 0: 1.5 × message_size_limit, as Postfix.
    ParameterSpec{"queue_minfree", "0", K::kInteger},
    ParameterSpec{"queue_run_delay", "300s", K::kTime, 's'},
    // Addressing and delivery, as in Postfix.
    ParameterSpec{"recipient_delimiter", "", K::kString},
    ParameterSpec{"alias_maps", "", K::kList},
    ParameterSpec{"defer_transports", "", K::kList},
    ParameterSpec{"relay_domains", "", K::kList},
    ParameterSpec{"fast_flush_domains", "$relay_domains", K::kList},
    // Remote delivery, as in Postfix.
    ParameterSpec{"relayhost", "", K::kString},
    ParameterSpec{"transport_maps", "", K::kList},
    ParameterSpec{"smtp_connect_timeout", "30s", K::kTime, 's'},
    ParameterSpec{"smtp_helo_timeout", "300s", K::kTime, 's'},
    ParameterSpec{"smtp_mail_timeout", "300s", K::kTime, 's'},
    ParameterSpec{"smtp_rcpt_timeout", "300s", K::kTime, 's'},
    ParameterSpec{"smtp_data_init_timeout", "120s", K::kTime, 's'},
    ParameterSpec{"smtp_data_xfer_timeout", "180s", K::kTime, 's'},
    ParameterSpec{"smtp_data_done_timeout", "600s", K::kTime, 's'},
    ParameterSpec{"smtp_helo_name", "$myhostname", K::kString},
    ParameterSpec{"smtp_tls_security_level", "", K::kString},
    ParameterSpec{"smtp_tls_CAfile", "", K::kString},
    ParameterSpec{"minimal_backoff_time", "300s", K::kTime, 's'},
    ParameterSpec{"maximal_backoff_time", "4000s", K::kTime, 's'},
    ParameterSpec{"maximal_queue_lifetime", "5d", K::kTime, 'd'},
    ParameterSpec{"bounce_queue_lifetime", "5d", K::kTime, 'd'},
    ParameterSpec{"delay_warning_time", "0h", K::kTime, 'h'},
    ParameterSpec{"default_process_limit", "100", K::kInteger},
    ParameterSpec{"smtp_connection_cache_on_demand", "yes", K::kBool},
    ParameterSpec{"smtp_connection_cache_time_limit", "2s", K::kTime, 's'},
    ParameterSpec{"smtp_connection_reuse_time_limit", "300s", K::kTime, 's'},
    ParameterSpec{"smtp_connection_reuse_count_limit", "0", K::kInteger},
    ParameterSpec{"smtp_tls_wrappermode", "no", K::kBool},
    ParameterSpec{"smtp_generic_maps", "", K::kList},
    // SMTP AUTH for clients (the server side), as in Postfix; the users come from a file of
    // crypt(3) hashes (Postfix would ask Cyrus or Dovecot).
    ParameterSpec{"smtpd_sasl_auth_enable", "no", K::kBool},
    ParameterSpec{"smtpd_tls_auth_only", "no", K::kBool},
    ParameterSpec{"broken_sasl_auth_clients", "no", K::kBool},
    ParameterSpec{"smtpd_sasl_authenticated_header", "no", K::kBool},
    ParameterSpec{"postgate_smtpd_sasl_users_file", "", K::kString},
    ParameterSpec{"smtpd_sender_login_maps", "", K::kList},
    ParameterSpec{"smtpd_sender_restrictions", "", K::kList},
    ParameterSpec{"smtpd_recipient_restrictions", "", K::kList},
    ParameterSpec{"unknown_address_reject_code", "450", K::kInteger},
    ParameterSpec{"smtpd_relay_restrictions",
                  "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination", K::kList},
    ParameterSpec{"smtpd_tls_wrappermode", "no", K::kBool},
    ParameterSpec{"syslog_name", "postgate", K::kString},
    // Logging in to the next hop (SMTP AUTH), as in Postfix.
    ParameterSpec{"smtp_sasl_auth_enable", "no", K::kBool},
    ParameterSpec{"smtp_sasl_password_maps", "", K::kList},
    ParameterSpec{"smtp_sasl_mechanism_filter", "", K::kList},
    ParameterSpec{"smtp_sasl_security_options", "noplaintext, noanonymous", K::kList},
    ParameterSpec{"smtp_sasl_tls_security_options", "$smtp_sasl_security_options", K::kList},
    ParameterSpec{"smtp_sasl_tls_verified_security_options", "$smtp_sasl_tls_security_options", K::kList},
    ParameterSpec{"smtp_sasl_auth_soft_bounce", "yes", K::kBool},
    ParameterSpec{"smtp_sender_dependent_authentication", "no", K::kBool},
    // Who hears about trouble, as in Postfix.
    ParameterSpec{"notify_classes", "resource, software", K::kList},
    ParameterSpec{"bounce_notice_recipient", "postmaster", K::kString},
    ParameterSpec{"2bounce_notice_recipient", "postmaster", K::kString},
    ParameterSpec{"delay_notice_recipient", "postmaster", K::kString},
    ParameterSpec{"double_bounce_sender", "double-bounce", K::kString},
    // DNS servers for MX lookups ("127.0.0.1:5353,…"); empty: /etc/resolv.conf.
    ParameterSpec{"postgate_dns_servers", "", K::kString},
    ParameterSpec{"default_destination_concurrency_limit", "20", K::kInteger},
    ParameterSpec{"default_destination_recipient_limit", "50", K::kInteger},
    // Postgate's own: what Postfix keeps in master.cf, in the passwd file, or lacks.
    ParameterSpec{"postgate_local_users", "", K::kList},
    ParameterSpec{"postgate_data_directory", "var", K::kString},
    ParameterSpec{"postgate_mailbox_format", "maildir", K::kString},
    ParameterSpec{"postgate_smtpd_port", "25", K::kInteger},
    ParameterSpec{"postgate_queue_listen", "127.0.0.1:50051", K::kString},
    ParameterSpec{"postgate_queue_address", "$postgate_queue_listen", K::kString},
    ParameterSpec{"postgate_queue_timeout", "30s", K::kTime, 's'},
    // This queue-service's number among several (the StatefulSet ordinal, 0–15); in every queue ID.
    ParameterSpec{"postgate_queue_replica_id", "0", K::kInteger},
    ParameterSpec{"postgate_queue_admin_token_file", "", K::kString},
    // Messages up to this size are kept in the gateway while they upload, so a broken stream to
    // the queue is replayed (same replica, same idempotency key) instead of costing the client a 451.
    ParameterSpec{"postgate_queue_replay_limit", "262144", K::kInteger},
    // Long-lived EnqueueMany streams the gateway sends messages over (0: an Enqueue call each).
    ParameterSpec{"postgate_queue_streams", "2", K::kInteger},
    // gRPC TLS: the queue's port (server side) …
    ParameterSpec{"postgate_queue_tls_cert_file", "", K::kString},
    ParameterSpec{"postgate_queue_tls_key_file", "$postgate_queue_tls_cert_file", K::kString},
    ParameterSpec{"postgate_queue_tls_client_ca_file", "", K::kString},
    ParameterSpec{"postgate_queue_tls_require_client_cert", "no", K::kBool},
    ParameterSpec{"postgate_queue_admin_client_names", "", K::kList},
    // … and the gateway's channel to it (client side).
    ParameterSpec{"postgate_queue_tls_ca_file", "", K::kString},
    ParameterSpec{"postgate_queue_tls_client_cert_file", "", K::kString},
    ParameterSpec{"postgate_queue_tls_client_key_file", "$postgate_queue_tls_client_cert_file", K::kString},
    ParameterSpec{"postgate_smtpd_metrics_listen", "127.0.0.1:9101", K::kString},
    ParameterSpec{"postgate_smtpd_health_listen", "127.0.0.1:9111", K::kString},
    ParameterSpec{"postgate_queue_metrics_listen", "127.0.0.1:9102", K::kString},
    ParameterSpec{"postgate_smtpd_threads", "0", K::kInteger},
    // Sessions at once over all listeners; more clients wait in the listen queue.
    ParameterSpec{"postgate_smtpd_session_limit", "20000", K::kInteger},
    ParameterSpec{"postgate_done_retention", "7d", K::kTime, 'd'},
    ParameterSpec{"postgate_log_format", "text", K::kString},
    // Shorter than Kubernetes' terminationGracePeriodSeconds (30s by default).
    ParameterSpec{"postgate_drain_timeout", "25s", K::kTime, 's'},
};

}  // namespace

std::span<const ParameterSpec> KnownParameters() { return kParameters; }

const ParameterSpec* FindParameter(absl::string_view name) {
  for (const ParameterSpec& spec : kParameters) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

}  // namespace postgate::config
