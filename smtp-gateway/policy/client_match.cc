#include "smtp-gateway/policy/client_match.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace postgate::gateway::policy {

absl::StatusOr<ClientMatch> ClientMatch::Parse(const std::vector<std::string>& words,
                                                                 NetworkList machine_addresses) {
  ClientMatch clients;
  clients.machine_addresses_ = std::move(machine_addresses);
  for (const std::string& word : words) {
    const std::string lower = absl::AsciiStrToLower(word);
    if (lower == "permit_inet_interfaces") {
      clients.inet_interfaces_ = true;
    } else if (lower == "permit_mynetworks") {
      clients.mynetworks_ = true;
    } else if (lower == "permit_sasl_authenticated") {
      clients.sasl_authenticated_ = true;
    } else if (lower == "static:all") {
      clients.all_ = true;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", word,
                       "\" is not supported (use permit_inet_interfaces, permit_mynetworks, "
                       "permit_sasl_authenticated or static:all)"));
    }
  }
  return clients;
}

bool ClientMatch::Matches(absl::string_view client_address, bool in_mynetworks, bool logged_in) const {
  if (all_ || (mynetworks_ && in_mynetworks) || (sasl_authenticated_ && logged_in)) return true;
  if (!inet_interfaces_) return false;
  const absl::StatusOr<IpAddress> address = IpAddress::Parse(client_address);
  return address.ok() && machine_addresses_.Contains(*address);
}

}  // namespace postgate::gateway::policy
