// EnqueueMany: many uploads over one long-lived stream (see queue.proto). The reader hands each
// item to its upload (an EnqueueUpload, the same steps Enqueue takes); the uploads' replies –
// from gRPC's threads or the store writer's – gather in an outbox that goes out as one frame
// whenever the previous frame is through, so under load one write answers many messages.
#include <atomic>
#include <deque>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "queue-service/api/enqueue_upload.h"

namespace postgate::queue {
namespace {

// Uploads one stream may have under way; a gateway has one per session sending a message.
constexpr size_t kMaxUploadsPerStream = 10000;
// A reply frame stays well under the gateway's 4 MiB receive limit.
constexpr size_t kMaxReplyFrameBytes = 1 << 20;

}  // namespace

class QueueApiService::EnqueueManyReactor
    : public grpc::ServerBidiReactor<v1::EnqueueFrame, v1::EnqueueReplyFrame> {
 public:
  explicit EnqueueManyReactor(QueueApiService& service)
      : service_(service), state_(std::make_shared<State>(this)) {
    StartRead(&frame_);
    const bool stopped = service_.AddStream(this, [weak = std::weak_ptr<State>(state_)] {
      if (std::shared_ptr<State> state = weak.lock()) state->Stop();
    });
    if (stopped) state_->Stop();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return state_->Close();  // The gateway half-closed or went away.
    for (v1::EnqueueItem& item : *frame_.mutable_items()) Dispatch(item);
    frame_.Clear();
    StartRead(&frame_);
  }

  void OnWriteDone(bool ok) override { state_->Written(ok); }

  void OnDone() override {
    service_.RemoveStream(this);
    state_->Gone();
    delete this;
  }

 private:
  class Lane;

  // What the reactor shares with its uploads, which may outlive it (a commit's fsync finishing
  // after the stream ended): the uploads under way and the replies waiting to go out.
  class State {
   public:
    explicit State(EnqueueManyReactor* reactor) : reactor_(reactor) {}

    void Send(v1::EnqueueReply reply) {
      EnqueueManyReactor* reactor;
      {
        absl::MutexLock lock(&mu_);
        if (finished_) return;  // Nobody listens: a committed message is stored all the same.
        outbox_.push_back(std::move(reply));
        if (writing_) return;  // Goes out with the next frame.
        writing_ = true;
        Fill();
        reactor = reactor_;  // Finish waits for the write, so the reactor outlives it.
      }
      reactor->StartWrite(&frame_);
    }

    void Written(bool ok) {
      EnqueueManyReactor* reactor;
      bool finish = false;
      {
        absl::MutexLock lock(&mu_);
        reactor = reactor_;
        if (!ok) outbox_.clear();  // The gateway is gone; the read side says so too.
        if (!outbox_.empty()) {
          Fill();
        } else {
          writing_ = false;
          finish = FinishNowLocked();
          if (!finish) return;
        }
      }
      if (finish) return reactor->Finish(grpc::Status::OK);
      reactor->StartWrite(&frame_);
    }

    // At shutdown: no new uploads; the stream finishes once those under way are over.
    void Stop() {
      {
        absl::MutexLock lock(&mu_);
        stopping_ = true;
      }
      FinishIfDone();
    }

    // The read side ended: every upload without its commit is abandoned (their replies still go
    // out if the gateway listens), then the stream finishes once nothing is being written.
    void Close() {
      std::vector<std::shared_ptr<Lane>> lanes;
      {
        absl::MutexLock lock(&mu_);
        closing_ = true;
        for (auto& [number, lane] : lanes_) lanes.push_back(lane);
      }
      for (const std::shared_ptr<Lane>& lane : lanes) lane->Abandon();
      FinishIfDone();  // Or Written does, once the replies are out.
    }

    void Gone() {
      absl::MutexLock lock(&mu_);
      finished_ = true;
      reactor_ = nullptr;
    }

    bool closing() {
      absl::MutexLock lock(&mu_);
      return closing_;
    }

    std::shared_ptr<Lane> Find(uint64_t number) {
      absl::MutexLock lock(&mu_);
      auto it = lanes_.find(number);
      return it == lanes_.end() ? nullptr : it->second;
    }

    // Registers a new upload; a reason when it cannot be.
    std::optional<grpc::Status> Add(uint64_t number, std::shared_ptr<Lane> lane) {
      absl::MutexLock lock(&mu_);
      if (stopping_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "queue-service is stopping");
      if (lanes_.size() >= kMaxUploadsPerStream) {
        return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                            absl::StrCat("more than ", kMaxUploadsPerStream, " uploads under way on one stream"));
      }
      if (!lanes_.emplace(number, std::move(lane)).second) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, absl::StrCat("upload ", number, " is under way"));
      }
      return std::nullopt;
    }

    std::shared_ptr<Lane> Remove(uint64_t number) {
      std::shared_ptr<Lane> lane;
      {
        absl::MutexLock lock(&mu_);
        auto node = lanes_.extract(number);
        if (!node.empty()) lane = std::move(node.mapped());
      }
      FinishIfDone();  // A stopping stream's last upload.
      return lane;
    }

   private:
    // Finishes the call if FinishNowLocked says it is time.
    void FinishIfDone() {
      EnqueueManyReactor* reactor;
      {
        absl::MutexLock lock(&mu_);
        if (!FinishNowLocked()) return;
        reactor = reactor_;
      }
      reactor->Finish(grpc::Status::OK);
    }

    // True once (the caller then finishes the call): nothing is being written, and the read side
    // ended or the stream is stopping with no upload left.
    bool FinishNowLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (finished_ || writing_ || !(closing_ || (stopping_ && lanes_.empty()))) return false;
      finished_ = true;
      return true;
    }

    // Moves waiting replies into the frame to write, up to its size limit.
    void Fill() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      frame_.Clear();
      size_t bytes = 0;
      while (!outbox_.empty() && (frame_.replies_size() == 0 || bytes < kMaxReplyFrameBytes)) {
        bytes += outbox_.front().ByteSizeLong();
        *frame_.add_replies() = std::move(outbox_.front());
        outbox_.pop_front();
      }
    }

    absl::Mutex mu_;
    EnqueueManyReactor* reactor_ ABSL_GUARDED_BY(mu_);
    absl::flat_hash_map<uint64_t, std::shared_ptr<Lane>> lanes_ ABSL_GUARDED_BY(mu_);
    std::deque<v1::EnqueueReply> outbox_ ABSL_GUARDED_BY(mu_);
    v1::EnqueueReplyFrame frame_;  // Being written; touched only by whoever set `writing_`.
    bool writing_ ABSL_GUARDED_BY(mu_) = false;
    bool closing_ ABSL_GUARDED_BY(mu_) = false;   // The read side ended.
    bool stopping_ ABSL_GUARDED_BY(mu_) = false;  // queue-service is stopping (Stop).
    bool finished_ ABSL_GUARDED_BY(mu_) = false;  // Finish was called: nothing more goes out.
  };

  // One upload on the stream: its replies tagged with its number.
  class Lane : public EnqueueUpload::Replies {
   public:
    Lane(QueueApiService& service, std::shared_ptr<State> state, uint64_t number)
        : state_(std::move(state)), number_(number), upload_(std::make_shared<EnqueueUpload>(service, *this)) {}

    void Handle(v1::EnqueueRequest& request) { upload_->Handle(request); }
    void Abandon() {
      abandoned_ = true;
      upload_->Abandon();
    }

    void QueueIdAssigned(v1::EnqueueResponse response) override {
      v1::EnqueueReply reply;
      reply.set_upload(number_);
      *reply.mutable_response() = std::move(response);
      state_->Send(std::move(reply));
    }
    void ChunkStored() override {
      v1::EnqueueReply reply;
      reply.set_upload(number_);
      reply.set_chunk_stored(true);
      state_->Send(std::move(reply));
    }
    void Ended(std::optional<v1::EnqueueResponse> last, grpc::Status status) override {
      v1::EnqueueReply reply;
      reply.set_upload(number_);
      if (last) *reply.mutable_response() = std::move(*last);
      if (!status.ok()) {
        reply.set_error_code(static_cast<int32_t>(status.error_code()));
        reply.set_error_message(status.error_message());
      }
      state_->Send(std::move(reply));
      // Last: this may be the lane's last reference (the upload itself lives on until its step returns).
      std::shared_ptr<Lane> self = state_->Remove(number_);
    }
    bool Abandoned() override { return abandoned_.load() || state_->closing(); }

   private:
    std::shared_ptr<State> state_;
    const uint64_t number_;
    std::shared_ptr<EnqueueUpload> upload_;
    std::atomic<bool> abandoned_{false};
  };

  void Dispatch(v1::EnqueueItem& item) {
    if (item.abandon()) {
      if (std::shared_ptr<Lane> lane = state_->Find(item.upload())) lane->Abandon();
      return;
    }
    if (item.request().has_envelope()) {
      auto lane = std::make_shared<Lane>(service_, state_, item.upload());
      if (std::optional<grpc::Status> refused = state_->Add(item.upload(), lane)) {
        v1::EnqueueReply reply;
        reply.set_upload(item.upload());
        reply.set_error_code(static_cast<int32_t>(refused->error_code()));
        reply.set_error_message(refused->error_message());
        return state_->Send(std::move(reply));
      }
      return lane->Handle(*item.mutable_request());
    }
    // An upload that is over already (its last reply says how) ignores what was still on its way.
    if (std::shared_ptr<Lane> lane = state_->Find(item.upload())) lane->Handle(*item.mutable_request());
  }

  QueueApiService& service_;
  std::shared_ptr<State> state_;
  v1::EnqueueFrame frame_;
};

bool QueueApiService::AddStream(const void* stream, std::function<void()> stop) {
  absl::MutexLock lock(&streams_mu_);
  stream_stoppers_.emplace(stream, std::move(stop));
  return streams_stopped_;
}

void QueueApiService::RemoveStream(const void* stream) {
  absl::MutexLock lock(&streams_mu_);
  stream_stoppers_.erase(stream);
}

void QueueApiService::StopStreams() {
  std::vector<std::function<void()>> stoppers;
  {
    absl::MutexLock lock(&streams_mu_);
    streams_stopped_ = true;
    for (const auto& [stream, stop] : stream_stoppers_) stoppers.push_back(stop);
  }
  for (const std::function<void()>& stop : stoppers) stop();
}

grpc::ServerBidiReactor<v1::EnqueueFrame, v1::EnqueueReplyFrame>* QueueApiService::EnqueueMany(
    grpc::CallbackServerContext* /*context*/) {
  metrics_.enqueue_calls.Add({{"rpc", "EnqueueMany"}}).Increment();
  return new EnqueueManyReactor(*this);
}

}  // namespace postgate::queue
