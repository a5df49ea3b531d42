// Graceful drain (SIGTERM under Kubernetes): once started, idle sessions are told
// "421 4.3.2 Service shutting down" and closed, new connections get the same 421 instead of a
// greeting (never a reset from a closed listener), and sessions in the middle of a message finish
// it first. The server waits until no session is left, or the grace period ends.
// Thread-safe: sessions register from their own io_context threads.
#pragma once

#include <atomic>
#include <functional>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace postgate::gateway {

class DrainControl {
 public:
  // A session's "drain now if you are idle" action; it runs on the session's own executor.
  using Nudge = std::function<void()>;

  bool draining() const { return draining_.load(std::memory_order_acquire); }
  int active_sessions() const { return active_.load(std::memory_order_acquire); }
  // When the last session started; the server closes its listener only after a quiet spell, so
  // connections still arriving get a 421 rather than a reset from a closed listener.
  absl::Time last_session_start() const;

  // Returns a handle for Unregister.
  uint64_t Register(Nudge nudge);
  void Unregister(uint64_t handle);

  // Sets draining and nudges every registered session.
  void Start();

 private:
  std::atomic<bool> draining_{false};
  std::atomic<int> active_{0};
  absl::Mutex mu_;
  uint64_t next_handle_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, Nudge> sessions_ ABSL_GUARDED_BY(mu_);
  absl::Time last_start_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace postgate::gateway
