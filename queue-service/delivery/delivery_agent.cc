#include "queue-service/delivery/delivery_agent.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
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

DeliveryAgent::DeliveryAgent(MessageStore& store, QueueIndex& index,
                             const addressing::LocalDomain& domain, const LocalDelivery& local,
                             QueueMetrics& metrics, DeliveryAgentOptions options)
    : store_(store), index_(index), domain_(domain), local_(local), metrics_(metrics),
      options_(std::move(options)) {}

DeliveryAgent::~DeliveryAgent() { Stop(); }

absl::Status DeliveryAgent::Recover() {
  absl::StatusOr<uint64_t> orphans = store_.RemoveOrphans();
  if (!orphans.ok()) return orphans.status();
  if (*orphans > 0) spdlog::info("removed {} content chunks of messages never committed", *orphans);
  std::vector<std::string> unfinished;
  absl::Status scanned = store_.Scan("", [&](const StoredMessage& record) {
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
  for (int i = 0; i < std::max(1, options_.workers); ++i) threads_.emplace_back([this] { WorkerLoop(); });
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

void DeliveryAgent::Enqueue(Work work) {
  absl::MutexLock lock(&mu_);
  if (!queued_or_running_.insert(work.id).second) return;  // Already waiting or being worked on.
  pending_.push_back(std::move(work));
}

void DeliveryAgent::WorkerLoop() {
  for (;;) {
    Work work;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](DeliveryAgent* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
            return self->stopping_ || !self->pending_.empty();
          },
          this));
      if (stopping_) return;
      work = std::move(pending_.front());
      pending_.pop_front();
    }
    Process(work);
    absl::MutexLock lock(&mu_);
    queued_or_running_.erase(work.id);
  }
}

void DeliveryAgent::MaintenanceLoop() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping), options_.queue_run_delay)) return;
    }
    // Queue run: retry what was deferred.
    for (const std::string& id : index_.List(v1::MESSAGE_STATE_DEFERRED, "", SIZE_MAX)) Submit(id);
    // Forget finished messages after the retention period.
    for (const std::string& id :
         index_.Older(v1::MESSAGE_STATE_DONE, absl::Now() - options_.done_retention)) {
      absl::StatusOr<StoredMessage> record = store_.Get(id);
      if (record.ok() && store_.Delete(*record).ok()) index_.Remove(id);
    }
  }
}

void DeliveryAgent::Process(const Work& work) {
  absl::StatusOr<StoredMessage> loaded = store_.Get(work.id);
  if (!loaded.ok()) {
    spdlog::warn("{}: cannot load for delivery: {}", work.id, loaded.status().ToString());
    return;
  }
  StoredMessage record = *std::move(loaded);
  v1::Message& message = *record.mutable_message();
  const absl::Time arrival = FromTimestamp(message.arrival_time());
  ContentSource content = [&](const std::function<absl::Status(absl::string_view)>& sink) {
    return store_.ReadContent(record, sink);
  };

  for (int i = 0; i < message.recipients_size(); ++i) {
    v1::RecipientStatus& recipient = *message.mutable_recipients(i);
    if (recipient.state() != v1::RECIPIENT_STATE_QUEUED &&
        recipient.state() != v1::RECIPIENT_STATE_DEFERRED) {
      continue;
    }
    DeliveryOutcome outcome;
    const char* transport = "local";
    if (domain_.Classify(recipient.address()).local) {
      // After any earlier attempt a reader may have moved a delivered file on to cur/.
      outcome = local_.Deliver(message, i, content, work.recovered || recipient.attempts() > 0);
    } else {
      transport = "smtp";
      outcome = {v1::RECIPIENT_STATE_DEFERRED, 450, "4.3.2", options_.remote_defer_reason, "none"};
    }
    const absl::Time now = absl::Now();
    recipient.set_state(outcome.state);
    recipient.set_smtp_code(outcome.smtp_code);
    recipient.set_dsn_status(outcome.dsn_status);
    recipient.set_reason(outcome.reason);
    recipient.set_relay(outcome.relay);
    recipient.set_attempts(recipient.attempts() + 1);
    SetTimestamp(recipient.mutable_last_attempt_time(), now);
    metrics_.deliveries.Add({{"transport", transport}, {"result", StatusWord(outcome.state)}}).Increment();
    if (outcome.state == v1::RECIPIENT_STATE_DELIVERED) {
      metrics_.delivery_seconds.Observe(absl::ToDoubleSeconds(now - arrival));
    }
    spdlog::info("{}: to=<{}>, relay={}, delay={:.2f}, dsn={}, status={} ({})", message.queue_id(),
                 recipient.address(), outcome.relay, absl::ToDoubleSeconds(now - arrival),
                 outcome.dsn_status, StatusWord(outcome.state), outcome.reason);
  }

  message.set_state(DeriveState(message));
  absl::Status saved;
  if (message.state() == v1::MESSAGE_STATE_DONE) {
    SetTimestamp(message.mutable_completion_time(), absl::Now());
    saved = store_.UpdateAndDropContent(record);
    if (saved.ok()) spdlog::info("{}: removed", message.queue_id());
  } else {
    saved = store_.Update(record);
  }
  if (!saved.ok()) {
    // The mailbox write is idempotent, so the next attempt repeats nothing that happened.
    spdlog::error("{}: cannot record delivery results: {}", message.queue_id(), saved.ToString());
    return;
  }
  index_.Upsert(message);
}

}  // namespace postgate::queue
