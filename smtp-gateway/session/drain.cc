#include "smtp-gateway/session/drain.h"

#include <vector>

#include "absl/time/clock.h"

namespace postgate::gateway {

uint64_t DrainControl::Register(Nudge nudge) {
  active_.fetch_add(1, std::memory_order_acq_rel);
  absl::MutexLock lock(&mu_);
  last_start_ = absl::Now();
  const uint64_t handle = ++next_handle_;
  sessions_.emplace(handle, std::move(nudge));
  return handle;
}

void DrainControl::Unregister(uint64_t handle) {
  {
    absl::MutexLock lock(&mu_);
    sessions_.erase(handle);
  }
  active_.fetch_sub(1, std::memory_order_acq_rel);
}

absl::Time DrainControl::last_session_start() const {
  absl::MutexLock lock(const_cast<absl::Mutex*>(&mu_));
  return last_start_;
}

void DrainControl::Start() {
  draining_.store(true, std::memory_order_release);
  std::vector<Nudge> nudges;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [handle, nudge] : sessions_) nudges.push_back(nudge);
  }
  for (const Nudge& nudge : nudges) nudge();
}

}  // namespace postgate::gateway
