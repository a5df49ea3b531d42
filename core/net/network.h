// IP networks as mynetworks writes them: "127.0.0.0/8", "192.168.0.0/24", "[::1]/128", or a bare
// address (a /32 or /128). Pure value types; parsing uses inet_pton only. Used by the gateway's
// policy (mynetworks, PROXY protocol peers) and the web console (trusted reverse proxies).
#pragma once

#include <array>
#include <optional>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace postgate::net {

struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // IPv4 uses the first 4.

  static absl::StatusOr<IpAddress> Parse(absl::string_view text);  // "1.2.3.4", "::1", "[::1]".
  std::string ToString() const;
};

class Network {
 public:
  static absl::StatusOr<Network> Parse(absl::string_view text);
  bool Contains(const IpAddress& address) const;
  // The two ranges share at least one address.
  bool Overlaps(const Network& other) const;
  std::string ToString() const;

 private:
  IpAddress base_;
  int prefix_length_ = 0;
};

class NetworkList {
 public:
  // Each word of a mynetworks value; the error names the word that is not a network.
  static absl::StatusOr<NetworkList> Parse(const std::vector<std::string>& words);
  bool Contains(const IpAddress& address) const;
  bool empty() const { return networks_.empty(); }
  // The first network of this list that overlaps one of `other`, as "a overlaps b"; nullopt if none.
  std::optional<std::string> FindOverlap(const NetworkList& other) const;

 private:
  std::vector<Network> networks_;
};

}  // namespace postgate::net
