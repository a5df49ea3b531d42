#include "smtp-gateway/milter/milter_protocol.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace postgate::gateway::milter {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

std::string Bytes(std::initializer_list<int> values) {
  std::string out;
  for (int value : values) out.push_back(static_cast<char>(value));
  return out;
}

// Byte layouts as Postfix's milter8.c and libmilter write and read them.
TEST(MilterProtocolTest, CommandsAreLengthCommandData) {
  EXPECT_EQ(OptionNegotiation(kAddHeaders | kChangeBody, kNoUnknown),
            Bytes({0, 0, 0, 13, 'O', 0, 0, 0, 6, 0, 0, 0, 3, 0, 0, 1, 0}));
  EXPECT_EQ(Connect("client.example", Family::kInet, 25, "192.0.2.1"),
            std::string("\0\0\0\x1d" "Cclient.example\0" "4\0\x19" "192.0.2.1\0", 4 + 29));
  EXPECT_EQ(Connect("unknown", Family::kUnknown, 0, ""), std::string("\0\0\0\x0a" "Cunknown\0U", 14));
  EXPECT_EQ(Macros('C', {{"j", "mail169.com"}, {"{daemon_name}", "smtpd"}}),
            std::string("\0\0\0\x24" "DCj\0mail169.com\0{daemon_name}\0smtpd\0", 4 + 36));
  EXPECT_EQ(Mail("a@b.example", {"SIZE=10", "BODY=8BITMIME"}),
            std::string("\0\0\0\x25" "M<a@b.example>\0SIZE=10\0BODY=8BITMIME\0", 4 + 37));
  EXPECT_EQ(Recipient("", {}), std::string("\0\0\0\x04" "R<>\0", 8));
  EXPECT_EQ(Header("Subject", " hi"), std::string("\0\0\0\x0d" "LSubject\0 hi\0", 17));
  EXPECT_EQ(Body("line\r\n"), std::string("\0\0\0\x07" "Bline\r\n", 11));
  for (const auto& [packet, command] : {std::pair{Data(), 'T'}, {EndOfHeaders(), 'N'}, {EndOfMessage(), 'E'},
                                        {Abort(), 'A'}, {Quit(), 'Q'}, {QuitNewConnection(), 'K'}}) {
    EXPECT_EQ(packet, std::string("\0\0\0\x01", 4) + command);
  }
}

TEST(MilterProtocolTest, RepliesAreReadHoweverTheyAreSplit) {
  std::string stream = Packet('O', Bytes({0, 0, 0, 6, 0, 0, 0, 0x41, 0, 0x1f, 0, 0}) +
                                       Bytes({0, 0, 0, 1}) + std::string("{client_addr} j\0", 16));
  stream += Packet('c', "");
  stream += Packet('h', std::string("X-Spam\0Yes\0", 11));
  stream += Packet('m', Bytes({0, 0, 0, 2}) + std::string("Subject\0\0", 9));
  stream += Packet('i', Bytes({0, 0, 0, 0}) + std::string("X-First\0v\0", 10));
  stream += Packet('y', std::string("554 5.7.1 Gtube pattern\0", 24));
  stream += Packet('2', std::string("<new@x.example>\0NOTIFY=NEVER\0", 29));
  stream += Packet('-', std::string("<old@x.example>\0", 16));
  stream += Packet('e', std::string("<sender@x.example>\0", 19));
  stream += Packet('q', std::string("looks odd\0", 10));
  stream += Packet('b', "new body\r\n");
  stream += Packet('a', "");
  std::vector<Reply> replies;
  ReplyReader reader;
  for (char c : stream) {  // One byte at a time: the worst split.
    reader.Feed(std::string(1, c));
    while (std::optional<absl::StatusOr<Reply>> next = reader.Next()) {
      ASSERT_TRUE(next->ok()) << next->status();
      replies.push_back(**next);
    }
  }
  ASSERT_EQ(replies.size(), 12u);
  EXPECT_EQ(replies[0].kind, Reply::Kind::kOptionNegotiation);
  EXPECT_EQ(replies[0].version, 6u);
  EXPECT_EQ(replies[0].actions, kAddHeaders | kChangeSender);
  EXPECT_EQ(replies[0].protocol, 0x1f0000u);
  EXPECT_THAT(replies[0].macro_lists, ElementsAre(Pair(MacroStage::kHelo, "{client_addr} j")));
  EXPECT_EQ(replies[1].kind, Reply::Kind::kContinue);
  EXPECT_EQ(replies[2].kind, Reply::Kind::kAddHeader);
  EXPECT_EQ(replies[2].name, "X-Spam");
  EXPECT_EQ(replies[2].value, "Yes");
  EXPECT_EQ(replies[3].kind, Reply::Kind::kChangeHeader);
  EXPECT_EQ(replies[3].index, 2u);
  EXPECT_EQ(replies[3].value, "");  // Deletes the second Subject:.
  EXPECT_EQ(replies[4].kind, Reply::Kind::kInsertHeader);
  EXPECT_EQ(replies[4].name, "X-First");
  EXPECT_EQ(replies[5].kind, Reply::Kind::kReplyCode);
  EXPECT_EQ(replies[5].text, "554 5.7.1 Gtube pattern");
  EXPECT_EQ(replies[6].kind, Reply::Kind::kAddRecipient);
  EXPECT_EQ(replies[6].address, "<new@x.example>");
  EXPECT_EQ(replies[6].text, "NOTIFY=NEVER");
  EXPECT_EQ(replies[7].kind, Reply::Kind::kDeleteRecipient);
  EXPECT_EQ(replies[8].kind, Reply::Kind::kChangeSender);
  EXPECT_EQ(replies[8].address, "<sender@x.example>");
  EXPECT_EQ(replies[9].kind, Reply::Kind::kQuarantine);
  EXPECT_EQ(replies[9].text, "looks odd");
  EXPECT_EQ(replies[10].kind, Reply::Kind::kReplaceBody);
  EXPECT_EQ(replies[10].text, "new body\r\n");
  EXPECT_EQ(replies[11].kind, Reply::Kind::kAccept);
}

