// One message on its way into the queue: the steps of queue.proto's Enqueue (envelope → queue
// ID, content chunks, commit → the answer once it is fsync'd), apart from how its requests
// arrive. An Enqueue call carries one upload (enqueue_reactor.cc); an EnqueueMany stream carries
// many (enqueue_many_reactor.cc). Nothing here blocks: the store writer makes the writes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "queue-service/api/queue_api_service.h"

namespace postgate::queue {

class QueueApiService::EnqueueUpload : public std::enable_shared_from_this<EnqueueUpload> {
 public:
  // How the upload answers its sender. Called on the thread that made progress (gRPC's, or the
  // store writer's); after Ended, never again.
  class Replies {
   public:
    virtual ~Replies() = default;
    // The envelope is accepted (or is a retry of a stored message): the content may come.
    virtual void QueueIdAssigned(v1::EnqueueResponse response) = 0;
    // A content request is handled (stored, or ignored for a duplicate): the next may come.
    virtual void ChunkStored() = 0;
    // The upload is over: committed (`last` holds the answer) or failed (`status`).
    virtual void Ended(std::optional<v1::EnqueueResponse> last, grpc::Status status) = 0;
    // The sender has gone away or given up: a commit arriving now is not stored.
    virtual bool Abandoned() = 0;
  };

  EnqueueUpload(QueueApiService& service, Replies& replies) : service_(service), replies_(replies), in_flight_(service) {}

  // The upload's next request, once the previous one is handled (QueueIdAssigned, ChunkStored).
  void Handle(v1::EnqueueRequest& request);
  // The sender is gone before its commit: what was stored is discarded. While a write is under
  // way, its completion ends the upload (a commit already on its way is stored all the same).
  void Abandon();

 private:
  enum class Stage { kEnvelope, kContent, kDuplicate, kEnded };

  void OnEnvelope(v1::EnqueueRequest& request);
  void AnswerDuplicate(const std::string& stored_id);
  void OnDuplicateContent(const v1::EnqueueRequest& request);
  void OnContent(v1::EnqueueRequest& request);
  void OnCommit(v1::Commit& commit);
  void OnChunkWritten(const absl::Status& put);
  void OnCommitted(const absl::Status& saved);
  bool TooBig() const { return service_.max_message_bytes_ > 0 && size_ > service_.max_message_bytes_; }
  void Fail(const char* reason, grpc::Status status);
  void End(std::optional<v1::EnqueueResponse> last, grpc::Status status);
  // A store write is under way: Abandon leaves the end to its completion.
  void BeginWrite();

  QueueApiService& service_;
  Replies& replies_;
  // Changed by the upload's own steps (one at a time); under `mu_` where Abandon may look at it.
  Stage stage_ = Stage::kEnvelope;
  std::optional<KeyClaim> claim_;
  InFlightId in_flight_;
  std::string id_;
  absl::Time arrival_;
  absl::Time commit_start_;
  rec::Envelope envelope_;  // The upload's envelope, as the queue keeps it.
  uint32_t chunks_ = 0;
  uint64_t size_ = 0;
  StoredMessage record_;
  absl::Mutex mu_;  // Abandon may come from a reader while the writer's completion runs.
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool abandoned_ ABSL_GUARDED_BY(mu_) = false;
  bool out_of_turn_ ABSL_GUARDED_BY(mu_) = false;  // A request came while a write was under way.
};

}  // namespace postgate::queue
