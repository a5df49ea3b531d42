#include "smtp-gateway/settings/gateway_settings.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace postgate::gateway {
namespace {

constexpr char kReference[] =
    "myhostname = mail169.com\nmydomain = mail169.com\n"
    "mydestination = mail169.com, localhost\nmynetworks = 127.0.0.0/8, 192.168.0.0/24\n"
    "postgate_local_users = foo bar\n";

config::MainCf Parse(const std::string& text) {
  absl::StatusOr<config::MainCf> cf = config::MainCf::Parse(text, "main.cf", "host");
  EXPECT_TRUE(cf.ok()) << cf.status();
  return *std::move(cf);
}

std::string Rcpt(const SessionEnvironment& environment, const std::string& client, const std::string& to) {
  protocol::Verdict verdict = environment.policy->ForClient(client)->CheckRecipient(to);
  return verdict.accepted ? "accept" : verdict.reply.Format();
}

TEST(GatewaySettingsTest, BuildsThePolicyAndLimitsFromMainCf) {
  auto settings = GatewaySettings::Build(Parse(std::string(kReference) + "message_size_limit = 1000\n"), {});
  ASSERT_TRUE(settings.ok()) << settings.status();
  const SessionEnvironment& environment = (*settings)->environment();
  EXPECT_EQ(environment.limits.message_size_limit, 1000u);
  EXPECT_EQ(environment.limits.banner, "mail169.com ESMTP Postgate");
  EXPECT_EQ(Rcpt(environment, "192.168.0.10", "x@example.org"), "accept");
  EXPECT_EQ(Rcpt(environment, "10.9.9.9", "x@example.org"), "554 5.7.1 <x@example.org>: Relay access denied\r\n");
  EXPECT_EQ(Rcpt(environment, "10.9.9.9", "bar@mail169.com"), "accept");
  EXPECT_EQ(environment.tls, nullptr);
  EXPECT_EQ(environment.proxy_networks, nullptr);
}

TEST(GatewaySettingsTest, RefusesWhatWouldNotStart) {
  auto open_relay = GatewaySettings::Build(
      Parse(std::string(kReference) + "postgate_cluster_networks = 192.168.0.0/16\n"), {});
  ASSERT_FALSE(open_relay.ok());
  EXPECT_NE(open_relay.status().message().find("main.cf:4: mynetworks: 192.168.0.0/24"), std::string::npos)
      << open_relay.status();
  auto bad_tls = GatewaySettings::Build(Parse(std::string(kReference) + "smtpd_tls_security_level = must\n"), {});
  ASSERT_FALSE(bad_tls.ok());
  EXPECT_NE(bad_tls.status().message().find("smtpd_tls_security_level"), std::string::npos);
  auto missing_cert = GatewaySettings::Build(
      Parse(std::string(kReference) + "smtpd_tls_security_level = may\nsmtpd_tls_cert_file = /nonexistent.pem\n"), {});
  EXPECT_FALSE(missing_cert.ok());
}

TEST(GatewaySettingsTest, BareNewlineParametersAsPostfix) {
  auto defaults = GatewaySettings::Build(Parse(kReference), {});
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  const SessionEnvironment& environment = (*defaults)->environment();
  EXPECT_EQ(environment.bare_newline, BareNewline::kNormalize);
  EXPECT_EQ(environment.limits.bare_newline_reject_code, 550);
  // _exclusions defaults to $mynetworks.
  EXPECT_TRUE(environment.bare_newline_exclusions->Contains(*policy::IpAddress::Parse("192.168.0.7")));
  EXPECT_FALSE(environment.bare_newline_exclusions->Contains(*policy::IpAddress::Parse("10.1.2.3")));
  for (const auto& [value, expected] : {std::pair{"yes", BareNewline::kNormalize}, {"Note", BareNewline::kNote},
                                        {"REJECT", BareNewline::kReject}, {"no", BareNewline::kAllow}}) {
    auto settings = GatewaySettings::Build(
        Parse(absl::StrCat(kReference, "smtpd_forbid_bare_newline = ", value, "\n")), {});
    ASSERT_TRUE(settings.ok()) << value;
    EXPECT_EQ((*settings)->environment().bare_newline, expected) << value;
  }
  auto bad_value = GatewaySettings::Build(Parse(std::string(kReference) + "smtpd_forbid_bare_newline = strict\n"), {});
  ASSERT_FALSE(bad_value.ok());
  EXPECT_NE(bad_value.status().message().find("main.cf:6: smtpd_forbid_bare_newline: \"strict\""), std::string::npos)
      << bad_value.status();
  auto bad_code = GatewaySettings::Build(
      Parse(std::string(kReference) + "smtpd_forbid_bare_newline_reject_code = 450\n"), {});
  ASSERT_FALSE(bad_code.ok());
  EXPECT_NE(bad_code.status().message().find("smtpd_forbid_bare_newline_reject_code: 450"), std::string::npos)
      << bad_code.status();
  auto bad_network = GatewaySettings::Build(
      Parse(std::string(kReference) + "smtpd_forbid_bare_newline_exclusions = 10.0.0.0/99\n"), {});
  ASSERT_FALSE(bad_network.ok());
  EXPECT_NE(bad_network.status().message().find("smtpd_forbid_bare_newline_exclusions"), std::string::npos);
}

TEST(GatewaySettingsTest, OpenSessionsKeepTheSettingsTheyStartedWith) {
  SettingsHolder holder(*GatewaySettings::Build(Parse(kReference), {}));
  std::shared_ptr<const SessionEnvironment> before = holder.Current();
  holder.Replace(*GatewaySettings::Build(Parse(std::string(kReference) + "mynetworks = 127.0.0.0/8\n"), {}));
  std::shared_ptr<const SessionEnvironment> after = holder.Current();
  // The old generation is still whole (its policy lives as long as `before`).
  EXPECT_EQ(Rcpt(*before, "192.168.0.10", "x@example.org"), "accept");
  EXPECT_EQ(Rcpt(*after, "192.168.0.10", "x@example.org"), "554 5.7.1 <x@example.org>: Relay access denied\r\n");
}

TEST(GatewaySettingsTest, NamesParametersOnlyARestartApplies) {
  config::MainCf running = Parse(kReference);
  config::MainCf next = Parse(std::string(kReference) + "postgate_smtpd_port = 2526\nmynetworks = 127.0.0.0/8\n");
  EXPECT_EQ(RestartOnlyChanges(running, next), std::vector<std::string>{"postgate_smtpd_port"});
  EXPECT_TRUE(RestartOnlyChanges(running, running).empty());
}

TEST(ApplyOverridesTest, CommandLineWinsAndErrorsNameTheFlag) {
  config::MainCf cf = Parse(kReference);
  ASSERT_TRUE(config::ApplyOverrides(cf, {"postgate_smtpd_port=2600", "mynetworks = 10.0.0.0/8"}).ok());
  EXPECT_EQ(cf.GetInteger("postgate_smtpd_port"), 2600);
  EXPECT_EQ(cf.Get("mynetworks"), "10.0.0.0/8");
  EXPECT_EQ(config::ApplyOverrides(cf, {"postgate_smtpd_port=many"}).message(),
            "-o: postgate_smtpd_port: bad numerical value \"many\"");
  EXPECT_EQ(config::ApplyOverrides(cf, {"nonsense"}).message(), "-o nonsense: expected name=value");
  EXPECT_EQ(config::ApplyOverrides(cf, {"no_such=1"}).message(), "-o: no_such: unknown parameter");
}

}  // namespace
}  // namespace postgate::gateway
