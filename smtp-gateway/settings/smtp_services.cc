#include "smtp-gateway/settings/smtp_services.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "smtp-gateway/settings/gateway_settings.h"

namespace postgate::gateway {
namespace {

using asio::ip::tcp;

absl::StatusOr<uint16_t> ServicePort(const config::MainCf& cf, const std::string& port) {
  if (port == "smtp") return static_cast<uint16_t>(cf.GetInteger("postgate_smtpd_port"));
  if (port == "submission") return 587;
  if (port == "submissions" || port == "smtps") return 465;
  int number = 0;
  if (!absl::SimpleAtoi(port, &number) || number < 1 || number > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown port \"", port, "\" (use a number, smtp, submission, submissions or smtps)"));
  }
  return static_cast<uint16_t>(number);
}

// inet_interfaces × inet_protocols at `port`.
absl::StatusOr<std::vector<tcp::endpoint>> InterfaceEndpoints(const config::MainCf& cf, uint16_t port) {
  bool v4 = false, v6 = false;
  for (const std::string& protocol : cf.GetList("inet_protocols")) {
    if (protocol == "all") v4 = v6 = true;
    else if (protocol == "ipv4") v4 = true;
    else if (protocol == "ipv6") v6 = true;
    else return cf.Error("inet_protocols", absl::StrCat("unknown protocol \"", protocol, "\" (use ipv4, ipv6 or all)"));
  }
  std::vector<tcp::endpoint> endpoints;
  for (const std::string& interface : cf.GetList("inet_interfaces")) {
    if (interface == "all") {
      if (v4) endpoints.emplace_back(asio::ip::address_v4::any(), port);
      if (v6) endpoints.emplace_back(asio::ip::address_v6::any(), port);
    } else if (interface == "loopback-only" || interface == "localhost") {
      if (v4) endpoints.emplace_back(asio::ip::address_v4::loopback(), port);
      if (v6) endpoints.emplace_back(asio::ip::address_v6::loopback(), port);
    } else {
      std::error_code error;
      asio::ip::address address = asio::ip::make_address(interface, error);
      if (error) return cf.Error("inet_interfaces", absl::StrCat("\"", interface, "\" is not an IP address"));
      if ((address.is_v4() && v4) || (address.is_v6() && v6)) endpoints.emplace_back(address, port);
    }
  }
  if (endpoints.empty()) return cf.Error("inet_interfaces", "no address to listen on");
  return endpoints;
}

// "host:port", "[v6]:port" → endpoint (--listen).
absl::StatusOr<tcp::endpoint> ParseEndpoint(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) return absl::InvalidArgumentError("expected host:port");
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = 0;
  if (!absl::SimpleAtoi(text.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad port in \"", text, "\""));
  }
  std::error_code error;
  asio::ip::address address = asio::ip::make_address(host, error);
  if (error) return absl::InvalidArgumentError(absl::StrCat("\"", host, "\" is not an IP address"));
  return tcp::endpoint(address, static_cast<uint16_t>(port));
}

}  // namespace

std::string MasterCfPath(const std::string& main_cf_path) {
  return (std::filesystem::path(main_cf_path).parent_path() / "master.cf").string();
}

absl::StatusOr<std::vector<SmtpServiceConfig>> BuildSmtpServices(const config::MainCf& cf,
                                                                 const std::optional<std::string>& master_cf_text,
                                                                 const std::string& master_cf_path,
                                                                 const std::string& listen_flag) {
  std::vector<config::SmtpService> services;
  if (master_cf_text) {
    absl::StatusOr<std::vector<config::SmtpService>> parsed = config::ParseMasterCf(*master_cf_text, master_cf_path);
    if (!parsed.ok()) return parsed.status();
    if (parsed->empty()) return absl::InvalidArgumentError(absl::StrCat(master_cf_path, ": no inet smtpd service"));
    services = *std::move(parsed);
  } else {
    services.push_back({.name = "smtp", .host = "", .port = "smtp", .overrides = {}, .line = 0});
  }
  bool listen_used = listen_flag.empty();
  std::vector<SmtpServiceConfig> configs;
  for (config::SmtpService& service : services) {
    const std::string where = absl::StrCat(master_cf_path, ":", service.line);
    SmtpServiceConfig config{.service = service, .cf = cf, .endpoints = {}};
    for (const auto& [name, value] : service.overrides) {
      if (IsProcessWideParameter(name)) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": -o ", name, ": applies to the whole gateway; set it in main.cf"));
      }
      if (absl::Status set = config.cf.Override(name, value, where); !set.ok()) return set;
    }
    if (service.name == "smtp" && !listen_flag.empty()) {
      absl::StatusOr<tcp::endpoint> endpoint = ParseEndpoint(listen_flag);
      if (!endpoint.ok()) return absl::InvalidArgumentError(absl::StrCat("--listen: ", endpoint.status().message()));
      config.endpoints.push_back(*endpoint);
      listen_used = true;
    } else {
      absl::StatusOr<uint16_t> port = ServicePort(config.cf, service.port);
      if (!port.ok()) return absl::InvalidArgumentError(absl::StrCat(where, ": service ", service.name, ": ", port.status().message()));
      if (service.host.empty()) {
        absl::StatusOr<std::vector<tcp::endpoint>> endpoints = InterfaceEndpoints(config.cf, *port);
        if (!endpoints.ok()) return endpoints.status();
        config.endpoints = *std::move(endpoints);
      } else {
        std::error_code error;
        asio::ip::address address = asio::ip::make_address(service.host, error);
        if (error) {
          return absl::InvalidArgumentError(
              absl::StrCat(where, ": service ", service.name, ": \"", service.host, "\" is not an IP address"));
        }
        config.endpoints.emplace_back(address, *port);
      }
    }
    configs.push_back(std::move(config));
  }
  if (!listen_used) {
    return absl::InvalidArgumentError(absl::StrCat("--listen: ", master_cf_path, " has no smtp service to move"));
  }
  return configs;
}

absl::StatusOr<std::vector<SmtpServiceConfig>> LoadSmtpServices(const config::MainCf& cf,
                                                                const std::string& master_cf_path,
                                                                const std::string& listen_flag) {
  std::optional<std::string> text;
  std::error_code error;
  if (std::filesystem::exists(master_cf_path, error)) {
    std::ifstream file(master_cf_path, std::ios::binary);
    std::stringstream contents;
    contents << file.rdbuf();
    if (!file) return absl::NotFoundError(absl::StrCat(master_cf_path, ": cannot read"));
    text = contents.str();
  }
  return BuildSmtpServices(cf, text, master_cf_path, listen_flag);
}

}  // namespace postgate::gateway
