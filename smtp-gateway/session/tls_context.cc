#include "smtp-gateway/session/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "absl/strings/str_cat.h"
#include "core/base/absl_fmt.h"
#include "spdlog/spdlog.h"

namespace postgate::gateway {
namespace {

std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  char text[256] = "unknown error";
  if (code != 0) ERR_error_string_n(code, text, sizeof(text));
  ERR_clear_error();
  return text;
}

}  // namespace

TlsContextProvider::TlsContextProvider(std::string cert_file, std::string key_file,
                                       std::function<void(absl::Time)> on_load)
    : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)), on_load_(std::move(on_load)) {}

void TlsContextProvider::ReportExpiry(const asio::ssl::context& context) const {
  if (!on_load_) return;
  X509* certificate = SSL_CTX_get0_certificate(const_cast<asio::ssl::context&>(context).native_handle());
  struct tm expiry {};
  if (certificate != nullptr && ASN1_TIME_to_tm(X509_get0_notAfter(certificate), &expiry) == 1) {
    on_load_(absl::FromTM(expiry, absl::UTCTimeZone()));
  }
}

absl::StatusOr<std::unique_ptr<TlsContextProvider>> TlsContextProvider::Create(
    std::string cert_file, std::string key_file, std::function<void(absl::Time)> on_load) {
  std::unique_ptr<TlsContextProvider> provider(
      new TlsContextProvider(std::move(cert_file), std::move(key_file), std::move(on_load)));
  absl::StatusOr<std::shared_ptr<asio::ssl::context>> context = provider->Load();
  if (!context.ok()) return context.status();
  provider->ReportExpiry(**context);
  absl::MutexLock lock(&provider->mu_);
  provider->context_ = *std::move(context);
  provider->stamps_ = provider->Stamps();
  provider->last_check_ = std::chrono::steady_clock::now();
  return provider;
}

std::pair<FileStamp, FileStamp> TlsContextProvider::Stamps() const {
  return {config::StatFile(cert_file_), config::StatFile(key_file_)};
}

absl::StatusOr<std::shared_ptr<asio::ssl::context>> TlsContextProvider::Load() const {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                  SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file(native, cert_file_.c_str()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("smtpd_tls_cert_file: ", cert_file_, ": cannot load certificate: ", OpenSslError()));
  }
  if (SSL_CTX_use_PrivateKey_file(native, key_file_.c_str(), SSL_FILETYPE_PEM) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("smtpd_tls_key_file: ", key_file_, ": cannot load private key: ", OpenSslError()));
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("smtpd_tls_key_file: ", key_file_,
                                                   ": does not match the certificate in ", cert_file_));
  }
  return context;
}

std::shared_ptr<asio::ssl::context> TlsContextProvider::Current() {
  absl::MutexLock lock(&mu_);
  const auto now = std::chrono::steady_clock::now();
  if (now - last_check_ >= std::chrono::seconds(1)) {
    last_check_ = now;
    auto stamps = Stamps();
    if (stamps != stamps_) {
      absl::StatusOr<std::shared_ptr<asio::ssl::context>> reloaded = Load();
      if (reloaded.ok()) {
        context_ = *std::move(reloaded);
        ReportExpiry(*context_);
        stamps_ = stamps;
        ++reloads_;
        spdlog::info("reloaded TLS certificate {} and key {}", cert_file_, key_file_);
      } else {
        // Half-written files during a rotation: try again on the next check.
        spdlog::warn("keeping the previous TLS certificate: {}", reloaded.status().message());
      }
    }
  }
  return context_;
}

int TlsContextProvider::reloads() const {
  absl::MutexLock lock(&mu_);
  return reloads_;
}

}  // namespace postgate::gateway
