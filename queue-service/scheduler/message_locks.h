// One worker at a time per message: a delivery attempt, an operator's hold or delete, a purge.
// Threads block for the lock (Lock); coroutines wait without a thread (LockOrWait): the lock
// goes to waiters in the order they came, handed over by Unlock, so none is missed. Thread-safe.
#pragma once

#include <deque>
#include <functional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace postgate::queue {

class MessageLocks {
 public:
  using Locked = std::function<void()>;

  void Lock(const std::string& id);
  bool TryLock(const std::string& id);
  // True when the lock was free and is now held; otherwise `locked` runs once it is handed over
  // (on the unlocking thread: keep it short).
  bool LockOrWait(const std::string& id, Locked locked);
  void Unlock(const std::string& id);
  size_t held();

 private:
  absl::Mutex mu_;
  // Held locks, each with those waiting for it.
  absl::flat_hash_map<std::string, std::deque<Locked>> held_ ABSL_GUARDED_BY(mu_);
};

}  // namespace postgate::queue
