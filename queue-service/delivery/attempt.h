// One delivery attempt on one message, as its results come in: each recipient's outcome goes
// into the record (state, reply, history), a metric, a Postfix log line and an event – the lines
// and events kept until the record is saved, so a "status=sent" line always names a delivery the
// queue will not make again. A recipient still deferred past its lifetime is returned to the
// sender here ("message expired"). Not thread-safe: one attempt, one coroutine or thread.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "postgate/queue/v1/queue.pb.h"
#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "queue-service/delivery/local_delivery.h"
#include "queue-service/metrics/queue_metrics.h"
#include "queue-service/scheduler/retry_policy.h"
#include "queue-service/store/message_store.h"
#include "queue-service/model/record.h"

namespace postgate::queue {

// What an attempt tells the log and watchers once its results are recorded.
struct AttemptReport {
  std::vector<std::string> log_lines;
  std::vector<std::pair<v1::EventKind, int>> events;  // Kind, recipient index.
};

class DeliveryAttempt {
 public:
  // `notification`: the message is itself a notification (bounce_queue_lifetime applies).
  DeliveryAttempt(StoredMessage& record, const RetryPolicy& policy, bool notification, QueueMetrics& metrics);

  // Recipient `index`'s outcome of an attempt that began at `start` (now: its end).
  void Record(int index, DeliveryOutcome outcome, const char* transport, absl::Time start);

  int attempted() const { return attempted_; }
  StoredMessage& record() { return record_; }
  const absl::flat_hash_map<int, DeliveryOutcome>& outcomes() const { return outcomes_; }
  // Recipients this attempt bounced, and delivered ones whose success report is ours to send.
  const std::vector<int>& failed() const { return failed_; }
  const std::vector<int>& delivered() const { return delivered_; }
  // Deferred recipients due a delay warning they have not had.
  std::vector<int> Delayed(absl::Time now) const;
  AttemptReport& report() { return report_; }

  // Postfix's log line for one recipient's attempt, delays=a/b/c/d included.
  static std::string FormatLine(const rec::Message& message, const rec::RecipientStatus& recipient,
                                const DeliveryOutcome& outcome, absl::Time start, absl::Time end);

 private:
  StoredMessage& record_;
  const RetryPolicy& policy_;
  const bool notification_;
  QueueMetrics& metrics_;
  int attempted_ = 0;
  AttemptReport report_;
  absl::flat_hash_map<int, DeliveryOutcome> outcomes_;
  std::vector<int> failed_, delivered_;
};

}  // namespace postgate::queue
