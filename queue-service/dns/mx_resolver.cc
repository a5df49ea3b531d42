#include "queue-service/dns/mx_resolver.h"

#include <arpa/inet.h>
#include <ares.h>
#include <netdb.h>
#include <sys/select.h>

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"

namespace postgate::queue {
namespace {

constexpr int kClassIn = 1;
constexpr int kTypeMx = 15;

// One c-ares channel for one lookup; Run() drives it until the callback fired or the deadline.
class Lookup {
 public:
  explicit Lookup(const std::string& servers) {
    static const int initialised = ares_library_init(ARES_LIB_INIT_ALL);
    (void)initialised;
    ok_ = ares_init(&channel_) == ARES_SUCCESS &&
          (servers.empty() || ares_set_servers_ports_csv(channel_, servers.c_str()) == ARES_SUCCESS);
  }
  ~Lookup() {
    if (channel_ != nullptr) ares_destroy(channel_);
  }
  bool ok() const { return ok_; }
  ares_channel channel() { return channel_; }

  // False when the deadline passed first.
  bool Run(const bool& done, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!done) {
      if (absl::Now() >= deadline) return false;
      fd_set read_fds, write_fds;
      FD_ZERO(&read_fds);
      FD_ZERO(&write_fds);
      int nfds = ares_fds(channel_, &read_fds, &write_fds);
      if (nfds == 0) break;
      timeval wait{0, 50000};
      select(nfds, &read_fds, &write_fds, nullptr, &wait);
      ares_process(channel_, &read_fds, &write_fds);
    }
    return done;
  }

 private:
  ares_channel channel_ = nullptr;
  bool ok_ = false;
};

absl::Status Failure(int status, const std::string& name, const char* type) {
  const std::string text = absl::StrCat("Name service error for name=", name, " type=", type, ": ",
                                        ares_strerror(status));
  if (status == ARES_ENOTFOUND) return absl::NotFoundError(absl::StrCat("Host or domain name not found. ", text));
  return absl::UnavailableError(absl::StrCat("Host or domain name not found. ", text));
}

}  // namespace

absl::StatusOr<std::vector<MailExchanger>> MxResolver::MailExchangers(const std::string& domain) const {
  Lookup lookup(servers_);
  if (!lookup.ok()) return absl::UnavailableError("cannot set up the DNS resolver");
  struct Result {
    bool done = false;
    int status = ARES_ETIMEOUT;
    std::vector<MailExchanger> hosts;
  } result;
  ares_query(lookup.channel(), domain.c_str(), kClassIn, kTypeMx,
             [](void* arg, int status, int, unsigned char* answer, int length) {
               auto* r = static_cast<Result*>(arg);
               r->done = true;
               r->status = status;
               if (status != ARES_SUCCESS) return;
               ares_mx_reply* replies = nullptr;
               r->status = ares_parse_mx_reply(answer, length, &replies);
               for (ares_mx_reply* mx = replies; mx != nullptr; mx = mx->next) {
                 r->hosts.push_back({mx->priority, mx->host});
               }
               if (replies != nullptr) ares_free_data(replies);
             },
             &result);
  if (!lookup.Run(result.done, timeout_)) return Failure(ARES_ETIMEOUT, domain, "MX");
  if (result.status == ARES_ENODATA || (result.status == ARES_SUCCESS && result.hosts.empty())) {
    return std::vector<MailExchanger>{{0, domain}};  // No MX: the domain's own address.
  }
  if (result.status != ARES_SUCCESS) return Failure(result.status, domain, "MX");
  std::stable_sort(result.hosts.begin(), result.hosts.end(),
                   [](const MailExchanger& a, const MailExchanger& b) { return a.preference < b.preference; });
  return result.hosts;
}

absl::StatusOr<std::vector<std::string>> MxResolver::Addresses(const std::string& host) const {
  in_addr literal{};
  if (inet_pton(AF_INET, host.c_str(), &literal) == 1) return std::vector<std::string>{host};
  Lookup lookup(servers_);
  if (!lookup.ok()) return absl::UnavailableError("cannot set up the DNS resolver");
  struct Result {
    bool done = false;
    int status = ARES_ETIMEOUT;
    std::vector<std::string> addresses;
  } result;
  ares_gethostbyname(lookup.channel(), host.c_str(), AF_INET,
                     [](void* arg, int status, int, hostent* entry) {
                       auto* r = static_cast<Result*>(arg);
                       r->done = true;
                       r->status = status;
                       if (status != ARES_SUCCESS || entry == nullptr) return;
                       for (char** address = entry->h_addr_list; *address != nullptr; ++address) {
                         char text[INET_ADDRSTRLEN] = {};
                         inet_ntop(AF_INET, *address, text, sizeof(text));
                         r->addresses.emplace_back(text);
                       }
                     },
                     &result);
  if (!lookup.Run(result.done, timeout_)) return Failure(ARES_ETIMEOUT, host, "A");
  if (result.status != ARES_SUCCESS) return Failure(result.status, host, "A");
  return result.addresses;
}

}  // namespace postgate::queue
