#include "queue-service/scheduler/retry_policy.h"

#include <algorithm>

#include "queue-service/model/timestamps.h"
#include "queue-service/scheduler/queue_index.h"
#include "queue-service/model/record.h"

namespace postgate::queue {

absl::Duration RetryPolicy::Backoff(uint32_t attempts) const {
  absl::Duration backoff = minimal_backoff;
  for (uint32_t n = 1; n < attempts && backoff < maximal_backoff; ++n) backoff *= 2;
  return std::min(backoff, maximal_backoff);
}

absl::Duration RetryPolicy::Lifetime(bool notification) const {
  return notification ? bounce_queue_lifetime : maximal_queue_lifetime;
}

bool RetryPolicy::Expired(absl::Time arrival, bool notification, absl::Time now) const {
  return now >= arrival + Lifetime(notification);
}

bool RetryPolicy::DelayWarningDue(absl::Time arrival, bool notification, absl::Time now) const {
  return delay_warning_time > absl::ZeroDuration() && !notification && now - arrival >= delay_warning_time;
}

void RetryPolicy::Schedule(rec::Message& message, absl::Time now) const {
  message.set_state(DeriveState(message));
  if (message.state() != rec::MESSAGE_STATE_DEFERRED) {
    message.clear_next_attempt_time();
    return;
  }
  uint32_t attempts = 1;
  for (const rec::RecipientStatus& recipient : message.recipients()) {
    if (recipient.state() == rec::RECIPIENT_STATE_DEFERRED) attempts = std::max(attempts, recipient.attempts());
  }
  SetTimestamp(message.mutable_next_attempt_time(), now + Backoff(attempts));
}

}  // namespace postgate::queue
