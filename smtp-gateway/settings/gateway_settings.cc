#include "smtp-gateway/settings/gateway_settings.h"

#include "smtp-gateway/milter/milter_config.h"
#include "smtp-gateway/milter/milter_message.h"

#include <algorithm>
#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/base/logging.h"
#include "core/config/aliases.h"
#include "smtp-gateway/cleanup/message_cleanup.h"
#include "smtp-gateway/milter/milter_config.h"
#include "smtp-gateway/milter/milter_message.h"
#include "smtp-gateway/settings/address_rewriting_settings.h"
#include "smtp-gateway/settings/machine_addresses.h"

namespace postgate::gateway {
namespace {

// Bound at start (sockets, threads, the queue channel); a reload cannot change them.
constexpr std::array kRestartOnly = {
    "inet_interfaces",           "inet_protocols",
    "postgate_smtpd_port",       "postgate_queue_address",
    "postgate_queue_timeout",    "postgate_queue_tls_ca_file", "postgate_queue_replay_limit",
    "postgate_queue_streams",
    "postgate_queue_tls_client_cert_file", "postgate_queue_tls_client_key_file",
    "postgate_smtpd_metrics_listen", "postgate_smtpd_health_listen",
    "postgate_smtpd_threads",    "postgate_smtpd_session_limit", "postgate_log_format",
    "postgate_drain_timeout",    "myhostname",
};

std::chrono::milliseconds Millis(absl::Duration duration) {
  return std::chrono::milliseconds(absl::ToInt64Milliseconds(duration));
}

// smtpd_forbid_bare_newline's values, any case, as Postfix 3.9 names them.
std::optional<BareNewline> ParseBareNewline(absl::string_view value) {
  const std::string lower = absl::AsciiStrToLower(value);
  if (lower == "normalize" || lower == "yes") return BareNewline::kNormalize;
  if (lower == "note") return BareNewline::kNote;
  if (lower == "reject") return BareNewline::kReject;
  if (lower == "no") return BareNewline::kAllow;
  return std::nullopt;
}

}  // namespace

absl::Status GatewaySettings::LoadDkim(const config::MainCf& cf, GatewaySettings& settings) {
  const std::string key_table = cf.Get("postgate_dkim_key_table");
  const std::string signing_table = cf.Get("postgate_dkim_signing_table");
  if (key_table.empty() != signing_table.empty()) {
    return cf.Error(key_table.empty() ? "postgate_dkim_key_table" : "postgate_dkim_signing_table",
                    "DKIM signing needs both postgate_dkim_key_table and postgate_dkim_signing_table");
  }
  if (key_table.empty()) return absl::OkStatus();
  absl::StatusOr<dkim::DkimKeys> keys = dkim::DkimKeys::Load(key_table, signing_table);
  if (!keys.ok()) return cf.Error("postgate_dkim_key_table", keys.status().message());
  const std::string canonicalization = absl::AsciiStrToLower(cf.Get("postgate_dkim_canonicalization"));
  const std::vector<std::string> canons = absl::StrSplit(canonicalization, '/');
  const auto relaxed = [](absl::string_view word) -> std::optional<bool> {
    if (word == "relaxed") return true;
    if (word == "simple") return false;
    return std::nullopt;
  };
  const std::optional<bool> header = relaxed(canons.front());
  // "relaxed" alone is relaxed/simple, as OpenDKIM reads a single word.
  std::optional<bool> body;
  if (canons.size() == 2) body = relaxed(canons.back());
  else if (canons.size() == 1) body = false;
  if (!header || !body) {
    return cf.Error("postgate_dkim_canonicalization",
                    absl::StrCat("\"", cf.Get("postgate_dkim_canonicalization"),
                                 "\": use relaxed/relaxed, relaxed/simple, simple/relaxed or simple/simple"));
  }
  absl::StatusOr<std::shared_ptr<const dkim::DkimSigner>> signer = dkim::DkimSigner::Create(
      {.signed_headers = cf.GetList("postgate_dkim_signed_headers"),
       .oversigned_headers = cf.GetList("postgate_dkim_oversigned_headers"),
       .relaxed_header = *header,
       .relaxed_body = *body},
      *std::move(keys));
  if (!signer.ok()) return cf.Error("postgate_dkim_signed_headers", signer.status().message());
  settings.dkim_signer_ = *std::move(signer);
  return absl::OkStatus();
}

std::vector<std::string> GatewaySettings::watched_files() const {
  std::vector<std::string> files = access_tables_;
  if (dkim_signer_) {
    const std::vector<std::string>& dkim = dkim_signer_->keys().files();
    files.insert(files.end(), dkim.begin(), dkim.end());
  }
  return files;
}

bool IsProcessWideParameter(absl::string_view name) {
  return std::find(kRestartOnly.begin(), kRestartOnly.end(), name) != kRestartOnly.end();
}

absl::Status GatewaySettings::LoadMilters(const config::MainCf& cf, GatewaySettings& settings) {
  milter::MilterDefaults defaults;
  for (const char* name : {"milter_connect_timeout", "milter_command_timeout", "milter_content_timeout"}) {
    const absl::Duration time = cf.GetTime(name);
    if (time <= absl::ZeroDuration()) return cf.Error(name, "must be more than 0");
    *defaults.Timeout(absl::StripPrefix(name, "milter_")) = Millis(time);
  }
  absl::StatusOr<milter::DefaultAction> action =
      milter::ParseDefaultAction("milter_default_action", cf.Get("milter_default_action"));
  if (!action.ok()) return cf.Error("milter_default_action", action.status().message());
  defaults.default_action = *action;
  absl::StatusOr<uint32_t> protocol = milter::ParseMilterProtocol(cf.Get("milter_protocol"));
  if (!protocol.ok()) return cf.Error("milter_protocol", protocol.status().message());
  defaults.protocol = *protocol;
  defaults.macros.connect = cf.GetList("milter_connect_macros");
  defaults.macros.helo = cf.GetList("milter_helo_macros");
  defaults.macros.mail = cf.GetList("milter_mail_macros");
  defaults.macros.recipient = cf.GetList("milter_rcpt_macros");
  defaults.macros.data = cf.GetList("milter_data_macros");
  defaults.macros.end_of_headers = cf.GetList("milter_end_of_header_macros");
  defaults.macros.end_of_message = cf.GetList("milter_end_of_data_macros");
  absl::StatusOr<std::vector<milter::MilterConfig>> milters =
      milter::ParseMilterList("smtpd_milters", cf.Get("smtpd_milters"), defaults);
  if (!milters.ok()) return cf.Error("smtpd_milters", milters.status().message());
  // non_smtpd_milters filters mail from sendmail(1) and pickup(8); Postgate takes mail over SMTP
  // only, so it is checked (a typo should not pass) and applies to nothing.
  absl::StatusOr<std::vector<milter::MilterConfig>> non_smtpd =
      milter::ParseMilterList("non_smtpd_milters", cf.Get("non_smtpd_milters"), defaults);
  if (!non_smtpd.ok()) return cf.Error("non_smtpd_milters", non_smtpd.status().message());
  if (!milters->empty()) {
    const std::string spool = cf.Get("postgate_milter_spool_directory");
    absl::StatusOr<std::unique_ptr<milter::SpoolFile>> probe = milter::SpoolFile::Create(spool);
    if (!probe.ok()) return cf.Error("postgate_milter_spool_directory", probe.status().message());
  }
  settings.milters_ = *std::move(milters);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const GatewaySettings>> GatewaySettings::Build(
    const config::MainCf& cf, const GatewayServices& services, const std::string& service_name) {
  absl::StatusOr<config::AliasTable> aliases = config::LoadAliasMaps(cf);
  if (!aliases.ok()) return aliases.status();
  absl::StatusOr<policy::NetworkList> mynetworks = policy::NetworkList::Parse(cf.GetList("mynetworks"));
  if (!mynetworks.ok()) return cf.Error("mynetworks", mynetworks.status().message());

  // Behind a load balancer without PROXY protocol or externalTrafficPolicy: Local, every client
  // appears to come from a cluster address: if mynetworks holds one, the gateway is an open relay.
  std::optional<policy::NetworkList> proxy_networks;
  const std::string proxy_protocol = cf.Get("smtpd_upstream_proxy_protocol");
  if (proxy_protocol == "haproxy") {
    if (cf.GetList("postgate_proxy_networks").empty()) {
      return cf.Error("smtpd_upstream_proxy_protocol",
                      "haproxy needs postgate_proxy_networks (the load balancers allowed to send it)");
    }
    absl::StatusOr<policy::NetworkList> networks =
        policy::NetworkList::Parse(cf.GetList("postgate_proxy_networks"));
    if (!networks.ok()) return cf.Error("postgate_proxy_networks", networks.status().message());
    proxy_networks = *std::move(networks);
  } else if (!proxy_protocol.empty()) {
    return cf.Error("smtpd_upstream_proxy_protocol", absl::StrCat("\"", proxy_protocol, "\": use haproxy or nothing"));
  }
  absl::StatusOr<policy::NetworkList> cluster = policy::NetworkList::Parse(cf.GetList("postgate_cluster_networks"));
  if (!cluster.ok()) return cf.Error("postgate_cluster_networks", cluster.status().message());
  if (!proxy_networks && !cf.GetBool("postgate_client_address_preserved")) {
    if (std::optional<std::string> overlap = mynetworks->FindOverlap(*cluster)) {
      return cf.Error("mynetworks",
                      absl::StrCat(*overlap, " (postgate_cluster_networks): clients behind the load balancer "
                                   "would all look trusted and could relay; enable "
                                   "smtpd_upstream_proxy_protocol or set postgate_client_address_preserved"));
    }
  }

  // STARTTLS: Postfix's smtpd_tls_security_level semantics (none / may / encrypt).
  const std::string tls_level = cf.Get("smtpd_tls_security_level");
  if (tls_level != "" && tls_level != "none" && tls_level != "may" && tls_level != "encrypt") {
    return cf.Error("smtpd_tls_security_level", absl::StrCat("\"", tls_level, "\": use none, may or encrypt"));
  }
  // smtpd_tls_wrappermode (port 465, "smtps"): TLS from the first byte instead of STARTTLS.
  const bool wrappermode = cf.GetBool("smtpd_tls_wrappermode");
  std::unique_ptr<TlsContextProvider> tls;
  if (tls_level == "may" || tls_level == "encrypt" || wrappermode) {
    if (cf.Get("smtpd_tls_cert_file").empty()) {
      return wrappermode ? cf.Error("smtpd_tls_wrappermode", "yes needs smtpd_tls_cert_file")
                         : cf.Error("smtpd_tls_security_level", absl::StrCat(tls_level, " needs smtpd_tls_cert_file"));
    }
    GatewayMetrics* metrics = services.metrics;
    absl::StatusOr<std::unique_ptr<TlsContextProvider>> created = TlsContextProvider::Create(
        cf.Get("smtpd_tls_cert_file"), cf.Get("smtpd_tls_key_file"), [metrics](absl::Time expiry) {
          if (metrics) metrics->tls_certificate_expiry.Set(static_cast<double>(absl::ToUnixSeconds(expiry)));
        });
    if (!created.ok()) return created.status();
    tls = *std::move(created);
  }

  // SMTP AUTH for clients: the users file is read now, so a broken one stops a start or a reload.
  std::shared_ptr<policy::LoginDatabase> logins;
  if (cf.GetBool("smtpd_sasl_auth_enable")) {
    if (cf.Get("postgate_smtpd_sasl_users_file").empty()) {
      return cf.Error("smtpd_sasl_auth_enable", "yes needs postgate_smtpd_sasl_users_file (name:hash lines)");
    }
    if (cf.GetBool("smtpd_tls_auth_only") && tls == nullptr) {
      return cf.Error("smtpd_tls_auth_only", "yes needs STARTTLS (smtpd_tls_security_level = may or encrypt)");
    }
    absl::StatusOr<std::shared_ptr<policy::LoginDatabase>> opened =
        policy::LoginDatabase::Open(cf.Get("postgate_smtpd_sasl_users_file"));
    if (!opened.ok()) return cf.Error("postgate_smtpd_sasl_users_file", opened.status().message());
    logins = *std::move(opened);
  }

  // Who may send as whom: smtpd_sender_login_maps (one table) and smtpd_sender_restrictions.
  std::optional<config::LookupTable> owners;
  const std::vector<std::string> owner_maps = cf.GetList("smtpd_sender_login_maps");
  if (owner_maps.size() > 1) return cf.Error("smtpd_sender_login_maps", "one table is supported");
  if (!owner_maps.empty()) {
    absl::StatusOr<config::LookupTable> table = config::LoadLookupTable(owner_maps.front());
    if (!table.ok()) return cf.Error("smtpd_sender_login_maps", table.status().message());
    owners = *std::move(table);
  }
  // Access tables see "user+ext@domain" also as "user@domain" (the first recipient_delimiter).
  const std::string delimiters = cf.Get("recipient_delimiter");
  const char delimiter = delimiters.empty() ? '\0' : delimiters.front();
  absl::StatusOr<policy::SenderLoginPolicy> sender_logins =
      policy::ParseSenderRestrictions(cf.GetList("smtpd_sender_restrictions"), std::move(owners), delimiter);
  if (!sender_logins.ok()) return cf.Error("smtpd_sender_restrictions", sender_logins.status().message());
  absl::StatusOr<std::vector<policy::RelayRestriction>> relay_restrictions =
      policy::ParseRelayRestrictions(cf.GetList("smtpd_relay_restrictions"));
  if (!relay_restrictions.ok()) return cf.Error("smtpd_relay_restrictions", relay_restrictions.status().message());
  absl::StatusOr<std::vector<policy::AddressRestriction>> recipient_restrictions =
      policy::ParseRecipientRestrictions(cf.GetList("smtpd_recipient_restrictions"), delimiter);
  if (!recipient_restrictions.ok()) {
    return cf.Error("smtpd_recipient_restrictions", recipient_restrictions.status().message());
  }

  std::shared_ptr<GatewaySettings> settings(
      new GatewaySettings(addressing::LocalDomain(cf, *std::move(aliases))));
  settings->logins_ = std::move(logins);
  settings->policy_.emplace(settings->domain_, *std::move(mynetworks), cf.GetList("fast_flush_domains"),
                            *std::move(sender_logins), *std::move(relay_restrictions),
                            *std::move(recipient_restrictions));
  const int64_t unknown_address_code = cf.GetInteger("unknown_address_reject_code");
  if (unknown_address_code < 400 || unknown_address_code > 599) {
    return cf.Error("unknown_address_reject_code", absl::StrCat(unknown_address_code, " is not within 400..599"));
  }
  settings->policy_->set_unknown_address_reject_code(static_cast<int>(unknown_address_code));
  settings->proxy_networks_ = std::move(proxy_networks);
  if (const std::vector<std::string> maps = cf.GetList("virtual_alias_maps"); !maps.empty()) {
    const int64_t recursion = cf.GetInteger("virtual_alias_recursion_limit");
    const int64_t expansion = cf.GetInteger("virtual_alias_expansion_limit");
    if (recursion < 1) return cf.Error("virtual_alias_recursion_limit", "must be at least 1");
    if (expansion < 1) return cf.Error("virtual_alias_expansion_limit", "must be at least 1");
    absl::StatusOr<bool> propagate_virtual = addressing::PropagatesUnmatchedExtensions(cf, "virtual");
    if (!propagate_virtual.ok()) return propagate_virtual.status();
    absl::StatusOr<std::shared_ptr<const policy::VirtualAliases>> aliases = policy::VirtualAliases::Load(
        maps, cf.GetList("virtual_alias_domains"), delimiter,
        {.recursion = static_cast<size_t>(recursion), .expansion = static_cast<size_t>(expansion),
         .propagate_extensions = *propagate_virtual});
    if (!aliases.ok()) return cf.Error("virtual_alias_maps", aliases.status().message());
    for (const std::string& file : (*aliases)->files()) settings->access_tables_.push_back(file);
    settings->policy_->set_virtual_aliases(*std::move(aliases));
  }
  // The access tables' files: an edited table applies without a restart, like main.cf.
  for (const char* list : {"smtpd_sender_restrictions", "smtpd_recipient_restrictions"}) {
    const std::vector<std::string> words = cf.GetList(list);
    for (size_t i = 0; i + 1 < words.size(); ++i) {
      const std::string word = absl::AsciiStrToLower(words[i]);
      if (word != "check_sender_access" && word != "check_recipient_access") continue;
      const std::string& table = words[i + 1];
      settings->access_tables_.push_back(table.substr(table.find(':') + 1));
    }
  }
  absl::StatusOr<policy::NetworkList> exceptions =
      policy::NetworkList::Parse(cf.GetList("smtpd_client_event_limit_exceptions"));
  if (!exceptions.ok()) return cf.Error("smtpd_client_event_limit_exceptions", exceptions.status().message());
  settings->limit_exceptions_ = *std::move(exceptions);
  settings->policy_->set_auth_rate_limit({.limiter = services.client_limiter,
                                          .limit = static_cast<size_t>(cf.GetInteger("smtpd_client_auth_rate_limit")),
                                          .time_unit = cf.GetTime("anvil_rate_time_unit"),
                                          .service = service_name,
                                          .exceptions = &*settings->limit_exceptions_});
  settings->tls_ = std::move(tls);
  const std::optional<BareNewline> bare_newline = ParseBareNewline(cf.Get("smtpd_forbid_bare_newline"));
  if (!bare_newline) {
    return cf.Error("smtpd_forbid_bare_newline",
                    absl::StrCat("\"", cf.Get("smtpd_forbid_bare_newline"), "\": use normalize, note, reject or no"));
  }
  absl::StatusOr<policy::NetworkList> bare_newline_exclusions =
      policy::NetworkList::Parse(cf.GetList("smtpd_forbid_bare_newline_exclusions"));
  if (!bare_newline_exclusions.ok()) {
    return cf.Error("smtpd_forbid_bare_newline_exclusions", bare_newline_exclusions.status().message());
  }
  settings->bare_newline_exclusions_ = *std::move(bare_newline_exclusions);
  const int64_t bare_newline_code = cf.GetInteger("smtpd_forbid_bare_newline_reject_code");
  if (bare_newline_code < 500 || bare_newline_code > 599) {  // Postfix's range for it too.
    return cf.Error("smtpd_forbid_bare_newline_reject_code", absl::StrCat(bare_newline_code, " is not within 500..599"));
  }

  absl::StatusOr<policy::NetworkList> machine = MachineAddresses(cf.GetList("inet_interfaces"));
  if (!machine.ok()) return cf.Error("inet_interfaces", machine.status().message());
  absl::StatusOr<policy::ClientMatch> rewrite_clients =
      policy::ClientMatch::Parse(cf.GetList("local_header_rewrite_clients"), *machine);
  if (!rewrite_clients.ok()) return cf.Error("local_header_rewrite_clients", rewrite_clients.status().message());
  settings->header_rewrite_clients_ = *std::move(rewrite_clients);
  const std::string undisclosed = cf.Get("undisclosed_recipients_header");
  if (!undisclosed.empty() && (!cleanup::IsHeaderText(undisclosed) || undisclosed.find('\n') != std::string::npos)) {
    return cf.Error("undisclosed_recipients_header",
                    absl::StrCat("\"", undisclosed, "\" is not a header: need \"headername: headervalue\""));
  }
  const int64_t hopcount_limit = cf.GetInteger("hopcount_limit");
  if (hopcount_limit < 1) return cf.Error("hopcount_limit", "must be at least 1");
  const int64_t header_size_limit = cf.GetInteger("header_size_limit");
  if (header_size_limit < 1000) {  // RFC 5322 lines are up to 998 bytes and CRLF.
    return cf.Error("header_size_limit", absl::StrCat(header_size_limit, " is less than 1000"));
  }

  absl::StatusOr<policy::ClientMatch> signing_clients =
      policy::ClientMatch::Parse(cf.GetList("postgate_dkim_signing_clients"), *std::move(machine));
  if (!signing_clients.ok()) return cf.Error("postgate_dkim_signing_clients", signing_clients.status().message());
  settings->dkim_signing_clients_ = *std::move(signing_clients);
  absl::Status dkim = LoadDkim(cf, *settings);
  if (!dkim.ok()) return dkim;
  if (absl::Status milters = LoadMilters(cf, *settings); !milters.ok()) return milters;

  for (const char* parameter : {"header_checks", "mime_header_checks", "nested_header_checks"}) {
    const std::string spec = cf.Get(parameter);
    if (spec.empty()) continue;
    absl::StatusOr<std::shared_ptr<const config::RegexpTable>> table = config::RegexpTable::Load(spec);
    if (!table.ok()) return cf.Error(parameter, table.status().message());
    const std::string path = spec.substr(spec.find(':') + 1);
    for (const auto& [line, result] : (*table)->Results()) {
      if (std::optional<std::string> action = cleanup::UnsupportedHeaderAction(result)) {
        return cf.Error(parameter, absl::StrCat(path, ":", line, ": action \"", *action,
                                                "\" is not one Postgate has (REJECT, WARN, INFO, IGNORE, STRIP, "
                                                "REPLACE, PREPEND, HOLD, DISCARD, REDIRECT, PASS, DUNNO, OK)"));
      }
    }
    settings->access_tables_.push_back(path);  // Watched: an edited table applies without a restart.
    const std::string name = parameter;
    (name == "header_checks"        ? settings->environment_.header_checks
     : name == "mime_header_checks" ? settings->environment_.mime_header_checks
                                    : settings->environment_.nested_header_checks) = *std::move(table);
  }

  absl::StatusOr<std::shared_ptr<const cleanup::AddressRewriting>> rewriting =
      LoadAddressRewriting(cf, settings->domain_);
  if (!rewriting.ok()) return rewriting.status();
  for (const std::string& file : (*rewriting)->files()) settings->access_tables_.push_back(file);
  if (!(*rewriting)->empty()) {
    settings->policy_->set_recipient_canonical(
        [rewriting = *rewriting](absl::string_view address) { return rewriting->MapsRecipient(address); });
  }
  settings->environment_.address_rewriting = *std::move(rewriting);

  SessionEnvironment& environment = settings->environment_;
  environment.resolver = services.resolver;
  environment.dkim_signer = settings->dkim_signer_.get();
  environment.milters = &settings->milters_;
  environment.milter_daemon_name = cf.Get("milter_macro_daemon_name");
  environment.milter_v = cf.Get("milter_macro_v");
  environment.milter_spool_directory = cf.Get("postgate_milter_spool_directory");
  environment.dkim_signing_clients = &*settings->dkim_signing_clients_;
  environment.header_rewrite_clients = &*settings->header_rewrite_clients_;
  environment.always_add_missing_headers = cf.GetBool("always_add_missing_headers");
  environment.hopcount_limit = static_cast<int>(std::min<int64_t>(hopcount_limit, 1 << 20));
  environment.header_size_limit = static_cast<size_t>(header_size_limit);
  environment.undisclosed_recipients_header = undisclosed;
  environment.cleanup_log = base::ProgramLogger(absl::StrCat(cf.Get("syslog_name"), "/cleanup"));
  environment.drain = services.drain;
  environment.queue = services.queue;
  environment.metrics = services.metrics;
  environment.policy = &*settings->policy_;
  environment.proxy_networks = settings->proxy_networks_ ? &*settings->proxy_networks_ : nullptr;
  environment.proxy_timeout = Millis(cf.GetTime("smtpd_upstream_proxy_timeout"));
  environment.tls = settings->tls_.get();
  environment.tls_wrappermode = wrappermode;
  environment.service_name = service_name;
  environment.log = base::ProgramLogger(absl::StrCat(cf.Get("syslog_name"), "/smtpd"));
  environment.tls_received_header = cf.GetBool("smtpd_tls_received_header");
  environment.forbid_unauth_pipelining = cf.GetBool("smtpd_forbid_unauth_pipelining");
  environment.bare_newline = *bare_newline;
  environment.bare_newline_exclusions = &*settings->bare_newline_exclusions_;
  environment.limits.bare_newline_reject_code = static_cast<int>(bare_newline_code);
  environment.limits.tls_available = settings->tls_ != nullptr;
  environment.limits.tls_required = tls_level == "encrypt";
  environment.limits.auth_enabled = settings->logins_ != nullptr;
  environment.limits.auth_tls_only = cf.GetBool("smtpd_tls_auth_only");
  environment.limits.auth_broken_clients = cf.GetBool("broken_sasl_auth_clients");
  environment.logins = settings->logins_.get();
  environment.password_checks = services.password_checks;
  environment.sasl_authenticated_header = cf.GetBool("smtpd_sasl_authenticated_header");
  environment.limits.hostname = cf.Get("myhostname");
  environment.limits.banner = cf.Get("smtpd_banner");
  environment.limits.message_size_limit = static_cast<uint64_t>(cf.GetInteger("message_size_limit"));
  environment.limits.recipient_limit = static_cast<size_t>(cf.GetInteger("smtpd_recipient_limit"));
  environment.limits.strict_smtputf8 = cf.GetBool("strict_smtputf8");
  environment.limits.hard_error_limit = static_cast<size_t>(cf.GetInteger("smtpd_hard_error_limit"));
  environment.limits.junk_command_limit = static_cast<size_t>(cf.GetInteger("smtpd_junk_command_limit"));
  environment.soft_error_limit = static_cast<size_t>(cf.GetInteger("smtpd_soft_error_limit"));
  environment.error_sleep = Millis(cf.GetTime("smtpd_error_sleep_time"));
  environment.mail_name = cf.Get("mail_name");
  environment.line_length_limit = static_cast<size_t>(cf.GetInteger("line_length_limit"));
  if (environment.line_length_limit < 512) {  // Postfix's floor too: RFC 5321 command lines are 512.
    return cf.Error("line_length_limit", absl::StrCat(environment.line_length_limit, " is less than 512"));
  }
  environment.timeout = std::chrono::seconds(absl::ToInt64Seconds(cf.GetTime("smtpd_timeout")));
  environment.peername_lookup = cf.GetBool("smtpd_peername_lookup");
  environment.name_lookups = services.name_lookups;
  environment.client_names = services.client_names;
  environment.client_limiter = services.client_limiter;
  environment.client_limits.count_limit = static_cast<size_t>(cf.GetInteger("smtpd_client_connection_count_limit"));
  environment.client_limits.rate_limit = static_cast<size_t>(cf.GetInteger("smtpd_client_connection_rate_limit"));
  environment.client_limits.time_unit = cf.GetTime("anvil_rate_time_unit");
  if (environment.client_limits.time_unit <= absl::ZeroDuration()) {
    return cf.Error("anvil_rate_time_unit", "must be positive");
  }
  environment.limit_exceptions = &*settings->limit_exceptions_;
  return std::shared_ptr<const GatewaySettings>(std::move(settings));
}

std::vector<std::string> RestartOnlyChanges(const config::MainCf& running, const config::MainCf& next) {
  std::vector<std::string> changed;
  for (const char* name : kRestartOnly) {
    if (running.Get(name) != next.Get(name)) changed.emplace_back(name);
  }
  return changed;
}

std::shared_ptr<const GatewaySettings> SettingsHolder::CurrentSettings() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

std::shared_ptr<const SessionEnvironment> SettingsHolder::Current() const {
  absl::MutexLock lock(&mu_);
  return std::shared_ptr<const SessionEnvironment>(current_, &current_->environment());
}

void SettingsHolder::Replace(std::shared_ptr<const GatewaySettings> next) {
  std::shared_ptr<const GatewaySettings> previous;  // Released outside the lock.
  absl::MutexLock lock(&mu_);
  previous = std::exchange(current_, std::move(next));
}

}  // namespace postgate::gateway
