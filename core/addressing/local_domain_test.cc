#include "core/addressing/local_domain.h"

#include "gtest/gtest.h"

namespace postgate::addressing {
namespace {

LocalDomain Lab() {
  absl::StatusOr<config::MainCf> cf = config::MainCf::Parse(
      "myhostname = mail169.com\nmydomain = mail169.com\n"
      "mydestination = mail169.com, localhost.localdomain, localhost\n"
      "recipient_delimiter = +\npostgate_local_users = foo bar\n",
      "main.cf", "host");
  config::AliasTable aliases;
  EXPECT_TRUE(aliases.Parse("postmaster: root\nroot: bar\n", "aliases").ok());
  return LocalDomain(*cf, std::move(aliases));
}

TEST(LocalDomainTest, LocalUsersAliasesAndExtensions) {
  LocalDomain lab = Lab();
  EXPECT_TRUE(lab.IsKnownRecipient(lab.Classify("bar@mail169.com")));
  EXPECT_TRUE(lab.IsKnownRecipient(lab.Classify("BAR@Mail169.COM")));
  EXPECT_TRUE(lab.IsKnownRecipient(lab.Classify("bar@mail169.com.")));
  EXPECT_TRUE(lab.IsKnownRecipient(lab.Classify("postmaster@localhost")));
  EXPECT_TRUE(lab.IsKnownRecipient(lab.Classify("bar")));
  ClassifiedAddress tagged = lab.Classify("bar+tag@mail169.com");
  EXPECT_TRUE(lab.IsKnownRecipient(tagged));
  EXPECT_EQ(tagged.base, "bar");
  EXPECT_EQ(tagged.extension, "tag");
  EXPECT_FALSE(lab.IsKnownRecipient(lab.Classify("nobody@mail169.com")));
  EXPECT_TRUE(lab.IsOriginOrLocal("Mail169.com."));
  EXPECT_TRUE(lab.IsOriginOrLocal("localhost"));
  EXPECT_FALSE(lab.IsOriginOrLocal("example.org"));
  EXPECT_FALSE(lab.IsKnownRecipient(lab.Classify("+bar@mail169.com")));
}

TEST(LocalDomainTest, RemoteAndRoutingTricksAreNotLocalUsers) {
  LocalDomain lab = Lab();
  EXPECT_FALSE(lab.Classify("bar@example.org").local);
  EXPECT_FALSE(lab.Classify("bar@[127.0.0.1]").local);
  ClassifiedAddress percent = lab.Classify("bar%example.org@mail169.com");
  EXPECT_TRUE(percent.local);
  EXPECT_TRUE(percent.routing_syntax);
  EXPECT_FALSE(lab.IsKnownRecipient(percent));
  EXPECT_FALSE(lab.IsKnownRecipient(lab.Classify("example.org!bar@mail169.com")));
  EXPECT_FALSE(lab.IsKnownRecipient(lab.Classify("\"bar@example.org\"@mail169.com")));
  EXPECT_FALSE(lab.IsKnownRecipient(lab.Classify("bar@example.org@mail169.com")));
  EXPECT_TRUE(lab.Classify("bar@example.org@mail169.com").routing_syntax);
}

TEST(LocalDomainTest, QuotesAndTheRootDotChangeNothing) {
  LocalDomain lab = Lab();
  EXPECT_TRUE(lab.IsKnownRecipient(lab.Classify("\"bar\"@mail169.com")));  // As Postfix: 250.
  EXPECT_TRUE(lab.IsKnownRecipient(lab.Classify("bar@mail169.com.")));
  EXPECT_FALSE(lab.Classify("user@example.org.").local);
}

TEST(LocalDomainTest, QualifyAppendsMyorigin) {
  LocalDomain lab = Lab();
  EXPECT_EQ(lab.Qualify("bar"), "bar@mail169.com");
  EXPECT_EQ(lab.Qualify("bar@x.org"), "bar@x.org");
  EXPECT_EQ(lab.Qualify(""), "");
}

}  // namespace
}  // namespace postgate::addressing
