// Postfix's bounce(8) for the queue: RFC 3464 reports to the sender as NOTIFY allows (failures,
// successes, delays) and the postmaster notices notify_classes asks for, each queued as a new
// message with the original's content (or its header section). Never a loop: reports to
// senders go from the null sender, notices to postmasters from double_bounce_sender, and a
// failed notice is dropped. Thread-safe (stateless between calls).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "queue-service/delivery/local_delivery.h"
#include "queue-service/metrics/queue_metrics.h"
#include "queue-service/model/queue_id.h"
#include "queue-service/store/message_store.h"
#include "queue-service/model/record.h"

namespace postgate::queue {

struct NotifierOptions {
  std::string myhostname;  // Reporting-MTA.
  // notify_classes: postmaster copies of bounces (bounce), undeliverable bounces to the postmaster
  // (2bounce, implied by bounce), postmaster copies of delay warnings (delay). Addresses complete
  // (name@domain): *_notice_recipient, and double_bounce_sender – the envelope sender of those
  // notices, whose own failures are dropped, so they can never loop.
  bool notify_bounce = false, notify_2bounce = false, notify_delay = false;
  std::string bounce_notice_recipient, double_bounce_recipient, delay_notice_recipient;
  std::string double_bounce_sender;
  absl::Duration maximal_queue_lifetime = absl::Hours(24 * 5);  // A delay report's "retry until".
};

class Notifier {
 public:
  // Called with each notification once it is stored: index it, tell watchers, schedule it.
  using Queued = std::function<void(const rec::Message&)>;
  Notifier(MessageStore& store, QueueIdGenerator& ids, QueueMetrics& metrics, NotifierOptions options,
           Queued queued);

  // A notice from double_bounce_sender to the postmaster: its own failures are dropped.
  bool IsPostmasterNotice(const rec::Message& message) const;
  // Sends the notifications one attempt calls for – `failed`, `delivered` and `delayed` are
  // recipient indices, `outcomes` this attempt's (the remote server's name and reply) – and marks
  // in `record` the recipients whose reports went out. Reads the original content, so it runs
  // before that is dropped.
  void Notify(StoredMessage& record, const absl::flat_hash_map<int, DeliveryOutcome>& outcomes,
              const std::vector<int>& failed, const std::vector<int>& delivered, const std::vector<int>& delayed);

 private:
  enum class Notification { kFailure, kSuccess, kDelay };
  struct NotificationTarget {
    std::string recipient;      // Who gets it: the original sender, or a postmaster address.
    std::string sender;         // Its envelope sender: "" to senders, double_bounce_sender to postmasters.
    bool postmaster = false;    // A notify_classes notice ("Postmaster Copy: …").
    bool full_content = false;  // Returns the whole message rather than its header section.
  };
  // Queues one report about `recipients` and returns its queue ID.
  absl::StatusOr<std::string> SendNotification(const StoredMessage& record,
                                               const absl::flat_hash_map<int, DeliveryOutcome>& outcomes,
                                               const std::vector<int>& recipients, Notification kind,
                                               const NotificationTarget& target);

  MessageStore& store_;
  QueueIdGenerator& ids_;
  QueueMetrics& metrics_;
  const NotifierOptions options_;
  const Queued queued_;
};

}  // namespace postgate::queue