TEST(MilterProtocolTest, MalformedAndOversizedRepliesAreErrors) {
  const auto first = [](const std::string& bytes) {
    ReplyReader reader;
    reader.Feed(bytes);
    std::optional<absl::StatusOr<Reply>> next = reader.Next();
    return next ? next->status() : absl::OkStatus();
  };
  EXPECT_THAT(std::string(first(Bytes({0x7f, 0, 0, 0, 'c'})).message()), ::testing::HasSubstr("milter reply of"));
  EXPECT_THAT(std::string(first(Bytes({0, 0, 0, 0})).message()), ::testing::HasSubstr("milter reply of 0 bytes"));
  EXPECT_THAT(std::string(first(Packet('h', "X-No-Terminator")).message()), ::testing::HasSubstr("unterminated"));
  EXPECT_THAT(std::string(first(Packet('O', "short")).message()), ::testing::HasSubstr("shorter than 12"));
  EXPECT_THAT(std::string(first(Packet('Z', "")).message()), ::testing::HasSubstr("unknown reply"));
  EXPECT_THAT(std::string(first(Packet('y', std::string("5\0", 2))).message()), ::testing::HasSubstr("reply text"));
  ReplyReader partial;
  partial.Feed(Bytes({0, 0, 0, 5, 'h'}));
  EXPECT_FALSE(partial.Next().has_value());  // Waits for the rest.
}

TEST(MilterProtocolTest, NegotiationKeepsWhatWasOfferedAndRefusesMore) {
  Reply reply;
  reply.kind = Reply::Kind::kOptionNegotiation;
  reply.version = 6;
  reply.actions = kAddHeaders | kQuarantine;
  reply.protocol = kNoHelo | kNoConnectReply | kHeaderLeadingSpace;
  reply.macro_lists = {{MacroStage::kMail, "{auth_authen}"}};
  absl::StatusOr<Negotiated> negotiated = Negotiate(reply, kAllActions, kAllProtocolFlags);
  ASSERT_TRUE(negotiated.ok()) << negotiated.status();
  EXPECT_EQ(negotiated->version, 6u);
  EXPECT_FALSE(negotiated->Sends(kNoHelo));
  EXPECT_TRUE(negotiated->Sends(kNoMail));
  EXPECT_FALSE(negotiated->AwaitsReply(kNoConnectReply));
  EXPECT_TRUE(negotiated->AwaitsReply(kNoMailReply));
  EXPECT_TRUE(negotiated->AwaitsReply(0));  // End of message: always answered.
  EXPECT_EQ(negotiated->macro_lists.size(), 1u);

  reply.actions |= kChangeBody;
  EXPECT_THAT(std::string(Negotiate(reply, kAddHeaders | kQuarantine, kAllProtocolFlags).status().message()),
              ::testing::HasSubstr("requested action mask 0x23 does not match the offered 0x21"));
  reply.actions = kAddHeaders;
  EXPECT_THAT(std::string(Negotiate(reply, kAllActions, kNoHelo).status().message()),
              ::testing::HasSubstr("includes features not offered"));
  reply.version = 1;
  EXPECT_THAT(std::string(Negotiate(reply, kAllActions, kAllProtocolFlags).status().message()),
              ::testing::HasSubstr("version 1 is too old"));
  Reply not_negotiation;
  EXPECT_FALSE(Negotiate(not_negotiation, kAllActions, kAllProtocolFlags).ok());
}

}  // namespace
}  // namespace postgate::gateway::milter
