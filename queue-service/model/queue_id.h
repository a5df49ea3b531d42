// Queue IDs that look like Postfix's short IDs (upper-case hex) – 13 digits: the arrival time in
// microseconds since 1970 whose last hex digit is replaced by the replica number (0–15, the
// StatefulSet ordinal), so IDs are unique across replicas and name the replica that holds the
// message. They sort in arrival order (the store lists messages by key) and are unique across
// restarts: the generator never goes below the newest ID already stored, nor repeats one when
// the clock stands still or steps back. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace postgate::queue {

inline constexpr size_t kQueueIdLength = 13;
inline constexpr int kMaxReplicas = 16;

bool IsValidQueueId(absl::string_view id);
// The replica that issued a valid ID.
int QueueIdReplica(absl::string_view id);

class QueueIdGenerator {
 public:
  // `newest_existing` is the largest ID in the store, or "" for an empty store.
  explicit QueueIdGenerator(absl::string_view newest_existing = "", int replica = 0);

  std::string Next(absl::Time now);
  // Never issue an ID at or below `id` (the newest one found in the store after a restart).
  void AtLeast(absl::string_view id);
  // A retry's request to keep the ID it was given, perhaps by this replica before a restart:
  // true when `id` carries this replica's digit and is not ahead of `now`; from then on the
  // generator never issues it. (The caller checks it is neither stored nor in use.)
  bool Adopt(absl::string_view id, absl::Time now);
  int replica() const { return replica_; }

 private:
  std::atomic<uint64_t> last_;
  const int replica_;
};

}  // namespace postgate::queue
