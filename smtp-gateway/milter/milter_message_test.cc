#include "smtp-gateway/milter/milter_message.h"

#include <string>

#include "gtest/gtest.h"

namespace postgate::gateway::milter {
namespace {

// The message as the session hands it to the queue: the header section, then the body in pieces.
std::string Stored(const MilterMessage& message) {
  std::string out = message.HeaderSection();
  uint64_t offset = 0;
  for (;;) {
    absl::StatusOr<std::string> piece = message.BodyPiece(&offset, 7);
    EXPECT_TRUE(piece.ok()) << piece.status();
    if (!piece.ok() || piece->empty()) break;
    EXPECT_LE(piece->size(), 7u);
    out += *piece;
  }
  return out;
}

std::string BodyForMilter(const MilterMessage& message, size_t max) {
  std::string out;
  uint64_t offset = 0;
  for (;;) {
    absl::StatusOr<std::string> piece = message.BodyPieceForMilter(&offset, max);
    EXPECT_TRUE(piece.ok());
    if (!piece.ok() || piece->empty()) break;
    EXPECT_LE(piece->size(), max);
    out += *piece;
  }
  return out;
}

std::unique_ptr<MilterMessage> Spooled(absl::string_view content, size_t split) {
  absl::StatusOr<std::unique_ptr<MilterMessage>> message = MilterMessage::Create(::testing::TempDir());
  EXPECT_TRUE(message.ok()) << message.status();
  for (size_t i = 0; i < content.size(); i += split) {
    EXPECT_TRUE((*message)->Append(content.substr(i, split)).ok());
  }
  EXPECT_TRUE((*message)->Finish().ok());
  return *std::move(message);
}

constexpr absl::string_view kMessage =
    "Received: from client (localhost [127.0.0.1])\n\tby mx; Tue, 1 Dec 2026\n"
    "From: a@example.com\nSubject: first\n  folded\nTo: b@example.com\nX-Tag: one\nX-Tag: two\n"
    "\nbody line 1\nbody line 2\n";

TEST(MilterMessageTest, SplitsFieldsHidesOurReceivedAndStoresUnchanged) {
  for (size_t split : {1u, 3u, 1000u}) {
    std::unique_ptr<MilterMessage> message = Spooled(kMessage, split);
    ASSERT_EQ(message->fields().size(), 6u);
    EXPECT_FALSE(message->ShownToMilters(0));
    EXPECT_TRUE(message->ShownToMilters(1));
    EXPECT_EQ(message->fields()[2].name, "Subject");
    EXPECT_EQ(message->fields()[2].value, " first\n  folded");
    EXPECT_EQ(Stored(*message), kMessage);
    EXPECT_EQ(BodyForMilter(*message, 8), "body line 1\r\nbody line 2\r\n");
  }
}

TEST(MilterMessageTest, HeaderEditsCountAsPostfixDoes) {
  std::unique_ptr<MilterMessage> message = Spooled(kMessage, 1000);
  message->ChangeHeader(2, "x-tag", " TWO");     // The second X-Tag.
  message->ChangeHeader(0, "Subject", "");       // #0 is #1; empty deletes.
  message->ChangeHeader(1, "Received", " fake");  // Ours is hidden: none left, so it is added.
  message->InsertHeader(1, "X-After-Received", " 1");  // Positions count ours: after it.
  message->AddHeader("X-Spam", " no");
  EXPECT_EQ(Stored(*message),
            "Received: from client (localhost [127.0.0.1])\n\tby mx; Tue, 1 Dec 2026\n"
            "X-After-Received: 1\n"
            "From: a@example.com\nTo: b@example.com\nX-Tag: one\nX-Tag: TWO\nReceived: fake\nX-Spam: no\n"
            "\nbody line 1\nbody line 2\n");
  message->InsertHeader(0, "X-Top", " 0");  // Before ours (as OpenDKIM puts its signature).
  EXPECT_EQ(message->fields().front().name, "X-Top");
  // Still never shown to a milter, but from now on counted by changes, as Postfix does.
  EXPECT_TRUE(message->ShownToMilters(0));
  EXPECT_FALSE(message->ShownToMilters(1));
  message->ChangeHeader(1, "X-Top", "");  // A field before ours deleted: ours moves up.
  EXPECT_FALSE(message->ShownToMilters(0));
  message->InsertHeader(0, "X-Top", " 0");
  message->ChangeHeader(1, "Received", "");  // The first Received: is now ours: deleted.
  EXPECT_EQ(message->fields()[1].name, "X-After-Received");
  EXPECT_TRUE(message->ShownToMilters(1));
}

TEST(MilterMessageTest, ReplacedBodyTakesCrLfAcrossChunks) {
  std::unique_ptr<MilterMessage> message = Spooled(kMessage, 1000);
  ASSERT_TRUE(message->ReplaceBody("new\r").ok());
  ASSERT_TRUE(message->ReplaceBody("\nbody\r\n").ok());
  // Not yet: the old body stands until the milter's edits end.
  EXPECT_EQ(BodyForMilter(*message, 100), "body line 1\r\nbody line 2\r\n");
  message->EndOfEdits();
  EXPECT_EQ(BodyForMilter(*message, 100), "new\r\nbody\r\n");
  EXPECT_NE(Stored(*message).find("\n\nnew\nbody\n"), std::string::npos);
}

TEST(MilterMessageTest, AnUnfinishedReplacementIsDroppedForTheNextMilter) {
  std::unique_ptr<MilterMessage> message = Spooled(kMessage, 1000);
  message->BeginEdits();
  ASSERT_TRUE(message->ReplaceBody("half of a body from a milter that then failed\r\n").ok());
  message->BeginEdits();  // The next milter.
  ASSERT_TRUE(message->ReplaceBody("whole\r\n").ok());
  message->EndOfEdits();
  EXPECT_EQ(BodyForMilter(*message, 100), "whole\r\n");
}

TEST(MilterMessageTest, NonHeaderLineStartsTheBody) {
  std::unique_ptr<MilterMessage> message = Spooled("Received: x\nSubject: s\nnot a header\nmore\n", 2);
  EXPECT_EQ(message->fields().size(), 2u);
  EXPECT_EQ(Stored(*message), "Received: x\nSubject: s\nnot a header\nmore\n");
}

TEST(MilterMessageTest, HeaderSectionPastTheMemoryLimitContinuesAsBody) {
  absl::StatusOr<std::unique_ptr<MilterMessage>> message = MilterMessage::Create(::testing::TempDir(), 64);
  ASSERT_TRUE(message.ok());
  std::string content;
  for (int i = 0; i < 20; ++i) content += "X-Field: value value\n";
  content += "\nbody\n";
  ASSERT_TRUE((*message)->Append(content).ok());
  ASSERT_TRUE((*message)->Finish().ok());
  EXPECT_LT((*message)->fields().size(), 20u);
  EXPECT_EQ(Stored(**message), content);
}

}  // namespace
}  // namespace postgate::gateway::milter
