#include "core/config/aliases.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace postgate::config {
namespace {

using ::testing::ElementsAre;

TEST(AliasesTest, ParsesNamesTargetsAndContinuations) {
  AliasTable table;
  ASSERT_TRUE(table
                  .Parse("# comment\nPostmaster: root\nroot: bar\nteam: foo,\n  bar@mail169.com\n",
                         "aliases")
                  .ok());
  ASSERT_NE(table.Find("postmaster"), nullptr);
  EXPECT_THAT(*table.Find("POSTMASTER"), ElementsAre("root"));
  EXPECT_THAT(*table.Find("team"), ElementsAre("foo", "bar@mail169.com"));
  EXPECT_FALSE(table.Contains("nobody"));
}

TEST(AliasesTest, FirstDefinitionWins) {
  AliasTable table;
  ASSERT_TRUE(table.Parse("a: x\n", "one").ok());
  ASSERT_TRUE(table.Parse("a: y\n", "two").ok());
  EXPECT_THAT(*table.Find("a"), ElementsAre("x"));
}

TEST(AliasesTest, RefusesWhatItCannotDeliverWithFileAndLine) {
  AliasTable table;
  EXPECT_EQ(table.Parse("\nlog: |/usr/bin/logger\n", "etc/aliases").message(),
            "etc/aliases:2: alias log: \"|/usr/bin/logger\": only address targets are supported "
            "(no commands, files or :include:)");
  EXPECT_EQ(table.Parse("broken line\n", "etc/aliases").message(),
            "etc/aliases:1: expected \"name: address, ...\", got \"broken line\"");
}

}  // namespace
}  // namespace postgate::config
