// When a message is tried again and when it is given up, as Postfix's qmgr decides it:
// minimal_backoff_time doubling with each attempt up to maximal_backoff_time;
// maximal_queue_lifetime (bounce_queue_lifetime for notifications); one delay warning after
// delay_warning_time. Pure: the caller passes the time.
#pragma once

#include <cstdint>

#include "absl/time/time.h"
#include "queue-service/model/record.h"

namespace postgate::queue {

struct RetryPolicy {
  absl::Duration minimal_backoff = absl::Seconds(300);   // minimal_backoff_time
  absl::Duration maximal_backoff = absl::Seconds(4000);  // maximal_backoff_time
  absl::Duration maximal_queue_lifetime = absl::Hours(24 * 5);
  absl::Duration bounce_queue_lifetime = absl::Hours(24 * 5);  // For notifications.
  absl::Duration delay_warning_time = absl::ZeroDuration();  // 0: no delay warnings.

  // The wait after the `attempts`-th failed attempt (1 → minimal_backoff).
  absl::Duration Backoff(uint32_t attempts) const;
  // How long a message may stay in the queue: notifications (null sender, postmaster notices)
  // give up sooner.
  absl::Duration Lifetime(bool notification) const;
  // A recipient deferred at `now` is returned to the sender instead.
  bool Expired(absl::Time arrival, bool notification, absl::Time now) const;
  // Deferred recipients of a message that arrived at `arrival` are due a delay warning (nobody
  // is told of a notification's delays).
  bool DelayWarningDue(absl::Time arrival, bool notification, absl::Time now) const;
  // After an attempt that ended at `now`: the message's state from its recipients (HOLD is never
  // derived) and, when DEFERRED, its next attempt – the backoff of its most-tried deferred
  // recipient; otherwise none.
  void Schedule(rec::Message& message, absl::Time now) const;
};

}  // namespace postgate::queue
