// master.cf reader, in Postfix's syntax, for the one kind of service Postgate runs: SMTP
// listeners. Each "inet ... smtpd" line is a listener with its own "-o name=value" overrides of
// main.cf (Postfix's way to run submission on 587 and smtps on 465 beside port 25):
//
//   smtp       inet  n  -  n  -  -  smtpd
//   submission inet  n  -  n  -  -  smtpd
//     -o smtpd_tls_security_level=encrypt
//     -o { smtpd_relay_restrictions = permit_sasl_authenticated, reject }
//
// Lines of other types (unix, fifo, pass: Postfix's internal services) are skipped, so a copied
// Postfix master.cf reads; an inet service that runs another program is an error. The private,
// unpriv, chroot, wakeup and maxproc columns are read and not used. Pure: no I/O; the caller
// checks the override names against main.cf's parameters.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace postgate::config {

struct SmtpService {
  std::string name;  // As written: "smtp", "submission", "2587", "127.0.0.1:2587", "[::1]:2587".
  std::string host;  // From "host:port"; empty: every inet_interfaces address.
  std::string port;  // A number or a service name ("smtp", "submission", "submissions", "smtps").
  std::vector<std::pair<std::string, std::string>> overrides;  // -o name=value, in order.
  int line = 0;      // Where the service's line began, for "master.cf:12: …" errors.
};

// Errors name `filename` and the line.
absl::StatusOr<std::vector<SmtpService>> ParseMasterCf(absl::string_view text, absl::string_view filename);

}  // namespace postgate::config
