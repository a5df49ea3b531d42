#include "queue-service/delivery/delivery_agent.h"

#include <map>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/absl_fmt.h"
#include "core/base/logging.h"
#include "queue-service/delivery/dsn.h"
#include "queue-service/model/message_record.h"
#include "queue-service/model/timestamps.h"
#include "spdlog/spdlog.h"

namespace postgate::queue {
namespace {

const char* StatusWord(v1::RecipientState state) {
  switch (state) {
    case v1::RECIPIENT_STATE_DELIVERED: return "sent";
    case v1::RECIPIENT_STATE_BOUNCED: return "bounced";
    default: return "deferred";
  }
}

}  // namespace

DeliveryAgent::DeliveryAgent(MessageStore& store, QueueIndex& index, QueueIdGenerator& ids,
                             EventBus& events, const addressing::LocalDomain& domain,
                             const LocalDelivery& local, QueueMetrics& metrics,
                             DeliveryAgentOptions options)
    : store_(store), index_(index), ids_(ids), events_(events), domain_(domain), local_(local),
      metrics_(metrics), options_(std::move(options)), resolver_(options_.dns_servers),
      connection_cache_(options_.connection_cache) {}

void DeliveryAgent::LockMessage(const std::string& id) {
  absl::MutexLock lock(&busy_mu_);
  auto free = [this, &id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(busy_mu_) { return !busy_.contains(id); };
  busy_mu_.Await(absl::Condition(&free));
  busy_.insert(id);
}

bool DeliveryAgent::TryLockMessage(const std::string& id) {
  absl::MutexLock lock(&busy_mu_);
  return busy_.insert(id).second;
}

void DeliveryAgent::UnlockMessage(const std::string& id) {
  absl::MutexLock lock(&busy_mu_);
  busy_.erase(id);
}

void DeliveryAgent::Publish(v1::EventKind kind, const v1::Message& message,
                            const v1::RecipientStatus* recipient) {
  v1::QueueEvent event;
  SetTimestamp(event.mutable_time(), absl::Now());
  event.set_kind(kind);
  event.set_queue_id(message.queue_id());
  event.set_sender(message.envelope().sender());
  event.set_size(message.size());
  if (recipient != nullptr) {
    event.set_recipient(recipient->address());
    event.set_smtp_code(recipient->smtp_code());
    event.set_dsn_status(recipient->dsn_status());
    event.set_reason(recipient->reason());
    event.set_relay(recipient->relay());
    events_.Publish(event);
    return;
  }
  events_.Publish(event, {message.envelope().recipients().begin(), message.envelope().recipients().end()});
}

void DeliveryAgent::PublishReceived(const v1::Message& message) {
  Publish(v1::EVENT_KIND_RECEIVED, message, nullptr);
}

absl::StatusOr<StoredMessage> DeliveryAgent::LoadForChange(const std::string& id) {
  absl::StatusOr<StoredMessage> record = store_.Get(id);
  if (absl::IsNotFound(record.status())) {
    return absl::NotFoundError(absl::StrCat("queue ID ", id, " not found"));
  }
  return record;
}

absl::StatusOr<v1::Message> DeliveryAgent::ChangeMessage(
    const std::string& id, const std::function<absl::Status(v1::Message&)>& change,
    absl::string_view log_text, v1::EventKind event, bool attempt_now) {
  LockMessage(id);
  absl::Cleanup unlock = [&] { UnlockMessage(id); };
  absl::StatusOr<StoredMessage> record = LoadForChange(id);
  if (!record.ok()) return record.status();
  v1::Message& message = *record->mutable_message();
  if (absl::Status allowed = change(message); !allowed.ok()) return allowed;
  if (absl::Status saved = store_.Update(*record); !saved.ok()) return saved;
  index_.Upsert(message);
  spdlog::info("{}: {}", id, log_text);
  if (event != v1::EVENT_KIND_UNSPECIFIED) Publish(event, message, nullptr);
  if (attempt_now) Submit(id);
  return message;
}

absl::StatusOr<v1::Message> DeliveryAgent::Hold(const std::string& id, const std::string& reason) {
  return ChangeMessage(
      id,
      [&id, &reason](v1::Message& message) {
        if (message.state() == v1::MESSAGE_STATE_DONE || message.state() == v1::MESSAGE_STATE_HOLD) {
          return absl::FailedPreconditionError(absl::StrCat(
              "queue ID ", id, " is ", message.state() == v1::MESSAGE_STATE_DONE ? "done" : "already held"));
        }
        message.set_state(v1::MESSAGE_STATE_HOLD);
        message.set_hold_reason(reason);
        return absl::OkStatus();
      },
      reason.empty() ? std::string("placed on hold") : absl::StrCat("placed on hold (", reason, ")"),
      v1::EVENT_KIND_HELD, false);
}

absl::StatusOr<v1::Message> DeliveryAgent::Release(const std::string& id) {
  return ChangeMessage(
      id,
      [&id](v1::Message& message) {
        if (message.state() != v1::MESSAGE_STATE_HOLD) {
          return absl::FailedPreconditionError(absl::StrCat("queue ID ", id, " is not held"));
        }
        // Waiting recipients are attempted right away, deferred ones included.
        message.clear_hold_reason();
        message.set_state(DeriveState(message) == v1::MESSAGE_STATE_DONE ? v1::MESSAGE_STATE_DONE
                                                                         : v1::MESSAGE_STATE_ACTIVE);
        if (message.state() == v1::MESSAGE_STATE_DONE && !message.has_completion_time()) {
          SetTimestamp(message.mutable_completion_time(), absl::Now());  // Its retention starts now.
        }
        return absl::OkStatus();
      },
      "released from hold", v1::EVENT_KIND_RELEASED, true);
}

absl::Status DeliveryAgent::Delete(const std::string& id) {
  LockMessage(id);
  absl::Cleanup unlock = [&] { UnlockMessage(id); };
  absl::StatusOr<StoredMessage> record = LoadForChange(id);
  if (!record.ok()) return record.status();
  if (absl::Status deleted = store_.Delete(*record); !deleted.ok()) return deleted;
  index_.Remove(record->message());
  spdlog::info("{}: removed", id);
  Publish(v1::EVENT_KIND_DELETED, record->message(), nullptr);
  return absl::OkStatus();
}

absl::StatusOr<v1::Message> DeliveryAgent::Requeue(const std::string& id) {
  return ChangeMessage(
      id,
      [&id](v1::Message& message) {
        if (message.state() == v1::MESSAGE_STATE_DONE || message.state() == v1::MESSAGE_STATE_HOLD) {
          return absl::FailedPreconditionError(absl::StrCat(
              "queue ID ", id, " is ", message.state() == v1::MESSAGE_STATE_DONE ? "done" : "held (release it)"));
        }
        for (v1::RecipientStatus& recipient : *message.mutable_recipients()) {
          if (recipient.state() == v1::RECIPIENT_STATE_DEFERRED) recipient.set_state(v1::RECIPIENT_STATE_QUEUED);
        }
        message.set_state(DeriveState(message));
        return absl::OkStatus();
      },
      "requeued", v1::EVENT_KIND_UNSPECIFIED, true);
}

DeliveryAgent::~DeliveryAgent() { Stop(); }

absl::Status DeliveryAgent::Recover() {
  absl::StatusOr<uint64_t> orphans = store_.RemoveOrphans();
  if (!orphans.ok()) return orphans.status();
  if (*orphans > 0) spdlog::info("removed {} content chunks of messages never committed", *orphans);
  // What is pending is read whole; of what is done, only the done index's keys are counted.
  uint64_t done_messages = 0, done_bytes = 0;
  absl::Status counted = store_.ScanDone(absl::InfiniteFuture(), [&](const std::string&, uint64_t size) {
    ++done_messages;
    done_bytes += size;
    return true;
  });
  if (!counted.ok()) return counted;
  index_.SetDone(done_messages, done_bytes);
  std::vector<std::string> unfinished;
  absl::Status scanned = store_.ScanPending([&](const StoredMessage& record) {
    index_.Upsert(record.message());
    if (record.message().state() == v1::MESSAGE_STATE_ACTIVE) {
      unfinished.push_back(record.message().queue_id());
    }
    return true;
  });
  if (!scanned.ok()) return scanned;
  for (const std::string& id : unfinished) Enqueue({id, true});
  if (!unfinished.empty()) spdlog::info("resuming delivery of {} messages", unfinished.size());
  return absl::OkStatus();
}

void DeliveryAgent::Start() {
  for (int i = 0; i < std::max(1, options_.workers); ++i) threads_.emplace_back([this] { WorkerLoop(false); });
  for (int i = 0; i < std::max(1, options_.smtp_workers); ++i) threads_.emplace_back([this] { WorkerLoop(true); });
  threads_.emplace_back([this] { MaintenanceLoop(); });
}

void DeliveryAgent::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

void DeliveryAgent::Submit(const std::string& id) { Enqueue({id, false}); }

absl::StatusOr<uint32_t> DeliveryAgent::Flush(const std::string& domain, bool include_subdomains) {
  {
    // A flush tries suspended destinations again too (before any attempt it schedules starts).
    absl::MutexLock lock(&destinations_mu_);
    suspended_.clear();
  }
  const std::string wanted = absl::AsciiStrToLower(domain);
  uint32_t scheduled = 0;
  for (const std::string& id : index_.List(v1::MESSAGE_STATE_DEFERRED, "", SIZE_MAX)) {
    absl::StatusOr<StoredMessage> record = store_.Get(id);
    if (absl::IsNotFound(record.status())) continue;  // Finished since the index was read.
    if (!record.ok()) return record.status();
    for (const v1::RecipientStatus& recipient : record->message().recipients()) {
      if (recipient.state() != v1::RECIPIENT_STATE_DEFERRED) continue;
      const std::string at = domain_.Classify(recipient.address()).domain;
      if (wanted.empty() || at == wanted || (include_subdomains && absl::EndsWith(at, "." + wanted))) {
        Submit(id);
        ++scheduled;
        break;
      }
    }
  }
  spdlog::info("flush {}{}: {} messages scheduled", include_subdomains ? "@" : "",
               wanted.empty() ? "(all)" : wanted, scheduled);
  return scheduled;
}

absl::StatusOr<uint32_t> DeliveryAgent::FlushMessage(const std::string& id) {
  absl::StatusOr<StoredMessage> record = LoadForChange(id);
  if (!record.ok()) return record.status();
  const v1::MessageState state = record->message().state();
  if (state == v1::MESSAGE_STATE_HOLD || state == v1::MESSAGE_STATE_DONE) {
    return absl::FailedPreconditionError(
        absl::StrCat("queue ID ", id, " is ", state == v1::MESSAGE_STATE_DONE ? "done" : "held (release it)"));
  }
  {
    absl::MutexLock lock(&destinations_mu_);
    suspended_.clear();  // As a flush does: its destinations are tried for real.
  }
  Submit(id);
  spdlog::info("flush {}: scheduled", id);
  return 1u;
}

void DeliveryAgent::Enqueue(Work work) {
  absl::MutexLock lock(&mu_);
  auto& waiting = work.remote ? remote_queued_or_running_ : queued_or_running_;
  if (!waiting.insert(work.id).second) return;  // Already waiting or being worked on.
  (work.remote ? pending_remote_ : pending_).push_back(std::move(work));
}

void DeliveryAgent::WorkerLoop(bool remote) {
  // A local worker takes what is waiting, up to this many messages, and delivers them together.
  constexpr size_t kLocalBatch = 64;
  for (;;) {
    std::vector<Work> works;
    {
      absl::MutexLock lock(&mu_);
      std::deque<Work>& queue = remote ? pending_remote_ : pending_;
      auto ready = [this, &queue]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      // mbox appends are not idempotent: each message's results are recorded before the next
      // is appended, so a crash repeats at most the one in flight.
      const size_t take = remote || !local_.BatchesWrites() ? 1 : std::min(queue.size(), kLocalBatch);
      for (size_t i = 0; i < take; ++i) {
        works.push_back(std::move(queue.front()));
        queue.pop_front();
      }
    }
    std::vector<Work> again;
    if (works.size() == 1) {
      if (Process(works.front())) again.push_back(works.front());
    } else {
      again = ProcessLocalBatch(works);
    }
    {
      absl::MutexLock lock(&mu_);
      for (const Work& work : works) (remote ? remote_queued_or_running_ : queued_or_running_).erase(work.id);
    }
    if (!again.empty()) {  // A destination at its concurrency limit: back in line, after the others.
      absl::SleepFor(absl::Milliseconds(20));
      for (Work& work : again) Enqueue(std::move(work));
    }
  }
}

std::vector<DeliveryAgent::Work> DeliveryAgent::ProcessLocalBatch(const std::vector<Work>& works) {
  std::vector<Work> locked, busy, again;
  for (const Work& work : works) (TryLockMessage(work.id) ? locked : busy).push_back(work);
  // First every Maildir file of the batch, made durable together; then the usual attempt for
  // each message, which finds its files in place and records the deliveries.
  MaildirBatch files;
  for (const Work& work : locked) Prewrite(work, files);
  if (absl::Status finished = files.Finish(); !finished.ok()) {
    spdlog::warn("batched mailbox writes: {} (each delivery is tried again alone)", finished.ToString());
  }
  std::vector<PendingSave> saves;
  for (const Work& work : locked) {
    if (ProcessLocked(work, &saves)) again.push_back(work);
  }
  SaveAll(saves);
  for (const Work& work : locked) UnlockMessage(work.id);
  // A message another worker holds (an SMTP conversation, an operator action) is done alone.
  for (const Work& work : busy) {
    if (Process(work)) again.push_back(work);
  }
  return again;
}

void DeliveryAgent::Prewrite(const Work& work, MaildirBatch& files) {
  absl::StatusOr<StoredMessage> record = store_.Get(work.id);
  if (!record.ok()) return;  // ProcessLocked reports it.
  const v1::Message& message = record->message();
  if (message.state() == v1::MESSAGE_STATE_HOLD || message.state() == v1::MESSAGE_STATE_DONE) return;
  const ContentSource content = [&](const std::function<absl::Status(absl::string_view)>& sink) {
    return store_.ReadContent(*record, sink);
  };
  for (int i = 0; i < message.recipients_size(); ++i) {
    const v1::RecipientState state = message.recipients(i).state();
    if (state != v1::RECIPIENT_STATE_QUEUED && state != v1::RECIPIENT_STATE_DEFERRED) continue;
    if (!domain_.Classify(message.recipients(i).address()).local) continue;
    // After an earlier attempt a reader may have moved a delivered file on to cur/ (as in ProcessLocked).
    local_.Prewrite(message, i, content, work.recovered || message.recipients(i).attempts() > 0, files);
  }
}

void DeliveryAgent::SaveAll(std::vector<PendingSave>& saves) {
  if (saves.empty()) return;
  std::vector<MessageStore::RecordUpdate> updates;
  updates.reserve(saves.size());
  for (PendingSave& save : saves) {
    // Once only: the store's done index is keyed by the completion time.
    if (save.done && !save.record.message().has_completion_time()) {
      SetTimestamp(save.record.mutable_message()->mutable_completion_time(), absl::Now());
    }
    updates.push_back({&save.record, save.done});
  }
  if (absl::Status saved = store_.UpdateAll(updates); !saved.ok()) {
    for (const PendingSave& save : saves) {
      // The mailbox writes are idempotent, so the next attempt repeats nothing that happened.
      spdlog::error("{}: cannot record delivery results: {}", save.record.message().queue_id(), saved.ToString());
    }
    return;
  }
  for (const PendingSave& save : saves) AfterSave(save.record.message(), save.done, save.report);
}

void DeliveryAgent::AfterSave(const v1::Message& message, bool done, const AttemptReport& report) {
  for (const std::string& line : report.log_lines) spdlog::info("{}", line);
  for (const auto& [kind, index] : report.events) Publish(kind, message, &message.recipients(index));
  if (done) {
    spdlog::info("{}: removed", message.queue_id());
    Publish(v1::EVENT_KIND_DONE, message, nullptr);
  }
  index_.Upsert(message);
}

std::optional<std::string> DeliveryAgent::Suspended(const std::string& next_hop) {
  absl::MutexLock lock(&destinations_mu_);
  auto it = suspended_.find(next_hop);
  if (it == suspended_.end()) return std::nullopt;
  if (absl::Now() >= it->second.first) {
    suspended_.erase(it);
    return std::nullopt;
  }
  return it->second.second;
}

void DeliveryAgent::NoteConversation(const std::string& next_hop, const std::vector<DeliveryOutcome>& outcomes) {
  // Connection-level trouble (no SMTP reply at all for anyone) suspends the destination.
  bool dead = !outcomes.empty();
  for (const DeliveryOutcome& outcome : outcomes) {
    dead &= outcome.state == v1::RECIPIENT_STATE_DEFERRED && outcome.smtp_code == 0;
  }
  absl::MutexLock lock(&destinations_mu_);
  if (dead) {
    suspended_[next_hop] = {absl::Now() + options_.minimal_backoff, outcomes.front().reason};
  } else {
    suspended_.erase(next_hop);
  }
}

absl::StatusOr<std::vector<SmtpCandidate>> DeliveryAgent::Candidates(const NextHop& hop) const {
  std::vector<MailExchanger> exchangers{{0, hop.host}};
  if (hop.mx_lookup) {
    absl::StatusOr<std::vector<MailExchanger>> found = resolver_.MailExchangers(hop.host);
    if (!found.ok()) return found.status();
    exchangers = *std::move(found);
  }
  std::vector<SmtpCandidate> candidates;
  absl::Status last = absl::OkStatus();
  for (const MailExchanger& exchanger : exchangers) {
    absl::StatusOr<std::vector<std::string>> addresses = resolver_.Addresses(exchanger.host);
    if (!addresses.ok()) {
      last = addresses.status();
      continue;  // The next mail exchanger may resolve.
    }
    for (const std::string& address : *addresses) candidates.push_back({exchanger.host, address});
  }
  if (candidates.empty()) return last.ok() ? absl::UnavailableError("no address for " + hop.host) : last;
  return candidates;
}

bool DeliveryAgent::AcquireDestination(const std::string& next_hop) {
  absl::MutexLock lock(&destinations_mu_);
  int& active = active_conversations_[next_hop];
  if (active >= std::max(1, options_.destination_concurrency_limit)) return false;
  ++active;
  return true;
}

void DeliveryAgent::ReleaseDestination(const std::string& next_hop) {
  absl::MutexLock lock(&destinations_mu_);
  if (--active_conversations_[next_hop] <= 0) active_conversations_.erase(next_hop);
}

void DeliveryAgent::MaintenanceLoop() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping), options_.queue_run_delay)) return;
    }
    // Queue run: retry deferred messages whose backoff has passed.
    for (const std::string& id : index_.Due(absl::Now())) Submit(id);
    PurgeFinished(absl::Now() - options_.done_retention);
  }
}

