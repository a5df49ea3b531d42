#include "console/auth/request_checks.h"

#include "gtest/gtest.h"

namespace postgate::console {
namespace {

TEST(SameOriginTest, ForeignOriginsAndCrossSiteFetchesAreRefused) {
  EXPECT_TRUE(SameOrigin("http://127.0.0.1:8025", "same-origin", "127.0.0.1:8025"));
  EXPECT_TRUE(SameOrigin("https://Console.Example", "", "console.example"));
  EXPECT_TRUE(SameOrigin("", "", "127.0.0.1:8025"));  // curl: the CSRF token decides.
  EXPECT_FALSE(SameOrigin("http://evil.example", "cross-site", "127.0.0.1:8025"));
  EXPECT_FALSE(SameOrigin("http://evil.example", "", "127.0.0.1:8025"));
  EXPECT_FALSE(SameOrigin("", "cross-site", "127.0.0.1:8025"));
  EXPECT_FALSE(SameOrigin("", "same-site", "127.0.0.1:8025"));
  EXPECT_FALSE(SameOrigin("null", "", "127.0.0.1:8025"));
  EXPECT_FALSE(SameOrigin("http://127.0.0.1:8025", "", ""));
}

TEST(TrustedPeersTest, AddressesAndNetworks) {
  absl::StatusOr<TrustedPeers> peers = TrustedPeers::Parse({"10.0.0.0/8", "127.0.0.1", "fd00::/8", "192.0.2.128/25"});
  ASSERT_TRUE(peers.ok()) << peers.status();
  EXPECT_TRUE(peers->Contains("10.1.2.3"));
  EXPECT_TRUE(peers->Contains("127.0.0.1"));
  EXPECT_FALSE(peers->Contains("127.0.0.2"));
  EXPECT_TRUE(peers->Contains("fd12::1"));
  EXPECT_FALSE(peers->Contains("fe80::1"));
  EXPECT_TRUE(peers->Contains("192.0.2.200"));
  EXPECT_FALSE(peers->Contains("192.0.2.100"));
  EXPECT_FALSE(peers->Contains("not an address"));
  EXPECT_FALSE(TrustedPeers::Parse({"10.0.0.0/33"}).ok());
  EXPECT_FALSE(TrustedPeers::Parse({"example.org"}).ok());
  EXPECT_TRUE(TrustedPeers::Parse({}).value().empty());
}

}  // namespace
}  // namespace postgate::console
