#include "queue-service/scheduler/queue_index.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "queue-service/model/timestamps.h"
#include "queue-service/model/record.h"

namespace postgate::queue {
namespace {

rec::Message WithRecipients(std::initializer_list<rec::RecipientState> states) {
  rec::Message message;
  for (rec::RecipientState state : states) message.add_recipients()->set_state(state);
  return message;
}

TEST(QueueIndexTest, DeriveState) {
  EXPECT_EQ(DeriveState(WithRecipients({rec::RECIPIENT_STATE_DELIVERED, rec::RECIPIENT_STATE_QUEUED})),
            rec::MESSAGE_STATE_ACTIVE);
  EXPECT_EQ(DeriveState(WithRecipients({rec::RECIPIENT_STATE_BOUNCED, rec::RECIPIENT_STATE_DEFERRED})),
            rec::MESSAGE_STATE_DEFERRED);
  EXPECT_EQ(DeriveState(WithRecipients({rec::RECIPIENT_STATE_DELIVERED, rec::RECIPIENT_STATE_BOUNCED})),
            rec::MESSAGE_STATE_DONE);
}

rec::Message Message(const std::string& id, rec::MessageState state, uint64_t size, absl::Time arrival,
                    const std::string& key = "") {
  rec::Message message;
  message.set_queue_id(id);
  message.set_state(state);
  message.set_size(size);
  SetTimestamp(message.mutable_arrival_time(), arrival);
  message.mutable_envelope()->set_idempotency_key(key);
  return message;
}

TEST(QueueIndexTest, SummaryListAndAge) {
  QueueIndex index;
  absl::Time t0 = absl::FromUnixSeconds(1000);
  index.Upsert(Message("A", rec::MESSAGE_STATE_ACTIVE, 100, t0 + absl::Seconds(5)));
  index.Upsert(Message("B", rec::MESSAGE_STATE_DEFERRED, 200, t0));
  index.Upsert(Message("C", rec::MESSAGE_STATE_ACTIVE, 300, t0 - absl::Hours(1)));
  index.Upsert(Message("C", rec::MESSAGE_STATE_DONE, 300, t0 - absl::Hours(1)));
  QueueIndex::Summary summary = index.Summarize();
  EXPECT_EQ(summary.messages[rec::MESSAGE_STATE_ACTIVE], 1u);
  EXPECT_EQ(summary.bytes[rec::MESSAGE_STATE_DEFERRED], 200u);
  EXPECT_EQ(summary.messages[rec::MESSAGE_STATE_DONE], 1u);
  EXPECT_EQ(summary.bytes[rec::MESSAGE_STATE_DONE], 300u);
  EXPECT_EQ(*summary.oldest_pending, t0);  // The DONE message does not count.
  EXPECT_EQ(*summary.oldest_deferred, t0);
  // An older active message is the oldest pending one, not the oldest deferred one.
  const rec::Message e = Message("E", rec::MESSAGE_STATE_ACTIVE, 10, t0 - absl::Minutes(1));
  index.Upsert(e);
  EXPECT_EQ(*index.Summarize().oldest_pending, t0 - absl::Minutes(1));
  EXPECT_EQ(*index.Summarize().oldest_deferred, t0);
  index.Remove(e);
  EXPECT_EQ(index.List(rec::MESSAGE_STATE_UNSPECIFIED, "", 10), (std::vector<std::string>{"A", "B"}));
  EXPECT_EQ(index.List(rec::MESSAGE_STATE_UNSPECIFIED, "A", 10), (std::vector<std::string>{"B"}));
  EXPECT_EQ(index.List(rec::MESSAGE_STATE_UNSPECIFIED, "", 1), (std::vector<std::string>{"A"}));
  EXPECT_EQ(index.List(rec::MESSAGE_STATE_UNSPECIFIED, "", 10, true), (std::vector<std::string>{"B", "A"}));
  EXPECT_EQ(index.List(rec::MESSAGE_STATE_UNSPECIFIED, "B", 10, true), (std::vector<std::string>{"A"}));
  const rec::Message d = Message("D", rec::MESSAGE_STATE_HOLD, 50, t0);
  index.Upsert(d);
  EXPECT_EQ(index.Summarize().messages[rec::MESSAGE_STATE_HOLD], 1u);
  EXPECT_EQ(index.List(rec::MESSAGE_STATE_UNSPECIFIED, "C", 10), (std::vector<std::string>{"D"}));
  index.Remove(d);
  index.Remove(Message("C", rec::MESSAGE_STATE_DONE, 300, t0));  // Purged from the store.
  EXPECT_EQ(index.Summarize().messages[rec::MESSAGE_STATE_DONE], 0u);
  EXPECT_EQ(index.Summarize().bytes[rec::MESSAGE_STATE_DONE], 0u);
}

// Memory follows the queue, not the history: a finished message leaves nothing behind but a count.
TEST(QueueIndexTest, FinishedMessagesAreCountedNotHeld) {
  QueueIndex index;
  index.SetDone(1000, 50000);  // What the store holds from before the start.
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  for (int i = 0; i < 500; ++i) {
    const std::string id = absl::StrCat("M", i), key = absl::StrCat("key-", i);
    index.Upsert(Message(id, rec::MESSAGE_STATE_ACTIVE, 100, t0, key));
    EXPECT_EQ(index.FindByIdempotencyKey(key), std::optional<std::string>(id));
    index.Upsert(Message(id, rec::MESSAGE_STATE_DONE, 100, t0, key));
    index.Upsert(Message(id, rec::MESSAGE_STATE_DONE, 100, t0, key));  // Again: counted once.
    EXPECT_EQ(index.FindByIdempotencyKey(key), std::nullopt);  // The store's index answers now.
  }
  EXPECT_EQ(index.held(), 0u);
  EXPECT_EQ(index.Summarize().messages[rec::MESSAGE_STATE_DONE], 1500u);
  EXPECT_EQ(index.Summarize().bytes[rec::MESSAGE_STATE_DONE], 100000u);
  EXPECT_TRUE(index.List(rec::MESSAGE_STATE_DONE, "", 10).empty());
}

}  // namespace
}  // namespace postgate::queue
