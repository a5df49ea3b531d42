#include "queue-service/delivery/smtp_client.h"

#include "gtest/gtest.h"

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

}  // namespace
}  // namespace postgate::queue
