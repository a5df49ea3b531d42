#include "smtp-gateway/policy/client_match.h"

#include "gtest/gtest.h"

namespace postgate::gateway::policy {
namespace {

NetworkList Machine() { return *NetworkList::Parse({"127.0.0.1", "[::1]", "192.0.2.10"}); }

TEST(ClientMatchTest, PostfixsDefaultIsThisMachinesAddressesOnly) {
  const absl::StatusOr<ClientMatch> clients = ClientMatch::Parse({"permit_inet_interfaces"}, Machine());
  ASSERT_TRUE(clients.ok()) << clients.status();
  EXPECT_TRUE(clients->Matches("127.0.0.1", true, false));
  EXPECT_TRUE(clients->Matches("192.0.2.10", false, false));
  EXPECT_TRUE(clients->Matches("::1", false, false));
  EXPECT_FALSE(clients->Matches("192.0.2.11", true, true));  // mynetworks and logged in: not named.
  EXPECT_FALSE(clients->Matches("unknown", false, false));
}

TEST(ClientMatchTest, MynetworksLoggedInOrEveryone) {
  const absl::StatusOr<ClientMatch> clients =
      ClientMatch::Parse({"permit_mynetworks", "PERMIT_SASL_AUTHENTICATED"}, Machine());
  ASSERT_TRUE(clients.ok()) << clients.status();
  EXPECT_TRUE(clients->Matches("198.51.100.1", true, false));
  EXPECT_TRUE(clients->Matches("198.51.100.1", false, true));
  EXPECT_FALSE(clients->Matches("127.0.0.1", false, false));
  const absl::StatusOr<ClientMatch> all = ClientMatch::Parse({"static:all"}, Machine());
  EXPECT_TRUE(all->Matches("198.51.100.1", false, false));
  const absl::StatusOr<ClientMatch> none = ClientMatch::Parse({}, Machine());
  EXPECT_FALSE(none->Matches("127.0.0.1", true, true));
}

TEST(ClientMatchTest, AnUnknownWordIsNamed) {
  const absl::StatusOr<ClientMatch> clients =
      ClientMatch::Parse({"permit_mynetworks", "check_address_map hash:/x"}, Machine());
  ASSERT_FALSE(clients.ok());
  EXPECT_NE(clients.status().message().find("\"check_address_map hash:/x\" is not supported"), std::string::npos);
}

}  // namespace
}  // namespace postgate::gateway::policy