void DeliveryAgent::PurgeFinished(absl::Time completed_before) {
  // From the store's done index, oldest first, in bounded batches: nothing here walks what is
  // kept, and nothing holds a lock the delivery or commit paths take while the store is read.
  constexpr size_t kBatch = 10000;
  for (;;) {
    std::vector<std::string> ids;
    absl::Status scanned = store_.ScanDone(completed_before, [&ids](const std::string& id, uint64_t) {
      ids.push_back(id);
      return ids.size() < kBatch;
    });
    if (!scanned.ok()) {
      spdlog::warn("purging finished messages: {}", scanned.ToString());
      return;
    }
    size_t purged = 0;
    for (const std::string& id : ids) {
      if (!TryLockMessage(id)) continue;  // An operator's delete is under way.
      absl::Cleanup unlock = [&] { UnlockMessage(id); };
      absl::StatusOr<StoredMessage> record = store_.Get(id);
      if (!record.ok() || !store_.Delete(*record).ok()) continue;
      index_.Remove(record->message());
      ++purged;
    }
    if (ids.size() < kBatch || purged == 0) return;
  }
}

void DeliveryAgent::RecordAttempt(v1::RecipientStatus& recipient, const DeliveryOutcome& outcome,
                                  absl::Time start, absl::Time end) {
  recipient.set_state(outcome.state);
  recipient.set_smtp_code(outcome.smtp_code);
  recipient.set_dsn_status(outcome.dsn_status);
  recipient.set_reason(outcome.reason);
  recipient.set_relay(outcome.relay);
  recipient.set_attempts(recipient.attempts() + 1);
  SetTimestamp(recipient.mutable_last_attempt_time(), end);
  v1::DeliveryAttempt* attempt = recipient.add_history();
  SetTimestamp(attempt->mutable_time(), start);
  attempt->set_smtp_code(outcome.smtp_code);
  attempt->set_dsn_status(outcome.dsn_status);
  attempt->set_reason(outcome.reason);
  attempt->set_relay(outcome.relay);
  attempt->set_duration_seconds(absl::ToDoubleSeconds(end - start));
  constexpr int kHistoryKept = 50;
  if (recipient.history_size() > kHistoryKept) {
    recipient.mutable_history()->DeleteSubrange(0, recipient.history_size() - kHistoryKept);
  }
}

