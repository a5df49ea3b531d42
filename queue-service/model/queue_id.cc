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

QueueIdGenerator::QueueIdGenerator(absl::string_view newest_existing) : last_(0) {
  AtLeast(newest_existing);
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
    next = micros > previous ? micros : previous + 1;
  } while (!last_.compare_exchange_weak(previous, next, std::memory_order_relaxed));
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%013llX", static_cast<unsigned long long>(next));
  return buffer;
}

}  // namespace postgate::queue
