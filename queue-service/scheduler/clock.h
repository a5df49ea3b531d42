// The time the scheduler reads: the system's in the service, a fake one in tests, so backoff,
// lifetimes and suspensions are checked without waiting for them.
#pragma once

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace postgate::queue {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

class SystemClock : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

// One process-wide instance, for the service's objects.
inline const Clock& RealClock() {
  static const SystemClock clock;
  return clock;
}

}  // namespace postgate::queue
