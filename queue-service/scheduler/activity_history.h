// The last hour of queue events, counted minute by minute, for GetActivity (the web console's
// chart). Fed by the EventBus's observer, so it counts exactly what WatchEvents streams. Sixty
// slots reused in turn: constant memory however long the process runs. Thread-safe.
#pragma once

#include <array>
#include <cstdint>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "postgate/queue/v1/queue.pb.h"

namespace postgate::queue {

class ActivityHistory {
 public:
  static constexpr int kMinutes = 60;

  // Counts `event` in the minute of its time; kinds other than received, delivered, deferred and
  // bounced, and events older than the hour, are not counted.
  void Record(const v1::QueueEvent& event);

  // The sixty minutes up to and including `now`'s, oldest first; minutes without events are zeros.
  v1::Activity Snapshot(absl::Time now) const;

 private:
  struct Minute {
    int64_t number = -1;  // Minutes since the epoch this slot counts; -1: never used.
    uint64_t received = 0, delivered = 0, deferred = 0, bounced = 0;
  };
  mutable absl::Mutex mu_;
  std::array<Minute, kMinutes> slots_ ABSL_GUARDED_BY(mu_);
  int64_t newest_ ABSL_GUARDED_BY(mu_) = -1;  // The latest minute recorded.
};

}  // namespace postgate::queue
