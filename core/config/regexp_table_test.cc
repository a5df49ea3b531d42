#include "core/config/regexp_table.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace postgate::config {
namespace {

using ::testing::HasSubstr;

std::shared_ptr<const RegexpTable> Table(absl::string_view text) {
  absl::StatusOr<std::shared_ptr<const RegexpTable>> table = RegexpTable::Parse(text, "checks");
  EXPECT_TRUE(table.ok()) << table.status();
  return table.ok() ? *table : nullptr;
}

TEST(RegexpTableTest, FirstMatchWinsCaseInsensitivelyWithGroups) {
  auto table = Table(
      "# header_checks\n"
      "/^Subject: replace-me(.*)/ REPLACE Subject: replaced$1\n"
      "/^subject:.*SPAM/ REJECT no ${0}$$\n"
      "/^X-Case: Exact/i WARN case-sensitive\n"
      "|^To: .*@example\\.com| DISCARD\n");
  EXPECT_EQ(table->Match("Subject: replace-me now"), "REPLACE Subject: replaced now");
  EXPECT_EQ(table->Match("SUBJECT: buy spam"), "REJECT no SUBJECT: buy spam$");
  EXPECT_EQ(table->Match("X-Case: Exact"), "WARN case-sensitive");
  EXPECT_EQ(table->Match("x-case: exact"), std::nullopt);
  EXPECT_EQ(table->Match("To: a@example.com"), "DISCARD");
  EXPECT_EQ(table->Match("To: a@exampleXcom"), std::nullopt);
}

TEST(RegexpTableTest, NegationIfEndifAndContinuationLines) {
  auto table = Table(
      "if /^From:/\n"
      "!/@mail169\\.com/ REJECT\n"
      "  not from us\n"
      "endif\n"
      "/^X-Spam: (yes)/m HOLD $1\n");
  EXPECT_EQ(table->Match("From: a@other.example"), "REJECT not from us");
  EXPECT_EQ(table->Match("From: a@mail169.com"), std::nullopt);
  EXPECT_EQ(table->Match("To: a@other.example"), std::nullopt);  // The if block is skipped.
  EXPECT_EQ(table->Match("X-Spam: yes"), "HOLD yes");
  EXPECT_EQ(table->Match("Subject: x\nX-Spam: yes"), "HOLD yes");  // "m": ^ after a newline.
}

TEST(RegexpTableTest, ErrorsNameTheFileAndLine) {
  const std::pair<const char*, const char*> cases[] = {
      {"/a/ OK\n/(unclosed/ OK\n", "checks:2: bad pattern at offset"},
      {"/a/q OK\n", "checks:1: unknown flag \"q\""},
      {"/a/\n", "checks:1: no result after the pattern"},
      {"\n/abc OK\n", "checks:2: missing closing /"},
      {"endif\n", "checks:1: endif without if"},
      {"if /a/\n/b/ OK\n", "checks:1: if without endif"},
      {"word OK\n", "checks:1: expected /pattern/"},
  };
  for (const auto& [text, expected] : cases) {
    absl::StatusOr<std::shared_ptr<const RegexpTable>> table = RegexpTable::Parse(text, "checks");
    ASSERT_FALSE(table.ok()) << text;
    EXPECT_THAT(std::string(table.status().message()), HasSubstr(expected)) << text;
  }
  EXPECT_THAT(std::string(RegexpTable::Load("hash:/x").status().message()), HasSubstr("use regexp: or pcre:"));
  EXPECT_THAT(std::string(RegexpTable::Load("pcre:/nonexistent/checks").status().message()),
              HasSubstr("/nonexistent/checks: cannot open"));
}

}  // namespace
}  // namespace postgate::config
