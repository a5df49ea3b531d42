// The gateway's SMTP services, as Postfix's master.cf declares them: each "inet … smtpd" line is a
// listener with main.cf's parameters and its own "-o" overrides (submission on 587 with STARTTLS
// and AUTH required, smtps on 465 in TLS wrapper mode, beside port 25). The file sits beside
// main.cf, where Postfix keeps it; without one the gateway runs the one "smtp" service.
//
// A service name is a port ("2587"), a port name ("smtp" is postgate_smtpd_port – the gateway
// runs unprivileged, so its port 25 is whatever main.cf says; "submission" 587; "submissions" and
// "smtps" 465), or "address:port" to listen on one address instead of every inet_interfaces one.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "asio/ip/tcp.hpp"
#include "core/config/main_cf.h"
#include "core/config/master_cf.h"

namespace postgate::gateway {

struct SmtpServiceConfig {
  config::SmtpService service;
  config::MainCf cf;  // main.cf with the service's -o overrides (their errors name master.cf:line).
  std::vector<asio::ip::tcp::endpoint> endpoints;
};

// master.cf's path: the directory of `main_cf_path`.
std::string MasterCfPath(const std::string& main_cf_path);

// The services of `master_cf_text` (nullopt: no master.cf, the one "smtp" service) over `cf`.
// `listen_flag` ("host:port", from --listen) replaces the "smtp" service's addresses. Errors name
// the file and line, or the main.cf parameter, at fault.
absl::StatusOr<std::vector<SmtpServiceConfig>> BuildSmtpServices(const config::MainCf& cf,
                                                                 const std::optional<std::string>& master_cf_text,
                                                                 const std::string& master_cf_path,
                                                                 const std::string& listen_flag);

// Reads master.cf at `master_cf_path` if there is one, then BuildSmtpServices.
absl::StatusOr<std::vector<SmtpServiceConfig>> LoadSmtpServices(const config::MainCf& cf,
                                                                const std::string& master_cf_path,
                                                                const std::string& listen_flag);

}  // namespace postgate::gateway