std::string DeliveryAgent::FormatAttempt(const v1::Message& message, const v1::RecipientStatus& recipient,
                                         const DeliveryOutcome& outcome, absl::Time start, absl::Time end) {
  // Postfix's delays=a/b/c/d: before the queue, in the queue, connection set-up, transmission.
  const absl::Time arrival = FromTimestamp(message.arrival_time());
  const absl::Time queued = message.has_queued_time() ? FromTimestamp(message.queued_time()) : arrival;
  // ", conn_use=N" as Postfix logs it for the N-th transaction on a cached connection.
  const std::string connection_use =
      outcome.connection_use > 1 ? absl::StrCat(", conn_use=", outcome.connection_use) : "";
  return fmt::format("{}: to=<{}>, relay={}{}, delay={}, delays={}/{}/0/{}, dsn={}, status={} ({})",
               message.queue_id(), recipient.address(), outcome.relay, connection_use,
               base::FormatDelay(absl::ToDoubleSeconds(end - arrival)),
               base::FormatDelay(absl::ToDoubleSeconds(queued - arrival)),
               base::FormatDelay(absl::ToDoubleSeconds(start - queued)),
               base::FormatDelay(absl::ToDoubleSeconds(end - start)), outcome.dsn_status,
               StatusWord(outcome.state), outcome.reason);
}

