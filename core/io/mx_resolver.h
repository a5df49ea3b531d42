// DNS for mail, as Postfix uses it: for remote delivery (smtp(8)) the MX records of a domain
// (ordered by preference), falling back to the domain's own address when it has none, and the
// IPv4 addresses of each mail exchanger; for smtpd's reject_unknown_sender_domain, whether a
// domain can receive mail at all (MX, else A, else AAAA records; a null MX says it cannot). Servers from /etc/resolv.conf, or postgate_dns_servers ("127.0.0.1:5353").
//
// One long-lived c-ares channel for every lookup, driven by Asio on a thread of its own: c-ares
// says which sockets it waits on (its socket-state callback) and Asio waits on them with epoll, so
// descriptor numbers have no ceiling (select() and fd_set stop at 1024) and lookups from any
// number of callers share the channel's sockets. Lookups are asynchronous (the callback runs on the
// resolver's thread; keep it short); the blocking forms wait for one with the deadline given at
// construction, for callers that are threads themselves.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace postgate::io {

struct MailExchanger {
  int preference = 0;
  std::string host;
};

class MxResolver {
 public:
  using ExchangersCallback = std::function<void(absl::StatusOr<std::vector<MailExchanger>>)>;
  using AddressesCallback = std::function<void(absl::StatusOr<std::vector<std::string>>)>;
  enum class MailDomain { kExists, kNullMx };
  using MailDomainCallback = std::function<void(absl::StatusOr<MailDomain>)>;

  // `servers`: "" for the system's resolvers, else c-ares' "host:port,host:port" list. A channel
  // that cannot be set up makes every lookup Unavailable (and is logged by the caller's deferral).
  explicit MxResolver(std::string servers = "", absl::Duration timeout = absl::Seconds(10));
  ~MxResolver();  // Lookups still under way end with Unavailable before it returns.
  MxResolver(const MxResolver&) = delete;
  MxResolver& operator=(const MxResolver&) = delete;

  // NotFound: the domain does not exist (a permanent failure). Unavailable: DNS trouble (try
  // later). A domain without MX records yields itself at preference 0 (RFC 5321 §5.1).
  void MailExchangers(const std::string& domain, ExchangersCallback done) const;
  // IPv4 addresses of `host` (an address literal is its own answer), same error meanings.
  void Addresses(const std::string& host, AddressesCallback done) const;

  // Whether `domain` has MX records (kNullMx: only RFC 7505's "MX 0 ."), else an A or AAAA
  // record. NotFound: no such domain, or none of these records. Unavailable: DNS trouble.
  void CheckMailDomain(const std::string& domain, MailDomainCallback done) const;

  // Blocking forms: the answer, or Unavailable once the timeout passed.
  absl::StatusOr<std::vector<MailExchanger>> MailExchangers(const std::string& domain) const;
  absl::StatusOr<std::vector<std::string>> Addresses(const std::string& host) const;

 private:
  class Channel;
  absl::Duration timeout_;
  std::unique_ptr<Channel> channel_;
};

}  // namespace postgate::io
