#include "queue-service/model/queue_id.h"

#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"

namespace postgate::queue {

bool IsValidQueueId(absl::string_view id) {
  if (id.size() != kQueueIdLength) return false;
  for (char c : id) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && !(c >= 'A' && c <= 'F')) return false;
  }
  return true;
}

int QueueIdReplica(absl::string_view id) {
  uint64_t value = 0;
  if (!IsValidQueueId(id) || !absl::SimpleHexAtoi(id, &value)) return -1;
  return static_cast<int>(value % kMaxReplicas);
}

QueueIdGenerator::QueueIdGenerator(absl::string_view newest_existing, int replica)
    : last_(0), replica_(replica) {
  AtLeast(newest_existing);
}

bool QueueIdGenerator::Adopt(absl::string_view id, absl::Time now) {
  uint64_t value = 0;
  if (!IsValidQueueId(id) || !absl::SimpleHexAtoi(id, &value)) return false;
  if (static_cast<int>(value % kMaxReplicas) != replica_) return false;
  if (value > static_cast<uint64_t>(absl::ToUnixMicros(now + absl::Seconds(1)))) return false;
  AtLeast(id);
  return true;
}

void QueueIdGenerator::AtLeast(absl::string_view id) {
  uint64_t value = 0;
  if (!IsValidQueueId(id) || !absl::SimpleHexAtoi(id, &value)) return;
  uint64_t previous = last_.load();
  while (previous < value && !last_.compare_exchange_weak(previous, value)) {
  }
}

std::string QueueIdGenerator::Next(absl::Time now) {
  const uint64_t micros = static_cast<uint64_t>(absl::ToUnixMicros(now));
  uint64_t previous = last_.load(std::memory_order_relaxed);
  uint64_t next;
  do {
    const uint64_t earliest = micros > previous ? micros : previous + 1;
    // The smallest value from `earliest` on that ends in this replica's digit.
    next = earliest - earliest % kMaxReplicas + static_cast<uint64_t>(replica_);
    if (next < earliest) next += kMaxReplicas;
  } while (!last_.compare_exchange_weak(previous, next, std::memory_order_relaxed));
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%013llX", static_cast<unsigned long long>(next));
  return buffer;
}

}  // namespace postgate::queue
