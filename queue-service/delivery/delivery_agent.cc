#include "queue-service/delivery/delivery_agent.h"

#include <algorithm>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "queue-service/model/timestamps.h"
#include "spdlog/spdlog.h"
#include "queue-service/model/record.h"

namespace postgate::queue {
namespace {

RetryPolicy RetryPolicyOf(const DeliveryAgentOptions& options) {
  return {options.minimal_backoff, options.maximal_backoff, options.maximal_queue_lifetime,
          options.bounce_queue_lifetime, options.delay_warning_time};
}

NotifierOptions NotifierOptionsOf(const DeliveryAgentOptions& options) {
  return {options.myhostname,          options.notify_bounce,           options.notify_2bounce,
          options.notify_delay,        options.bounce_notice_recipient, options.double_bounce_recipient,
          options.delay_notice_recipient, options.double_bounce_sender, options.maximal_queue_lifetime};
}

}  // namespace

DeliveryAgent::DeliveryAgent(MessageStore& store, QueueIndex& index, QueueIdGenerator& ids,
                             EventBus& events, const addressing::LocalDomain& domain,
                             const LocalDelivery& local, QueueMetrics& metrics,
                             DeliveryAgentOptions options)
    : store_(store), index_(index), events_(events), domain_(domain), local_(local, store), metrics_(metrics),
      options_(std::move(options)), retry_(RetryPolicyOf(options_)),
      notifier_(store, ids, metrics, NotifierOptionsOf(options_),
                [this](const rec::Message& notification) {
                  index_.Upsert(notification);
                  PublishReceived(notification);
                  Submit(notification.queue_id());
                }),
      destinations_({options_.destination_concurrency_limit, options_.smtp_workers}),
      smtp_(store, metrics, {options_.smtp, options_.connection_cache, options_.dns_servers}, pool_.get_executor()),
      results_(store) {}

DeliveryAgent::~DeliveryAgent() { Stop(); }

void DeliveryAgent::Publish(v1::EventKind kind, const rec::Message& message,
                            const rec::RecipientStatus* recipient) {
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

void DeliveryAgent::PublishReceived(const rec::Message& message) {
  Publish(v1::EVENT_KIND_RECEIVED, message, nullptr);
}

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
    if (record.message().state() == rec::MESSAGE_STATE_ACTIVE) {
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
  for (int i = 0; i < std::max(1, options_.workers); ++i) threads_.emplace_back([this] { WorkerLoop(); });
  threads_.emplace_back([this] { MaintenanceLoop(); });
  pool_work_.emplace(pool_.get_executor());
  const int pool_threads =
      options_.smtp_threads > 0 ? options_.smtp_threads : std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
  for (int i = 0; i < pool_threads; ++i) pool_threads_.emplace_back([this] { pool_.run(); });
}

void DeliveryAgent::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  // Messages waiting for a slot give up (they stay queued for the next start); conversations
  // under way finish and record their results.
  destinations_.Close();
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(+[](absl::flat_hash_set<std::string>* remote) { return remote->empty(); }, &remote_));
  }
  if (!pool_threads_.empty()) smtp_.CloseIdle();
  pool_work_.reset();
  pool_.stop();
  for (std::thread& thread : pool_threads_) thread.join();
  pool_threads_.clear();
}

void DeliveryAgent::Submit(const std::string& id) { Enqueue({id, false}); }

void DeliveryAgent::Enqueue(Work work) {
  absl::MutexLock lock(&mu_);
  if (!queued_or_running_.insert(work.id).second) return;  // Already waiting or being worked on.
  pending_.push_back(std::move(work));
}

void DeliveryAgent::WorkerLoop() {
  // A local worker takes what is waiting, up to this many messages, and delivers them together.
  constexpr size_t kLocalBatch = 64;
  for (;;) {
    std::vector<Work> works;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !pending_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      // mbox appends are not idempotent: each message's results are recorded before the next
      // is appended, so a crash repeats at most the one in flight.
      const size_t take = !local_.BatchesWrites() ? 1 : std::min(pending_.size(), kLocalBatch);
      for (size_t i = 0; i < take; ++i) {
        works.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
    }
    if (works.size() == 1) {
      Process(works.front());
    } else {
      ProcessLocalBatch(works);
    }
    absl::MutexLock lock(&mu_);
    for (const Work& work : works) queued_or_running_.erase(work.id);
  }
}

void DeliveryAgent::ProcessLocalBatch(const std::vector<Work>& works) {
  std::vector<Work> locked, busy;
  for (const Work& work : works) (locks_.TryLock(work.id) ? locked : busy).push_back(work);
  // First every Maildir file of the batch, made durable together; then the usual attempt for
  // each message, which finds its files in place and records the deliveries.
  MaildirBatch files;
  for (const Work& work : locked) Prewrite(work, files);
  if (absl::Status finished = files.Finish(); !finished.ok()) {
    spdlog::warn("batched mailbox writes: {} (each delivery is tried again alone)", finished.ToString());
  }
  std::vector<PendingSave> saves;
  for (const Work& work : locked) ProcessLocked(work, &saves);
  SaveAll(saves);
  for (const Work& work : locked) locks_.Unlock(work.id);
  // A message another worker holds (an SMTP conversation, an operator action) is done alone.
  for (const Work& work : busy) Process(work);
}

void DeliveryAgent::Prewrite(const Work& work, MaildirBatch& files) {
  absl::StatusOr<StoredMessage> record = store_.Get(work.id);
  if (!record.ok()) return;  // ProcessLocked reports it.
  const rec::Message& message = record->message();
  if (message.state() == rec::MESSAGE_STATE_HOLD || message.state() == rec::MESSAGE_STATE_DONE) return;
  DeliveryRequest request{&*record, {}, {}, work.recovered};
  for (int i = 0; i < message.recipients_size(); ++i) {
    const rec::RecipientState state = message.recipients(i).state();
    if (state != rec::RECIPIENT_STATE_QUEUED && state != rec::RECIPIENT_STATE_DEFERRED) continue;
    if (domain_.Classify(message.recipients(i).address()).local) request.recipients.push_back(i);
  }
  local_.Stage(request, files);
}