bool DeliveryAgent::Process(const Work& work) {
  LockMessage(work.id);
  const bool again = ProcessLocked(work);
  UnlockMessage(work.id);
  return again;
}

bool DeliveryAgent::ProcessLocked(const Work& work, std::vector<PendingSave>* batch) {
  absl::StatusOr<StoredMessage> loaded = store_.Get(work.id);
  if (absl::IsNotFound(loaded.status())) return false;  // Deleted by an operator meanwhile.
  if (!loaded.ok()) {
    spdlog::warn("{}: cannot load for delivery: {}", work.id, loaded.status().ToString());
    return false;
  }
  StoredMessage record = *std::move(loaded);
  v1::Message& message = *record.mutable_message();
  if (message.state() == v1::MESSAGE_STATE_HOLD || message.state() == v1::MESSAGE_STATE_DONE) return false;
  const absl::Time arrival = FromTimestamp(message.arrival_time());
  ContentSource content = [&](const std::function<absl::Status(absl::string_view)>& sink) {
    return store_.ReadContent(record, sink);
  };
  ContentPieces pieces = [&](uint32_t index) -> absl::StatusOr<std::optional<std::string>> {
    if (index >= record.chunk_count()) return std::nullopt;
    absl::StatusOr<std::string> chunk = store_.ReadChunk(record, index);
    if (!chunk.ok()) return chunk.status();
    return std::optional<std::string>(*std::move(chunk));
  };

  std::vector<int> failed, delivered;  // Recipients this attempt settled, for notifications.
  // Notifications themselves (null sender, or the postmaster's double_bounce_sender) give up
  // sooner: bounce_queue_lifetime, as in Postfix; and nobody is told of their own delays.
  const bool notification = message.envelope().sender().empty() || IsPostmasterNotice(message);
  const absl::Duration lifetime = notification ? options_.bounce_queue_lifetime : options_.maximal_queue_lifetime;
  const absl::Time expires = arrival + lifetime;
  int attempted = 0;
  AttemptReport report;
  absl::flat_hash_map<int, DeliveryOutcome> outcomes;  // This attempt's, by recipient index.
  auto record_attempt = [&](int i, DeliveryOutcome outcome, const char* transport, absl::Time attempt_start) {
    ++attempted;
    v1::RecipientStatus& recipient = *message.mutable_recipients(i);
    const absl::Time now = absl::Now();
    if (outcome.state == v1::RECIPIENT_STATE_DEFERRED && now >= expires) {
      // Postfix's "status=expired, returned to sender": the last reason, and a bounce.
      outcome.state = v1::RECIPIENT_STATE_BOUNCED;
      outcome.reason =
          absl::StrCat(outcome.reason, " (message expired after ", absl::FormatDuration(lifetime), " in the queue)");
    }
    RecordAttempt(recipient, outcome, attempt_start, now);
    metrics_.deliveries.Add({{"transport", transport}, {"result", StatusWord(outcome.state)}}).Increment();
    if (outcome.state == v1::RECIPIENT_STATE_DELIVERED) {
      metrics_.delivery_seconds.Observe(absl::ToDoubleSeconds(now - arrival));
    }
    report.log_lines.push_back(FormatAttempt(message, recipient, outcome, attempt_start, now));
    report.events.emplace_back(outcome.state == v1::RECIPIENT_STATE_DELIVERED ? v1::EVENT_KIND_DELIVERED
                               : outcome.state == v1::RECIPIENT_STATE_BOUNCED ? v1::EVENT_KIND_BOUNCED
                                                                              : v1::EVENT_KIND_DEFERRED,
                               i);
    if (outcome.state == v1::RECIPIENT_STATE_BOUNCED) failed.push_back(i);
    // Passed on to a server that announced DSN: a success report is that server's to send.
    if (outcome.state == v1::RECIPIENT_STATE_DELIVERED && !outcome.notify_passed_on) delivered.push_back(i);
    outcomes[i] = std::move(outcome);
  };

  std::map<std::string, std::pair<NextHop, std::vector<int>>> by_next_hop;  // Remote, by destination.
  bool needs_smtp = false;
  for (int i = 0; i < message.recipients_size(); ++i) {
    const v1::RecipientStatus& recipient = message.recipients(i);
    if (recipient.state() != v1::RECIPIENT_STATE_QUEUED &&
        recipient.state() != v1::RECIPIENT_STATE_DEFERRED) {
      continue;
    }
    const absl::Time attempt_start = absl::Now();
    const addressing::ClassifiedAddress address = domain_.Classify(recipient.address());
    if (work.remote && address.local) continue;
    if (address.local) {
      // After any earlier attempt a reader may have moved a delivered file on to cur/.
      record_attempt(i, local_.Deliver(message, i, content, work.recovered || recipient.attempts() > 0), "local",
             attempt_start);
      continue;
    }
    Route route;
    route.reason = "no route for remote mail";
    if (options_.router) route = options_.router->Resolve(address.domain);
    if (route.kind != Route::Kind::kSmtp) {
      if (!work.remote) {
        record_attempt(i, {v1::RECIPIENT_STATE_DEFERRED, 450, "4.3.2", route.reason, "none"}, "smtp", attempt_start);
      }
      continue;
    }
    if (!work.remote) {
      needs_smtp = true;  // Left to the SMTP workers.
      continue;
    }
    auto& group = by_next_hop[route.next_hop.ToString()];
    group.first = route.next_hop;
    group.second.push_back(i);
  }
  bool busy_destination = false;
  for (const auto& [name, group] : by_next_hop) {
    const absl::Time attempt_start = absl::Now();
    if (std::optional<std::string> why = Suspended(name)) {
      for (int i : group.second) {
        record_attempt(i, {v1::RECIPIENT_STATE_DEFERRED, 0, "4.4.1", "delivery temporarily suspended: " + *why, "none"},
                       "smtp", attempt_start);
      }
      continue;
    }
    if (!AcquireDestination(name)) {  // At its concurrency limit: these recipients wait their turn.
      busy_destination = true;
      continue;
    }
    absl::StatusOr<std::vector<SmtpCandidate>> candidates = Candidates(group.first);
    if (!candidates.ok()) {
      ReleaseDestination(name);
      // A domain that does not exist bounces; DNS trouble defers.
      const bool missing = absl::IsNotFound(candidates.status());
      for (int i : group.second) {
        record_attempt(i, {missing ? v1::RECIPIENT_STATE_BOUNCED : v1::RECIPIENT_STATE_DEFERRED, 0,
                           missing ? "5.4.4" : "4.4.3", std::string(candidates.status().message()), "none"},
                       "smtp", attempt_start);
      }
      continue;
    }
    // At most default_destination_recipient_limit recipients per conversation (one message each).
    const size_t per_conversation = static_cast<size_t>(std::max(1, options_.destination_recipient_limit));
    for (size_t first = 0; first < group.second.size(); first += per_conversation) {
      const std::vector<int> batch(group.second.begin() + static_cast<std::ptrdiff_t>(first),
                                   group.second.begin() + static_cast<std::ptrdiff_t>(
                                                              std::min(group.second.size(), first + per_conversation)));
      std::vector<DeliveryOutcome> outcomes =
          DeliverOverSmtp(group.first, *candidates, options_.smtp, message, batch, pieces, &connection_cache_);
      NoteConversation(name, outcomes);
      if (const int use = outcomes.front().connection_use; use > 0) {
        metrics_.smtp_connection_cache.Add({{"result", use > 1 ? "hit" : "miss"}}).Increment();
      }
      for (size_t k = 0; k < batch.size(); ++k) record_attempt(batch[k], outcomes[k], "smtp", attempt_start);
    }
    ReleaseDestination(name);
  }
  if (needs_smtp) Enqueue({work.id, work.recovered, /*remote=*/true});
  if (attempted == 0) return busy_destination;  // Nothing changed: nothing to write.

  // Delay warnings: once per recipient, when still deferred after delay_warning_time.
  std::vector<int> delayed;
  if (options_.delay_warning_time > absl::ZeroDuration() && !notification &&
      absl::Now() - arrival >= options_.delay_warning_time) {
    for (int i = 0; i < message.recipients_size(); ++i) {
      const v1::RecipientStatus& recipient = message.recipients(i);
      if (recipient.state() == v1::RECIPIENT_STATE_DEFERRED && !recipient.delay_warning_sent()) delayed.push_back(i);
    }
  }
  Notify(record, outcomes, failed, delivered, delayed);

  message.set_state(DeriveState(message));
  if (message.state() == v1::MESSAGE_STATE_DEFERRED) {
    // Postfix's backoff: minimal_backoff_time, doubling with each attempt, at most maximal_backoff_time.
    uint32_t attempts = 1;
    for (const v1::RecipientStatus& recipient : message.recipients()) {
      if (recipient.state() == v1::RECIPIENT_STATE_DEFERRED) attempts = std::max(attempts, recipient.attempts());
    }
    absl::Duration backoff = options_.minimal_backoff;
    for (uint32_t n = 1; n < attempts && backoff < options_.maximal_backoff; ++n) backoff *= 2;
    backoff = std::min(backoff, options_.maximal_backoff);
    SetTimestamp(message.mutable_next_attempt_time(), absl::Now() + backoff);
  } else {
    message.clear_next_attempt_time();
  }
  const bool done = message.state() == v1::MESSAGE_STATE_DONE;
  if (batch != nullptr) {
    batch->push_back({std::move(record), done, std::move(report)});
    return busy_destination;
  }
  if (done && !message.has_completion_time()) SetTimestamp(message.mutable_completion_time(), absl::Now());
  const absl::Status saved = done ? store_.UpdateAndDropContent(record) : store_.Update(record);
  if (!saved.ok()) {
    // The mailbox write is idempotent, so the next attempt repeats nothing that happened.
    spdlog::error("{}: cannot record delivery results: {}", message.queue_id(), saved.ToString());
    return false;
  }
  AfterSave(message, done, report);
  return busy_destination;
}

}  // namespace postgate::queue

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

