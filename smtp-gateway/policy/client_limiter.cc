#include "smtp-gateway/policy/client_limiter.h"

namespace postgate::gateway::policy {

ClientLimiter::Admission ClientLimiter::Admit(const std::string& client, const ClientLimits& limits,
                                              absl::Time now) {
  absl::MutexLock lock(&mu_);
  Counts& counts = Current(client, limits.time_unit, now);
  ++counts.opened;
  if (limits.rate_limit > 0 && counts.opened > limits.rate_limit) return {Verdict::kTooFast, counts.opened};
  if (limits.count_limit > 0 && counts.open + 1 > limits.count_limit) {
    return {Verdict::kTooManyOpen, counts.open + 1};
  }
  ++counts.open;
  return {Verdict::kAdmitted, counts.open};
}

ClientLimiter::Counts& ClientLimiter::Current(const std::string& client, absl::Duration time_unit, absl::Time now) {
  Sweep(now, time_unit);
  Counts& counts = clients_[client];
  if (now - counts.window_start >= time_unit) {
    counts.window_start = now;
    counts.opened = 0;
    counts.auths = 0;
  }
  return counts;
}

size_t ClientLimiter::CountAuth(const std::string& client, absl::Duration time_unit, absl::Time now) {
  absl::MutexLock lock(&mu_);
  return ++Current(client, time_unit, now).auths;
}

void ClientLimiter::Release(const std::string& client) {
  absl::MutexLock lock(&mu_);
  auto it = clients_.find(client);
  if (it != clients_.end() && it->second.open > 0) --it->second.open;
}

size_t ClientLimiter::TrackedClients() {
  absl::MutexLock lock(&mu_);
  return clients_.size();
}

void ClientLimiter::Sweep(absl::Time now, absl::Duration time_unit) {
  if (now - last_sweep_ < time_unit) return;  // At most once per time unit: amortised O(1).
  last_sweep_ = now;
  absl::erase_if(clients_, [&](const auto& entry) {
    return entry.second.open == 0 && now - entry.second.window_start >= time_unit;
  });
}

}  // namespace postgate::gateway::policy
