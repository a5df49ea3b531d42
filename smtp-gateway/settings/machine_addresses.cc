#include "smtp-gateway/settings/machine_addresses.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace postgate::gateway {
namespace {

// Every IPv4 and IPv6 address of this machine's interfaces, as text.
absl::StatusOr<std::vector<std::string>> InterfaceAddresses() {
  struct ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return absl::InternalError(absl::StrCat("getifaddrs: ", std::strerror(errno)));
  std::vector<std::string> addresses;
  for (const struct ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr) continue;
    char text[INET6_ADDRSTRLEN] = {};
    if (entry->ifa_addr->sa_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(entry->ifa_addr)->sin_addr, text, sizeof text);
    } else if (entry->ifa_addr->sa_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(entry->ifa_addr)->sin6_addr, text, sizeof text);
    } else {
      continue;
    }
    addresses.emplace_back(text);
  }
  freeifaddrs(list);
  return addresses;
}

}  // namespace

absl::StatusOr<policy::NetworkList> MachineAddresses(const std::vector<std::string>& inet_interfaces) {
  std::vector<std::string> addresses;
  for (const std::string& interface : inet_interfaces) {
    if (interface == "all") {
      absl::StatusOr<std::vector<std::string>> all = InterfaceAddresses();
      if (!all.ok()) return all.status();
      addresses.insert(addresses.end(), all->begin(), all->end());
    } else if (interface == "loopback-only" || interface == "localhost") {
      addresses.insert(addresses.end(), {"127.0.0.1", "[::1]"});
    } else {
      addresses.push_back(interface);
    }
  }
  return policy::NetworkList::Parse(addresses);
}

}  // namespace postgate::gateway
