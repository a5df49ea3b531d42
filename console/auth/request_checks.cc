#include "console/auth/request_checks.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace postgate::console {

bool SameOrigin(absl::string_view origin, absl::string_view sec_fetch_site, absl::string_view host) {
  if (!sec_fetch_site.empty() && sec_fetch_site != "same-origin") return false;
  if (origin.empty()) return true;
  // "null" (sandboxed or privacy-sensitive contexts) is not us either.
  const size_t scheme_end = origin.find("://");
  if (scheme_end == absl::string_view::npos) return false;
  return absl::EqualsIgnoreCase(origin.substr(scheme_end + 3), host) && !host.empty();
}

absl::StatusOr<TrustedPeers> TrustedPeers::Parse(const std::vector<std::string>& entries) {
  absl::StatusOr<net::NetworkList> networks = net::NetworkList::Parse(entries);
  if (!networks.ok()) return networks.status();
  TrustedPeers peers;
  peers.networks_ = *std::move(networks);
  return peers;
}

bool TrustedPeers::Contains(absl::string_view address) const {
  absl::StatusOr<net::IpAddress> parsed = net::IpAddress::Parse(address);
  return parsed.ok() && networks_.Contains(*parsed);
}

}  // namespace postgate::console
