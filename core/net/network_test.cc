#include "core/net/network.h"

#include "gtest/gtest.h"

namespace postgate::net {
namespace {

bool InList(const std::vector<std::string>& words, absl::string_view address) {
  absl::StatusOr<NetworkList> list = NetworkList::Parse(words);
  EXPECT_TRUE(list.ok()) << list.status();
  return list->Contains(*IpAddress::Parse(address));
}

TEST(NetworkTest, ReferenceMynetworks) {
  std::vector<std::string> lab = {"127.0.0.0/8", "192.168.0.0/24"};
  EXPECT_TRUE(InList(lab, "127.0.0.1"));
  EXPECT_TRUE(InList(lab, "127.255.0.9"));
  EXPECT_TRUE(InList(lab, "192.168.0.10"));
  EXPECT_FALSE(InList(lab, "192.168.1.10"));
  EXPECT_FALSE(InList(lab, "10.9.9.9"));
  EXPECT_FALSE(InList(lab, "::1"));
  EXPECT_TRUE(InList(lab, "::ffff:192.168.0.7"));
}

TEST(NetworkTest, Ipv6AndBareAddresses) {
  EXPECT_TRUE(InList({"[::1]/128"}, "::1"));
  EXPECT_TRUE(InList({"[2001:db8::]/32"}, "2001:db8:1::5"));
  EXPECT_FALSE(InList({"[2001:db8::]/32"}, "2001:db9::5"));
  EXPECT_TRUE(InList({"10.1.2.3"}, "10.1.2.3"));
  EXPECT_FALSE(InList({"10.1.2.3"}, "10.1.2.4"));
  EXPECT_TRUE(InList({"0.0.0.0/0"}, "8.8.8.8"));
}

TEST(NetworkTest, ErrorsNameTheWord) {
  EXPECT_EQ(NetworkList::Parse({"127.0.0.0/8", "192.168.0/24"}).status().message(),
            "\"192.168.0/24\" is not a network address");
  EXPECT_EQ(NetworkList::Parse({"10.0.0.0/33"}).status().message(), "\"10.0.0.0/33\": bad prefix length");
}

TEST(NetworkTest, OverlapFindsTheAccidentalOpenRelay) {
  NetworkList mynetworks = *NetworkList::Parse({"127.0.0.0/8", "10.244.0.0/16"});
  EXPECT_EQ(*mynetworks.FindOverlap(*NetworkList::Parse({"10.0.0.0/8"})), "10.244.0.0/16 overlaps 10.0.0.0/8");
  EXPECT_EQ(*mynetworks.FindOverlap(*NetworkList::Parse({"10.244.3.0/24"})), "10.244.0.0/16 overlaps 10.244.3.0/24");
  EXPECT_FALSE(mynetworks.FindOverlap(*NetworkList::Parse({"10.96.0.0/12", "[fd00::]/8"})).has_value());
}

}  // namespace
}  // namespace postgate::net
