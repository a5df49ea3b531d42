// Against a real DNS server: dnsmasq on a loopback port, answering for a test zone.
#include "core/io/mx_resolver.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

extern char** environ;

namespace postgate::io {
namespace {

// A UDP socket bound to a free loopback port; its port.
int BindUdp(int* fd) {
  *fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(*fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) return -1;
  socklen_t length = sizeof(address);
  getsockname(*fd, reinterpret_cast<sockaddr*>(&address), &length);
  return ntohs(address.sin_port);
}

// A loopback port free for both UDP and TCP: dnsmasq binds both and will not start when the TCP
// one is taken – which happened, now and then, to a port picked for UDP alone while other tests
// held thousands of TCP connections.
int FreeDnsPort() {
  for (int attempt = 0; attempt < 100; ++attempt) {
    int udp = -1;
    const int port = BindUdp(&udp);
    const int tcp = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(port));
    const bool both = port > 0 && bind(tcp, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    close(tcp);
    close(udp);
    if (both) return port;
  }
  return -1;
}

class Dnsmasq {
 public:
  Dnsmasq() {
    port_ = FreeDnsPort();
    const std::string port = std::to_string(port_);
    std::vector<std::string> args = {
        "dnsmasq", "--keep-in-foreground", "--no-daemon", "--no-resolv", "--no-hosts", "--bind-interfaces",
        "--listen-address=127.0.0.1", "--port=" + port, "--log-facility=/dev/null", "--local=/example/",
        "--mx-host=mx.example,mx2.mx.example,20", "--mx-host=mx.example,mx1.mx.example,10",
        "--host-record=mx1.mx.example,127.0.0.2", "--host-record=mx2.mx.example,127.0.0.1",
        "--host-record=plain.example,127.0.0.3", "--address=/nowhere.example/",
        "--host-record=v6only.example,::1", "--txt-record=textonly.example,nothing-else",
        "--dns-rr=nullmx.example,15,000000"};  // RFC 7505: preference 0, the root name.
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t quiet;  // Its start-up lines on stderr tell nothing here.
    posix_spawn_file_actions_init(&quiet);
    posix_spawn_file_actions_addopen(&quiet, 2, "/dev/null", O_WRONLY, 0);
    if (posix_spawnp(&pid_, "dnsmasq", &quiet, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&quiet);
  }
  ~Dnsmasq() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  std::string servers() const { return absl::StrCat("127.0.0.1:", port_); }
  bool started() const { return pid_ > 0; }

 private:
  int port_ = 0;
  pid_t pid_ = -1;
};

class MxResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dnsmasq_.started()) << "dnsmasq (Debian package dnsmasq-base) is needed";
    // Until dnsmasq answers (it binds within milliseconds; the deadline is generous).
    MxResolver resolver(dnsmasq_.servers(), absl::Milliseconds(500));
    const absl::Time deadline = absl::Now() + absl::Seconds(15);
    while (!resolver.Addresses("plain.example").ok()) {
      ASSERT_LT(absl::Now(), deadline) << "dnsmasq did not answer";
    }
  }
  Dnsmasq dnsmasq_;
};

TEST_F(MxResolverTest, ExchangersInPreferenceOrderTheDomainWithoutMxAndANameThatDoesNotExist) {
  MxResolver resolver(dnsmasq_.servers());
  absl::StatusOr<std::vector<MailExchanger>> exchangers = resolver.MailExchangers("mx.example");
  ASSERT_TRUE(exchangers.ok()) << exchangers.status();
  ASSERT_EQ(exchangers->size(), 2u);
  EXPECT_EQ((*exchangers)[0].host, "mx1.mx.example");
  EXPECT_EQ((*exchangers)[0].preference, 10);
  EXPECT_EQ((*exchangers)[1].host, "mx2.mx.example");
  absl::StatusOr<std::vector<MailExchanger>> plain = resolver.MailExchangers("plain.example");
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_EQ(plain->size(), 1u);
  EXPECT_EQ((*plain)[0].host, "plain.example");
  EXPECT_TRUE(absl::IsNotFound(resolver.MailExchangers("nowhere.example").status()));
  EXPECT_EQ(*resolver.Addresses("mx2.mx.example"), std::vector<std::string>{"127.0.0.1"});
  EXPECT_EQ(*resolver.Addresses("192.0.2.7"), std::vector<std::string>{"192.0.2.7"});  // A literal, no lookup.
  EXPECT_TRUE(absl::IsNotFound(resolver.Addresses("nowhere.example").status()));
}

