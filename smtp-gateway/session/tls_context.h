// The server TLS context for STARTTLS: certificate and key from files (smtpd_tls_cert_file,
// smtpd_tls_key_file), TLS 1.2 and 1.3 only. The files are looked at again at most once a second
// when a client asks for TLS, and a changed pair is loaded without a restart – Kubernetes swaps
// mounted Secrets under running pods. A pair that fails to load keeps the previous one in use.
// Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "asio/ssl/context.hpp"
#include "core/config/file_version.h"

namespace postgate::gateway {

// What identifies a file's content cheaply (config::StatFile); any change means "reload", and
// nullopt is a file absent for now.
using FileStamp = std::optional<config::FileVersion>;

class TlsContextProvider {
 public:
  // `on_load` is told the certificate's expiry at start and after every reload.
  static absl::StatusOr<std::unique_ptr<TlsContextProvider>> Create(
      std::string cert_file, std::string key_file,
      std::function<void(absl::Time not_after)> on_load = nullptr);

  // The context for a new handshake (reloaded first if the files changed).
  std::shared_ptr<asio::ssl::context> Current();
  // Times a changed certificate was loaded since start.
  int reloads() const;

 private:
  TlsContextProvider(std::string cert_file, std::string key_file,
                     std::function<void(absl::Time)> on_load);
  void ReportExpiry(const asio::ssl::context& context) const;
  absl::StatusOr<std::shared_ptr<asio::ssl::context>> Load() const;
  std::pair<FileStamp, FileStamp> Stamps() const;

  const std::string cert_file_;
  const std::string key_file_;
  const std::function<void(absl::Time)> on_load_;
  mutable absl::Mutex mu_;
  std::shared_ptr<asio::ssl::context> context_ ABSL_GUARDED_BY(mu_);
  std::pair<FileStamp, FileStamp> stamps_ ABSL_GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point last_check_ ABSL_GUARDED_BY(mu_);
  int reloads_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace postgate::gateway
