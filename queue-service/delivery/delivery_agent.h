// Works the queue, as Postfix's qmgr does, handing delivery requests to two Deliverers:
// - local mail: a few worker threads (local_destination_concurrency_limit) take message IDs and
//   have the LocalDeliverer write to mailboxes, Maildir writes of many messages sharing fsyncs;
// - remote mail: one coroutine per message on a small thread pool shared by every conversation
//   (remote_delivery.cc), each conversation a request to the SmtpDeliverer, which answers on
//   that pool. A conversation needs a slot of its next hop in the DestinationTable
//   (default_destination_concurrency_limit each, default_process_limit in all); without one the
//   message waits in that destination's line, holding no lock and no thread;
// - results are recorded durably before anything is logged; RetryPolicy says when a deferred
//   message is due again and when it expires; the queue run (queue_run_delay) submits what is
//   due; the Notifier reports to senders and postmasters; finished messages are purged after
//   postgate_done_retention from the store's done index;
// - operator actions (postsuper's -h, -H, -d, -r; postqueue -f, -i) in operator_actions.cc.
// Thread-safe; Submit may be called from any thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "postgate/queue/v1/queue.pb.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "asio/awaitable.hpp"
#include "asio/executor_work_guard.hpp"
#include "asio/io_context.hpp"
#include "queue-service/delivery/attempt.h"
#include "queue-service/delivery/deliverer.h"
#include "queue-service/delivery/local_deliverer.h"
#include "queue-service/delivery/local_delivery.h"
#include "queue-service/delivery/notifier.h"
#include "queue-service/delivery/smtp_client.h"
#include "queue-service/delivery/smtp_deliverer.h"
#include "queue-service/routing/router.h"
#include "queue-service/metrics/queue_metrics.h"
#include "queue-service/model/queue_id.h"
#include "queue-service/scheduler/destination_table.h"
#include "queue-service/scheduler/event_bus.h"
#include "queue-service/scheduler/message_locks.h"
#include "queue-service/scheduler/queue_index.h"
#include "queue-service/store/message_store.h"
#include "queue-service/store/store_writer.h"
#include "queue-service/model/record.h"

namespace postgate::queue {

struct DeliveryAgentOptions {
  int workers = 2;                               // local_destination_concurrency_limit
  absl::Duration queue_run_delay = absl::Seconds(300);
  absl::Duration done_retention = absl::Hours(24 * 7);
  std::string myhostname;                        // Reporting-MTA of notifications.
  // notify_classes: postmaster copies of bounces (bounce), undeliverable bounces to the postmaster
  // (2bounce, implied by bounce), postmaster copies of delay warnings (delay). Addresses complete
  // (name@domain): *_notice_recipient, and double_bounce_sender – the envelope sender of those
  // notices, whose own failures are dropped, so they can never loop.
  bool notify_bounce = false, notify_2bounce = false, notify_delay = false;
  std::string bounce_notice_recipient, double_bounce_recipient, delay_notice_recipient;
  std::string double_bounce_sender;
  // Remote mail: where it goes (null: every non-local recipient waits, "no route"), how to talk.
  const Router* router = nullptr;
  SmtpClientOptions smtp;
  SmtpConnectionCacheOptions connection_cache;
  absl::Duration minimal_backoff = absl::Seconds(300);   // minimal_backoff_time
  absl::Duration maximal_backoff = absl::Seconds(4000);  // maximal_backoff_time
  absl::Duration maximal_queue_lifetime = absl::Hours(24 * 5);
  absl::Duration bounce_queue_lifetime = absl::Hours(24 * 5);  // For bounces (null sender).
  absl::Duration delay_warning_time = absl::ZeroDuration();  // 0: no delay warnings.
  int smtp_workers = 100;                    // default_process_limit: concurrent SMTP conversations
  int smtp_threads = 0;                      // Threads of the SMTP pool; 0: one per core, at least 2.
  int destination_concurrency_limit = 20;    // default_destination_concurrency_limit, per next hop
  int destination_recipient_limit = 50;      // default_destination_recipient_limit, per conversation
  std::string dns_servers;                   // postgate_dns_servers; "" = /etc/resolv.conf
};

class DeliveryAgent {
 public:
  // `ids` mints queue IDs for the delivery status notifications the agent sends.
  DeliveryAgent(MessageStore& store, QueueIndex& index, QueueIdGenerator& ids, EventBus& events,
                const addressing::LocalDomain& domain, const LocalDelivery& local,
                QueueMetrics& metrics, DeliveryAgentOptions options);
  ~DeliveryAgent();

