#include "smtp-gateway/milter/milter_config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace postgate::gateway::milter {
namespace {

using ::testing::HasSubstr;

TEST(MilterConfigTest, ParsesEndpoints) {
  absl::StatusOr<MilterEndpoint> inet = ParseMilterEndpoint("inet:127.0.0.1:11332");
  ASSERT_TRUE(inet.ok()) << inet.status();
  EXPECT_EQ(inet->kind, MilterEndpoint::Kind::kInet);
  EXPECT_EQ(inet->host, "127.0.0.1");
  EXPECT_EQ(inet->port, 11332);
  absl::StatusOr<MilterEndpoint> v6 = ParseMilterEndpoint("inet:[::1]:8891");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 8891);
  absl::StatusOr<MilterEndpoint> name = ParseMilterEndpoint("inet:rspamd.mail.svc:11332");
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(name->host, "rspamd.mail.svc");
  absl::StatusOr<MilterEndpoint> unix_socket = ParseMilterEndpoint("unix:/run/opendkim/opendkim.sock");
  ASSERT_TRUE(unix_socket.ok());
  EXPECT_EQ(unix_socket->kind, MilterEndpoint::Kind::kUnix);
  EXPECT_EQ(unix_socket->path, "/run/opendkim/opendkim.sock");
  EXPECT_FALSE(ParseMilterEndpoint("127.0.0.1:11332").ok());
  EXPECT_FALSE(ParseMilterEndpoint("inet:127.0.0.1").ok());
  EXPECT_FALSE(ParseMilterEndpoint("inet:127.0.0.1:0").ok());
  EXPECT_FALSE(ParseMilterEndpoint("inet:127.0.0.1:70000").ok());
  EXPECT_FALSE(ParseMilterEndpoint("unix:").ok());
}

TEST(MilterConfigTest, ListWithPerMilterSettings) {
  MilterDefaults defaults;
  defaults.command_timeout = std::chrono::seconds(10);
  absl::StatusOr<std::vector<MilterConfig>> milters = ParseMilterList(
      "smtpd_milters",
      "inet:127.0.0.1:11332, { unix:/run/opendkim.sock, default_action = accept, command_timeout=5s }  inet:[::1]:9",
      defaults);
  ASSERT_TRUE(milters.ok()) << milters.status();
  ASSERT_EQ(milters->size(), 3u);
  EXPECT_EQ((*milters)[0].name, "inet:127.0.0.1:11332");
  EXPECT_EQ((*milters)[0].default_action, DefaultAction::kTempfail);
  EXPECT_EQ((*milters)[0].command_timeout, std::chrono::seconds(10));
  EXPECT_EQ((*milters)[1].name, "unix:/run/opendkim.sock");
  EXPECT_EQ((*milters)[1].default_action, DefaultAction::kAccept);
  EXPECT_EQ((*milters)[1].command_timeout, std::chrono::seconds(5));
  EXPECT_EQ((*milters)[2].endpoint.port, 9);
}

TEST(MilterConfigTest, ErrorsNameTheParameterAndTheText) {
  MilterDefaults defaults;
  absl::StatusOr<std::vector<MilterConfig>> bad = ParseMilterList("smtpd_milters", "inet:x", defaults);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("smtpd_milters"));
  EXPECT_THAT(bad.status().message(), HasSubstr("inet:x"));
  bad = ParseMilterList("smtpd_milters", "{ inet:127.0.0.1:1, colour = red }", defaults);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("colour"));
  bad = ParseMilterList("smtpd_milters", "{ inet:127.0.0.1:1, default_action = maybe }", defaults);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("maybe"));
  EXPECT_FALSE(ParseMilterList("smtpd_milters", "{ inet:127.0.0.1:1", defaults).ok());
  EXPECT_FALSE(ParseMilterProtocol("5").ok());  // Postfix speaks 2, 3, 4 and 6.
  EXPECT_TRUE(ParseMilterProtocol("6").ok());
  EXPECT_FALSE(ParseDefaultAction("milter_default_action", "bounce").ok());
  EXPECT_FALSE(ParseMilterTime("milter_command_timeout", "0").ok());
  absl::StatusOr<std::chrono::milliseconds> two_minutes = ParseMilterTime("milter_content_timeout", "2m");
  ASSERT_TRUE(two_minutes.ok());
  EXPECT_EQ(*two_minutes, std::chrono::minutes(2));
}

TEST(MilterConfigTest, EmptyListIsNoMilter) {
  absl::StatusOr<std::vector<MilterConfig>> none = ParseMilterList("smtpd_milters", "  ", MilterDefaults{});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

}  // namespace
}  // namespace postgate::gateway::milter
