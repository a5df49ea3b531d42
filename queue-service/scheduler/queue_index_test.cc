#include "queue-service/scheduler/queue_index.h"

#include "gtest/gtest.h"

namespace postgate::queue {
namespace {

v1::Message WithRecipients(std::initializer_list<v1::RecipientState> states) {
  v1::Message message;
  for (v1::RecipientState state : states) message.add_recipients()->set_state(state);
  return message;
}

TEST(QueueIndexTest, DeriveState) {
  EXPECT_EQ(DeriveState(WithRecipients({v1::RECIPIENT_STATE_DELIVERED, v1::RECIPIENT_STATE_QUEUED})),
            v1::MESSAGE_STATE_ACTIVE);
  EXPECT_EQ(DeriveState(WithRecipients({v1::RECIPIENT_STATE_BOUNCED, v1::RECIPIENT_STATE_DEFERRED})),
            v1::MESSAGE_STATE_DEFERRED);
  EXPECT_EQ(DeriveState(WithRecipients({v1::RECIPIENT_STATE_DELIVERED, v1::RECIPIENT_STATE_BOUNCED})),
            v1::MESSAGE_STATE_DONE);
}

TEST(QueueIndexTest, SummaryListAndAge) {
  QueueIndex index;
  absl::Time t0 = absl::FromUnixSeconds(1000);
  index.Upsert("A", {v1::MESSAGE_STATE_ACTIVE, 100, t0 + absl::Seconds(5), {}, {}, absl::InfinitePast()});
  index.Upsert("B", {v1::MESSAGE_STATE_DEFERRED, 200, t0, {}, {}, absl::InfinitePast()});
  index.Upsert("C", {v1::MESSAGE_STATE_DONE, 300, t0 - absl::Hours(1), t0, {}, absl::InfinitePast()});
  QueueIndex::Summary summary = index.Summarize();
  EXPECT_EQ(summary.messages[v1::MESSAGE_STATE_ACTIVE], 1u);
  EXPECT_EQ(summary.bytes[v1::MESSAGE_STATE_DEFERRED], 200u);
  EXPECT_EQ(summary.messages[v1::MESSAGE_STATE_DONE], 1u);
  EXPECT_EQ(*summary.oldest_pending, t0);  // The DONE message does not count.
  EXPECT_EQ(*summary.oldest_deferred, t0);
  // An older active message is the oldest pending one, not the oldest deferred one.
  index.Upsert("E", {v1::MESSAGE_STATE_ACTIVE, 10, t0 - absl::Minutes(1), {}, {}, absl::InfinitePast()});
  EXPECT_EQ(*index.Summarize().oldest_pending, t0 - absl::Minutes(1));
  EXPECT_EQ(*index.Summarize().oldest_deferred, t0);
  index.Remove("E");
  EXPECT_EQ(index.List(v1::MESSAGE_STATE_UNSPECIFIED, "", 10), (std::vector<std::string>{"A", "B"}));
  EXPECT_EQ(index.List(v1::MESSAGE_STATE_DONE, "", 10), (std::vector<std::string>{"C"}));
  EXPECT_EQ(index.List(v1::MESSAGE_STATE_UNSPECIFIED, "A", 10), (std::vector<std::string>{"B"}));
  EXPECT_EQ(index.List(v1::MESSAGE_STATE_UNSPECIFIED, "", 1), (std::vector<std::string>{"A"}));
  EXPECT_EQ(index.List(v1::MESSAGE_STATE_UNSPECIFIED, "", 10, true), (std::vector<std::string>{"B", "A"}));
  EXPECT_EQ(index.List(v1::MESSAGE_STATE_UNSPECIFIED, "B", 10, true), (std::vector<std::string>{"A"}));
  index.Upsert("D", {v1::MESSAGE_STATE_HOLD, 50, t0, {}, {}, absl::InfinitePast()});
  EXPECT_EQ(index.Summarize().messages[v1::MESSAGE_STATE_HOLD], 1u);
  EXPECT_EQ(index.List(v1::MESSAGE_STATE_UNSPECIFIED, "C", 10), (std::vector<std::string>{"D"}));
  index.Remove("D");
  EXPECT_EQ(index.Older(v1::MESSAGE_STATE_DONE, t0 + absl::Seconds(1)), (std::vector<std::string>{"C"}));
  index.Remove("C");
  EXPECT_EQ(index.Summarize().messages[v1::MESSAGE_STATE_DONE], 0u);
}

}  // namespace
}  // namespace postgate::queue
