#include "queuectl/queue_connection.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace postgate::queuectl {
namespace {

absl::StatusOr<std::string> ReadWhole(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in || text.str().empty()) return absl::InvalidArgumentError(absl::StrCat(what, " ", path, ": cannot read"));
  return text.str();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ReplicaAddresses(const std::string& server) {
  std::vector<std::string> addresses;
  for (absl::string_view part : absl::StrSplit(server, ',', absl::SkipWhitespace())) {
    if (!absl::StartsWith(part, "dns:///")) {
      addresses.emplace_back(part);
      continue;
    }
    std::string target(part.substr(7));
    size_t colon = target.rfind(':');
    if (colon == std::string::npos) return absl::InvalidArgumentError(absl::StrCat(part, ": expected dns:///name:port"));
    const std::string host = target.substr(0, colon), port = target.substr(colon + 1);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (int error = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); error != 0) {
      return absl::UnavailableError(absl::StrCat(host, ": ", gai_strerror(error)));
    }
    std::set<std::string> unique;
    for (addrinfo* entry = found; entry != nullptr; entry = entry->ai_next) {
      char text[INET6_ADDRSTRLEN] = {};
      const void* raw = entry->ai_family == AF_INET
                            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(entry->ai_addr)->sin_addr)
                            : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(entry->ai_addr)->sin6_addr);
      inet_ntop(entry->ai_family, raw, text, sizeof(text));
      unique.insert(entry->ai_family == AF_INET6 ? absl::StrCat("[", text, "]:", port) : absl::StrCat(text, ":", port));
    }
    freeaddrinfo(found);
    addresses.insert(addresses.end(), unique.begin(), unique.end());
  }
  if (addresses.empty()) return absl::InvalidArgumentError(absl::StrCat("\"", server, "\" names no replica"));
  return addresses;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> QueueCredentials(const QueueTls& tls,
                                                                           grpc::ChannelArguments* arguments) {
  if (tls.ca.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  absl::StatusOr<std::string> ca = ReadWhole(tls.ca, "--tls-ca");
  if (!ca.ok()) return ca.status();
  ssl.pem_root_certs = *ca;
  if (!tls.cert.empty()) {
    absl::StatusOr<std::string> cert = ReadWhole(tls.cert, "--tls-cert");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = tls.key.empty() ? cert : ReadWhole(tls.key, "--tls-key");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *cert;
    ssl.pem_private_key = *key;
  }
  if (!tls.server_name.empty()) arguments->SetSslTargetNameOverride(tls.server_name);
  return grpc::SslCredentials(ssl);
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("--token-file ", path, ": cannot open"));
  std::string token;
  std::getline(in, token);
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  return token;
}

}  // namespace postgate::queuectl
