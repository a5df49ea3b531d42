// The addresses permit_inet_interfaces compares a client with, as Postfix's own_inet_addr list:
// those inet_interfaces names; for "all", every address of this machine's interfaces (getifaddrs).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "smtp-gateway/policy/network.h"

namespace postgate::gateway {

absl::StatusOr<policy::NetworkList> MachineAddresses(const std::vector<std::string>& inet_interfaces);

}  // namespace postgate::gateway
