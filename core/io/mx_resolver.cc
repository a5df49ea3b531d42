#include "core/io/mx_resolver.h"

#include <arpa/inet.h>
#include <ares.h>
#include <netdb.h>
#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <map>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "asio/executor_work_guard.hpp"
#include "asio/io_context.hpp"
#include "asio/posix/stream_descriptor.hpp"
#include "asio/post.hpp"
#include "asio/steady_timer.hpp"

namespace postgate::io {
namespace {

constexpr int kClassIn = 1;
constexpr int kTypeMx = 15;
constexpr int kTypeA = 1;
constexpr int kTypeAaaa = 28;

absl::Status Failure(int status, const std::string& name, const char* type) {
  const std::string text = absl::StrCat("Name service error for name=", name, " type=", type, ": ",
                                        ares_strerror(status));
  if (status == ARES_ENOTFOUND) return absl::NotFoundError(absl::StrCat("Host or domain name not found. ", text));
  return absl::UnavailableError(absl::StrCat("Host or domain name not found. ", text));
}

// The MX answer, sorted by preference; a domain without MX records is its own exchanger.
absl::StatusOr<std::vector<MailExchanger>> MxAnswer(int status, const unsigned char* answer, int length,
                                                    const std::string& domain) {
  std::vector<MailExchanger> hosts;
  if (status == ARES_SUCCESS) {
    ares_mx_reply* replies = nullptr;
    status = ares_parse_mx_reply(answer, length, &replies);
    for (ares_mx_reply* mx = replies; mx != nullptr; mx = mx->next) hosts.push_back({mx->priority, mx->host});
    if (replies != nullptr) ares_free_data(replies);
  }
  if (status == ARES_ENODATA || (status == ARES_SUCCESS && hosts.empty())) {
    return std::vector<MailExchanger>{{0, domain}};
  }
  if (status != ARES_SUCCESS) return Failure(status, domain, "MX");
  std::stable_sort(hosts.begin(), hosts.end(),
                   [](const MailExchanger& a, const MailExchanger& b) { return a.preference < b.preference; });
  return hosts;
}

absl::StatusOr<std::vector<std::string>> AddressAnswer(int status, const hostent* entry, const std::string& host) {
  if (status != ARES_SUCCESS) return Failure(status, host, "A");
  std::vector<std::string> addresses;
  for (char** address = entry == nullptr ? nullptr : entry->h_addr_list; address != nullptr && *address != nullptr;
       ++address) {
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, *address, text, sizeof(text));
    addresses.emplace_back(text);
  }
  return addresses;
}

// The MX answer of a domain as reject_unknown_sender_domain reads it: kExists or kNullMx, or
// nullopt when the domain has no MX records (then its addresses decide).
absl::StatusOr<std::optional<MxResolver::MailDomain>> MailDomainFromMx(int status, const unsigned char* answer,
                                                                         int length, const std::string& domain) {
  if (status == ARES_ENODATA) return std::nullopt;
  if (status != ARES_SUCCESS) return Failure(status, domain, "MX");
  ares_mx_reply* replies = nullptr;
  status = ares_parse_mx_reply(answer, length, &replies);
  if (status == ARES_ENODATA) return std::nullopt;
  if (status != ARES_SUCCESS) return Failure(status, domain, "MX");
  size_t count = 0;
  bool null_mx = false;
  for (ares_mx_reply* mx = replies; mx != nullptr; mx = mx->next) {
    ++count;
    null_mx = mx->host == nullptr || mx->host[0] == '\0' || std::string(mx->host) == ".";
  }
  if (replies != nullptr) ares_free_data(replies);
  if (count == 0) return std::nullopt;
  return count == 1 && null_mx ? MxResolver::MailDomain::kNullMx : MxResolver::MailDomain::kExists;
}

// One lookup under way: c-ares owns it (as its callback argument) until it answers.
template <typename T>
struct Lookup {
  std::function<void()> finished;  // Tells the channel (on its thread) that one less is pending.
  std::string name;
  std::function<void(absl::StatusOr<T>)> done;
  ares_channel channel = nullptr;  // For lookups of several queries: the next one's channel.
};

using Exchangers = std::vector<MailExchanger>;
using AddressList = std::vector<std::string>;

// The blocking form of a lookup: its answer, or Unavailable once `timeout` passed (the lookup
// then ends on its own, by c-ares' timeouts).
template <typename T>
absl::StatusOr<T> Blocking(const std::function<void(std::function<void(absl::StatusOr<T>)>)>& start,
                           absl::Duration timeout, const std::string& name, const char* type) {
  auto answer = std::make_shared<std::promise<absl::StatusOr<T>>>();
  std::future<absl::StatusOr<T>> future = answer->get_future();
  start([answer](absl::StatusOr<T> result) { answer->set_value(std::move(result)); });
  if (future.wait_for(absl::ToChronoMilliseconds(timeout)) != std::future_status::ready) {
    return Failure(ARES_ETIMEOUT, name, type);
  }
  return future.get();
}

}  // namespace

