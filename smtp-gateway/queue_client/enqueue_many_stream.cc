#include "smtp-gateway/queue_client/enqueue_many_stream.h"

#include <atomic>
#include <deque>
#include <functional>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "asio/async_result.hpp"
#include "asio/post.hpp"
#include "asio/steady_timer.hpp"
#include "asio/use_awaitable.hpp"
#include "grpcpp/grpcpp.h"

namespace postgate::gateway {
namespace {

namespace v1 = ::postgate::queue::v1;

// A request frame stays well under queue-service's 4 MiB receive limit (a content chunk is
// ~64 KiB).
constexpr size_t kMaxFrameBytes = 1 << 20;

}  // namespace

class ManyLane;

// One EnqueueMany call. Lives until gRPC reports OnDone (it holds itself until then) and as long
// as a lane refers to it. Requests from every lane gather in an outbox that goes out as one
// frame whenever the previous one is through; replies go to their lanes by upload number.
class EnqueueManyStream : public grpc::ClientBidiReactor<v1::EnqueueFrame, v1::EnqueueReplyFrame>,
                          public std::enable_shared_from_this<EnqueueManyStream> {
 public:
  explicit EnqueueManyStream(std::function<void()> on_unimplemented)
      : on_unimplemented_(std::move(on_unimplemented)) {}

  void Start(v1::QueueService::Stub& stub) {
    {
      absl::MutexLock lock(&mu_);
      self_ = shared_from_this();
    }
    stub.async()->EnqueueMany(&context_, this);
    // Lanes start writes from their sessions' threads: the hold keeps the call from ending under
    // them until the stream is retired and idle, or broken.
    AddHold();
    StartRead(&in_);
    StartCall();
  }

  // A lane for a new message; nullptr once the stream is broken or retired.
  std::shared_ptr<ManyLane> NewLane(asio::any_io_executor executor, std::chrono::milliseconds timeout);

  // No new lanes; the stream half-closes once its lanes are done.
  void Retire() {
    if (RetireLocked()) StartWritesDone();
  }

  void Cancel() { context_.TryCancel(); }

  bool usable() {
    absl::MutexLock lock(&mu_);
    return !broken_ && !retiring_;
  }

  std::string peer() {
    absl::MutexLock lock(&mu_);
    return peer_;
  }

  // Queues `request` of upload `number`; false when the stream is broken.
  bool Send(uint64_t number, v1::EnqueueRequest&& request) {
    v1::EnqueueItem item;
    item.set_upload(number);
    *item.mutable_request() = std::move(request);
    return Enqueue(std::move(item));
  }

  // Upload `number` is given up: the queue discards it, and its replies are ignored.
  void Abandon(uint64_t number) {
    bool writes_done;
    {
      absl::MutexLock lock(&mu_);
      lanes_.erase(number);
      if (broken_) return;
      writes_done = IdleAfterRetireLocked();
    }
    if (writes_done) return StartWritesDone();
    v1::EnqueueItem item;
    item.set_upload(number);
    item.set_abandon(true);
    Enqueue(std::move(item));
  }

  void OnWriteDone(bool ok) override {
    bool next_frame = false;
    bool writes_done = false;
    bool release = false;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (ok && !outbox_.empty()) {
        writing_ = next_frame = true;
        Fill();
      } else if (ok) {
        writes_done = IdleAfterRetireLocked();
        release = HoldNoLongerNeededLocked();  // It broke while this frame was out.
      }
    }
    if (!ok) return Broken(grpc::Status(grpc::StatusCode::UNAVAILABLE, "queue-service: the EnqueueMany stream broke"));
    if (next_frame) StartWrite(&out_);
    if (writes_done) StartWritesDone();
    if (release) ReleaseHold();
  }

