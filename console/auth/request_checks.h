// Checks on a request that are decisions only: is a state-changing request same-origin, and is the
// peer one of the reverse proxies trusted to name the operator in a header. Pure.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/net/network.h"

namespace postgate::console {

// A POST is same-origin when its Origin header (if any) names the Host it was sent to, and its
// Sec-Fetch-Site header (if any) says "same-origin". Browsers send at least one of them on a form
// POST; a cross-site form or fetch has a foreign Origin. Absent both (curl), the CSRF token alone
// decides. Empty strings mean the header was absent.
bool SameOrigin(absl::string_view origin, absl::string_view sec_fetch_site, absl::string_view host);

// Addresses and networks ("10.0.0.0/8", "::1", "127.0.0.1") of trusted reverse proxies, written
// as mynetworks is (core/net).
class TrustedPeers {
 public:
  static absl::StatusOr<TrustedPeers> Parse(const std::vector<std::string>& entries);
  bool Contains(absl::string_view address) const;
  bool empty() const { return networks_.empty(); }

 private:
  net::NetworkList networks_;
};

}  // namespace postgate::console
