#include "core/addressing/header_addresses.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace postgate::addressing {
namespace {

using ::testing::ElementsAre;

// The addresses offered, and the field with each one upper-cased.
std::pair<std::vector<std::string>, std::optional<std::string>> Rewrite(absl::string_view field) {
  std::vector<std::string> seen;
  std::optional<std::string> out = RewriteHeaderAddresses(field, [&](absl::string_view address) {
    seen.emplace_back(address);
    std::string upper(address);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return std::optional<std::string>(upper);
  });
  return {seen, out};
}

TEST(HeaderAddressesTest, NameAngleCommentsAndListsKeepEverythingButTheAddress) {
  auto [seen, out] = Rewrite("To: \"Doe, John\" <john@x.example>, jane@y.example (Jane, \"J\"),\n\tbob@z\n");
  EXPECT_THAT(seen, ElementsAre("john@x.example", "jane@y.example", "bob@z"));
  EXPECT_EQ(out, "To: \"Doe, John\" <JOHN@X.EXAMPLE>, JANE@Y.EXAMPLE (Jane, \"J\"),\n\tBOB@Z\n");
}

TEST(HeaderAddressesTest, GroupsRoutesQuotedLocalPartsAndEmptyAddresses) {
  auto [seen, out] = Rewrite("Cc: team: a@x, \"b c\"@y;, <@relay.example:d@z>, <>, undisclosed-recipients:;\n");
  EXPECT_THAT(seen, ElementsAre("a@x", "\"b c\"@y", "d@z"));
  EXPECT_EQ(out, "Cc: team: A@X, \"B C\"@Y;, <@relay.example:D@Z>, <>, undisclosed-recipients:;\n");
}

TEST(HeaderAddressesTest, ADomainLiteralWithColonsIsOneAddress) {
  auto [seen, out] = Rewrite("To: user@[IPv6:::1], other@[192.0.2.1]\n");
  EXPECT_THAT(seen, ElementsAre("user@[IPv6:::1]", "other@[192.0.2.1]"));
  EXPECT_EQ(out, "To: USER@[IPV6:::1], OTHER@[192.0.2.1]\n");
}

TEST(HeaderAddressesTest, WordsWithBlanksAreNoAddressAndUnchangedFieldsGiveNothing) {
  auto [seen, out] = Rewrite("From: Just A Name\n");
  EXPECT_TRUE(seen.empty());
  EXPECT_EQ(out, std::nullopt);
  EXPECT_EQ(RewriteHeaderAddresses("From: a@x\n", [](absl::string_view a) { return std::optional<std::string>(a); }),
            std::nullopt);
  EXPECT_EQ(RewriteHeaderAddresses("From: a@x (\"unclosed\n", [](absl::string_view) { return std::optional<std::string>("b@y"); }),
            "From: b@y (\"unclosed\n");
}

TEST(HeaderAddressesTest, RolesAreFoldedAsPostfixClassesThem) {
  EXPECT_EQ(AddressRoleOf("from"), HeaderAddressRole::kSender);
  EXPECT_EQ(AddressRoleOf("Reply-To"), HeaderAddressRole::kSender);
  EXPECT_EQ(AddressRoleOf("Resent-Reply-To"), HeaderAddressRole::kRecipient);
  EXPECT_EQ(AddressRoleOf("CC"), HeaderAddressRole::kRecipient);
  EXPECT_EQ(AddressRoleOf("Subject"), HeaderAddressRole::kNone);
  EXPECT_EQ(AddressRoleOf("Delivered-To"), HeaderAddressRole::kNone);
}

}  // namespace
}  // namespace postgate::addressing
