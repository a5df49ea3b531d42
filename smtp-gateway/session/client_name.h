// The client's name as Postfix's smtpd finds it: the reverse (PTR) name of its address, kept only
// if that name resolves back to the same address; "unknown" otherwise.
#pragma once

#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "asio/ip/address.hpp"

namespace postgate::gateway {

// Blocks on the system resolver (NSS: /etc/hosts, DNS): call it off the session threads.
// Asks for no service name (asio's resolver does, which reads /etc/services on every lookup).
std::string LookUpClientName(const asio::ip::address& address);

// Recent answers of LookUpClientName by address, for a minute: a busy client (a relay, a
// monitoring probe) opens many connections, and each would otherwise cost two resolver lookups
// and a thread hand-off. Thread-safe; bounded (emptied when full).
class ClientNameCache {
 public:
  explicit ClientNameCache(absl::Duration ttl = absl::Minutes(1), size_t capacity = 10000)
      : ttl_(ttl), capacity_(capacity) {}
  std::optional<std::string> Find(const asio::ip::address& address, absl::Time now);
  void Remember(const asio::ip::address& address, std::string name, absl::Time now);

 private:
  struct Entry {
    std::string name;
    absl::Time expires;
  };
  const absl::Duration ttl_;
  const size_t capacity_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace postgate::gateway
