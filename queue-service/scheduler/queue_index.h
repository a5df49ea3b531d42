// What the queue holds, as metadata only (state, size, arrival) – never bodies: the status API and
// the queue-depth gauges read it instead of scanning the store. Rebuilt from the store at start.
// Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "postgate/queue/v1/queue.pb.h"

namespace postgate::queue {

// ACTIVE while any recipient is QUEUED, else DEFERRED while any is DEFERRED, else DONE.
// (HOLD is an operator's decision, never derived.)
v1::MessageState DeriveState(const v1::Message& message);

class QueueIndex {
 public:
  struct Entry {
    v1::MessageState state = v1::MESSAGE_STATE_ACTIVE;
    uint64_t size = 0;
    absl::Time arrival;
    absl::Time completion;  // For DONE entries.
    std::string idempotency_key;  // Envelope's, "" when none.
    absl::Time next_attempt = absl::InfinitePast();  // DEFERRED: when the next attempt is due.
  };
  struct Summary {
    std::array<uint64_t, 5> messages{};  // Indexed by v1::MessageState.
    std::array<uint64_t, 5> bytes{};
    std::optional<absl::Time> oldest_pending;  // Oldest arrival not yet DONE.
    std::optional<absl::Time> oldest_deferred;  // Oldest arrival among DEFERRED messages.
  };

  void Upsert(const std::string& id, const Entry& entry);
  void Upsert(const v1::Message& message);
  void Remove(const std::string& id);
  Summary Summarize() const;
  // Up to `limit` IDs after `after` in ID order: in `state`, or every state but DONE when
  // `state` is UNSPECIFIED.
  // With `descending`, IDs before `after` ("" = from the newest), newest first.
  std::vector<std::string> List(v1::MessageState state, const std::string& after, size_t limit,
                                bool descending = false) const;
  bool Contains(const std::string& id) const;
  // The ID of the message stored with `key` (Envelope.idempotency_key), if any.
  std::optional<std::string> FindByIdempotencyKey(const std::string& key) const;
  // The largest ID held, "" when empty.
  std::string NewestId() const;
  // DEFERRED messages whose next attempt is due at `now`.
  std::vector<std::string> Due(absl::Time now) const;
  // IDs in `state` whose completion (DONE) or arrival (others) is before `before`.
  std::vector<std::string> Older(v1::MessageState state, absl::Time before) const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::string> ids_by_key_ ABSL_GUARDED_BY(mu_);
};

}  // namespace postgate::queue
