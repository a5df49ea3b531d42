#include "console/auth/sessions.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"

namespace postgate::console {

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  // Without randomness no session is safe to issue: stop rather than hand out guessable IDs.
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) std::abort();
  return absl::BytesToHexString(raw);
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string ProxyCsrfToken(absl::string_view key, absl::string_view operator_name) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  const std::string message = "proxy-operator:" + std::string(operator_name);
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(message.data()),
       message.size(), digest, &length);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), length));
}

bool ValidOperatorName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '@' && c != '+' && c != '-') return false;
  }
  return true;
}

Session SessionStore::Create(const std::string& operator_name, absl::Time now) {
  Session session{RandomHex(32), operator_name, RandomHex(32), now, now};
  absl::MutexLock lock(&mu_);
  // Expired sessions go when a new one comes: the map never outgrows the sign-ins of a lifetime.
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    const bool expired = now - it->second.last_seen > idle_ || now - it->second.created > lifetime_;
    it = expired ? sessions_.erase(it) : std::next(it);
  }
  sessions_[session.id] = session;
  return session;
}

std::optional<Session> SessionStore::Find(absl::string_view id, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  if (now - it->second.last_seen > idle_ || now - it->second.created > lifetime_) {
    sessions_.erase(it);
    return std::nullopt;
  }
  it->second.last_seen = now;
  return it->second;
}

void SessionStore::Remove(absl::string_view id) {
  absl::MutexLock lock(&mu_);
  if (auto it = sessions_.find(id); it != sessions_.end()) sessions_.erase(it);
}

size_t SessionStore::size() const {
  absl::MutexLock lock(&mu_);
  return sessions_.size();
}

bool LoginThrottle::Allowed(const std::string& address, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = failures_.find(address);
  if (it == failures_.end()) return true;
  if (now - it->second.first >= window_) {
    failures_.erase(it);
    return true;
  }
  return it->second.count < limit_;
}

void LoginThrottle::Failed(const std::string& address, absl::Time now) {
  absl::MutexLock lock(&mu_);
  Failures& f = failures_[address];
  if (f.count == 0 || now - f.first >= window_) f = Failures{0, now};
  ++f.count;
}

void LoginThrottle::Succeeded(const std::string& address) {
  absl::MutexLock lock(&mu_);
  failures_.erase(address);
}

}  // namespace postgate::console
