#include "core/net/network.h"

#include <arpa/inet.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace postgate::net {

absl::StatusOr<IpAddress> IpAddress::Parse(absl::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  std::string zero_terminated(text);
  IpAddress address;
  if (inet_pton(AF_INET, zero_terminated.c_str(), address.bytes.data()) == 1) return address;
  if (inet_pton(AF_INET6, zero_terminated.c_str(), address.bytes.data()) == 1) {
    address.v6 = true;
    // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 client it stands for.
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(kMapped, kMapped + 12, address.bytes.begin())) {
      IpAddress v4;
      std::copy(address.bytes.begin() + 12, address.bytes.end(), v4.bytes.begin());
      return v4;
    }
    return address;
  }
  return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not an IP address"));
}

std::string IpAddress::ToString() const {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), text, sizeof(text));
  return text;
}

absl::StatusOr<Network> Network::Parse(absl::string_view text) {
  size_t slash = text.find('/');
  absl::StatusOr<IpAddress> base = IpAddress::Parse(text.substr(0, slash));
  if (!base.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not a network address"));
  }
  int max_length = base->v6 ? 128 : 32;
  Network network;
  network.base_ = *base;
  network.prefix_length_ = max_length;
  if (slash != absl::string_view::npos) {
    if (!absl::SimpleAtoi(text.substr(slash + 1), &network.prefix_length_) ||
        network.prefix_length_ < 0 || network.prefix_length_ > max_length) {
      return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": bad prefix length"));
    }
  }
  return network;
}

bool Network::Contains(const IpAddress& address) const {
  if (address.v6 != base_.v6) return false;
  int remaining = prefix_length_;
  for (size_t i = 0; remaining > 0; ++i, remaining -= 8) {
    uint8_t mask = remaining >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - remaining));
    if ((address.bytes[i] & mask) != (base_.bytes[i] & mask)) return false;
  }
  return true;
}

bool Network::Overlaps(const Network& other) const {
  // CIDR ranges are nested or disjoint: they overlap iff one holds the other's base address.
  return Contains(other.base_) || other.Contains(base_);
}

std::string Network::ToString() const { return absl::StrCat(base_.ToString(), "/", prefix_length_); }

std::optional<std::string> NetworkList::FindOverlap(const NetworkList& other) const {
  for (const Network& mine : networks_) {
    for (const Network& theirs : other.networks_) {
      if (mine.Overlaps(theirs)) return absl::StrCat(mine.ToString(), " overlaps ", theirs.ToString());
    }
  }
  return std::nullopt;
}

absl::StatusOr<NetworkList> NetworkList::Parse(const std::vector<std::string>& words) {
  NetworkList list;
  for (const std::string& word : words) {
    absl::StatusOr<Network> network = Network::Parse(word);
    if (!network.ok()) return network.status();
    list.networks_.push_back(*network);
  }
  return list;
}

bool NetworkList::Contains(const IpAddress& address) const {
  for (const Network& network : networks_) {
    if (network.Contains(address)) return true;
  }
  return false;
}

}  // namespace postgate::net
