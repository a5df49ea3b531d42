#include "queue-service/scheduler/activity_history.h"

#include <algorithm>

#include "queue-service/model/timestamps.h"

namespace postgate::queue {
namespace {

int64_t MinuteOf(absl::Time t) { return absl::ToUnixSeconds(t) / 60; }  // Times after 1970.

}  // namespace

void ActivityHistory::Record(const v1::QueueEvent& event) {
  const int64_t minute = MinuteOf(FromTimestamp(event.time()));
  absl::MutexLock lock(&mu_);
  if (newest_ >= 0 && minute <= newest_ - kMinutes) return;  // Older than the hour kept.
  newest_ = std::max(newest_, minute);
  Minute& slot = slots_[static_cast<size_t>(minute % kMinutes)];
  if (slot.number != minute) slot = Minute{minute};
  switch (event.kind()) {
    case v1::EVENT_KIND_RECEIVED: ++slot.received; break;
    case v1::EVENT_KIND_DELIVERED: ++slot.delivered; break;
    case v1::EVENT_KIND_DEFERRED: ++slot.deferred; break;
    case v1::EVENT_KIND_BOUNCED: ++slot.bounced; break;
    default: break;
  }
}

v1::Activity ActivityHistory::Snapshot(absl::Time now) const {
  const int64_t current = MinuteOf(now);
  v1::Activity activity;
  absl::MutexLock lock(&mu_);
  for (int64_t minute = current - kMinutes + 1; minute <= current; ++minute) {
    v1::ActivityMinute* out = activity.add_minutes();
    SetTimestamp(out->mutable_start(), absl::FromUnixSeconds(minute * 60));
    const Minute& slot = slots_[static_cast<size_t>(minute % kMinutes)];
    if (slot.number != minute) continue;
    out->set_received(slot.received);
    out->set_delivered(slot.delivered);
    out->set_deferred(slot.deferred);
    out->set_bounced(slot.bounced);
  }
  return activity;
}

}  // namespace postgate::queue
