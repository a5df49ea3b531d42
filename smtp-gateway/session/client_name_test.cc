#include "smtp-gateway/session/client_name.h"

#include "gtest/gtest.h"

namespace postgate::gateway {
namespace {

TEST(ClientNameTest, LoopbackIsLocalhostFromTheHostsFile) {
  // /etc/hosts names 127.0.0.1 localhost, and localhost resolves back to it: confirmed. (No
  // other address here: anything else would ask a DNS server off this machine.)
  EXPECT_EQ(LookUpClientName(asio::ip::make_address("127.0.0.1")), "localhost");
  EXPECT_EQ(LookUpClientName(asio::ip::make_address("::ffff:127.0.0.1")), "localhost");
}

TEST(ClientNameCacheTest, RemembersUntilTheTtlAndStaysBounded) {
  ClientNameCache cache(absl::Seconds(60), /*capacity=*/2);
  const absl::Time now = absl::FromUnixSeconds(1000);
  const asio::ip::address a = asio::ip::make_address("192.0.2.1"), b = asio::ip::make_address("192.0.2.2"),
                          c = asio::ip::make_address("2001:db8::3");
  EXPECT_EQ(cache.Find(a, now), std::nullopt);
  cache.Remember(a, "mail.example.org", now);
  cache.Remember(b, "unknown", now);  // Failures are remembered too.
  EXPECT_EQ(cache.Find(a, now + absl::Seconds(59)), "mail.example.org");
  EXPECT_EQ(cache.Find(b, now), "unknown");
  EXPECT_EQ(cache.Find(a, now + absl::Seconds(60)), std::nullopt);  // Expired.
  cache.Remember(c, "v6.example.org", now);  // Full: starts again.
  EXPECT_EQ(cache.Find(c, now), "v6.example.org");
  EXPECT_EQ(cache.Find(b, now), std::nullopt);
}

}  // namespace
}  // namespace postgate::gateway