  void OnWritesDoneDone(bool /*ok*/) override {
    {
      absl::MutexLock lock(&mu_);
      half_closed_ = true;
    }
    ReleaseHold();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return Broken(grpc::Status(grpc::StatusCode::UNAVAILABLE, "queue-service: the EnqueueMany stream ended"));
    std::vector<std::pair<std::shared_ptr<ManyLane>, v1::EnqueueReply*>> deliveries;
    bool writes_done;
    {
      absl::MutexLock lock(&mu_);
      if (peer_.empty()) peer_ = context_.peer();
      for (v1::EnqueueReply& reply : *in_.mutable_replies()) {
        auto it = lanes_.find(reply.upload());
        if (it == lanes_.end()) continue;  // Abandoned meanwhile.
        std::shared_ptr<ManyLane> lane = it->second.lock();
        const bool over = reply.error_code() != 0 || reply.response().has_committed_queue_id();
        if (over) lanes_.erase(it);
        // A draining replica: new messages go to a new stream (and so, likely, another replica).
        if (reply.error_code() == grpc::StatusCode::UNAVAILABLE) retiring_ = true;
        if (lane) deliveries.emplace_back(std::move(lane), &reply);
      }
      writes_done = IdleAfterRetireLocked();
    }
    for (auto& [lane, reply] : deliveries) Deliver(*lane, *reply);
    deliveries.clear();
    in_.Clear();
    if (writes_done) StartWritesDone();
    StartRead(&in_);
  }

  void OnDone(const grpc::Status& status) override {
    if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED && on_unimplemented_) on_unimplemented_();
    Broken(status.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "queue-service: the EnqueueMany stream ended")
                       : status);
    std::shared_ptr<EnqueueManyStream> last_reference;
    absl::MutexLock lock(&mu_);
    last_reference = std::move(self_);
  }

 private:
  static void Deliver(ManyLane& lane, const v1::EnqueueReply& reply);
  static void FailLane(ManyLane& lane, const grpc::Status& status);

  bool Enqueue(v1::EnqueueItem&& item) {
    {
      absl::MutexLock lock(&mu_);
      if (broken_ || writes_done_) return false;
      outbox_.push_back(std::move(item));
      if (writing_) return true;  // Goes out with the next frame.
      writing_ = true;
      Fill();
    }
    StartWrite(&out_);
    return true;
  }

  // Moves waiting items into the frame to write, up to its size limit.
  void Fill() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    out_.Clear();
    size_t bytes = 0;
    while (!outbox_.empty() && (out_.items_size() == 0 || bytes < kMaxFrameBytes)) {
      bytes += outbox_.front().ByteSizeLong();
      *out_.add_items() = std::move(outbox_.front());
      outbox_.pop_front();
    }
  }

  bool RetireLocked() {
    absl::MutexLock lock(&mu_);
    retiring_ = true;
    return IdleAfterRetireLocked();
  }

  // True once (the caller then half-closes): retired, no lane left, nothing being written.
  bool IdleAfterRetireLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!retiring_ || broken_ || writes_done_ || writing_ || !lanes_.empty() || !outbox_.empty()) return false;
    writes_done_ = true;
    return true;
  }

  void Broken(const grpc::Status& status) {
    std::vector<std::shared_ptr<ManyLane>> lanes;
    bool release;
    {
      absl::MutexLock lock(&mu_);
      broken_ = true;
      outbox_.clear();
      for (auto& [number, weak] : lanes_) {
        if (auto lane = weak.lock()) lanes.push_back(std::move(lane));
      }
      lanes_.clear();
      release = HoldNoLongerNeededLocked();
    }
    for (const std::shared_ptr<ManyLane>& lane : lanes) FailLane(*lane, status);
    if (release) ReleaseHold();
  }

  // Without the hold gRPC may end the call, and free it, at once: a write or half-close that a
  // session's thread decided on (under `mu_`) but has not started yet would then start on a
  // call that is gone. So the hold stays while one is still to start or to complete; its
  // completion releases it (OnWriteDone, OnWritesDoneDone).
  bool HoldNoLongerNeededLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return broken_ && !writing_ && (!writes_done_ || half_closed_);
  }

  void ReleaseHold() {
    if (!hold_released_.exchange(true)) RemoveHold();
  }

  grpc::ClientContext context_;
  const std::function<void()> on_unimplemented_;
  std::atomic<bool> hold_released_{false};
  v1::EnqueueFrame out_;       // Being written; touched only by whoever set `writing_`.
  v1::EnqueueReplyFrame in_;  // Touched only by the read reactions.
  absl::Mutex mu_;
  std::shared_ptr<EnqueueManyStream> self_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::weak_ptr<ManyLane>> lanes_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::EnqueueItem> outbox_ ABSL_GUARDED_BY(mu_);
  uint64_t next_number_ ABSL_GUARDED_BY(mu_) = 1;
  std::string peer_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool writes_done_ ABSL_GUARDED_BY(mu_) = false;  // StartWritesDone decided on.
  bool half_closed_ ABSL_GUARDED_BY(mu_) = false;  // ... and completed.
  bool retiring_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
};