// The channel and the thread that drives it. Every c-ares call happens on that thread: a channel
// is not safe to share between threads, and this way no lock is needed.
class MxResolver::Channel {
 public:
  Channel(const std::string& servers, absl::Duration timeout) : work_(asio::make_work_guard(io_)), timer_(io_) {
    static const int initialised = ares_library_init(ARES_LIB_INIT_ALL);
    (void)initialised;
    ares_options options{};
    options.sock_state_cb = &Channel::SocketStateChanged;
    options.sock_state_cb_data = this;
    // c-ares doubles the wait on each retry: about 7/8 of `timeout` for three tries, so a lookup a
    // blocking caller gave up on is finished soon after.
    options.timeout = std::max(50, static_cast<int>(absl::ToInt64Milliseconds(timeout) / 8));
    options.tries = 3;
    if (ares_init_options(&channel_, &options, ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES) !=
        ARES_SUCCESS) {
      channel_ = nullptr;
    } else if (!servers.empty() && ares_set_servers_ports_csv(channel_, servers.c_str()) != ARES_SUCCESS) {
      ares_destroy(channel_);
      channel_ = nullptr;
    }
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "dns");
      io_.run();
    });
  }

  ~Channel() {
    asio::post(io_, [this] {
      if (channel_ != nullptr) ares_destroy(channel_);  // Calls back what is pending: EDESTRUCTION.
      channel_ = nullptr;
      for (auto& [fd, watch] : watches_) Forget(*watch);
      watches_.clear();
      timer_.cancel();
      work_.reset();
    });
    thread_.join();
  }

  // Runs `query` – which starts one c-ares query with `lookup` as its callback's argument – on
  // the channel's thread; without a channel, `done` hears Unavailable instead.
  template <typename T>
  void Start(const std::string& name, std::function<void(absl::StatusOr<T>)> done,
             void (*query)(ares_channel channel, Lookup<T>* lookup)) {
    auto* lookup = new Lookup<T>{[this] { --pending_; }, name, std::move(done)};
    asio::post(io_, [this, lookup, query] {
      if (channel_ == nullptr) {
        std::unique_ptr<Lookup<T>> owned(lookup);
        owned->done(absl::UnavailableError("cannot set up the DNS resolver"));
        return;
      }
      ++pending_;
      query(channel_, lookup);
      ArmTimer();
    });
  }

 private:
  struct Watch {
    Watch(asio::io_context& io, int fd) : descriptor(io, fd), fd(fd) {}
    asio::posix::stream_descriptor descriptor;  // Released, never closed: c-ares owns the socket.
    int fd;
    bool read = false, write = false;         // What c-ares wants to know.
    bool reading = false, writing = false;    // A wait is armed.
    bool forgotten = false;
  };

  static void SocketStateChanged(void* data, ares_socket_t fd, int readable, int writable) {
    static_cast<Channel*>(data)->Update(fd, readable != 0, writable != 0);
  }

  void Update(int fd, bool read, bool write) {
    auto found = watches_.find(fd);
    if (!read && !write) {  // c-ares is about to close it.
      if (found != watches_.end()) {
        Forget(*found->second);
        watches_.erase(found);
      }
      return;
    }
    if (found == watches_.end()) found = watches_.emplace(fd, std::make_shared<Watch>(io_, fd)).first;
    found->second->read = read;
    found->second->write = write;
    Arm(found->second);
  }

  static void Forget(Watch& watch) {
    watch.forgotten = true;
    (void)watch.descriptor.release();  // Cancels its waits; their handlers see `forgotten`.
  }

  void Arm(const std::shared_ptr<Watch>& watch) {
    if (watch->read && !watch->reading) {
      watch->reading = true;
      watch->descriptor.async_wait(asio::posix::descriptor_base::wait_read, [this, watch](std::error_code error) {
        watch->reading = false;
        if (watch->forgotten || error || channel_ == nullptr) return;
        ares_process_fd(channel_, watch->fd, ARES_SOCKET_BAD);
        if (!watch->forgotten) Arm(watch);
        ArmTimer();
      });
    }
    if (watch->write && !watch->writing) {
      watch->writing = true;
      watch->descriptor.async_wait(asio::posix::descriptor_base::wait_write, [this, watch](std::error_code error) {
        watch->writing = false;
        if (watch->forgotten || error || channel_ == nullptr) return;
        ares_process_fd(channel_, ARES_SOCKET_BAD, watch->fd);
        if (!watch->forgotten) Arm(watch);
        ArmTimer();
      });
    }
  }

  // c-ares' next timeout (a retry, or giving up on a server) while queries are pending.
  void ArmTimer() {
    if (channel_ == nullptr || pending_ == 0) return;
    timeval longest{1, 0}, next{};
    const timeval* wait = ares_timeout(channel_, &longest, &next);
    timer_.expires_after(std::chrono::seconds(wait->tv_sec) + std::chrono::microseconds(wait->tv_usec));
    timer_.async_wait([this](std::error_code error) {
      if (error || channel_ == nullptr) return;
      ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      ArmTimer();
    });
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  asio::steady_timer timer_;
  ares_channel channel_ = nullptr;
  std::map<int, std::shared_ptr<Watch>> watches_;
  int pending_ = 0;
  std::thread thread_;  // Last: starts once everything above exists.
};

