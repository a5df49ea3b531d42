#include "queue-service/scheduler/retry_policy.h"

#include "gtest/gtest.h"
#include "queue-service/model/message_record.h"
#include "queue-service/model/timestamps.h"
#include "queue-service/scheduler/fake_clock.h"
#include "queue-service/scheduler/queue_index.h"
#include "queue-service/store/memory_message_store.h"
#include "queue-service/model/record.h"

namespace postgate::queue {
namespace {

RetryPolicy Policy() {
  RetryPolicy policy;
  policy.minimal_backoff = absl::Minutes(5);
  policy.maximal_backoff = absl::Minutes(30);
  policy.maximal_queue_lifetime = absl::Hours(24);
  policy.bounce_queue_lifetime = absl::Hours(2);
  policy.delay_warning_time = absl::Hours(4);
  return policy;
}

TEST(RetryPolicyTest, BackoffDoublesFromTheMinimumUpToTheMaximum) {
  const RetryPolicy policy = Policy();
  EXPECT_EQ(policy.Backoff(0), absl::Minutes(5));
  EXPECT_EQ(policy.Backoff(1), absl::Minutes(5));
  EXPECT_EQ(policy.Backoff(2), absl::Minutes(10));
  EXPECT_EQ(policy.Backoff(3), absl::Minutes(20));
  EXPECT_EQ(policy.Backoff(4), absl::Minutes(30));
  EXPECT_EQ(policy.Backoff(1000), absl::Minutes(30));
}

TEST(RetryPolicyTest, NotificationsExpireSoonerAndAreNeverWarnedAbout) {
  const RetryPolicy policy = Policy();
  const absl::Time arrival = absl::FromUnixSeconds(1'800'000'000);
  EXPECT_FALSE(policy.Expired(arrival, false, arrival + absl::Hours(23)));
  EXPECT_TRUE(policy.Expired(arrival, false, arrival + absl::Hours(24)));
  EXPECT_FALSE(policy.Expired(arrival, true, arrival + absl::Minutes(119)));
  EXPECT_TRUE(policy.Expired(arrival, true, arrival + absl::Hours(2)));
  EXPECT_FALSE(policy.DelayWarningDue(arrival, false, arrival + absl::Hours(3)));
  EXPECT_TRUE(policy.DelayWarningDue(arrival, false, arrival + absl::Hours(4)));
  EXPECT_FALSE(policy.DelayWarningDue(arrival, true, arrival + absl::Hours(5)));
  RetryPolicy no_warnings = policy;
  no_warnings.delay_warning_time = absl::ZeroDuration();
  EXPECT_FALSE(no_warnings.DelayWarningDue(arrival, false, arrival + absl::Hours(100)));
}

// What the delivery agent does with each failed attempt, played against the in-memory store and
// the queue index with a clock moved by hand: the queue run finds the message exactly when its
// backoff has passed, the wait doubles, and once past its lifetime the recipient would expire.
TEST(RetryPolicyTest, AQueueRunFindsADeferredMessageWhenItsBackoffHasPassed) {
  FakeClock clock;
  MemoryMessageStore store;
  QueueIndex index;
  const RetryPolicy policy = Policy();
  rec::Envelope envelope;
  envelope.set_sender("foo@mail169.com");
  envelope.add_recipients("a@example.org");
  envelope.add_recipients("b@example.org");
  const absl::Time arrival = clock.Now();
  StoredMessage record = NewMessageRecord("4A1B2C3D4E", envelope, 100, 0, arrival);
  ASSERT_TRUE(store.Commit(record).ok());
  index.Upsert(record.message());

  auto fail_attempt = [&](int recipient) {
    absl::StatusOr<StoredMessage> loaded = store.Get("4A1B2C3D4E");
    ASSERT_TRUE(loaded.ok());
    rec::Message& message = *loaded->mutable_message();
    for (int i = 0; i < message.recipients_size(); ++i) {
      rec::RecipientStatus& status = *message.mutable_recipients(i);
      if (i == recipient) {
        status.set_state(rec::RECIPIENT_STATE_DEFERRED);
        status.set_attempts(status.attempts() + 1);
      } else if (status.state() == rec::RECIPIENT_STATE_QUEUED) {
        status.set_state(rec::RECIPIENT_STATE_DELIVERED);
      }
    }
    policy.Schedule(message, clock.Now());
    ASSERT_TRUE(store.Update(*loaded).ok());
    index.Upsert(message);
  };

  fail_attempt(1);
  EXPECT_EQ(store.Get("4A1B2C3D4E")->message().state(), rec::MESSAGE_STATE_DEFERRED);
  EXPECT_TRUE(index.Due(clock.Now()).empty());
  clock.Advance(absl::Minutes(5) - absl::Seconds(1));
  EXPECT_TRUE(index.Due(clock.Now()).empty());
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(index.Due(clock.Now()), std::vector<std::string>{"4A1B2C3D4E"});

  fail_attempt(1);  // Second failure: ten minutes.
  clock.Advance(absl::Minutes(10) - absl::Seconds(1));
  EXPECT_TRUE(index.Due(clock.Now()).empty());
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(index.Due(clock.Now()).size(), 1u);
  EXPECT_FALSE(policy.Expired(arrival, false, clock.Now()));
  clock.Advance(absl::Hours(24));
  EXPECT_TRUE(policy.Expired(arrival, false, clock.Now()));

  // Delivered at last: DONE, no next attempt, nothing due.
  absl::StatusOr<StoredMessage> loaded = store.Get("4A1B2C3D4E");
  loaded->mutable_message()->mutable_recipients(1)->set_state(rec::RECIPIENT_STATE_DELIVERED);
  policy.Schedule(*loaded->mutable_message(), clock.Now());
  EXPECT_EQ(loaded->message().state(), rec::MESSAGE_STATE_DONE);
  EXPECT_FALSE(loaded->message().has_next_attempt_time());
  ASSERT_TRUE(store.Update(*loaded).ok());
  index.Upsert(loaded->message());
  EXPECT_TRUE(index.Due(clock.Now()).empty());
}

}  // namespace
}  // namespace postgate::queue
