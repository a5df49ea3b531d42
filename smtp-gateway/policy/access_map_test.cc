#include "smtp-gateway/policy/access_map.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace postgate::gateway::policy {
namespace {

using ::testing::HasSubstr;

std::shared_ptr<const AccessMap> Map(absl::string_view text) {
  absl::StatusOr<config::LookupTable> table = config::LookupTable::Parse(text, "access");
  EXPECT_TRUE(table.ok()) << table.status();
  absl::StatusOr<std::shared_ptr<const AccessMap>> map = AccessMap::FromTable(*std::move(table), "texthash:access", '+');
  EXPECT_TRUE(map.ok()) << map.status();
  return *map;
}

std::string Reply(const AccessMap& map, absl::string_view address) {
  const AccessDecision decision = map.Decide(address, "Sender address");
  switch (decision.kind) {
    case AccessDecision::Kind::kDunno: return "dunno";
    case AccessDecision::Kind::kPermit: return "permit";
    case AccessDecision::Kind::kRefuse: return decision.reply.lines.front().empty() ? "?" : absl::StrCat(decision.reply.code, " ", decision.reply.lines.front());
  }
  return "";
}

// The table and the answers Debian's Postfix 3.7.11 gave for it (check_sender_access, 2026-11-30).
TEST(AccessMapTest, PostfixsLookupOrderAndReplies) {
  std::shared_ptr<const AccessMap> map = Map(
      "spam.example REJECT\nbad@mail169.com REJECT No such sender here\nold.example 550 5.7.0 Domain retired\n"
      "good.example OK\nsub.bad.example DUNNO\nbad.example REJECT\nuser@ DEFER\nx@y.example 551\n");
  EXPECT_EQ(Reply(*map, "x@spam.example"), "554 5.7.1 <x@spam.example>: Sender address rejected: Access denied");
  EXPECT_EQ(Reply(*map, "x@SPAM.example"), "554 5.7.1 <x@SPAM.example>: Sender address rejected: Access denied");
  EXPECT_EQ(Reply(*map, "bad@mail169.com"), "554 5.7.1 <bad@mail169.com>: Sender address rejected: No such sender here");
  EXPECT_EQ(Reply(*map, "bad+tag@mail169.com"),
            "554 5.7.1 <bad+tag@mail169.com>: Sender address rejected: No such sender here");
  EXPECT_EQ(Reply(*map, "x@old.example"), "550 5.7.0 <x@old.example>: Sender address rejected: Domain retired");
  EXPECT_EQ(Reply(*map, "x@good.example"), "permit");
  EXPECT_EQ(Reply(*map, "x@sub.bad.example"), "dunno");  // The first key found decides, even DUNNO.
  EXPECT_EQ(Reply(*map, "x@deep.bad.example"), "554 5.7.1 <x@deep.bad.example>: Sender address rejected: Access denied");
  EXPECT_EQ(Reply(*map, "user@other.example"), "450 4.7.1 <user@other.example>: Sender address rejected: Access denied");
  EXPECT_EQ(Reply(*map, "x@y.example"), "permit");  // All-numeric: OK.
  EXPECT_EQ(Reply(*map, "x@elsewhere.example"), "dunno");
}

TEST(AccessMapTest, CodesWithoutAnEnhancedCodeGetPostfixsAndTheSubdomainDotForm) {
  std::shared_ptr<const AccessMap> map = Map("a.example 451 Slow down\n.b.example REJECT\n");
  EXPECT_EQ(Reply(*map, "x@a.example"), "451 4.7.1 <x@a.example>: Sender address rejected: Slow down");
  EXPECT_EQ(Reply(*map, "x@b.example"), "dunno");  // ".b.example" matches subdomains only.
  EXPECT_EQ(Reply(*map, "x@c.b.example"), "554 5.7.1 <x@c.b.example>: Sender address rejected: Access denied");
}

TEST(AccessMapTest, AnActionPostgateDoesNotHaveIsRefusedAtLoad) {
  for (const char* action : {"HOLD", "DISCARD", "REDIRECT x@y.example", "FILTER smtp:x", "600 no", "WARN x"}) {
    absl::StatusOr<config::LookupTable> table = config::LookupTable::Parse(absl::StrCat("x.example ", action, "\n"), "a");
    ASSERT_TRUE(table.ok());
    absl::StatusOr<std::shared_ptr<const AccessMap>> map = AccessMap::FromTable(*std::move(table), "texthash:/a", '+');
    ASSERT_FALSE(map.ok()) << action;
    EXPECT_THAT(map.status().message(), HasSubstr("texthash:/a: the action for \"x.example\" is not one Postgate has"));
  }
}

}  // namespace
}  // namespace postgate::gateway::policy
