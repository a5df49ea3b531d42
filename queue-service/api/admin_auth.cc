#include "queue-service/api/admin_auth.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace postgate::queue {
namespace {

// Compares without an early exit, so the time taken does not reveal a matching prefix.
bool SameSecret(const std::string& a, const std::string& b) {
  unsigned char difference = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) difference |= a[i] ^ b[i % (b.empty() ? 1 : b.size())];
  return difference == 0 && !b.empty();
}

}  // namespace

std::string AdminAuth::CurrentToken() {
  absl::MutexLock lock(&mu_);
  struct stat st {};
  if (::stat(token_file_.c_str(), &st) != 0) return token_;  // Keep the last good one.
  if (st.st_ino != loaded_inode_ || st.st_mtim.tv_sec != loaded_mtime_.tv_sec ||
      st.st_mtim.tv_nsec != loaded_mtime_.tv_nsec) {
    std::ifstream in(token_file_);
    std::stringstream text;
    text << in.rdbuf();
    token_ = std::string(absl::StripAsciiWhitespace(text.str()));
    loaded_inode_ = st.st_ino;
    loaded_mtime_ = st.st_mtim;
  }
  return token_;
}

bool AdminAuth::TrustedClientCertificate(const grpc::ServerContextBase& context) const {
  if (client_names_.empty()) return false;
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  // Peer identities exist only for a certificate the TLS handshake verified.
  if (!auth || !auth->IsPeerAuthenticated()) return false;
  for (const grpc::string_ref& identity : auth->GetPeerIdentity()) {
    const std::string name(identity.data(), identity.size());
    for (const std::string& allowed : client_names_) {
      if (name == allowed) return true;
    }
  }
  return false;
}

grpc::Status AdminAuth::Check(const grpc::ServerContextBase& context, const char* method) {
  if (TrustedClientCertificate(context)) return grpc::Status::OK;
  std::string problem;
  if (token_file_.empty()) {
    problem = "admin RPCs are disabled (set postgate_queue_admin_token_file)";
  } else {
    const std::string token = CurrentToken();
    auto header = context.client_metadata().find("authorization");
    std::string presented;
    if (header != context.client_metadata().end()) {
      absl::string_view value(header->second.data(), header->second.size());
      if (absl::StartsWithIgnoreCase(value, "Bearer ")) presented = std::string(value.substr(7));
    }
    if (presented.empty()) {
      problem = "missing bearer token";
    } else if (token.empty()) {
      problem = "no admin token could be read from the token file";
    } else if (!SameSecret(presented, token)) {
      problem = "wrong bearer token";
    }
  }
  if (problem.empty()) return grpc::Status::OK;
  denied_.Add({{"method", method}}).Increment();
  spdlog::warn("admin call {} from {} refused: {}", method, context.peer(), problem);
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, problem);
}

}  // namespace postgate::queue
