#include "smtp-gateway/settings/smtp_services.h"

#include <utility>

#include "gtest/gtest.h"

namespace postgate::gateway {
namespace {

config::MainCf Parse(const std::string& text) {
  absl::StatusOr<config::MainCf> cf = config::MainCf::Parse(
      "myhostname = mail169.com\ninet_interfaces = 127.0.0.1, ::1\ninet_protocols = all\n"
      "postgate_smtpd_port = 2525\n" + text, "main.cf", "host");
  EXPECT_TRUE(cf.ok()) << cf.status();
  return *std::move(cf);
}

std::vector<std::string> Endpoints(const SmtpServiceConfig& config) {
  std::vector<std::string> text;
  for (const asio::ip::tcp::endpoint& endpoint : config.endpoints) {
    text.push_back(endpoint.address().to_string() + " " + std::to_string(endpoint.port()));
  }
  return text;
}

TEST(SmtpServicesTest, WithoutMasterCfThereIsTheOneSmtpService) {
  absl::StatusOr<std::vector<SmtpServiceConfig>> services = BuildSmtpServices(Parse(""), std::nullopt, "master.cf", "");
  ASSERT_TRUE(services.ok()) << services.status();
  ASSERT_EQ(services->size(), 1u);
  EXPECT_EQ((*services)[0].service.name, "smtp");
  EXPECT_EQ(Endpoints((*services)[0]), (std::vector<std::string>{"127.0.0.1 2525", "::1 2525"}));
  services = BuildSmtpServices(Parse(""), std::nullopt, "master.cf", "127.0.0.1:0");
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_EQ(Endpoints((*services)[0]), (std::vector<std::string>{"127.0.0.1 0"}));
}

TEST(SmtpServicesTest, EachServiceHasItsPortsAndItsOverrides) {
  const std::string master =
      "smtp inet n - n - - smtpd\n"
      "submission inet n - n - - smtpd -o smtpd_tls_auth_only=yes\n"
      "[::1]:2465 inet n - n - - smtpd\n"
      "  -o smtpd_tls_wrappermode=yes\n"
      "  -o syslog_name=postgate/smtps\n";
  absl::StatusOr<std::vector<SmtpServiceConfig>> services = BuildSmtpServices(Parse(""), master, "/etc/postgate/master.cf", "");
  ASSERT_TRUE(services.ok()) << services.status();
  ASSERT_EQ(services->size(), 3u);
  EXPECT_EQ(Endpoints((*services)[0]), (std::vector<std::string>{"127.0.0.1 2525", "::1 2525"}));
  EXPECT_FALSE((*services)[0].cf.GetBool("smtpd_tls_auth_only"));
  EXPECT_EQ(Endpoints((*services)[1]), (std::vector<std::string>{"127.0.0.1 587", "::1 587"}));
  EXPECT_TRUE((*services)[1].cf.GetBool("smtpd_tls_auth_only"));
  EXPECT_EQ(Endpoints((*services)[2]), (std::vector<std::string>{"::1 2465"}));
  EXPECT_TRUE((*services)[2].cf.GetBool("smtpd_tls_wrappermode"));
  EXPECT_EQ((*services)[2].cf.Get("syslog_name"), "postgate/smtps");
  EXPECT_EQ((*services)[0].cf.Get("syslog_name"), "postgate");
  // An override's later error names master.cf and the service's line.
  EXPECT_EQ((*services)[2].cf.Error("smtpd_tls_wrappermode", "needs a certificate").message(),
            "/etc/postgate/master.cf:3: smtpd_tls_wrappermode: needs a certificate");
}

TEST(SmtpServicesTest, ErrorsNameTheFileLineOrFlag) {
  auto error = [](const std::string& master, const std::string& listen = "") {
    return std::string(BuildSmtpServices(Parse(""), master, "master.cf", listen).status().message());
  };
  EXPECT_EQ(error("smtp inet n - n - - smtpd -o postgate_queue_address=x:1\n"),
            "master.cf:1: -o postgate_queue_address: applies to the whole gateway; set it in main.cf");
  EXPECT_EQ(error("smtp inet n - n - - smtpd -o no_such_parameter=1\n"),
            "master.cf:1: no_such_parameter: unknown parameter");
  EXPECT_EQ(error("smtp inet n - n - - smtpd -o smtpd_tls_auth_only=maybe\n"),
            "master.cf:1: smtpd_tls_auth_only: bad boolean value \"maybe\" (use yes or no)");
  EXPECT_EQ(error("pop3 inet n - n - - smtpd\n"),
            "master.cf:1: service pop3: unknown port \"pop3\" (use a number, smtp, submission, submissions or smtps)");
  EXPECT_EQ(error("mail.example.com:25 inet n - n - - smtpd\n"),
            "master.cf:1: service mail.example.com:25: \"mail.example.com\" is not an IP address");
  EXPECT_EQ(error("2587 inet n - n - - smtpd\n", "127.0.0.1:25"), "--listen: master.cf has no smtp service to move");
  EXPECT_EQ(error("pickup unix n - n 60 1 pickup\n"), "master.cf: no inet smtpd service");
}

}  // namespace
}  // namespace postgate::gateway
