// Enqueue: one upload per call (see queue.proto), on gRPC's callback API. Reads and the
// upload's store writes take turns (the next read starts once the upload asks for it), so only
// what writes share is under `mu_`: gRPC may run OnWriteDone beside the upload's steps. Writes
// go one at a time: the last one (with the final status) waits for the queue ID's write if that
// is still going out.
#include "queue-service/api/enqueue_upload.h"

namespace postgate::queue {

class QueueApiService::EnqueueReactor : public grpc::ServerBidiReactor<v1::EnqueueRequest, v1::EnqueueResponse>,
                                        public EnqueueUpload::Replies {
 public:
  EnqueueReactor(QueueApiService& service, grpc::CallbackServerContext* context)
      : context_(context), upload_(std::make_shared<EnqueueUpload>(service, *this)) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      if (!started_) return End(std::nullopt, grpc::Status(grpc::StatusCode::CANCELLED, "no envelope"));
      return upload_->Abandon();
    }
    started_ = true;
    upload_->Handle(request_);
  }

  void OnWriteDone(bool /*ok*/) override {
    // A failed write means the gateway is gone; the read that follows says so.
    std::optional<PendingEnd> end;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      end = std::exchange(pending_end_, std::nullopt);
    }
    if (end) End(std::move(end->last), end->status);
  }

  // gRPC calls it after Finish, which comes after the upload's last step.
  void OnDone() override { delete this; }

  void QueueIdAssigned(v1::EnqueueResponse response) override {
    Write(std::move(response));
    StartRead(&request_);
  }
  void ChunkStored() override { StartRead(&request_); }
  void Ended(std::optional<v1::EnqueueResponse> last, grpc::Status status) override {
    End(std::move(last), std::move(status));
  }
  bool Abandoned() override { return context_->IsCancelled(); }

 private:
  struct PendingEnd {
    std::optional<v1::EnqueueResponse> last;
    grpc::Status status;
  };

  void Write(v1::EnqueueResponse response) {
    {
      absl::MutexLock lock(&mu_);
      writing_ = true;
    }
    response_ = std::move(response);
    StartWrite(&response_);
  }

  // Sends `last` (if any) and the status; after a write still going out, once it is through.
  void End(std::optional<v1::EnqueueResponse> last, grpc::Status status) {
    {
      absl::MutexLock lock(&mu_);
      if (writing_) {
        pending_end_ = PendingEnd{std::move(last), std::move(status)};
        return;
      }
    }
    if (last) {
      response_ = std::move(*last);
      StartWriteAndFinish(&response_, grpc::WriteOptions(), status);
    } else {
      Finish(status);
    }
  }

  grpc::CallbackServerContext* context_;
  v1::EnqueueRequest request_;
  v1::EnqueueResponse response_;
  bool started_ = false;  // The envelope came.
  std::shared_ptr<EnqueueUpload> upload_;
  absl::Mutex mu_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<PendingEnd> pending_end_ ABSL_GUARDED_BY(mu_);
};

grpc::ServerBidiReactor<v1::EnqueueRequest, v1::EnqueueResponse>* QueueApiService::Enqueue(
    grpc::CallbackServerContext* context) {
  metrics_.enqueue_calls.Add({{"rpc", "Enqueue"}}).Increment();
  return new EnqueueReactor(*this, context);
}

}  // namespace postgate::queue
