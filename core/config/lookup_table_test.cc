#include "core/config/lookup_table.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace postgate::config {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(LookupTableTest, KeysFoldCaseValuesAreTheRestOfTheLine) {
  absl::StatusOr<LookupTable> table = LookupTable::Parse(
      "# relay credentials\n"
      "[smtp.example.com]:587   user@example.com:pa ss:word\n"
      "\n"
      "Smtp.Example.NET\tother:secret\n"
      "  # not a continuation: a comment\n"
      "long.example.org first\n"
      "  second\n"
      "[smtp.example.com]:587 ignored:later\n",
      "sasl_passwd");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->size(), 3u);
  EXPECT_EQ(*table->Find("[SMTP.example.com]:587"), "user@example.com:pa ss:word");
  EXPECT_EQ(*table->Find("smtp.example.net"), "other:secret");
  EXPECT_EQ(*table->Find("long.example.org"), "first second");
  EXPECT_EQ(table->Find("example.com"), nullptr);
}

TEST(LookupTableTest, AddressesFallBackToTheirDomain) {
  absl::StatusOr<LookupTable> table =
      LookupTable::Parse("app@example.com one\n@example.com two\nplain three\n", "t");
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(*table->FindAddress("APP@example.com"), "one");
  EXPECT_EQ(*table->FindAddress("other@example.com"), "two");
  EXPECT_EQ(table->FindAddress("other@example.org"), nullptr);
  EXPECT_EQ(*table->FindAddress("plain"), "three");
}

TEST(LookupTableTest, ErrorsNameTheLineButNeverQuoteIt) {
  absl::StatusOr<LookupTable> table = LookupTable::Parse("good a:b\nsecret-password-alone\n", "sasl_passwd");
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(table.status().message(), "sasl_passwd:2: expected \"key value\"");
  EXPECT_THAT(std::string(table.status().message()), Not(HasSubstr("secret-password")));
  EXPECT_FALSE(LoadLookupTable("ldap:/x").ok());
  EXPECT_THAT(std::string(LoadLookupTable("texthash:/nonexistent/x").status().message()),
              HasSubstr("/nonexistent/x: cannot open"));
}

}  // namespace
}  // namespace postgate::config
