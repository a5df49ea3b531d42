#include "queue-service/model/message_record.h"

#include "gtest/gtest.h"
#include "queue-service/model/record.h"

namespace postgate::queue {
namespace {

rec::Envelope Envelope(std::string sender, std::vector<std::string> recipients) {
  rec::Envelope envelope;
  envelope.set_sender(std::move(sender));
  for (std::string& recipient : recipients) envelope.add_recipients(std::move(recipient));
  return envelope;
}

TEST(ValidateEnvelopeTest, AcceptsWhatTheGatewaySends) {
  EXPECT_TRUE(ValidateEnvelope(Envelope("foo@mail169.com", {"bar@mail169.com", "x@example.org"})).ok());
  EXPECT_TRUE(ValidateEnvelope(Envelope("", {"foo@mail169.com"})).ok());  // A bounce.
}

TEST(ValidateEnvelopeTest, NamesTheBadField) {
  EXPECT_EQ(ValidateEnvelope(Envelope("foo@mail169.com", {})).message(), "envelope.recipients: empty");
  EXPECT_EQ(ValidateEnvelope(Envelope("foo@mail169.com", {"bar@mail169.com", "../etc/passwd@"})).message(),
            "envelope.recipients[1]: not a mailbox");
  EXPECT_EQ(ValidateEnvelope(Envelope("a b@c", {"bar@mail169.com"})).message(), "envelope.sender: not a mailbox");
  EXPECT_EQ(ValidateEnvelope(Envelope("", {std::string(600, 'a') + "@mail169.com"})).message(),
            "envelope.recipients[0]: not a mailbox");
  rec::Envelope options = Envelope("", {"a@b.c", "d@e.f"});
  options.add_recipient_options();
  EXPECT_EQ(ValidateEnvelope(options).message(), "envelope.recipient_options: one entry per recipient, or none");
}

TEST(NewMessageRecordTest, EveryRecipientQueuedWithItsOptions) {
  rec::Envelope envelope = Envelope("foo@mail169.com", {"a@b.c", "d@e.f"});
  envelope.add_recipient_options()->set_notify_success(true);
  envelope.add_recipient_options()->set_notify_failure(true);
  rec::StoredMessage record = NewMessageRecord("4F1A09C2B70", envelope, 123, 2, absl::FromUnixSeconds(1000));
  ASSERT_EQ(record.message().recipients_size(), 2);
  EXPECT_EQ(record.message().recipients(1).address(), "d@e.f");
  EXPECT_TRUE(record.message().recipients(0).options().notify_success());
  EXPECT_EQ(record.message().recipients(1).state(), rec::RECIPIENT_STATE_QUEUED);
  EXPECT_EQ(record.chunk_count(), 2u);
}

}  // namespace
}  // namespace postgate::queue
