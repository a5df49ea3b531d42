// What the SMTP sessions need from main.cf – relay policy, local users and aliases, limits, TLS,
// PROXY protocol – built in one piece so that a reload (SIGHUP, or the file changing under a
// Kubernetes ConfigMap) swaps all of it at once or none of it. A session keeps the settings it
// started with until it ends; only new sessions see a reload, so none is dropped.
//
// Listen addresses, the queue address, metrics and health ports and the thread count are bound
// once at start; RestartOnlyChanges() names the ones a new file changes, so the log can say that
// those need a restart.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/addressing/local_domain.h"
#include "core/config/main_cf.h"
#include "smtp-gateway/policy/network.h"
#include "smtp-gateway/policy/relay_policy.h"
#include "smtp-gateway/session/smtp_session.h"
#include "smtp-gateway/session/tls_context.h"

namespace postgate::gateway {

// The long-lived parts every generation of settings points at.
struct GatewayServices {
  QueueClient* queue = nullptr;
  GatewayMetrics* metrics = nullptr;
  DrainControl* drain = nullptr;
  policy::ClientLimiter* client_limiter = nullptr;  // Counts carry on across reloads.
  asio::thread_pool* name_lookups = nullptr;
  ClientNameCache* client_names = nullptr;
  asio::thread_pool* password_checks = nullptr;  // SMTP AUTH: hashing off the I/O threads.
  const io::MxResolver* resolver = nullptr;     // reject_unknown_sender_domain; null: no DNS.
};

class GatewaySettings {
 public:
  // Errors name the parameter and its file:line, like a failed start. `service_name` is the
  // master.cf service the settings are for (in log lines such as the connection-limit warning).
  static absl::StatusOr<std::shared_ptr<const GatewaySettings>> Build(const config::MainCf& cf,
                                                                     const GatewayServices& services,
                                                                     const std::string& service_name = "smtp");

  GatewaySettings(const GatewaySettings&) = delete;
  GatewaySettings& operator=(const GatewaySettings&) = delete;

  const SessionEnvironment& environment() const { return environment_; }
  // Files read besides main.cf and master.cf whose change is a reason to reload: the access
  // tables, the DKIM tables and keys (a rotated Kubernetes Secret).
  std::vector<std::string> watched_files() const;

 private:
  explicit GatewaySettings(addressing::LocalDomain domain) : domain_(std::move(domain)) {}
  // postgate_dkim_*: the tables, keys and signer, or an error naming the parameter and file:line.
  static absl::Status LoadDkim(const config::MainCf& cf, GatewaySettings& settings);
  // smtpd_milters and the milter_* parameters, or an error naming the parameter.
  static absl::Status LoadMilters(const config::MainCf& cf, GatewaySettings& settings);

  addressing::LocalDomain domain_;
  std::optional<policy::RelayPolicy> policy_;  // Points into domain_.
  std::optional<policy::NetworkList> proxy_networks_;
  std::optional<policy::NetworkList> limit_exceptions_;  // smtpd_client_event_limit_exceptions
  std::optional<policy::NetworkList> bare_newline_exclusions_;  // smtpd_forbid_bare_newline_exclusions
  std::optional<policy::ClientMatch> header_rewrite_clients_;  // local_header_rewrite_clients
  std::optional<policy::ClientMatch> dkim_signing_clients_;    // postgate_dkim_signing_clients
  std::shared_ptr<const dkim::DkimSigner> dkim_signer_;        // Null without a key table.
  std::vector<milter::MilterConfig> milters_;                  // smtpd_milters
  std::vector<std::string> access_tables_;  // check_*_access and header_checks files.
  std::unique_ptr<TlsContextProvider> tls_;
  std::shared_ptr<policy::LoginDatabase> logins_;  // smtpd_sasl_auth_enable
  SessionEnvironment environment_;  // Points into the members above.
};

// Whether `name` is bound once for the whole process (sockets, threads, the queue channel): such a
// parameter can be neither reloaded nor set for one master.cf service.
bool IsProcessWideParameter(absl::string_view name);

// Parameters read once at start whose value differs between `running` and `next`.
std::vector<std::string> RestartOnlyChanges(const config::MainCf& running, const config::MainCf& next);

// The settings new sessions get. Thread-safe.
class SettingsHolder {
 public:
  explicit SettingsHolder(std::shared_ptr<const GatewaySettings> initial) : current_(std::move(initial)) {}

  // The environment of the current settings, keeping them alive as long as the caller holds it.
  std::shared_ptr<const SessionEnvironment> Current() const;
  std::shared_ptr<const GatewaySettings> CurrentSettings() const;
  void Replace(std::shared_ptr<const GatewaySettings> next);

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const GatewaySettings> current_ ABSL_GUARDED_BY(mu_);
};

}  // namespace postgate::gateway
