// Both transports behind the Deliverer interface: one outcome per requested recipient in the
// order asked, `done` called exactly once (local: before Deliver returns; SMTP: later, from the
// delivery pool), and the SMTP transport's verdict on whether its next hop answered at all.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <optional>
#include <thread>

#include "absl/synchronization/notification.h"
#include "asio/executor_work_guard.hpp"
#include "asio/io_context.hpp"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "queue-service/delivery/fake_smtp_server.h"
#include "queue-service/delivery/local_deliverer.h"
#include "queue-service/delivery/smtp_deliverer.h"
#include "queue-service/store/memory_message_store.h"

namespace postgate::queue {
namespace {

namespace fs = std::filesystem;

constexpr absl::string_view kContent = "Subject: hi\n\n.dotted line\nbody\n";

// A committed message to `recipients`, its content in two chunks.
StoredMessage StoreMessage(MemoryMessageStore& store, const std::vector<std::string>& recipients) {
  StoredMessage record;
  rec::Message& message = *record.mutable_message();
  message.set_queue_id("0000000000ABC");
  message.mutable_envelope()->set_sender("foo@mail169.com");
  message.mutable_arrival_time()->set_seconds(1795000000);
  for (const std::string& address : recipients) {
    message.add_recipients()->set_address(address);
    message.mutable_envelope()->add_recipients(address);
  }
  message.set_size(kContent.size());
  record.set_chunk_count(2);
  EXPECT_TRUE(store.PutChunk("0000000000ABC", 0, kContent.substr(0, 10)).ok());
  EXPECT_TRUE(store.PutChunk("0000000000ABC", 1, kContent.substr(10)).ok());
  EXPECT_TRUE(store.Commit(record).ok());
  return record;
}

TEST(LocalDelivererTest, AnswersEachRecipientInOrderBeforeReturning) {
  const fs::path dir = fs::temp_directory_path() / ("postgate-deliverer-" + std::to_string(getpid()));
  fs::remove_all(dir);
  config::MainCf cf = *config::MainCf::Parse(
      "myhostname = mail169.com\nmydomain = mail169.com\nmydestination = mail169.com\n"
      "postgate_local_users = foo bar\n",
      "main.cf", "host");
  addressing::LocalDomain domain(cf, config::AliasTable());
  LocalDelivery local(domain, {dir.string(), MailboxFormat::kMaildir, 0, "mail169.com"});
  MemoryMessageStore store;
  const StoredMessage record = StoreMessage(store, {"bar@mail169.com", "nosuch@mail169.com", "foo@mail169.com"});
  LocalDeliverer deliverer(local, store);
  EXPECT_STREQ(deliverer.transport(), "local");

  int calls = 0;
  DeliveryResult result;
  deliverer.Deliver({&record, {2, 1, 0}, {}, false}, [&](DeliveryResult answer) {
    ++calls;
    result = std::move(answer);
  });
  ASSERT_EQ(calls, 1);
  ASSERT_EQ(result.outcomes.size(), 3u);
  EXPECT_EQ(result.outcomes[0].state, rec::RECIPIENT_STATE_DELIVERED);  // foo
  EXPECT_EQ(result.outcomes[1].state, rec::RECIPIENT_STATE_BOUNCED);    // nosuch
  EXPECT_EQ(result.outcomes[1].dsn_status, "5.1.1");
  EXPECT_EQ(result.outcomes[2].state, rec::RECIPIENT_STATE_DELIVERED);  // bar
  EXPECT_FALSE(result.next_hop_answered.has_value());
  for (const char* user : {"foo", "bar"}) {
    ASSERT_EQ(std::distance(fs::directory_iterator(dir / user / "new"), fs::directory_iterator()), 1) << user;
  }
  fs::remove_all(dir);
}

// The delivery pool: two threads, as the agent's smallest.
class SmtpDelivererTest : public ::testing::Test {
 protected:
  SmtpDelivererTest() : metrics_(registry_), work_(pool_.get_executor()) {
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { pool_.run(); });
  }
  ~SmtpDelivererTest() override {
    work_.reset();
    for (std::thread& thread : threads_) thread.join();
  }

