#include "queue-service/delivery/smtp_client.h"

#include <stdexcept>
#include <string>
#include <thread>

#include "asio/co_spawn.hpp"
#include "asio/io_context.hpp"
#include "gtest/gtest.h"
#include "queue-service/delivery/fake_smtp_server.h"
#include "queue-service/model/record.h"

namespace postgate::queue {
namespace {

TEST(ServerReplyTest, MultilineRepliesEndAtTheLineWithASpace) {
  EXPECT_FALSE(ParseServerReply({"250-mx.example.org"}).has_value());
  std::optional<ServerReply> ehlo = ParseServerReply({"250-mx.example.org", "250-PIPELINING", "250 SIZE 1000"});
  ASSERT_TRUE(ehlo.has_value());
  EXPECT_EQ(ehlo->code, 250);
  EXPECT_EQ(ehlo->lines, (std::vector<std::string>{"mx.example.org", "PIPELINING", "SIZE 1000"}));
  std::optional<ServerReply> refused = ParseServerReply({"550 5.1.1 <x@example.org>: unknown"});
  EXPECT_EQ(refused->enhanced, "5.1.1");
  EXPECT_EQ(refused->text, "550 5.1.1 <x@example.org>: unknown");
  EXPECT_EQ(ParseServerReply({"451 try later"})->enhanced, "");
  EXPECT_EQ(ParseServerReply({"garbage"})->code, 0);  // Not SMTP: handled as a failure, never as success.
}

TEST(WireDataTest, CrlfDotStuffingAndTerminator) {
  EXPECT_EQ(ToWireData("Subject: x\n\n.hidden\nbody\n"), "Subject: x\r\n\r\n..hidden\r\nbody\r\n.\r\n");
  EXPECT_EQ(ToWireData("no final newline"), "no final newline\r\n.\r\n");
  EXPECT_EQ(ToWireData(".\n"), "..\r\n.\r\n");  // A lone dot line never ends the message early.
}

TEST(WireDataTest, PiecesSplitAnywhereEncodeAsTheWhole) {
  for (const std::string stored : {"Subject: x\n\n.hidden\nbody\n", ".\n..\n.x\n", "no final newline", "a\n.", ""}) {
    for (size_t first = 0; first <= stored.size(); ++first) {
      for (size_t second = first; second <= stored.size(); ++second) {
        WireDataEncoder encoder;
        std::string wire = encoder.Encode(stored.substr(0, first));
        wire += encoder.Encode(stored.substr(first, second - first));
        wire += encoder.Encode(stored.substr(second));
        wire += encoder.Finish();
        EXPECT_EQ(wire, ToWireData(stored)) << "split at " << first << " and " << second << " of " << stored;
      }
    }
  }
}

// Nothing on the delivery pool would catch an exception: DeliverOverSmtp turns it into a deferral.
TEST(DeliverOverSmtpTest, AnExceptionOnTheWayDefersTheRecipientsInsteadOfEndingTheProcess) {
  FakeSmtpServer server;
  NextHop hop{"127.0.0.1", server.port(), false};
  SmtpClientOptions options;
  options.connect_timeout = options.helo_timeout = options.mail_timeout = options.rcpt_timeout = absl::Seconds(5);
  options.data_init_timeout = options.data_xfer_timeout = options.data_done_timeout = absl::Seconds(5);
  rec::Message message;
  message.set_queue_id("ABC");
  message.mutable_envelope()->set_sender("foo@mail169.com");
  message.add_recipients()->set_address("user@example.org");
  message.add_recipients()->set_address("other@example.org");
  const ContentPieces throwing = [](uint32_t) -> absl::StatusOr<std::optional<std::string>> {
    throw std::runtime_error("content store gone");
  };
  asio::io_context io;
  std::vector<DeliveryOutcome> outcomes;
  // The coroutine takes its arguments by reference: they live until io.run() returns.
  const std::vector<SmtpCandidate> candidates{{"127.0.0.1", "127.0.0.1"}};
  const std::vector<int> recipients{0, 1};
  asio::co_spawn(io, DeliverOverSmtp(hop, candidates, options, message, recipients, throwing, nullptr),
                 [&](std::exception_ptr error, std::vector<DeliveryOutcome> result) {
                   EXPECT_FALSE(error);
                   outcomes = std::move(result);
                 });
  io.run();
  ASSERT_EQ(outcomes.size(), 2u);
  for (const DeliveryOutcome& outcome : outcomes) {
    EXPECT_EQ(outcome.state, rec::RECIPIENT_STATE_DEFERRED);
    EXPECT_EQ(outcome.dsn_status, "4.3.0");
    EXPECT_EQ(outcome.reason, "SMTP client error: content store gone");
  }
}

}  // namespace
}  // namespace postgate::queue