// reject_unknown_sender_domain's question, answered for each kind of domain.
TEST_F(MxResolverTest, AMailDomainHasMxOrAddressRecordsAndANullMxSaysItTakesNoMail) {
  MxResolver resolver(dnsmasq_.servers());
  const auto check = [&resolver](const std::string& domain) {
    std::promise<absl::StatusOr<MxResolver::MailDomain>> answer;
    resolver.CheckMailDomain(domain, [&answer](absl::StatusOr<MxResolver::MailDomain> result) {
      answer.set_value(std::move(result));
    });
    return answer.get_future().get();
  };
  EXPECT_EQ(*check("mx.example"), MxResolver::MailDomain::kExists);
  EXPECT_EQ(*check("plain.example"), MxResolver::MailDomain::kExists);
  EXPECT_EQ(*check("v6only.example"), MxResolver::MailDomain::kExists);
  EXPECT_EQ(*check("nullmx.example"), MxResolver::MailDomain::kNullMx);
  EXPECT_TRUE(absl::IsNotFound(check("textonly.example").status())) << check("textonly.example").status();
  EXPECT_TRUE(absl::IsNotFound(check("nowhere.example").status()));
}

// select() and fd_set end at descriptor 1023; a queue-service with hundreds of SMTP sessions has
// its DNS sockets above that.
TEST_F(MxResolverTest, WorksWithDescriptorNumbersAboveFdSetSize) {
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  ASSERT_GE(limit.rlim_max, 2048u) << "the test needs a hard open-file limit of at least 2048";
  const rlimit saved = limit;
  limit.rlim_cur = 2048;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &limit), 0);
  std::vector<int> fillers;
  int fd = -1;
  while ((fd = open("/dev/null", O_RDONLY)) >= 0 && fd < 1100) fillers.push_back(fd);
  ASSERT_GE(fd, 1100);
  fillers.push_back(fd);
  {
    MxResolver resolver(dnsmasq_.servers());
    for (int i = 0; i < 20; ++i) {
      absl::StatusOr<std::vector<MailExchanger>> exchangers = resolver.MailExchangers("mx.example");
      ASSERT_TRUE(exchangers.ok()) << exchangers.status();
      EXPECT_EQ(exchangers->size(), 2u);
    }
  }
  for (int filler : fillers) close(filler);
  setrlimit(RLIMIT_NOFILE, &saved);
}

TEST_F(MxResolverTest, ManyThreadsShareOneResolver) {
  MxResolver resolver(dnsmasq_.servers());
  std::atomic<int> answered{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        absl::StatusOr<std::vector<std::string>> addresses = resolver.Addresses(i % 2 ? "mx1.mx.example" : "plain.example");
        if (addresses.ok() && addresses->size() == 1) ++answered;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(answered.load(), 200);
}

TEST(MxResolverSilentServerTest, TimesOutAndDestructionEndsWhatIsPending) {
  int silent = -1;
  const int port = BindUdp(&silent);  // Receives queries, never answers.
  ASSERT_GT(port, 0);
  std::promise<absl::Status> pending;
  {
    MxResolver resolver(absl::StrCat("127.0.0.1:", port), absl::Milliseconds(400));
    const absl::Time start = absl::Now();
    absl::StatusOr<std::vector<MailExchanger>> exchangers = resolver.MailExchangers("mx.example");
    const absl::Duration took = absl::Now() - start;
    EXPECT_TRUE(absl::IsUnavailable(exchangers.status())) << exchangers.status();
    EXPECT_GE(took, absl::Milliseconds(300));
    EXPECT_LT(took, absl::Seconds(5));
    std::promise<absl::Status> checked;
    resolver.CheckMailDomain("mx.example", [&checked](absl::StatusOr<MxResolver::MailDomain> result) {
      checked.set_value(result.status());
    });
    EXPECT_TRUE(absl::IsUnavailable(checked.get_future().get()));
    resolver.Addresses("plain.example", [&pending](absl::StatusOr<std::vector<std::string>> result) {
      pending.set_value(result.status());
    });
  }  // The resolver goes while that lookup waits.
  std::future<absl::Status> ended = pending.get_future();
  ASSERT_EQ(ended.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_TRUE(absl::IsUnavailable(ended.get()));
  close(silent);
}

}  // namespace
}  // namespace postgate::io
