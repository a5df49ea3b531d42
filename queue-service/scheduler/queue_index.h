// What the queue holds that is not DONE, as metadata only (state, size, arrival) – never bodies:
// the status API, the queue-depth gauges and the queue run read it instead of the store. DONE
// messages are only counted here (count and bytes); they are found in the store's indexes, so
// memory follows what is pending, not the history kept for postgate_done_retention. Rebuilt
// from the store at start. Thread-safe.
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
#include "queue-service/model/record.h"

namespace postgate::queue {

// ACTIVE while any recipient is QUEUED, else DEFERRED while any is DEFERRED, else DONE.
// (HOLD is an operator's decision, never derived.)
rec::MessageState DeriveState(const rec::Message& message);

class QueueIndex {
 public:
  struct Entry {
    rec::MessageState state = rec::MESSAGE_STATE_ACTIVE;
    uint64_t size = 0;
    absl::Time arrival;
    std::string idempotency_key;  // Envelope's, "" when none.
    absl::Time next_attempt = absl::InfinitePast();  // DEFERRED: when the next attempt is due.
  };
  struct Summary {
    std::array<uint64_t, 5> messages{};  // Indexed by rec::MessageState.
    std::array<uint64_t, 5> bytes{};
    std::optional<absl::Time> oldest_pending;  // Oldest arrival not yet DONE.
    std::optional<absl::Time> oldest_deferred;  // Oldest arrival among DEFERRED messages.
  };

  // A message's current state. Pending: held. DONE: dropped from the held entries and counted –
  // once, when a held entry becomes DONE (a DONE message never held is already counted).
  void Upsert(const rec::Message& message);
  // A message deleted from the store: forgotten, or its DONE count taken back.
  void Remove(const rec::Message& message);
  // DONE messages in the store at start (the store's done index).
  void SetDone(uint64_t messages, uint64_t bytes);
  Summary Summarize() const;
  // Up to `limit` IDs after `after` in ID order: in `state`, or in every state but DONE when
  // `state` is UNSPECIFIED. (DONE messages are not held: ask the store.)
  // With `descending`, IDs before `after` ("" = from the newest), newest first.
  std::vector<std::string> List(rec::MessageState state, const std::string& after, size_t limit,
                                bool descending = false) const;
  // The ID of a held message stored with `key` (Envelope.idempotency_key), if any.
  std::optional<std::string> FindByIdempotencyKey(const std::string& key) const;
  // DEFERRED messages whose next attempt is due at `now`.
  std::vector<std::string> Due(absl::Time now) const;
  // Held messages (not DONE): how many, for tests and logs.
  size_t held() const;

 private:
  void Upsert(const std::string& id, const Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Erase(std::map<std::string, Entry>::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::string> ids_by_key_ ABSL_GUARDED_BY(mu_);
  uint64_t done_messages_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t done_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace postgate::queue