// One message on a shared stream. The session's side runs on its executor; the stream's
// reactions deliver replies under `mu_` and wake the session's wait, if any, by a post.
class ManyLane : public EnqueueLane, public std::enable_shared_from_this<ManyLane> {
 public:
  ManyLane(std::shared_ptr<EnqueueManyStream> stream, uint64_t number, asio::any_io_executor executor,
           std::chrono::milliseconds timeout)
      : stream_(std::move(stream)), number_(number), executor_(std::move(executor)), timeout_(timeout) {}
  ~ManyLane() override { Cancel(); }

  asio::awaitable<bool> ReadyToSend() override {
    return Await([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !chunk_pending_; });
  }

  void Send(v1::EnqueueRequest&& request, bool /*last*/) override {  // The commit ends the upload by itself.
    {
      absl::MutexLock lock(&mu_);
      if (request.part_case() == v1::EnqueueRequest::kContent) chunk_pending_ = true;
    }
    if (!stream_->Send(number_, std::move(request))) {
      Fail(grpc::Status(grpc::StatusCode::UNAVAILABLE, "queue-service: the EnqueueMany stream ended"));
    }
  }

  void StartReceive() override {}  // Replies come as they are sent.

  asio::awaitable<bool> Received(v1::EnqueueResponse* response) override {
    const bool ok = co_await Await([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !responses_.empty(); });
    if (!ok) co_return false;
    absl::MutexLock lock(&mu_);
    *response = std::move(responses_.front());
    responses_.pop_front();
    co_return true;
  }

  asio::awaitable<grpc::Status> Finish() override {
    Cancel();
    absl::MutexLock lock(&mu_);
    co_return failed_ ? status_ : grpc::Status(grpc::StatusCode::CANCELLED, "abandoned");
  }

  void Release() override {
    absl::MutexLock lock(&mu_);
    over_ = true;
  }

  void Cancel() override {
    {
      absl::MutexLock lock(&mu_);
      if (std::exchange(over_, true)) return;
    }
    stream_->Abandon(number_);
  }

  void Bound(std::chrono::steady_clock::time_point limit) override { limit_ = limit; }
  bool timed_out() const override { return timed_out_.load(); }
  std::string peer() override { return stream_->peer(); }

  // From the stream's reactions.
  void Deliver(const v1::EnqueueReply& reply) {
    absl::MutexLock lock(&mu_);
    if (reply.error_code() != 0) {
      FailLocked(grpc::Status(static_cast<grpc::StatusCode>(reply.error_code()), reply.error_message()));
      over_ = true;  // The queue ended the upload itself.
      return;
    }
    if (reply.chunk_stored()) chunk_pending_ = false;
    if (reply.response().part_case() != v1::EnqueueResponse::PART_NOT_SET) {
      if (reply.response().has_committed_queue_id()) over_ = true;
      responses_.push_back(reply.response());
    }
    WakeLocked();
  }

  void Fail(const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    FailLocked(status);
  }

