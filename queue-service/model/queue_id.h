// Queue IDs that look like Postfix's short IDs (upper-case hex) – 13 digits: the arrival time in
// microseconds since 1970. They sort in arrival order (the store lists messages by key) and are
// unique across restarts: the generator never goes below the newest ID already stored, nor
// repeats one when the clock stands still or steps back. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace postgate::queue {

inline constexpr size_t kQueueIdLength = 13;

bool IsValidQueueId(absl::string_view id);

class QueueIdGenerator {
 public:
  // `newest_existing` is the largest ID in the store, or "" for an empty store.
  explicit QueueIdGenerator(absl::string_view newest_existing = "");

  std::string Next(absl::Time now);
  // Never issue an ID at or below `id` (the newest one found in the store after a restart).
  void AtLeast(absl::string_view id);

 private:
  std::atomic<uint64_t> last_;
};

}  // namespace postgate::queue
