// Operators' sessions after they sign in with the admin token: a random ID in a cookie
// (HttpOnly, SameSite=Strict), the operator's name for the audit log, and the CSRF token every
// form that changes the queue must carry. In memory: a restart signs everyone out. Expire after
// `idle` without a request and after `lifetime` in any case. Thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace postgate::console {

struct Session {
  std::string id;    // 256 random bits, hex: the cookie's value.
  std::string operator_name;
  std::string csrf;  // 256 random bits, hex.
  absl::Time created;
  absl::Time last_seen;
};

class SessionStore {
 public:
  SessionStore(absl::Duration idle, absl::Duration lifetime) : idle_(idle), lifetime_(lifetime) {}

  Session Create(const std::string& operator_name, absl::Time now);
  // The live session with this ID (its idle clock restarted), or nullopt.
  std::optional<Session> Find(absl::string_view id, absl::Time now);
  void Remove(absl::string_view id);
  size_t size() const;

 private:
  const absl::Duration idle_, lifetime_;
  mutable absl::Mutex mu_;
  std::map<std::string, Session, std::less<>> sessions_ ABSL_GUARDED_BY(mu_);
};

// `bytes` random bytes from OpenSSL's CSPRNG, as lower-case hex.
std::string RandomHex(size_t bytes);

// Equal strings, in time that depends only on their lengths.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// The CSRF token for an operator a trusted proxy vouches for (no cookie session): an HMAC of the
// name under this process's random key, so it is stable for the process and unforgeable.
std::string ProxyCsrfToken(absl::string_view key, absl::string_view operator_name);

// Names fit for the audit log: 1–64 of letters, digits and . _ @ + -.
bool ValidOperatorName(absl::string_view name);

// Failed sign-ins per client address: after `limit` within `window` the address waits until the
// window has passed since its first counted failure. A success clears it. Thread-safe.
class LoginThrottle {
 public:
  LoginThrottle(int limit, absl::Duration window) : limit_(limit), window_(window) {}
  bool Allowed(const std::string& address, absl::Time now);
  void Failed(const std::string& address, absl::Time now);
  void Succeeded(const std::string& address);

 private:
  struct Failures {
    int count = 0;
    absl::Time first;
  };
  const int limit_;
  const absl::Duration window_;
  absl::Mutex mu_;
  std::map<std::string, Failures> failures_ ABSL_GUARDED_BY(mu_);
};

}  // namespace postgate::console