 private:
  void FailLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!failed_) {
      failed_ = true;
      status_ = status;
    }
    WakeLocked();
  }

  // Resumes the waiting session, if any, once what it waits for has come or the lane failed.
  void WakeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!waiter_) return;
    const bool ready = ready_();
    if (!ready && !failed_) return;
    asio::post(executor_, [waiter = std::exchange(waiter_, nullptr), ready] { waiter(ready); });
    ready_ = nullptr;
  }

  // Waits until `ready` holds (true) or the lane fails (false), bounded by the step timeout: at
  // the deadline the message is abandoned and the wait fails.
  asio::awaitable<bool> Await(std::function<bool()> ready) {
    {
      absl::MutexLock lock(&mu_);
      if (ready()) co_return true;
      if (failed_) co_return false;
    }
    asio::steady_timer deadline(executor_, std::min(std::chrono::steady_clock::now() + timeout_, limit_));
    deadline.async_wait([weak = weak_from_this()](std::error_code error) {
      if (error) return;
      if (auto lane = weak.lock()) {
        lane->timed_out_ = true;
        lane->Fail(grpc::Status(grpc::StatusCode::CANCELLED, "no answer within postgate_queue_timeout"));
        lane->Cancel();
      }
    });
    co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(bool)>(
        [this, &ready](auto handler) {
          auto shared = std::make_shared<decltype(handler)>(std::move(handler));
          absl::MutexLock lock(&mu_);
          waiter_ = [shared](bool ok) { (*shared)(ok); };
          ready_ = std::move(ready);
          WakeLocked();  // Perhaps it came since the check above.
        },
        asio::use_awaitable);
  }

  const std::shared_ptr<EnqueueManyStream> stream_;
  const uint64_t number_;
  asio::any_io_executor executor_;
  std::chrono::milliseconds timeout_;
  std::chrono::steady_clock::time_point limit_ = std::chrono::steady_clock::time_point::max();
  std::atomic<bool> timed_out_{false};
  absl::Mutex mu_;
  std::function<void(bool)> waiter_ ABSL_GUARDED_BY(mu_);
  std::function<bool()> ready_ ABSL_GUARDED_BY(mu_);  // What `waiter_` waits for.
  std::deque<v1::EnqueueResponse> responses_ ABSL_GUARDED_BY(mu_);
  bool chunk_pending_ ABSL_GUARDED_BY(mu_) = false;  // Content sent, chunk_stored not yet back.
  bool over_ ABSL_GUARDED_BY(mu_) = false;  // Committed, failed by the queue, or abandoned.
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

std::shared_ptr<ManyLane> EnqueueManyStream::NewLane(asio::any_io_executor executor,
                                                      std::chrono::milliseconds timeout) {
  absl::MutexLock lock(&mu_);
  if (broken_ || retiring_) return nullptr;
  const uint64_t number = next_number_++;
  auto lane = std::make_shared<ManyLane>(shared_from_this(), number, std::move(executor), timeout);
  lanes_.emplace(number, lane);
  return lane;
}

void EnqueueManyStream::Deliver(ManyLane& lane, const v1::EnqueueReply& reply) { lane.Deliver(reply); }
void EnqueueManyStream::FailLane(ManyLane& lane, const grpc::Status& status) { lane.Fail(status); }

struct EnqueueManyStreams::Slot {
  absl::Mutex mu;
  std::shared_ptr<EnqueueManyStream> stream ABSL_GUARDED_BY(mu);
  uint64_t messages ABSL_GUARDED_BY(mu) = 0;  // Lanes the stream was given.
  std::chrono::steady_clock::time_point opened ABSL_GUARDED_BY(mu);
};

EnqueueManyStreams::EnqueueManyStreams(v1::QueueService::Stub& stub, size_t streams, uint64_t messages_per_stream,
                                       std::chrono::milliseconds stream_lifetime)
    : stub_(stub), messages_per_stream_(messages_per_stream), stream_lifetime_(stream_lifetime),
      unimplemented_(std::make_shared<std::atomic<bool>>(false)) {
  for (size_t i = 0; i < streams; ++i) slots_.push_back(std::make_unique<Slot>());
}

EnqueueManyStreams::~EnqueueManyStreams() {
  for (const std::unique_ptr<Slot>& slot : slots_) {
    absl::MutexLock lock(&slot->mu);
    if (slot->stream) slot->stream->Cancel();
  }
}

std::shared_ptr<EnqueueLane> EnqueueManyStreams::NewLane(asio::any_io_executor executor,
                                                         std::chrono::milliseconds timeout) {
  if (slots_.empty() || unimplemented_->load()) return nullptr;
  // Each thread keeps to one stream, threads spread over them in the order they first send.
  static std::atomic<size_t> threads_seen{0};
  thread_local const size_t thread_number = threads_seen++;
  Slot& slot = *slots_[thread_number % slots_.size()];
  const auto now = std::chrono::steady_clock::now();
  absl::MutexLock lock(&slot.mu);
  if (!slot.stream || !slot.stream->usable() || slot.messages >= messages_per_stream_ ||
      now - slot.opened >= stream_lifetime_) {
    if (slot.stream) slot.stream->Retire();
    slot.stream = std::make_shared<EnqueueManyStream>([unimplemented = unimplemented_] { *unimplemented = true; });
    slot.stream->Start(stub_);
    slot.messages = 0;
    slot.opened = now;
  }
  ++slot.messages;
  return slot.stream->NewLane(std::move(executor), timeout);
}

}  // namespace postgate::gateway
