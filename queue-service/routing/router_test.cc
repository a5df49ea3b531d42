#include "queue-service/routing/router.h"

#include "gtest/gtest.h"

namespace postgate::queue {
namespace {

TEST(NextHopTest, PostfixNotation) {
  EXPECT_EQ(*ParseNextHop("[127.0.0.1]:2526"), (NextHop{"127.0.0.1", 2526, false}));
  EXPECT_EQ(*ParseNextHop("[Relay.Example.ORG]"), (NextHop{"relay.example.org", 25, false}));
  EXPECT_EQ(*ParseNextHop("example.org:587"), (NextHop{"example.org", 587, true}));
  EXPECT_EQ(ParseNextHop("[::1]:2526")->host, "::1");
  EXPECT_EQ(ParseNextHop("[127.0.0.1]:2526")->ToString(), "[127.0.0.1]:2526");
  EXPECT_FALSE(ParseNextHop("[127.0.0.1:25").ok());
  EXPECT_FALSE(ParseNextHop("[127.0.0.1]:99999").ok());
  EXPECT_FALSE(ParseNextHop("").ok());
}

TEST(TransportMapTest, ExactThenParentThenWildcard) {
  auto map = TransportMap::Parse("# comment\nexample.org smtp:[127.0.0.1]:2526\n.example.net  smtp:[127.0.0.2]\n"
                                 "* smtp:[127.0.0.9]:2600\n", "transport");
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(*map->Find("example.org"), "[127.0.0.1]:2526");
  EXPECT_EQ(*map->Find("a.b.example.net"), "[127.0.0.2]");
  EXPECT_EQ(*map->Find("example.net"), "[127.0.0.9]:2600");  // ".example.net" is subdomains only.
  EXPECT_EQ(*map->Find("other.test"), "[127.0.0.9]:2600");
}

TEST(TransportMapTest, ErrorsNameFileAndLine) {
  EXPECT_EQ(TransportMap::Parse("a.org smtp:[x]\nb.org uucp:host\n", "/etc/postgate/transport").status().message(),
            "/etc/postgate/transport:2: transport \"uucp\" is not supported (use smtp)");
  EXPECT_EQ(TransportMap::Parse("lonely\n", "t").status().message(), "t:1: expected \"domain transport:nexthop\"");
  EXPECT_EQ(TransportMap::Parse("a.org smtp:[x]:0\n", "t").status().message(), "t:1: \"[x]:0\": bad port");
}

TEST(RouterTest, MapThenRelayhostThenNothing) {
  Router router(*TransportMap::Parse("example.org smtp:[127.0.0.1]:2526\n", "t"), NextHop{"127.0.0.3", 2527, false},
                false);
  Route mapped = router.Resolve("example.org");
  EXPECT_EQ(mapped.kind, Route::Kind::kSmtp);
  EXPECT_EQ(mapped.next_hop.ToString(), "[127.0.0.1]:2526");
  EXPECT_EQ(router.Resolve("elsewhere.test").next_hop.ToString(), "[127.0.0.3]:2527");
  Router bare(*TransportMap::Parse("", "t"), std::nullopt, false);
  EXPECT_EQ(bare.Resolve("Example.org").kind, Route::Kind::kSmtp);
  EXPECT_EQ(bare.Resolve("example.org").next_hop, (NextHop{"example.org", 25, true}));  // Its MX hosts.
  Router deferred(*TransportMap::Parse("example.org smtp:[127.0.0.1]\n", "t"), std::nullopt, true);
  EXPECT_EQ(deferred.Resolve("example.org").kind, Route::Kind::kDefer);
  EXPECT_EQ(deferred.Resolve("example.org").reason, "deferred transport");
}

}  // namespace
}  // namespace postgate::queue
