// Works the queue: a small pool of workers takes message IDs, attempts every recipient still
// waiting – local mailboxes, or SMTP to the next hop the Router names (one conversation per next
// hop and message) – and records each result durably before moving on. A deferred message's next
// attempt is due after an exponential backoff (minimal_backoff_time doubling up to
// maximal_backoff_time); the queue run (queue_run_delay) submits what is due. A recipient still
// deferred after maximal_queue_lifetime is returned to the sender. Completed messages' records are
// purged after postgate_done_retention. Like Postfix's qmgr + local + smtp.
// Thread-safe; Submit may be called from any thread.
#pragma once

#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "queue-service/delivery/local_delivery.h"
#include "queue-service/delivery/smtp_client.h"
#include "queue-service/dns/mx_resolver.h"
#include "queue-service/routing/router.h"
#include "queue-service/metrics/queue_metrics.h"
#include "queue-service/model/queue_id.h"
#include "queue-service/scheduler/event_bus.h"
#include "queue-service/scheduler/queue_index.h"
#include "queue-service/store/message_store.h"

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
  absl::StatusOr<v1::Message> Hold(const std::string& id, const std::string& reason = "");
  absl::StatusOr<v1::Message> Release(const std::string& id);
  absl::Status Delete(const std::string& id);
  absl::StatusOr<v1::Message> Requeue(const std::string& id);

  // A message was stored (by the API); tells watchers.
  void PublishReceived(const v1::Message& message);

 private:
  struct Work {
    std::string id;
    bool recovered = false;
    bool remote = false;  // The SMTP phase: recipients routed to a next hop (their own workers,
                          // so a slow remote never holds up local delivery).
  };
  void Enqueue(Work work);
  void WorkerLoop(bool remote);
  // A next hop whose last conversation failed at the connection level is not tried again until
  // its suspension ends (Postfix's "dead" destination): its mail is deferred at once.
  std::optional<std::string> Suspended(const std::string& next_hop);
  void NoteConversation(const std::string& next_hop, const std::vector<DeliveryOutcome>& outcomes);
  // Per next hop, at most destination_concurrency_limit conversations at a time.
  bool AcquireDestination(const std::string& next_hop);
  // The addresses to try for `hop`: its MX hosts by preference (unless bracketed), each resolved.
  absl::StatusOr<std::vector<SmtpCandidate>> Candidates(const NextHop& hop) const;
  void ReleaseDestination(const std::string& next_hop);
  void MaintenanceLoop();
  // Removes DONE messages completed before `completed_before` (postgate_done_retention).
  void PurgeFinished(absl::Time completed_before);
  // True when some recipients must wait for a free slot at their destination (try again soon).
  bool Process(const Work& work);
  // What an attempt tells the log and watchers once its results are recorded – never before,
  // so a "status=sent" line always names a delivery the queue will not make again.
  struct AttemptReport {
    std::vector<std::string> log_lines;
    std::vector<std::pair<v1::EventKind, int>> events;  // Kind, recipient index.
  };
  // A record ProcessLocked has changed, to be written together with others of its batch.
  struct PendingSave {
    StoredMessage record;
    bool done;  // Delivered or bounced everywhere: the content goes with the write.
    AttemptReport report;
  };
  // With `batch`, the record is appended there instead of being written (the caller saves it
  // with SaveAll before unlocking the message).
  bool ProcessLocked(const Work& work, std::vector<PendingSave>* batch = nullptr);
  // Local delivery of several messages at once: their Maildir files share fsyncs (MaildirBatch)
  // and their results one synced store write. Returns the works that must be tried again soon.
  std::vector<Work> ProcessLocalBatch(const std::vector<Work>& works);
  void Prewrite(const Work& work, MaildirBatch& files);
  // Writes the records (one durable step) and then updates the index, logs and tells watchers.
  void SaveAll(std::vector<PendingSave>& saves);
  void AfterSave(const v1::Message& message, bool done, const AttemptReport& report);
  static void RecordAttempt(v1::RecipientStatus& recipient, const DeliveryOutcome& outcome,
                            absl::Time start, absl::Time end);
  static std::string FormatAttempt(const v1::Message& message, const v1::RecipientStatus& recipient,
                                   const DeliveryOutcome& outcome, absl::Time start, absl::Time end);
  void Publish(v1::EventKind kind, const v1::Message& message, const v1::RecipientStatus* recipient);
  // Serialises work on one message between delivery attempts and operator actions.
  void LockMessage(const std::string& id);
  bool TryLockMessage(const std::string& id);
  void UnlockMessage(const std::string& id);
  absl::StatusOr<StoredMessage> LoadForChange(const std::string& id);
  // Locks, loads, applies `change` (which may refuse), saves, logs, tells watchers and, with
  // `attempt_now`, schedules an attempt: the common shape of Hold, Release and Requeue.
  absl::StatusOr<v1::Message> ChangeMessage(const std::string& id,
                                            const std::function<absl::Status(v1::Message&)>& change,
                                            absl::string_view log_text, v1::EventKind event,
                                            bool attempt_now);
  // Queues one RFC 3464 notification to the sender about `recipients` (indices into `record`)
  // and returns its queue ID. Reads the original content, so it runs before that is dropped.
  enum class Notification { kFailure, kSuccess, kDelay };
  struct NotificationTarget {
    std::string recipient;      // Who gets it: the original sender, or a postmaster address.
    std::string sender;         // Its envelope sender: "" to senders, double_bounce_sender to postmasters.
    bool postmaster = false;    // A notify_classes notice ("Postmaster Copy: …").
    bool full_content = false;  // Returns the whole message rather than its header section.
  };
  // `outcomes`: this attempt's, for the remote server's name and reply where one answered.
  absl::StatusOr<std::string> SendNotification(const StoredMessage& record,
                                               const absl::flat_hash_map<int, DeliveryOutcome>& outcomes,
                                               const std::vector<int>& recipients, Notification kind,
                                               const NotificationTarget& target);
  // A notice from double_bounce_sender to the postmaster: its own failures are dropped.
  bool IsPostmasterNotice(const v1::Message& message) const;
  // Sends the notifications one attempt calls for: to the sender as NOTIFY allows, and to the
  // postmaster per notify_classes; marks recipients whose notices went out.
  void Notify(StoredMessage& record, const absl::flat_hash_map<int, DeliveryOutcome>& outcomes,
              const std::vector<int>& failed, const std::vector<int>& succeeded, const std::vector<int>& delayed);

  MessageStore& store_;
  QueueIndex& index_;
  QueueIdGenerator& ids_;
  EventBus& events_;
  const addressing::LocalDomain& domain_;
  const LocalDelivery& local_;
  QueueMetrics& metrics_;
  DeliveryAgentOptions options_;
  MxResolver resolver_;
  SmtpConnectionCache connection_cache_;  // Sessions kept between messages, by next hop.

  absl::Mutex mu_;
  std::deque<Work> pending_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> queued_or_running_ ABSL_GUARDED_BY(mu_);
  std::deque<Work> pending_remote_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> remote_queued_or_running_ ABSL_GUARDED_BY(mu_);
  absl::Mutex destinations_mu_;
  absl::flat_hash_map<std::string, std::pair<absl::Time, std::string>> suspended_ ABSL_GUARDED_BY(destinations_mu_);
  absl::flat_hash_map<std::string, int> active_conversations_ ABSL_GUARDED_BY(destinations_mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex busy_mu_;
  absl::flat_hash_set<std::string> busy_ ABSL_GUARDED_BY(busy_mu_);  // Messages being changed.
  std::vector<std::thread> threads_;
};

}  // namespace postgate::queue