void DeliveryAgent::Process(const Work& work) {
  locks_.Lock(work.id);
  ProcessLocked(work);
  locks_.Unlock(work.id);
}

bool DeliveryAgent::IsNotification(const rec::Message& message) const {
  // Notifications themselves (null sender, or the postmaster's double_bounce_sender) give up
  // sooner (bounce_queue_lifetime, as in Postfix), and nobody is told of their own delays.
  return message.envelope().sender().empty() || notifier_.IsPostmasterNotice(message);
}

void DeliveryAgent::ProcessLocked(const Work& work, std::vector<PendingSave>* batch) {
  absl::StatusOr<StoredMessage> loaded = store_.Get(work.id);
  if (absl::IsNotFound(loaded.status())) return;  // Deleted by an operator meanwhile.
  if (!loaded.ok()) {
    spdlog::warn("{}: cannot load for delivery: {}", work.id, loaded.status().ToString());
    return;
  }
  StoredMessage record = *std::move(loaded);
  const rec::Message& message = record.message();
  if (message.state() == rec::MESSAGE_STATE_HOLD || message.state() == rec::MESSAGE_STATE_DONE) return;
  DeliveryAttempt attempt(record, retry_, IsNotification(message), metrics_);
  bool needs_smtp = false;
  for (int i = 0; i < message.recipients_size(); ++i) {
    const rec::RecipientStatus& recipient = message.recipients(i);
    if (recipient.state() != rec::RECIPIENT_STATE_QUEUED && recipient.state() != rec::RECIPIENT_STATE_DEFERRED) {
      continue;
    }
    const absl::Time attempt_start = absl::Now();
    const addressing::ClassifiedAddress address = domain_.Classify(recipient.address());
    if (address.local) {
      // One recipient per request, as Postfix's local_destination_recipient_limit: each has its
      // own delays. The local transport answers before Deliver returns.
      local_.Deliver({&record, {i}, {}, work.recovered}, [&](DeliveryResult result) {
        attempt.Record(i, std::move(result.outcomes.front()), local_.transport(), attempt_start);
      });
      continue;
    }
    Route route;
    route.reason = "no route for remote mail";
    if (options_.router) route = options_.router->Resolve(address.domain);
    if (route.kind != Route::Kind::kSmtp) {
      attempt.Record(i, {rec::RECIPIENT_STATE_DEFERRED, 450, "4.3.2", route.reason, "none"}, "smtp", attempt_start);
      continue;
    }
    needs_smtp = true;  // Left to the remote phase.
  }
  if (needs_smtp) EnqueueRemote(work);  // It takes the message's lock once this phase lets go.
  if (attempt.attempted() == 0) return;  // Nothing changed: nothing to write.
  const bool done = Finish(attempt);
  if (batch != nullptr) {
    batch->push_back({std::move(record), done, std::move(attempt.report())});
    return;
  }
  std::vector<PendingSave> saves;
  saves.push_back({std::move(record), done, std::move(attempt.report())});
  SaveAll(saves);
}

bool DeliveryAgent::Finish(DeliveryAttempt& attempt) {
  StoredMessage& record = attempt.record();
  const absl::Time now = absl::Now();
  // Delay warnings: once per recipient, when still deferred after delay_warning_time.
  notifier_.Notify(record, attempt.outcomes(), attempt.failed(), attempt.delivered(), attempt.Delayed(now));
  retry_.Schedule(*record.mutable_message(), now);
  const bool done = record.message().state() == rec::MESSAGE_STATE_DONE;
  // Once only: the store's done index is keyed by the completion time.
  if (done && !record.message().has_completion_time()) {
    SetTimestamp(record.mutable_message()->mutable_completion_time(), now);
  }
  return done;
}

void DeliveryAgent::SaveAll(std::vector<PendingSave>& saves) {
  if (saves.empty()) return;
  std::vector<MessageStore::RecordUpdate> updates;
  updates.reserve(saves.size());
  for (PendingSave& save : saves) updates.push_back({&save.record, save.done});
  if (absl::Status saved = store_.UpdateAll(updates); !saved.ok()) {
    for (const PendingSave& save : saves) {
      // The mailbox writes are idempotent, so the next attempt repeats nothing that happened.
      spdlog::error("{}: cannot record delivery results: {}", save.record.message().queue_id(), saved.ToString());
    }
    return;
  }
  for (const PendingSave& save : saves) AfterSave(save.record.message(), save.done, save.report);
}

void DeliveryAgent::AfterSave(const rec::Message& message, bool done, const AttemptReport& report) {
  for (const std::string& line : report.log_lines) spdlog::info("{}", line);
  for (const auto& [kind, index] : report.events) Publish(kind, message, &message.recipients(index));
  if (done) {
    spdlog::info("{}: removed", message.queue_id());
    Publish(v1::EVENT_KIND_DONE, message, nullptr);
  }
  index_.Upsert(message);
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
      if (!locks_.TryLock(id)) continue;  // An operator's delete is under way.
      absl::Cleanup unlock = [&] { locks_.Unlock(id); };
      absl::StatusOr<StoredMessage> record = store_.Get(id);
      if (!record.ok() || !store_.Delete(*record).ok()) continue;
      index_.Remove(record->message());
      ++purged;
    }
    if (ids.size() < kBatch || purged == 0) return;
  }
}

}  // namespace postgate::queue
