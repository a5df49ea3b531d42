#include "queue-service/delivery/smtp_sasl.h"

#include "absl/strings/str_cat.h"
#include "core/base/absl_fmt.h"
#include "spdlog/spdlog.h"

namespace postgate::queue {

absl::StatusOr<std::unique_ptr<SaslPasswordMap>> SaslPasswordMap::Open(std::string spec) {
  const size_t colon = spec.find(':');
  std::string path = colon == std::string::npos ? "" : spec.substr(colon + 1);
  std::unique_ptr<SaslPasswordMap> map(new SaslPasswordMap(spec, path));
  {
    absl::MutexLock lock(&map->mu_);
    map->version_ = config::StatFile(path);
    absl::StatusOr<config::LookupTable> table = config::LoadLookupTable(spec);
    if (!table.ok()) return table.status();
    map->table_ = *std::move(table);
  }
  return map;
}

void SaslPasswordMap::ReloadIfChanged() {
  std::optional<config::FileVersion> now = config::StatFile(path_);
  if (!now || now == version_) return;  // Unchanged, or gone for a moment (a Secret being swapped).
  absl::StatusOr<config::LookupTable> table = config::LoadLookupTable(spec_);
  version_ = now;  // Also when broken: it is reported once, not at every lookup.
  if (!table.ok()) {
    spdlog::error("smtp_sasl_password_maps: {}; the table read before stays in use", table.status().message());
    return;
  }
  table_ = *std::move(table);
  spdlog::info("smtp_sasl_password_maps: {} re-read ({} entries)", path_, table_.size());
}

SaslCredentials SaslPasswordMap::Split(const std::string& value) {
  const size_t colon = value.find(':');
  SaslCredentials credentials;
  credentials.username = value.substr(0, colon);
  credentials.password = sasl::Secret(colon == std::string::npos ? std::string() : value.substr(colon + 1));
  return credentials;
}

std::optional<SaslCredentials> SaslPasswordMap::Find(absl::string_view sender, bool sender_dependent,
                                                     const NextHop& hop, absl::string_view server_host) {
  absl::MutexLock lock(&mu_);
  ReloadIfChanged();
  const std::string* value = nullptr;
  if (sender_dependent && !sender.empty()) value = table_.FindAddress(sender);
  if (value == nullptr) value = table_.Find(hop.ToString());
  if (value == nullptr && !server_host.empty()) value = table_.Find(server_host);
  if (value == nullptr) return std::nullopt;
  return Split(*value);
}

std::optional<std::string> SaslPasswordMap::SenderUsername(absl::string_view sender) {
  absl::MutexLock lock(&mu_);
  ReloadIfChanged();
  const std::string* value = sender.empty() ? nullptr : table_.FindAddress(sender);
  if (value == nullptr) return std::nullopt;
  return value->substr(0, value->find(':'));
}

absl::StatusOr<SmtpSaslOptions> SmtpSaslOptionsFrom(const config::MainCf& cf) {
  SmtpSaslOptions options;
  options.enabled = cf.GetBool("smtp_sasl_auth_enable");
  options.sender_dependent = cf.GetBool("smtp_sender_dependent_authentication");
  options.soft_bounce = cf.GetBool("smtp_sasl_auth_soft_bounce");
  options.mechanism_filter = cf.GetList("smtp_sasl_mechanism_filter");
  for (const std::string& name : options.mechanism_filter) {
    if (name.find(':') != std::string::npos) {
      return cf.Error("smtp_sasl_mechanism_filter", absl::StrCat("\"", name, "\": only mechanism names are supported"));
    }
  }
  struct Level {
    const char* parameter;
    sasl::SecurityOptions* into;
  };
  for (const Level& level : {Level{"smtp_sasl_security_options", &options.without_tls},
                             Level{"smtp_sasl_tls_security_options", &options.with_tls},
                             Level{"smtp_sasl_tls_verified_security_options", &options.with_verified_tls}}) {
    absl::StatusOr<sasl::SecurityOptions> parsed = sasl::ParseSecurityOptions(cf.GetList(level.parameter));
    if (!parsed.ok()) return cf.Error(level.parameter, parsed.status().message());
    *level.into = *parsed;
  }
  if (!options.enabled) return options;
  const std::vector<std::string> maps = cf.GetList("smtp_sasl_password_maps");
  if (maps.empty()) return cf.Error("smtp_sasl_password_maps", "smtp_sasl_auth_enable = yes needs a password table");
  if (maps.size() > 1) return cf.Error("smtp_sasl_password_maps", "one table is supported");
  absl::StatusOr<std::unique_ptr<SaslPasswordMap>> passwords = SaslPasswordMap::Open(maps.front());
  if (!passwords.ok()) return cf.Error("smtp_sasl_password_maps", passwords.status().message());
  options.passwords = *std::move(passwords);
  return options;
}

}  // namespace postgate::queue
