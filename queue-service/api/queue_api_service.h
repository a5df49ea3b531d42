// The gRPC face of queue-service: the gateway's Enqueue stream and the status API. Proto ↔ store
// mapping lives here; delivery and storage are behind their interfaces. Enqueue, the hot path,
// runs on gRPC's callback API and hands its writes to one store writer, which groups them (one
// fsync for every commit waiting); the status API's bodies run on a few worker threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "postgate/queue/v1/queue.grpc.pb.h"
#include "queue-service/api/admin_auth.h"
#include "queue-service/api/call_worker_pool.h"
#include "queue-service/delivery/delivery_agent.h"
#include "queue-service/metrics/queue_metrics.h"
#include "queue-service/model/queue_id.h"
#include "queue-service/scheduler/activity_history.h"
#include "queue-service/scheduler/event_bus.h"
#include "queue-service/scheduler/queue_index.h"
#include "queue-service/store/message_store.h"
#include "queue-service/store/store_writer.h"

namespace postgate::queue {

// Every method runs on gRPC's callback API. Enqueue and WatchEvents never block; the status API's
// bodies may (store reads, scans, a message's lock), so they run on `api_workers_`.
class QueueApiService final : public v1::QueueService::CallbackService {
 public:
  QueueApiService(MessageStore& store, QueueIndex& index, QueueIdGenerator& ids,
                  DeliveryAgent& agent, EventBus& events, const ActivityHistory& activity,
                  QueueMetrics& metrics, AdminAuth& admin, uint64_t max_message_bytes)
      : store_(store), index_(index), ids_(ids), agent_(agent), events_(events), activity_(activity), metrics_(metrics),
        admin_(admin), max_message_bytes_(max_message_bytes),
        writer_(store, [this](const StoreWriter::GroupWritten& group) {
          metrics_.store_group_seconds.Observe(absl::ToDoubleSeconds(group.duration));
          metrics_.store_group_requests.Observe(static_cast<double>(group.requests));
        }) {}

  grpc::ServerBidiReactor<v1::EnqueueRequest, v1::EnqueueResponse>* Enqueue(
      grpc::CallbackServerContext* context) override;
  grpc::ServerBidiReactor<v1::EnqueueFrame, v1::EnqueueReplyFrame>* EnqueueMany(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* GetQueueStatus(grpc::CallbackServerContext* context,
                                           const v1::GetQueueStatusRequest* request,
                                           v1::QueueStatus* response) override;
  grpc::ServerUnaryReactor* ListMessages(grpc::CallbackServerContext* context,
                                         const v1::ListMessagesRequest* request,
                                         v1::ListMessagesResponse* response) override;
  grpc::ServerUnaryReactor* GetMessage(grpc::CallbackServerContext* context, const v1::GetMessageRequest* request,
                                       v1::Message* response) override;
  grpc::ServerUnaryReactor* Flush(grpc::CallbackServerContext* context, const v1::FlushRequest* request,
                                  v1::FlushResponse* response) override;
  grpc::ServerWriteReactor<v1::MessageContentChunk>* GetMessageContent(
      grpc::CallbackServerContext* context, const v1::GetMessageContentRequest* request) override;
  grpc::ServerUnaryReactor* Hold(grpc::CallbackServerContext* context, const v1::MessageRequest* request,
                                 v1::Message* response) override;
  grpc::ServerUnaryReactor* Release(grpc::CallbackServerContext* context, const v1::MessageRequest* request,
                                    v1::Message* response) override;
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* context, const v1::MessageRequest* request,
                                   v1::DeleteResponse* response) override;
  grpc::ServerUnaryReactor* Requeue(grpc::CallbackServerContext* context, const v1::MessageRequest* request,
                                    v1::Message* response) override;
  grpc::ServerWriteReactor<v1::QueueEvent>* WatchEvents(grpc::CallbackServerContext* context,
                                                       const v1::WatchEventsRequest* request) override;
  grpc::ServerUnaryReactor* SetAccepting(grpc::CallbackServerContext* context, const v1::SetAcceptingRequest* request,
                                         v1::QueueStatus* response) override;
  grpc::ServerUnaryReactor* GetActivity(grpc::CallbackServerContext* context, const v1::GetActivityRequest* request,
                                        v1::Activity* response) override;

  // Told whether this replica takes new messages (the "readiness" health service follows it).
  void OnAcceptingChange(std::function<void(bool)> hook) { accepting_hook_ = std::move(hook); }
  // At shutdown, before the server's: every EnqueueMany stream finishes once the messages under
  // way on it are through, and takes no new one (a gateway keeps a stream open while idle, and the
  // server's shutdown would wait for it).
  void StopStreams();
  // Asked before each new message: RESOURCE_EXHAUSTED when the queue's file system is too full
  // (queue_minfree), so the client hears "452 4.3.1 Insufficient system storage".
  void SetStorageCheck(std::function<absl::Status()> check) { storage_check_ = std::move(check); }