MxResolver::MxResolver(std::string servers, absl::Duration timeout)
    : timeout_(timeout), channel_(std::make_unique<Channel>(servers, timeout)) {}

MxResolver::~MxResolver() = default;

void MxResolver::MailExchangers(const std::string& domain, ExchangersCallback done) const {
  channel_->Start<Exchangers>(domain, std::move(done), [](ares_channel channel, Lookup<Exchangers>* lookup) {
    ares_query(channel, lookup->name.c_str(), kClassIn, kTypeMx,
               [](void* arg, int status, int, unsigned char* answer, int length) {
                 std::unique_ptr<Lookup<Exchangers>> lookup(static_cast<Lookup<Exchangers>*>(arg));
                 lookup->finished();
                 lookup->done(MxAnswer(status, answer, length, lookup->name));
               },
               lookup);
  });
}

void MxResolver::Addresses(const std::string& host, AddressesCallback done) const {
  in_addr literal{};
  if (inet_pton(AF_INET, host.c_str(), &literal) == 1) {
    done(AddressList{host});
    return;
  }
  channel_->Start<AddressList>(host, std::move(done), [](ares_channel channel, Lookup<AddressList>* lookup) {
    ares_gethostbyname(channel, lookup->name.c_str(), AF_INET,
                       [](void* arg, int status, int, hostent* entry) {
                         std::unique_ptr<Lookup<AddressList>> lookup(static_cast<Lookup<AddressList>*>(arg));
                         lookup->finished();
                         lookup->done(AddressAnswer(status, entry, lookup->name));
                       },
                       lookup);
  });
}

void MxResolver::CheckMailDomain(const std::string& domain, MailDomainCallback done) const {
  channel_->Start<MailDomain>(domain, std::move(done), [](ares_channel channel, Lookup<MailDomain>* lookup) {
    // MX, then A, then AAAA: each next query starts from the previous one's callback, on the
    // channel's thread, and the last one answers.
    static constexpr ares_callback kAddressAnswer = [](void* arg, int status, int, unsigned char*, int) {
      std::unique_ptr<Lookup<MailDomain>> lookup(static_cast<Lookup<MailDomain>*>(arg));
      lookup->finished();
      if (status == ARES_SUCCESS) {
        lookup->done(MailDomain::kExists);
      } else if (status == ARES_ENODATA) {
        lookup->done(absl::NotFoundError(absl::StrCat("no MX, A or AAAA record for ", lookup->name)));
      } else {
        lookup->done(Failure(status, lookup->name, "AAAA"));
      }
    };
    static constexpr ares_callback kV4Answer = [](void* arg, int status, int, unsigned char*, int) {
      auto* lookup = static_cast<Lookup<MailDomain>*>(arg);
      if (status == ARES_ENODATA && lookup->channel != nullptr) {
        ares_query(lookup->channel, lookup->name.c_str(), kClassIn, kTypeAaaa, kAddressAnswer, lookup);
        return;
      }
      std::unique_ptr<Lookup<MailDomain>> owned(lookup);
      owned->finished();
      if (status == ARES_SUCCESS) owned->done(MailDomain::kExists);
      else owned->done(Failure(status, owned->name, "A"));
    };
    lookup->channel = channel;
    ares_query(channel, lookup->name.c_str(), kClassIn, kTypeMx,
               [](void* arg, int status, int, unsigned char* answer, int length) {
                 auto* lookup = static_cast<Lookup<MailDomain>*>(arg);
                 absl::StatusOr<std::optional<MailDomain>> mx = MailDomainFromMx(status, answer, length, lookup->name);
                 if (mx.ok() && !mx->has_value() && status != ARES_EDESTRUCTION) {
                   ares_query(lookup->channel, lookup->name.c_str(), kClassIn, kTypeA, kV4Answer, lookup);
                   return;
                 }
                 std::unique_ptr<Lookup<MailDomain>> owned(lookup);
                 owned->finished();
                 if (!mx.ok()) owned->done(mx.status());
                 else owned->done(**mx);
               },
               lookup);
  });
}

absl::StatusOr<std::vector<MailExchanger>> MxResolver::MailExchangers(const std::string& domain) const {
  return Blocking<Exchangers>([&](ExchangersCallback done) { MailExchangers(domain, std::move(done)); }, timeout_,
                              domain, "MX");
}

absl::StatusOr<std::vector<std::string>> MxResolver::Addresses(const std::string& host) const {
  return Blocking<AddressList>([&](AddressesCallback done) { Addresses(host, std::move(done)); }, timeout_, host,
                               "A");
}

}  // namespace postgate::io
