#include "core/smtp/address.h"

#include "gtest/gtest.h"

namespace postgate::smtp {
namespace {

TEST(AddressTest, BracketedPathWithParameters) {
  ParsedPath parsed = ParsePathArgument("FROM:<foo@mail169.com> size=100 BODY=8BITMIME", "FROM:");
  ASSERT_EQ(parsed.error, PathError::kNone);
  EXPECT_EQ(parsed.path.address, "foo@mail169.com");
  ASSERT_EQ(parsed.path.parameters.size(), 2u);
  EXPECT_EQ(parsed.path.parameters[0].keyword, "SIZE");
  EXPECT_EQ(parsed.path.parameters[0].value, "100");
  EXPECT_EQ(parsed.path.parameters[1].value, "8BITMIME");
}

TEST(AddressTest, LenientFormsPostfixAccepts) {
  EXPECT_EQ(ParsePathArgument("from: <a@b.c>", "FROM:").path.address, "a@b.c");
  EXPECT_EQ(ParsePathArgument("TO:bar@mail169.com", "TO:").path.address, "bar@mail169.com");
  EXPECT_EQ(ParsePathArgument("TO:<bar>", "TO:").path.address, "bar");
  ParsedPath null_path = ParsePathArgument("FROM:<>", "FROM:");
  EXPECT_EQ(null_path.error, PathError::kNone);
  EXPECT_EQ(null_path.path.address, "");
}

TEST(AddressTest, SourceRouteIsDropped) {
  EXPECT_EQ(ParsePathArgument("TO:<@mail169.com:user@example.org>", "TO:").path.address,
            "user@example.org");
  EXPECT_EQ(ParsePathArgument("TO:<@a,@b:user@c.d>", "TO:").path.address, "user@c.d");
}

TEST(AddressTest, QuotedLocalPartMayHoldAt) {
  ParsedPath parsed = ParsePathArgument("TO:<\"a@b> x\"@mail169.com>", "TO:");
  ASSERT_EQ(parsed.error, PathError::kNone);
  EXPECT_EQ(parsed.path.address, "\"a@b> x\"@mail169.com");
  MailboxParts parts = SplitMailbox(parsed.path.address);
  EXPECT_EQ(parts.local_part, "\"a@b> x\"");
  EXPECT_EQ(parts.domain, "mail169.com");
}

TEST(AddressTest, Errors) {
  EXPECT_EQ(ParsePathArgument("<a@b>", "FROM:").error, PathError::kMissingPrefix);
  EXPECT_EQ(ParsePathArgument("FROM:", "FROM:").error, PathError::kMissingPrefix);
  EXPECT_EQ(ParsePathArgument("FROM:<a@b", "FROM:").error, PathError::kBadAddress);
  EXPECT_EQ(ParsePathArgument("FROM:<a@b>x", "FROM:").error, PathError::kBadAddress);
  EXPECT_EQ(ParsePathArgument("FROM:<a b@c>", "FROM:").error, PathError::kBadAddress);
  EXPECT_EQ(ParsePathArgument("FROM:<@b>", "FROM:").error, PathError::kBadAddress);
  EXPECT_EQ(ParsePathArgument("FROM:<a@>", "FROM:").error, PathError::kBadAddress);
  EXPECT_EQ(ParsePathArgument("FROM:<a..b@c>", "FROM:").error, PathError::kBadAddress);
  EXPECT_EQ(ParsePathArgument("FROM:<a@b..c>", "FROM:").error, PathError::kBadAddress);
  EXPECT_EQ(ParsePathArgument("FROM:<a@b> =x", "FROM:").error, PathError::kBadParameter);
}

TEST(AddressTest, MailboxValidity) {
  EXPECT_TRUE(IsValidMailbox("bar+tag@mail169.com"));
  EXPECT_TRUE(IsValidMailbox("user@[127.0.0.1]"));
  EXPECT_TRUE(IsValidMailbox("postmaster"));
  EXPECT_FALSE(IsValidMailbox("a@-b.com"));
  EXPECT_FALSE(IsValidMailbox("a\x01@b.com"));
  // What Postfix's syntax check lets through, so that the relay policy decides about it.
  EXPECT_TRUE(IsValidMailbox("user@example.org@mail169.com"));
  EXPECT_TRUE(IsValidMailbox("\"user@example.org\"@mail169.com"));
  EXPECT_TRUE(IsValidMailbox("user@example.org."));
  EXPECT_FALSE(IsValidMailbox("user@example.org.."));
  EXPECT_FALSE(IsValidMailbox("user@.example.org"));
  EXPECT_FALSE(IsValidMailbox("user@example.org%mail169.com"));
  EXPECT_FALSE(IsValidMailbox("user@example.org:25"));
  EXPECT_FALSE(IsValidMailbox("@example.org"));
  EXPECT_FALSE(IsValidMailbox("user@@example.org"));
}

}  // namespace
}  // namespace postgate::smtp