 private:
  grpc::Status Fail(const std::string& id, uint32_t chunks, const char* reason, grpc::Status status);
  // Runs `body` on `api_workers_` and finishes the call with its status (RESOURCE_EXHAUSTED at
  // once when too many calls already wait for a worker).
  template <typename Request, typename Response>
  using Body = grpc::Status (QueueApiService::*)(const grpc::ServerContextBase&, const Request&, Response*);
  template <typename Request, typename Response>
  grpc::ServerUnaryReactor* RunOnWorker(grpc::CallbackServerContext* context, const Request* request,
                                        Response* response, Body<Request, Response> body);
  // The method bodies, run by RunOnWorker.
  grpc::Status DoGetQueueStatus(const grpc::ServerContextBase&, const v1::GetQueueStatusRequest&, v1::QueueStatus*);
  grpc::Status DoListMessages(const grpc::ServerContextBase&, const v1::ListMessagesRequest&, v1::ListMessagesResponse*);
  grpc::Status DoGetMessage(const grpc::ServerContextBase&, const v1::GetMessageRequest&, v1::Message*);
  grpc::Status DoFlush(const grpc::ServerContextBase&, const v1::FlushRequest&, v1::FlushResponse*);
  grpc::Status DoHold(const grpc::ServerContextBase&, const v1::MessageRequest&, v1::Message*);
  grpc::Status DoRelease(const grpc::ServerContextBase&, const v1::MessageRequest&, v1::Message*);
  grpc::Status DoDelete(const grpc::ServerContextBase&, const v1::MessageRequest&, v1::DeleteResponse*);
  grpc::Status DoRequeue(const grpc::ServerContextBase&, const v1::MessageRequest&, v1::Message*);
  grpc::Status DoSetAccepting(const grpc::ServerContextBase&, const v1::SetAcceptingRequest&, v1::QueueStatus*);
  grpc::Status DoGetActivity(const grpc::ServerContextBase&, const v1::GetActivityRequest&, v1::Activity*);
  // InvalidArgument naming the field for a malformed ID. (Admin actions need no more here: the
  // delivery agent loads the record under its per-message lock and reports NotFound itself.)
  static absl::Status CheckQueueId(const std::string& id);
  // The stored record; InvalidArgument for a malformed ID, NotFound for an unknown one.
  absl::StatusOr<StoredMessage> Load(const std::string& id);
  // ListMessages for DONE: from the store, a bounded number of records per call.
  grpc::Status ListFinished(const v1::ListMessagesRequest& request, uint32_t page_size,
                            const std::function<bool(const rec::Message&)>& wanted,
                            v1::ListMessagesResponse* response);
  // The message stored with idempotency key `key`: pending (the index) or finished (the store).
  std::optional<std::string> StoredWithKey(const std::string& key);

  MessageStore& store_;
  QueueIndex& index_;
  QueueIdGenerator& ids_;
  DeliveryAgent& agent_;
  EventBus& events_;
  const ActivityHistory& activity_;
  QueueMetrics& metrics_;
  AdminAuth& admin_;
  uint64_t max_message_bytes_;  // 0: no limit.
  std::atomic<bool> accepting_{true};
  std::function<void(bool)> accepting_hook_;
  std::function<absl::Status()> storage_check_;

  // One Enqueue at a time per idempotency key, so two concurrent retries cannot both store.
  class KeyClaim {
   public:
    KeyClaim(QueueApiService& service, const std::string& key);
    ~KeyClaim();
    bool claimed() const { return claimed_; }

   private:
    QueueApiService& service_;
    std::string key_;
    bool claimed_ = false;
  };
  // The ID an Enqueue stream uses, reserved until the stream ends (so a retry cannot take it).
  class InFlightId {
   public:
    explicit InFlightId(QueueApiService& service) : service_(service) {}
    ~InFlightId();
    const std::string& Take(const std::string& requested, absl::Time now);

   private:
    QueueApiService& service_;
    std::string id_;
  };
  class EnqueueUpload;  // One message's steps (enqueue_upload.h).
  class EnqueueReactor;  // Enqueue: one upload per call.
  class EnqueueManyReactor;  // EnqueueMany: many uploads per stream.
  class ContentReactor;
  // EnqueueMany streams under way, and how to stop each. AddStream says whether they are stopped.
  bool AddStream(const void* stream, std::function<void()> stop);
  void RemoveStream(const void* stream);
  absl::Mutex streams_mu_;
  absl::flat_hash_map<const void*, std::function<void()>> stream_stoppers_ ABSL_GUARDED_BY(streams_mu_);
  bool streams_stopped_ ABSL_GUARDED_BY(streams_mu_) = false;
  absl::Mutex keys_mu_;
  absl::flat_hash_set<std::string> keys_in_flight_ ABSL_GUARDED_BY(keys_mu_);
  absl::flat_hash_set<std::string> ids_in_flight_ ABSL_GUARDED_BY(keys_mu_);
  // Four status calls run at once (a scan of 100,000 messages takes ~0.5 s); a flood waits in a
  // bounded line. Destroyed after the server has shut down, so no call is left waiting.
  CallWorkerPool api_workers_{4, 1024, "status-api"};
  // Last: destroyed first, it finishes the writes it holds while everything its callbacks touch
  // still exists.
  StoreWriter writer_;
};

}  // namespace postgate::queue
