#include "queue-service/scheduler/activity_history.h"

#include "gtest/gtest.h"
#include "queue-service/model/timestamps.h"

namespace postgate::queue {
namespace {

v1::QueueEvent At(v1::EventKind kind, absl::Time time) {
  v1::QueueEvent event;
  event.set_kind(kind);
  SetTimestamp(event.mutable_time(), time);
  return event;
}

const absl::Time kNoon = absl::FromUnixSeconds(1796212800);  // 2026-12-02 12:00:00 UTC, a whole minute.

TEST(ActivityHistoryTest, CountsEachKindInItsMinuteOldestFirst) {
  ActivityHistory history;
  history.Record(At(v1::EVENT_KIND_RECEIVED, kNoon + absl::Seconds(5)));
  history.Record(At(v1::EVENT_KIND_RECEIVED, kNoon + absl::Seconds(59)));
  history.Record(At(v1::EVENT_KIND_DELIVERED, kNoon + absl::Seconds(61)));
  history.Record(At(v1::EVENT_KIND_DEFERRED, kNoon + absl::Minutes(2)));
  history.Record(At(v1::EVENT_KIND_BOUNCED, kNoon + absl::Minutes(2)));
  history.Record(At(v1::EVENT_KIND_HELD, kNoon + absl::Minutes(2)));  // Not a counted kind.

  const v1::Activity activity = history.Snapshot(kNoon + absl::Minutes(2) + absl::Seconds(30));
  ASSERT_EQ(activity.minutes_size(), ActivityHistory::kMinutes);
  const v1::ActivityMinute& noon = activity.minutes(57);
  EXPECT_EQ(FromTimestamp(noon.start()), kNoon);
  EXPECT_EQ(noon.received(), 2u);
  EXPECT_EQ(noon.delivered(), 0u);
  EXPECT_EQ(activity.minutes(58).delivered(), 1u);
  const v1::ActivityMinute& last = activity.minutes(59);
  EXPECT_EQ(FromTimestamp(last.start()), kNoon + absl::Minutes(2));
  EXPECT_EQ(last.deferred(), 1u);
  EXPECT_EQ(last.bounced(), 1u);
  EXPECT_EQ(last.received(), 0u);
  EXPECT_EQ(FromTimestamp(activity.minutes(0).start()), kNoon + absl::Minutes(2) - absl::Minutes(59));
}

TEST(ActivityHistoryTest, ASlotReusedAnHourLaterStartsFromZero) {
  ActivityHistory history;
  history.Record(At(v1::EVENT_KIND_RECEIVED, kNoon));
  history.Record(At(v1::EVENT_KIND_RECEIVED, kNoon + absl::Hours(1)));  // Same slot, next hour.
  const v1::Activity activity = history.Snapshot(kNoon + absl::Hours(1));
  EXPECT_EQ(activity.minutes(59).received(), 1u);
  for (int i = 0; i < 59; ++i) EXPECT_EQ(activity.minutes(i).received(), 0u) << i;
}

TEST(ActivityHistoryTest, MinutesWithoutEventsAndTooOldEventsCountNothing) {
  ActivityHistory history;
  history.Record(At(v1::EVENT_KIND_RECEIVED, kNoon + absl::Hours(2)));
  history.Record(At(v1::EVENT_KIND_RECEIVED, kNoon));  // Two hours before the newest: dropped.
  v1::Activity later = history.Snapshot(kNoon + absl::Hours(3));  // An hour after: all quiet.
  for (const v1::ActivityMinute& minute : later.minutes()) EXPECT_EQ(minute.received(), 0u);
  v1::Activity then = history.Snapshot(kNoon + absl::Hours(2));
  EXPECT_EQ(then.minutes(59).received(), 1u);
  EXPECT_EQ(then.minutes(0).received(), 0u);
}

}  // namespace
}  // namespace postgate::queue
