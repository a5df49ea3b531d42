#include "smtp-gateway/session/milter_support.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace postgate::gateway {
namespace {

using ::testing::ElementsAre;

TEST(MilterSupportTest, EsmtpArgumentsAsTheClientWroteThem) {
  EXPECT_THAT(EsmtpArguments("MAIL FROM:<a@example.com> SIZE=100 BODY=8bitmime"),
              ElementsAre("SIZE=100", "BODY=8bitmime"));
  // A '>' inside a quoted local part does not end the path.
  EXPECT_THAT(EsmtpArguments("RCPT TO:<\"x>y\"@example.com> NOTIFY=NEVER"), ElementsAre("NOTIFY=NEVER"));
  EXPECT_THAT(EsmtpArguments("MAIL FROM:<>"), ElementsAre());
}

TEST(MilterSupportTest, MilterRepliesBecomeSmtpReplies) {
  const smtp::Reply reply = MilterReply("550-5.7.1 first\r\n550 5.7.1 second");
  EXPECT_EQ(reply.code, 550);
  EXPECT_THAT(reply.lines, ElementsAre("5.7.1 first", "5.7.1 second"));
}

// As the session rewrites an envelope: team@ is a virtual alias of a@ and b@ (ORCPT kept); the
// sender gets a canonical domain.
void Rewrite(protocol::Transaction& given) {
  if (!given.sender.empty()) given.sender += ".canonical";
  std::vector<std::string> recipients;
  std::vector<protocol::RecipientDsn> dsn;
  for (size_t i = 0; i < given.recipients.size(); ++i) {
    if (given.recipients[i] == "team@example.com") {
      for (const char* member : {"a@example.com", "b@example.com"}) {
        recipients.push_back(member);
        dsn.emplace_back().original_recipient = "rfc822;team@example.com";
      }
    } else {
      recipients.push_back(given.recipients[i]);
      dsn.push_back(given.recipient_dsn[i]);
    }
  }
  given.recipients = std::move(recipients);
  given.recipient_dsn = std::move(dsn);
}

TEST(MilterSupportTest, EnvelopeEditsApplyToTheQueuedEnvelope) {
  protocol::Transaction transaction;
  transaction.sender = "s@example.com";
  transaction.recipients = {"x@example.com", "y@example.com"};
  transaction.recipient_dsn.resize(2);
  transaction.recipient_dsn[1].original_recipient = "rfc822;alias@example.com";
  milter::MilterEnvelope edits;
  edits.sender_changed = true;
  edits.sender = "<new@example.com>";
  edits.deleted = {"<X@example.com>", "alias@example.com", "<not a path"};
  edits.added = {"<team@example.com> NOTIFY=NEVER", "<a@example.com>", "garbage<"};
  EXPECT_TRUE(ApplyEnvelopeEdits(edits, Rewrite, transaction));
  EXPECT_EQ(transaction.sender, "new@example.com.canonical");
  // x by its address (case aside), y by the address the client gave; team expanded, once each.
  EXPECT_THAT(transaction.recipients, ElementsAre("a@example.com", "b@example.com"));
  ASSERT_EQ(transaction.recipient_dsn.size(), 2u);
  EXPECT_EQ(transaction.recipient_dsn[0].original_recipient, "rfc822;team@example.com");
}

TEST(MilterSupportTest, NoRecipientEditIsNoChange) {
  protocol::Transaction transaction;
  transaction.recipients = {"x@example.com"};
  milter::MilterEnvelope edits;
  edits.sender_changed = true;
  edits.sender = "<>";  // The null sender is a sender.
  EXPECT_FALSE(ApplyEnvelopeEdits(edits, Rewrite, transaction));
  EXPECT_EQ(transaction.sender, "");
}

}  // namespace
}  // namespace postgate::gateway