bool DeliveryAgent::IsPostmasterNotice(const v1::Message& message) const {
  return !options_.double_bounce_sender.empty() &&
         absl::EqualsIgnoreCase(message.envelope().sender(), options_.double_bounce_sender);
}

void DeliveryAgent::Notify(StoredMessage& record, const absl::flat_hash_map<int, DeliveryOutcome>& outcomes,
                           const std::vector<int>& failed, const std::vector<int>& delivered,
                           const std::vector<int>& delayed) {
  v1::Message& message = *record.mutable_message();
  const std::string& sender = message.envelope().sender();
  const bool bounce = sender.empty();
  const bool postmaster_notice = IsPostmasterNotice(message);
  // The sender hears what NOTIFY asked for (RFC 3461; no NOTIFY: failures and delays) – unless
  // the message is itself a notification, which is never answered.
  std::vector<int> sender_failed, sender_delivered, sender_delayed;
  if (!bounce && !postmaster_notice) {
    for (int i : failed) {
      const v1::RecipientOptions& notify = message.recipients(i).options();
      if (!notify.notify_given() || notify.notify_failure()) sender_failed.push_back(i);
    }
    for (int i : delivered) {
      if (message.recipients(i).options().notify_success()) sender_delivered.push_back(i);
    }
    for (int i : delayed) {
      const v1::RecipientOptions& notify = message.recipients(i).options();
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
       {sender, "", false, message.envelope().dsn_return() != v1::DSN_RETURN_HEADERS},
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

absl::StatusOr<std::string> DeliveryAgent::SendNotification(const StoredMessage& record,
                                                            const absl::flat_hash_map<int, DeliveryOutcome>& outcomes,
                                                            const std::vector<int>& recipients,
                                                            Notification kind, const NotificationTarget& target) {
  const bool success = kind == Notification::kSuccess;
  const v1::Message& message = record.message();
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
    const v1::RecipientStatus& recipient = message.recipients(i);
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

  v1::Envelope envelope;
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
  index_.Upsert(notification.message());
  PublishReceived(notification.message());
  metrics_.notifications
      .Add({{"kind", success ? "success" : report.delay ? "delay" : "failure"},
            {"to", target.postmaster ? "postmaster" : "sender"}})
      .Increment();
  spdlog::info("{}: from=<{}>, size={}, nrcpt=1 (queue active)", report.dsn_queue_id, target.sender, writer.size());
  Submit(report.dsn_queue_id);
  return report.dsn_queue_id;
}

}  // namespace postgate::queue
