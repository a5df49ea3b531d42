#include "core/config/master_cf.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace postgate::config {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

// The shape of Debian's master.cf: internal services, the submission block with its -o lines.
constexpr absl::string_view kDebianShape =
    "# service type  private unpriv  chroot  wakeup  maxproc command + args\n"
    "smtp      inet  n       -       y       -       -       smtpd\n"
    "submission inet n       -       y       -       -       smtpd\n"
    "  -o syslog_name=postfix/submission\n"
    "  -o smtpd_tls_security_level=encrypt\n"
    "  -o { smtpd_relay_restrictions = permit_sasl_authenticated, reject }\n"
    "#  -o smtpd_client_restrictions=$mua_client_restrictions\n"
    "127.0.0.1:2465 inet n   -       y       -       -       smtpd -o smtpd_tls_wrappermode=yes\n"
    "[::1]:2465 inet n       -       y       -       -       smtpd\n"
    "pickup    unix  n       -       y       60      1       pickup\n"
    "cleanup   unix  n       -       y       -       0       cleanup\n"
    "qmgr      unix  n       -       n       300     1       qmgr\n";

TEST(MasterCfTest, ReadsInetSmtpdServicesWithTheirOverridesAndSkipsInternalOnes) {
  absl::StatusOr<std::vector<SmtpService>> services = ParseMasterCf(kDebianShape, "master.cf");
  ASSERT_TRUE(services.ok()) << services.status();
  ASSERT_EQ(services->size(), 4u);
  EXPECT_EQ((*services)[0].name, "smtp");
  EXPECT_EQ((*services)[0].port, "smtp");
  EXPECT_EQ((*services)[0].host, "");
  EXPECT_TRUE((*services)[0].overrides.empty());
  EXPECT_EQ((*services)[0].line, 2);
  EXPECT_EQ((*services)[1].line, 3);
  EXPECT_THAT((*services)[1].overrides,
              ElementsAre(Pair("syslog_name", "postfix/submission"), Pair("smtpd_tls_security_level", "encrypt"),
                          Pair("smtpd_relay_restrictions", "permit_sasl_authenticated, reject")));
  EXPECT_EQ((*services)[2].host, "127.0.0.1");
  EXPECT_EQ((*services)[2].port, "2465");
  EXPECT_THAT((*services)[2].overrides, ElementsAre(Pair("smtpd_tls_wrappermode", "yes")));
  EXPECT_EQ((*services)[3].host, "::1");
  EXPECT_EQ((*services)[3].port, "2465");
}

TEST(MasterCfTest, ErrorsNameTheFileAndLine) {
  auto error = [](absl::string_view text) { return std::string(ParseMasterCf(text, "master.cf").status().message()); };
  EXPECT_EQ(error("smtp inet n - n - - postscreen\n"),
            "master.cf:1: service smtp: command \"postscreen\" is not supported (Postgate's inet services run smtpd)");
  EXPECT_EQ(error("\nsmtp inet n - n -\n"),
            "master.cf:2: expected: service type private unpriv chroot wakeup maxproc command [arguments]");
  EXPECT_EQ(error("smtp inet n - n - - smtpd -v\n"),
            "master.cf:1: service smtp: unsupported argument \"-v\" (only -o name=value)");
  EXPECT_EQ(error("smtp inet n - n - - smtpd\n  -o smtpd_tls_wrappermode\n"),
            "master.cf:1: service smtp: -o smtpd_tls_wrappermode: expected name=value");
  EXPECT_EQ(error("smtp inet n - n - - smtpd -o { a = b\n"), "master.cf:1: \"{\" without \"}\"");
  EXPECT_EQ(error("smtp inet n - n - - smtpd\nsmtp inet n - n - - smtpd\n"),
            "master.cf:2: service smtp is already defined at line 1");
  EXPECT_EQ(error("::1:25 inet n - n - - smtpd\n"),
            "master.cf:1: service ::1:25: write an IPv6 address as [address]:port");
  EXPECT_EQ(error("smtp udp n - n - - smtpd\n"), "master.cf:1: service smtp: unknown type \"udp\"");
  EXPECT_EQ(error("  -o a=b\n"), "master.cf:1: continuation line without a parameter");
}

TEST(MasterCfTest, AnEmptyFileHasNoServices) {
  absl::StatusOr<std::vector<SmtpService>> services = ParseMasterCf("# nothing\n", "master.cf");
  ASSERT_TRUE(services.ok());
  EXPECT_TRUE(services->empty());
}

}  // namespace
}  // namespace postgate::config
