// SMTP AUTH on the client side, as Postfix's smtp_sasl_* parameters configure it: which
// credentials a conversation logs in with (smtp_sasl_password_maps, re-read when the file
// changes – a rotated Kubernetes Secret – without a restart), and which mechanisms are allowed
// with and without TLS. The exchange itself is in smtp_client.cc.
//
// Passwords stay in sasl::Secret and reach no log line, metric, API answer or error message:
// errors about the table name its file and line, never its text.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/config/file_version.h"
#include "core/config/lookup_table.h"
#include "core/config/main_cf.h"
#include "core/sasl/sasl.h"
#include "queue-service/routing/router.h"

namespace postgate::queue {

struct SaslCredentials {
  std::string username;
  sasl::Secret password;
};

// smtp_sasl_password_maps: one texthash: table of "key username:password" (the password may
// contain ':'; the username may not, as in Postfix). Thread-safe.
class SaslPasswordMap {
 public:
  // Reads the table; an error (file, line) if it cannot – at start, that stops the service.
  static absl::StatusOr<std::unique_ptr<SaslPasswordMap>> Open(std::string spec);

  // Postfix's lookup order: with `sender_dependent` (smtp_sender_dependent_authentication) the
  // sender's address, then "@domain"; then the next hop as written ("[host]:port", "host");
  // then the name of the server connected to. Re-reads the file first if it changed since the
  // last lookup; a changed file that does not parse is logged (file and line) and the table read
  // before stays in use.
  std::optional<SaslCredentials> Find(absl::string_view sender, bool sender_dependent, const NextHop& hop,
                                      absl::string_view server_host);
  // The username the sender's own entry names, if any: sessions logged in for one sender must not
  // carry another's mail (the connection cache keys on it).
  std::optional<std::string> SenderUsername(absl::string_view sender);

 private:
  SaslPasswordMap(std::string spec, std::string path) : spec_(std::move(spec)), path_(std::move(path)) {}
  void ReloadIfChanged() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static SaslCredentials Split(const std::string& value);  // "user:password"

  const std::string spec_;  // "texthash:/path"
  const std::string path_;
  absl::Mutex mu_;
  config::LookupTable table_ ABSL_GUARDED_BY(mu_);
  std::optional<config::FileVersion> version_ ABSL_GUARDED_BY(mu_);
};

struct SmtpSaslOptions {
  bool enabled = false;                        // smtp_sasl_auth_enable
  std::shared_ptr<SaslPasswordMap> passwords;  // smtp_sasl_password_maps
  std::vector<std::string> mechanism_filter;   // smtp_sasl_mechanism_filter ("" = any)
  // smtp_sasl_security_options (no TLS), smtp_sasl_tls_security_options (TLS, certificate not
  // checked), smtp_sasl_tls_verified_security_options (verified TLS). Postfix's defaults
  // (noplaintext, noanonymous) never send a password with PLAIN or LOGIN; the usual set-up
  // allows them over TLS only: smtp_sasl_tls_security_options = noanonymous.
  sasl::SecurityOptions without_tls, with_tls, with_verified_tls;
  bool sender_dependent = false;  // smtp_sender_dependent_authentication
  bool soft_bounce = true;        // smtp_sasl_auth_soft_bounce: a 5xx login failure defers.
};

// Reads the smtp_sasl_* parameters; errors name the parameter (or the table's file and line).
absl::StatusOr<SmtpSaslOptions> SmtpSaslOptionsFrom(const config::MainCf& cf);

}  // namespace postgate::queue
