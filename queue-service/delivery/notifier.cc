#include "queue-service/delivery/notifier.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/absl_fmt.h"
#include "queue-service/delivery/dsn.h"
#include "queue-service/model/message_record.h"
#include "queue-service/model/timestamps.h"
#include "spdlog/spdlog.h"
#include "queue-service/model/record.h"

namespace postgate::queue {
namespace {

// Cuts streamed content into store chunks of a bounded size.
class ChunkWriter {
 public:
  ChunkWriter(MessageStore& store, std::string id) : store_(store), id_(std::move(id)) {}

  absl::Status Append(absl::string_view data) {
    buffer_.append(data.data(), data.size());
    size_ += data.size();
    return buffer_.size() >= kChunkSize ? Flush() : absl::OkStatus();
  }
  absl::Status Flush() {
    if (buffer_.empty()) return absl::OkStatus();
    absl::Status put = store_.PutChunk(id_, chunks_++, buffer_);
    buffer_.clear();
    return put;
  }
  uint32_t chunks() const { return chunks_; }
  uint64_t size() const { return size_; }

 private:
  static constexpr size_t kChunkSize = 64 * 1024;
  MessageStore& store_;
  std::string id_;
  std::string buffer_;
  uint32_t chunks_ = 0;
  uint64_t size_ = 0;
};

}  // namespace

Notifier::Notifier(MessageStore& store, QueueIdGenerator& ids, QueueMetrics& metrics, NotifierOptions options,
                   Queued queued)
    : store_(store), ids_(ids), metrics_(metrics), options_(std::move(options)), queued_(std::move(queued)) {}

bool Notifier::IsPostmasterNotice(const rec::Message& message) const {
  return !options_.double_bounce_sender.empty() &&
         absl::EqualsIgnoreCase(message.envelope().sender(), options_.double_bounce_sender);
}

void Notifier::Notify(StoredMessage& record, const absl::flat_hash_map<int, DeliveryOutcome>& outcomes,
                           const std::vector<int>& failed, const std::vector<int>& delivered,
                           const std::vector<int>& delayed) {
  rec::Message& message = *record.mutable_message();
  const std::string& sender = message.envelope().sender();
  const bool bounce = sender.empty();
  const bool postmaster_notice = IsPostmasterNotice(message);
  // The sender hears what NOTIFY asked for (RFC 3461; no NOTIFY: failures and delays) – unless
  // the message is itself a notification, which is never answered.
  std::vector<int> sender_failed, sender_delivered, sender_delayed;
  if (!bounce && !postmaster_notice) {
    for (int i : failed) {
      const rec::RecipientOptions& notify = message.recipients(i).options();
      if (!notify.notify_given() || notify.notify_failure()) sender_failed.push_back(i);
    }
    for (int i : delivered) {
      if (message.recipients(i).options().notify_success()) sender_delivered.push_back(i);
    }
    for (int i : delayed) {
      const rec::RecipientOptions& notify = message.recipients(i).options();
      if (!notify.notify_given() || notify.notify_delay()) sender_delayed.push_back(i);
    }
  }
  // Queues one notification; false when there was nothing to send or it could not be queued.
  auto send = [&](const std::vector<int>& indices, Notification kind, const NotificationTarget& target,
                  absl::string_view what) {
    if (indices.empty()) return false;
    absl::StatusOr<std::string> id = SendNotification(record, outcomes, indices, kind, target);
    if (!id.ok()) {
      spdlog::error("{}: cannot queue the {}: {}", message.queue_id(), what, id.status().ToString());
      return false;
    }
    spdlog::info("{}: {}: {}", message.queue_id(), what, *id);
    if (!target.postmaster && kind != Notification::kDelay) {
      for (int i : indices) message.mutable_recipients(i)->set_dsn_queue_id(*id);
    }
    return true;
  };
  send(sender_failed, Notification::kFailure,
       {sender, "", false, message.envelope().dsn_return() != rec::DSN_RETURN_HEADERS},
       "sender non-delivery notification");
  send(sender_delivered, Notification::kSuccess, {sender, "", false, false}, "sender delivery status notification");
  bool delay_noticed = send(sender_delayed, Notification::kDelay, {sender, "", false, false},
                            "sender delay notification");

  // notify_classes. Postmaster notices come from double_bounce_sender, so a failed one is dropped.
  const std::string& from = options_.double_bounce_sender;
  if (!failed.empty()) {
    if (postmaster_notice) {
      spdlog::warn("{}: dropping undeliverable postmaster notification", message.queue_id());
    } else if (bounce && options_.notify_2bounce) {  // The whole bounce goes to the postmaster.
      send(failed, Notification::kFailure, {options_.double_bounce_recipient, from, true, true},
           "postmaster non-delivery notification");
    } else if (bounce) {
      spdlog::warn("{}: discarding undeliverable bounce (no 2bounce in notify_classes)", message.queue_id());
    } else if (options_.notify_bounce) {  // A copy of the sender's report, headers only.
      send(failed, Notification::kFailure, {options_.bounce_notice_recipient, from, true, false},
           "postmaster non-delivery notification");
    }
  }
  if (options_.notify_delay) {
    delay_noticed |= send(delayed, Notification::kDelay, {options_.delay_notice_recipient, from, true, false},
                          "postmaster delay notification");
  }
  // One round of delay notices per recipient (also for those whose NOTIFY excluded DELAY).
  if (delay_noticed || sender_delayed.empty()) {
    for (int i : delayed) message.mutable_recipients(i)->set_delay_warning_sent(true);
  }
}

absl::StatusOr<std::string> Notifier::SendNotification(const StoredMessage& record,
                                                            const absl::flat_hash_map<int, DeliveryOutcome>& outcomes,
                                                            const std::vector<int>& recipients,
                                                            Notification kind, const NotificationTarget& target) {
  const bool success = kind == Notification::kSuccess;
  const rec::Message& message = record.message();
  const absl::Time now = absl::Now();
  DsnReport report;
  report.success = success;
  report.delay = kind == Notification::kDelay;
  report.retry_until = FromTimestamp(record.message().arrival_time()) + options_.maximal_queue_lifetime;
  report.return_full_message = target.full_content;
  report.postmaster_copy = target.postmaster;
  if (target.postmaster) report.to = target.recipient;
  report.myhostname = options_.myhostname;
  report.original_queue_id = message.queue_id();
  report.original_sender = message.envelope().sender();
  report.arrival = FromTimestamp(message.arrival_time());
  report.envid = message.envelope().envid();
  report.dsn_queue_id = ids_.Next(now);
  report.now = now;
  for (int i : recipients) {
    const rec::RecipientStatus& recipient = message.recipients(i);
    // "delivered" is for final delivery; mail handed to a server without DSN was "relayed".
    const char* action = success ? (recipient.relay() == "local" ? "delivered" : "relayed")
                         : report.delay ? "delayed"
                                        : "failed";
    DsnRecipient line{recipient.address(), recipient.options().original_recipient(), action,
                      recipient.dsn_status(), recipient.reason(), recipient.relay()};
    if (auto outcome = outcomes.find(i); outcome != outcomes.end()) {
      line.remote_mta = outcome->second.remote_mta;
      line.remote_reply = outcome->second.remote_reply;
    }
    report.recipients.push_back(std::move(line));
  }
  const DsnText text = FormatDsn(report);
  const bool full = kind == Notification::kFailure && target.full_content;

  ChunkWriter writer(store_, report.dsn_queue_id);
  absl::Status status = writer.Append(text.head);
  if (status.ok()) {
    // The returned content: all of it, or its header section only (up to the first empty line).
    bool at_line_start = true, headers_done = false;
    status = store_.ReadContent(record, [&](absl::string_view chunk) -> absl::Status {
      if (full) return writer.Append(chunk);
      if (headers_done) return absl::OkStatus();
      size_t end = 0;
      for (; end < chunk.size(); ++end) {
        if (chunk[end] == '\n') {
          if (at_line_start) {
            headers_done = true;
            break;
          }
          at_line_start = true;
        } else {
          at_line_start = false;
        }
      }
      return writer.Append(chunk.substr(0, end));
    });
  }
  if (status.ok()) status = writer.Append(text.tail);
  if (status.ok()) status = writer.Flush();
  if (!status.ok()) {
    (void)store_.Discard(report.dsn_queue_id, writer.chunks() + 1);
    return status;
  }

  rec::Envelope envelope;
  // To senders with the null sender, to postmasters from double_bounce_sender: never a loop.
  envelope.set_sender(target.sender);
  envelope.add_recipients(target.recipient);
  envelope.mutable_client()->set_hostname(options_.myhostname);
  envelope.mutable_client()->set_protocol("local");
  StoredMessage notification =
      NewMessageRecord(report.dsn_queue_id, std::move(envelope), writer.size(), writer.chunks(), now);
  if (absl::Status committed = store_.Commit(notification); !committed.ok()) {
    (void)store_.Discard(report.dsn_queue_id, writer.chunks());
    return committed;
  }
  metrics_.notifications
      .Add({{"kind", success ? "success" : report.delay ? "delay" : "failure"},
            {"to", target.postmaster ? "postmaster" : "sender"}})
      .Increment();
  spdlog::info("{}: from=<{}>, size={}, nrcpt=1 (queue active)", report.dsn_queue_id, target.sender, writer.size());
  queued_(notification.message());
  return report.dsn_queue_id;
}

}  // namespace postgate::queue
