#include "smtp-gateway/session/client_name.h"

#include <netdb.h>
#include <sys/socket.h>

#include <cstring>

#include "asio/ip/tcp.hpp"

namespace postgate::gateway {
namespace {

// An IPv4-mapped IPv6 address is the IPv4 client it stands for.
asio::ip::address Unmapped(const asio::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  return address;
}

}  // namespace

std::string LookUpClientName(const asio::ip::address& address) {
  const asio::ip::address client = Unmapped(address);
  const asio::ip::tcp::endpoint endpoint(client, 0);
  char host[NI_MAXHOST];
  if (::getnameinfo(endpoint.data(), static_cast<socklen_t>(endpoint.size()), host, sizeof(host), nullptr, 0,
                    NI_NAMEREQD) != 0) {
    return "unknown";
  }
  const std::string name = host;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (name.empty() || ::getaddrinfo(name.c_str(), nullptr, &hints, &found) != 0) return "unknown";
  bool confirmed = false;
  for (const addrinfo* entry = found; entry != nullptr && !confirmed; entry = entry->ai_next) {
    asio::ip::tcp::endpoint forward;
    if (entry->ai_addrlen > forward.capacity()) continue;
    std::memcpy(forward.data(), entry->ai_addr, entry->ai_addrlen);
    forward.resize(entry->ai_addrlen);
    confirmed = Unmapped(forward.address()) == client;
  }
  ::freeaddrinfo(found);
  return confirmed ? name : "unknown";
}

std::optional<std::string> ClientNameCache::Find(const asio::ip::address& address, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(address.to_string());
  if (it == entries_.end() || now >= it->second.expires) return std::nullopt;
  return it->second.name;
}

void ClientNameCache::Remember(const asio::ip::address& address, std::string name, absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (entries_.size() >= capacity_) entries_.clear();
  entries_[address.to_string()] = Entry{std::move(name), now + ttl_};
}

}  // namespace postgate::gateway
