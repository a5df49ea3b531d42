#include "queue-service/api/watch_reactor.h"

#include <memory>
#include <optional>

#include "absl/synchronization/mutex.h"
#include "queue-service/model/queue_id.h"

namespace postgate::queue {
namespace {

class WatchReactor final : public grpc::ServerWriteReactor<v1::QueueEvent> {
 public:
  WatchReactor(EventBus& events, const v1::WatchEventsRequest& request) {
    // Headers first, so the client knows the watch is in place before any event.
    StartSendInitialMetadata();
    subscription_ = events.Subscribe(request, [this] { Pump(); });
    Pump();
  }

  void OnWriteDone(bool ok) override {
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) finishing_ = true;  // The client is gone.
      finish = finishing_ && !finished_;
      finished_ |= finish;
    }
    if (finish) {
      Finish(grpc::Status::OK);
      return;
    }
    Pump();
  }

  void OnCancel() override {
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      finishing_ = true;
      finish = !writing_ && !finished_;  // Else OnWriteDone finishes.
      finished_ |= finish;
    }
    if (finish) Finish(grpc::Status::OK);
  }

  void OnDone() override {
    subscription_.reset();  // Waits for a running Pump from a publisher; none starts after.
    delete this;
  }

 private:
  // Starts the next write if none is under way and an event waits; arms the subscription if none.
  void Pump() {
    {
      absl::MutexLock lock(&mu_);
      if (writing_ || finishing_) return;
      std::optional<v1::QueueEvent> event = subscription_->NextOrArm();
      if (!event) return;
      current_ = *std::move(event);
      writing_ = true;
    }
    StartWrite(&current_);  // Outside the lock: gRPC may run OnWriteDone on another thread at once.
  }

  absl::Mutex mu_;
  bool writing_ = false;    // A StartWrite awaits its OnWriteDone; current_ belongs to gRPC.
  bool finishing_ = false;  // Cancelled or failed: no more writes.
  bool finished_ = false;   // Finish was called.
  v1::QueueEvent current_;
  std::unique_ptr<EventBus::Subscription> subscription_;
};

class Refusal final : public grpc::ServerWriteReactor<v1::QueueEvent> {
 public:
  explicit Refusal(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerWriteReactor<v1::QueueEvent>* StartWatch(EventBus& events, const v1::WatchEventsRequest& request) {
  if (!request.queue_id().empty() && !IsValidQueueId(request.queue_id())) {
    return new Refusal(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "queue_id: not a queue ID"));
  }
  return new WatchReactor(events, request);
}

}  // namespace postgate::queue