  SmtpDelivererOptions Options() {
    SmtpDelivererOptions options;
    SmtpClientOptions& client = options.client;
    client.connect_timeout = client.helo_timeout = client.mail_timeout = client.rcpt_timeout = absl::Seconds(10);
    client.data_init_timeout = client.data_xfer_timeout = client.data_done_timeout = absl::Seconds(10);
    options.connection_cache.enabled = false;  // Each conversation ends with QUIT.
    return options;
  }

  // Delivers and waits for the answer; counts the calls of `done` and notes the thread.
  DeliveryResult DeliverAndWait(SmtpDeliverer& deliverer, const DeliveryRequest& request) {
    absl::Notification answered;
    DeliveryResult result;
    deliverer.Deliver(request, [&](DeliveryResult answer) {
      ++calls_;
      answered_on_ = std::this_thread::get_id();
      result = std::move(answer);
      answered.Notify();
    });
    EXPECT_TRUE(answered.WaitForNotificationWithTimeout(absl::Seconds(30)));
    return result;
  }

  prometheus::Registry registry_;
  QueueMetrics metrics_;
  MemoryMessageStore store_;
  asio::io_context pool_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  std::atomic<int> calls_{0};
  std::thread::id answered_on_;
};

TEST_F(SmtpDelivererTest, OneConversationAnswersEachRecipientFromThePool) {
  FakeSmtpServer server;
  const StoredMessage record = StoreMessage(store_, {"user@example.org", "unknown@example.org"});
  {
    SmtpDeliverer deliverer(store_, metrics_, Options(), pool_.get_executor());
    EXPECT_STREQ(deliverer.transport(), "smtp");
    const DeliveryResult result =
        DeliverAndWait(deliverer, {&record, {1, 0}, NextHop{"127.0.0.1", server.port(), false}, false});
    EXPECT_EQ(calls_, 1);
    EXPECT_NE(answered_on_, std::this_thread::get_id());
    ASSERT_EQ(result.outcomes.size(), 2u);
    EXPECT_EQ(result.outcomes[0].state, rec::RECIPIENT_STATE_BOUNCED);  // unknown@
    EXPECT_EQ(result.outcomes[0].smtp_code, 550u);
    EXPECT_EQ(result.outcomes[1].state, rec::RECIPIENT_STATE_DELIVERED);  // user@
    EXPECT_EQ(result.next_hop_answered, std::optional<bool>(true));
    deliverer.CloseIdle();
  }
  // The content went out whole, from both chunks, dot-stuffed.
  EXPECT_NE(server.received().find("Subject: hi\r\n\r\n..dotted line\r\nbody\r\n.\r\n"), std::string::npos);
  EXPECT_EQ(metrics_.smtp_connection_cache.Add({{"result", "miss"}}).Value(), 1);
}

TEST_F(SmtpDelivererTest, ANextHopNobodyAnswersAtIsReportedUnreachable) {
  // A port that was just free: nothing listens there.
  const int probe = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  socklen_t length = sizeof(address);
  getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length);
  close(probe);
  const StoredMessage record = StoreMessage(store_, {"a@example.org", "b@example.org"});
  SmtpDeliverer deliverer(store_, metrics_, Options(), pool_.get_executor());
  const DeliveryResult result =
      DeliverAndWait(deliverer, {&record, {0, 1}, NextHop{"127.0.0.1", ntohs(address.sin_port), false}, false});
  EXPECT_EQ(calls_, 1);
  ASSERT_EQ(result.outcomes.size(), 2u);
  for (const DeliveryOutcome& outcome : result.outcomes) {
    EXPECT_EQ(outcome.state, rec::RECIPIENT_STATE_DEFERRED);
    EXPECT_EQ(outcome.smtp_code, 0u);
  }
  EXPECT_EQ(result.next_hop_answered, std::optional<bool>(false));
  deliverer.CloseIdle();
}

}  // namespace
}  // namespace postgate::queue