  // Rebuilds the index from the store and queues every unfinished message (crash recovery).
  absl::Status Recover();
  void Start();
  // Lets conversations under way finish (those waiting for a slot give up), then stops.
  void Stop();
  // Queues `id` for an attempt now.
  void Submit(const std::string& id);
  // Queues every deferred message with a deferred recipient at `domain` ("" = any; with
  // `include_subdomains`, also below it). Returns how many were queued.
  absl::StatusOr<uint32_t> Flush(const std::string& domain, bool include_subdomains);
  // Queues one message for an attempt now (postqueue -i): 1, or an error if unknown, held or done.
  absl::StatusOr<uint32_t> FlushMessage(const std::string& id);

  // Operator actions (postsuper's -h, -H, -d, -r). Each waits for a delivery attempt on the same
  // message to finish, so an attempt never writes back a message that was held or deleted.
  absl::StatusOr<rec::Message> Hold(const std::string& id, const std::string& reason = "");
  absl::StatusOr<rec::Message> Release(const std::string& id);
  absl::Status Delete(const std::string& id);
  absl::StatusOr<rec::Message> Requeue(const std::string& id);

  // A message was stored (by the API); tells watchers.
  void PublishReceived(const rec::Message& message);

 private:
  struct Work {
    std::string id;
    bool recovered = false;
  };
  // A record changed by an attempt, to be written together with others of its batch.
  struct PendingSave {
    StoredMessage record;
    bool done;  // Delivered or bounced everywhere: the content goes with the write.
    AttemptReport report;
  };

  // Local phase (worker threads).
  void Enqueue(Work work);
  void WorkerLoop();
  void Process(const Work& work);
  // Delivers `work`'s local recipients, defers remote ones without a route and hands the rest to
  // the remote phase. With `batch`, the record is appended there instead of being written (the
  // caller saves it with SaveAll before unlocking the message).
  void ProcessLocked(const Work& work, std::vector<PendingSave>* batch = nullptr);
  // Local delivery of several messages at once: their Maildir files share fsyncs (MaildirBatch)
  // and their results one synced store write.
  void ProcessLocalBatch(const std::vector<Work>& works);
  void Prewrite(const Work& work, MaildirBatch& files);

  // Remote phase (coroutines on the SMTP pool; remote_delivery.cc).
  void EnqueueRemote(const Work& work);
  asio::awaitable<void> RemoteAttempt(Work work);
  // One next hop's recipients of `attempt`'s message, in requests to the SmtpDeliverer of at
  // most default_destination_recipient_limit recipients each (one conversation each).
  asio::awaitable<void> DeliverToNextHop(const NextHop& hop, const std::vector<int>& recipients,
                                         DeliveryAttempt& attempt);
  // A conversation in which no server answered suspends its next hop for minimal_backoff_time
  // (Postfix's "dead" destination); any answer ends a suspension.
  void NoteConversation(const std::string& next_hop, const DeliveryResult& result);

  // Both phases.
  bool IsNotification(const rec::Message& message) const;
  // After the last outcome: notifications, the new state and next attempt, and the completion
  // time once the message is done. True when done.
  bool Finish(DeliveryAttempt& attempt);
  // Writes the records (one durable step) and then updates the index, logs and tells watchers.
  void SaveAll(std::vector<PendingSave>& saves);
  void AfterSave(const rec::Message& message, bool done, const AttemptReport& report);
  void Publish(v1::EventKind kind, const rec::Message& message, const rec::RecipientStatus* recipient);
  void MaintenanceLoop();
  // Removes DONE messages completed before `completed_before` (postgate_done_retention).
  void PurgeFinished(absl::Time completed_before);

  // Operator actions (operator_actions.cc).
  absl::StatusOr<StoredMessage> LoadForChange(const std::string& id);
  // Locks, loads, applies `change` (which may refuse), saves, logs, tells watchers and, with
  // `attempt_now`, schedules an attempt: the common shape of Hold, Release and Requeue.
  absl::StatusOr<rec::Message> ChangeMessage(const std::string& id,
                                            const std::function<absl::Status(rec::Message&)>& change,
                                            absl::string_view log_text, v1::EventKind event,
                                            bool attempt_now);

  MessageStore& store_;
  QueueIndex& index_;
  EventBus& events_;
  const addressing::LocalDomain& domain_;
  LocalDeliverer local_;
  QueueMetrics& metrics_;
  DeliveryAgentOptions options_;
  RetryPolicy retry_;
  Notifier notifier_;
  DestinationTable destinations_;
  MessageLocks locks_;  // One attempt or operator action at a time per message.

  absl::Mutex mu_;
  std::deque<Work> pending_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> queued_or_running_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> remote_ ABSL_GUARDED_BY(mu_);  // Remote phases under way.
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;

  // The SMTP pool, and what lives on it. Declared last: stopped and destroyed first.
  asio::io_context pool_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> pool_work_;
  std::vector<std::thread> pool_threads_;
  SmtpDeliverer smtp_;  // Its conversations run on the pool.
  StoreWriter results_;  // Remote results: group-committed, so no pool thread waits for an fsync.
};

}  // namespace postgate::queue
