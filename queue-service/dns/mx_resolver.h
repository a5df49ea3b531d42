// DNS for remote delivery, as Postfix's smtp(8) uses it: the MX records of a domain (ordered by
// preference), falling back to the domain's own address when it has none, and the IPv4 addresses
// of each mail exchanger. c-ares, one lookup at a time with a deadline, on the caller's thread
// (a delivery worker). Servers from /etc/resolv.conf, or postgate_dns_servers ("127.0.0.1:5353").
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace postgate::queue {

struct MailExchanger {
  int preference = 0;
  std::string host;
};

class MxResolver {
 public:
  // `servers`: "" for the system's resolvers, else c-ares' "host:port,host:port" list.
  explicit MxResolver(std::string servers = "", absl::Duration timeout = absl::Seconds(10))
      : servers_(std::move(servers)), timeout_(timeout) {}

  // NotFound: the domain does not exist (a permanent failure). Unavailable: DNS trouble (try
  // later). A domain without MX records yields itself at preference 0 (RFC 5321 §5.1).
  absl::StatusOr<std::vector<MailExchanger>> MailExchangers(const std::string& domain) const;
  // IPv4 addresses of `host`, same error meanings.
  absl::StatusOr<std::vector<std::string>> Addresses(const std::string& host) const;

 private:
  std::string servers_;
  absl::Duration timeout_;
};

}  // namespace postgate::queue
