#include "queue-service/scheduler/message_locks.h"

namespace postgate::queue {

bool MessageLocks::TryLock(const std::string& id) {
  absl::MutexLock lock(&mu_);
  return held_.try_emplace(id).second;
}

bool MessageLocks::LockOrWait(const std::string& id, Locked locked) {
  absl::MutexLock lock(&mu_);
  auto [it, taken] = held_.try_emplace(id);
  if (!taken) it->second.push_back(std::move(locked));
  return taken;
}

void MessageLocks::Lock(const std::string& id) {
  bool granted = false;
  if (LockOrWait(id, [this, &granted] {
        absl::MutexLock lock(&mu_);
        granted = true;
      })) {
    return;
  }
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&granted));
}

void MessageLocks::Unlock(const std::string& id) {
  Locked next;
  {
    absl::MutexLock lock(&mu_);
    auto it = held_.find(id);
    if (it == held_.end()) return;
    if (it->second.empty()) {
      held_.erase(it);
      return;
    }
    next = std::move(it->second.front());  // The lock stays held: it passes to this waiter.
    it->second.pop_front();
  }
  next();
}

size_t MessageLocks::held() {
  absl::MutexLock lock(&mu_);
  return held_.size();
}

}  // namespace postgate::queue
