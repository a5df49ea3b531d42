#include "core/config/main_cf.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace postgate::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::StatusOr<MainCf> ParseText(absl::string_view text) {
  return MainCf::Parse(text, "etc/main.cf", "mx1.example.net");
}

TEST(MainCfTest, DefaultsFollowPostfix) {
  absl::StatusOr<MainCf> cf = ParseText("");
  ASSERT_TRUE(cf.ok()) << cf.status();
  EXPECT_EQ(cf->Get("myhostname"), "mx1.example.net");
  EXPECT_EQ(cf->Get("mydomain"), "example.net");
  EXPECT_EQ(cf->Get("myorigin"), "mx1.example.net");
  EXPECT_THAT(cf->GetList("mydestination"),
              ElementsAre("mx1.example.net", "localhost.example.net", "localhost"));
  EXPECT_EQ(cf->Get("smtpd_banner"), "mx1.example.net ESMTP Postgate");
  EXPECT_EQ(cf->GetInteger("message_size_limit"), 10240000);
  EXPECT_EQ(cf->GetTime("smtpd_timeout"), absl::Seconds(300));
  EXPECT_EQ(cf->Get("config_directory"), "etc");
}

TEST(MainCfTest, CommentsContinuationsAndExpansion) {
  absl::StatusOr<MainCf> cf = ParseText(
      "# the lab\n"
      "myhostname = mail169.com\n"
      "mydomain = $myhostname\n"
      "\n"
      "mydestination = $mydomain,\n"
      "    localhost.localdomain,\n"
      "\tlocalhost\n"
      "smtpd_banner = ${myhostname} ESMTP $(mail_name) $$5\n");
  ASSERT_TRUE(cf.ok()) << cf.status();
  EXPECT_THAT(cf->GetList("mydestination"),
              ElementsAre("mail169.com", "localhost.localdomain", "localhost"));
  EXPECT_EQ(cf->Get("smtpd_banner"), "mail169.com ESMTP Postgate $5");
}

TEST(MainCfTest, LaterAssignmentWinsAndExpansionIsLazy) {
  absl::StatusOr<MainCf> cf = ParseText("myorigin = $mydomain\nmydomain = a.test\nmydomain = b.test\n");
  ASSERT_TRUE(cf.ok()) << cf.status();
  EXPECT_EQ(cf->Get("myorigin"), "b.test");
}

TEST(MainCfTest, UnknownParameterNamesFileAndLine) {
  absl::StatusOr<MainCf> cf = ParseText("myhostname = a\n\nmydestinaton = a\n");
  EXPECT_EQ(cf.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cf.status().message(), "etc/main.cf:3: mydestinaton: unknown parameter");
}

TEST(MainCfTest, BadValuesNameFileLineAndParameter) {
  EXPECT_EQ(ParseText("x\n").status().message(),
            "etc/main.cf:1: missing '=' after parameter name: \"x\"");
  EXPECT_EQ(ParseText("\n message_size_limit = 1\n").status().message(),
            "etc/main.cf:2: continuation line without a parameter");
  EXPECT_EQ(ParseText("message_size_limit = 10M\n").status().message(),
            "etc/main.cf:1: message_size_limit: bad numerical value \"10M\"");
  EXPECT_EQ(ParseText("smtpd_timeout = 5y\n").status().message(),
            "etc/main.cf:1: smtpd_timeout: unknown time unit 'y' (use s, m, h, d or w)");
  EXPECT_THAT(ParseText("myorigin = $nosuch\n").status().message(),
              HasSubstr("etc/main.cf:1: myorigin: undefined parameter $nosuch"));
  EXPECT_THAT(ParseText("myorigin = $mydomain\nmydomain = $myorigin\n").status().message(),
              HasSubstr("parameter expansion loop"));
}

TEST(MainCfTest, OverrideWinsAndIsValidated) {
  absl::StatusOr<MainCf> cf = ParseText("message_size_limit = 100\n");
  ASSERT_TRUE(cf.ok());
  ASSERT_TRUE(cf->Override("message_size_limit", "200", "--flag").ok());
  EXPECT_EQ(cf->GetInteger("message_size_limit"), 200);
  EXPECT_EQ(cf->Override("message_size_limit", "lots", "--flag").message(),
            "--flag: message_size_limit: bad numerical value \"lots\"");
  EXPECT_EQ(cf->Override("nosuch", "1", "--flag").message(), "--flag: nosuch: unknown parameter");
}

TEST(MainCfTest, ParseTimeUnits) {
  EXPECT_EQ(*ParseTime("90", 's'), absl::Seconds(90));
  EXPECT_EQ(*ParseTime("5d", 's'), absl::Hours(120));
  EXPECT_EQ(*ParseTime("2", 'd'), absl::Hours(48));
  EXPECT_FALSE(ParseTime("-1s", 's').ok());
  EXPECT_FALSE(ParseTime("", 's').ok());
}

TEST(MainCfTest, SplitListOnCommasAndWhitespace) {
  EXPECT_THAT(SplitList(" a, b\tc ,,d "), ElementsAre("a", "b", "c", "d"));
}

}  // namespace
}  // namespace postgate::config
