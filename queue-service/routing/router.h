// Where a recipient domain's mail goes – Postfix's trivial-rewrite for the transports Postgate has:
// mydestination → local; otherwise, in order, transport_maps (transport(5) text: "example.org
// smtp:[127.0.0.1]:2526", ".example.org" for subdomains, "*" for any), relayhost ("[host]:port",
// brackets meaning "no MX lookup", as in Postfix), else the recipient domain's MX hosts; and
// defer_transports holding smtp mail back.
// Pure: the caller reads the map files.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/config/main_cf.h"

namespace postgate::queue {

struct NextHop {
  std::string host;       // Name or IP address, without brackets.
  uint16_t port = 25;
  bool mx_lookup = true;  // false for "[host]": connect to the host's address itself.
  // Postfix's notation: "[127.0.0.1]:2526" or "example.org".
  std::string ToString() const;
  bool operator==(const NextHop&) const = default;
};

// "[host]:port", "[host]", "host:port", "host" (an IPv6 address only in brackets).
absl::StatusOr<NextHop> ParseNextHop(absl::string_view text);

class TransportMap {
 public:
  // transport(5) lines "pattern transport:nexthop"; "#" comments, blank lines. Errors name
  // "file:line". Only the smtp transport exists (an empty nexthop means the recipient's domain).
  static absl::StatusOr<TransportMap> Parse(absl::string_view text, const std::string& filename);
  // The entry for `domain` (lower case): exact, then ".parent" entries from the nearest, then "*".
  const std::string* Find(absl::string_view domain) const;

 private:
  std::vector<std::pair<std::string, std::string>> entries_;  // pattern → nexthop text.
};

struct Route {
  enum class Kind { kSmtp, kDefer };
  Kind kind = Kind::kDefer;
  NextHop next_hop;
  std::string reason;  // For kDefer: why the mail waits.
};

class Router {
 public:
  // Reads transport_maps (texthash:/hash: files), relayhost and defer_transports.
  static absl::StatusOr<Router> Create(const config::MainCf& cf);
  Router(TransportMap map, std::optional<NextHop> relayhost, bool defer_smtp)
      : map_(std::move(map)), relayhost_(std::move(relayhost)), defer_smtp_(defer_smtp) {}

  // The route for a non-local recipient domain.
  Route Resolve(absl::string_view domain) const;

 private:
  TransportMap map_;
  std::optional<NextHop> relayhost_;
  bool defer_smtp_ = false;
};

}  // namespace postgate::queue
