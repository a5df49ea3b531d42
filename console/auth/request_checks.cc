#include "console/auth/request_checks.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace postgate::console {
namespace {

// The family and bytes of a literal address; false if it is none.
bool ParseAddress(const std::string& text, int* family, unsigned char bytes[16]) {
  std::memset(bytes, 0, 16);
  if (inet_pton(AF_INET, text.c_str(), bytes) == 1) {
    *family = AF_INET;
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), bytes) == 1) {
    *family = AF_INET6;
    return true;
  }
  return false;
}

}  // namespace

bool SameOrigin(absl::string_view origin, absl::string_view sec_fetch_site, absl::string_view host) {
  if (!sec_fetch_site.empty() && sec_fetch_site != "same-origin") return false;
  if (origin.empty()) return true;
  // "null" (sandboxed or privacy-sensitive contexts) is not us either.
  const size_t scheme_end = origin.find("://");
  if (scheme_end == absl::string_view::npos) return false;
  return absl::EqualsIgnoreCase(origin.substr(scheme_end + 3), host) && !host.empty();
}

absl::StatusOr<TrustedPeers> TrustedPeers::Parse(const std::vector<std::string>& entries) {
  TrustedPeers peers;
  for (const std::string& entry : entries) {
    const size_t slash = entry.find('/');
    Network network{};
    if (!ParseAddress(entry.substr(0, slash), &network.family, network.bytes)) {
      return absl::InvalidArgumentError(absl::StrCat("trusted proxy \"", entry, "\": not an address or network"));
    }
    const int bits = network.family == AF_INET ? 32 : 128;
    network.prefix = bits;
    if (slash != std::string::npos && (!absl::SimpleAtoi(entry.substr(slash + 1), &network.prefix) ||
                                       network.prefix < 0 || network.prefix > bits)) {
      return absl::InvalidArgumentError(absl::StrCat("trusted proxy \"", entry, "\": bad prefix length"));
    }
    peers.networks_.push_back(network);
  }
  return peers;
}

bool TrustedPeers::Contains(absl::string_view address) const {
  int family = 0;
  unsigned char bytes[16];
  if (!ParseAddress(std::string(address), &family, bytes)) return false;
  for (const Network& network : networks_) {
    if (network.family != family) continue;
    const int whole = network.prefix / 8, rest = network.prefix % 8;
    if (std::memcmp(bytes, network.bytes, static_cast<size_t>(whole)) != 0) continue;
    if (rest != 0) {
      const unsigned char mask = static_cast<unsigned char>(0xFF << (8 - rest));
      if ((bytes[whole] & mask) != (network.bytes[whole] & mask)) continue;
    }
    return true;
  }
  return false;
}

}  // namespace postgate::console
