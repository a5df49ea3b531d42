#include "queue-service/api/queue_api_service.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "queue-service/api/record_conversion.h"
#include "queue-service/api/status_conversion.h"
#include "queue-service/api/watch_reactor.h"
#include "queue-service/model/message_record.h"
#include "queue-service/model/timestamps.h"
#include "spdlog/spdlog.h"

namespace postgate::queue {
namespace {

constexpr uint32_t kDefaultPageSize = 100;
constexpr uint32_t kMaxPageSize = 1000;

grpc::Status InvalidArgument(absl::string_view field, absl::string_view problem) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, absl::StrCat(field, ": ", problem));
}

}  // namespace

grpc::Status QueueApiService::Fail(const std::string& id, uint32_t chunks, const char* reason,
                                   grpc::Status status) {
  if (absl::Status discarded = store_.Discard(id, chunks); !discarded.ok()) {
    spdlog::warn("{}: discard after failed enqueue: {}", id, discarded.ToString());
  }
  metrics_.enqueue_failures.Add({{"reason", reason}}).Increment();
  return status;
}

QueueApiService::KeyClaim::KeyClaim(QueueApiService& service, const std::string& key)
    : service_(service), key_(key) {
  absl::MutexLock lock(&service_.keys_mu_);
  claimed_ = service_.keys_in_flight_.insert(key_).second;
}

QueueApiService::KeyClaim::~KeyClaim() {
  if (!claimed_) return;
  absl::MutexLock lock(&service_.keys_mu_);
  service_.keys_in_flight_.erase(key_);
}

const std::string& QueueApiService::InFlightId::Take(const std::string& requested, absl::Time now) {
  absl::MutexLock lock(&service_.keys_mu_);
  if (!requested.empty() && !service_.ids_in_flight_.contains(requested) &&
      absl::IsNotFound(service_.store_.Get(requested).status()) && service_.ids_.Adopt(requested, now)) {
    id_ = requested;
  } else {
    id_ = service_.ids_.Next(now);
  }
  service_.ids_in_flight_.insert(id_);
  return id_;
}

QueueApiService::InFlightId::~InFlightId() {
  if (id_.empty()) return;
  absl::MutexLock lock(&service_.keys_mu_);
  service_.ids_in_flight_.erase(id_);
}

template <typename Request, typename Response>
grpc::ServerUnaryReactor* QueueApiService::RunOnWorker(grpc::CallbackServerContext* context, const Request* request,
                                                       Response* response, Body<Request, Response> body) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // gRPC keeps the context, request and response until Finish; a reactor may finish from any thread.
  const bool posted = api_workers_.Post([this, context, request, response, body, reactor] {
    if (context->IsCancelled()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
      return;
    }
    reactor->Finish((this->*body)(*context, *request, response));
  });
  if (!posted) {
    reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 "queue-service: too many status API calls waiting; try again"));
  }
  return reactor;
}

grpc::ServerUnaryReactor* QueueApiService::GetQueueStatus(grpc::CallbackServerContext* context,
                                                          const v1::GetQueueStatusRequest* request,
                                                          v1::QueueStatus* response) {
  return RunOnWorker(context, request, response, &QueueApiService::DoGetQueueStatus);
}

grpc::ServerUnaryReactor* QueueApiService::SetAccepting(grpc::CallbackServerContext* context,
                                                        const v1::SetAcceptingRequest* request,
                                                        v1::QueueStatus* response) {
  return RunOnWorker(context, request, response, &QueueApiService::DoSetAccepting);
}

grpc::ServerUnaryReactor* QueueApiService::GetActivity(grpc::CallbackServerContext* context,
                                                       const v1::GetActivityRequest* request, v1::Activity* response) {
  return RunOnWorker(context, request, response, &QueueApiService::DoGetActivity);
}

grpc::ServerUnaryReactor* QueueApiService::ListMessages(grpc::CallbackServerContext* context,
                                                        const v1::ListMessagesRequest* request,
                                                        v1::ListMessagesResponse* response) {
  return RunOnWorker(context, request, response, &QueueApiService::DoListMessages);
}

grpc::ServerUnaryReactor* QueueApiService::GetMessage(grpc::CallbackServerContext* context,
                                                      const v1::GetMessageRequest* request, v1::Message* response) {
  return RunOnWorker(context, request, response, &QueueApiService::DoGetMessage);
}

grpc::ServerUnaryReactor* QueueApiService::Flush(grpc::CallbackServerContext* context, const v1::FlushRequest* request,
                                                 v1::FlushResponse* response) {
  return RunOnWorker(context, request, response, &QueueApiService::DoFlush);
}

grpc::ServerUnaryReactor* QueueApiService::Hold(grpc::CallbackServerContext* context,
                                                const v1::MessageRequest* request, v1::Message* response) {
  return RunOnWorker(context, request, response, &QueueApiService::DoHold);
}

grpc::ServerUnaryReactor* QueueApiService::Release(grpc::CallbackServerContext* context,
                                                   const v1::MessageRequest* request, v1::Message* response) {
  return RunOnWorker(context, request, response, &QueueApiService::DoRelease);
}

grpc::ServerUnaryReactor* QueueApiService::Delete(grpc::CallbackServerContext* context,
                                                  const v1::MessageRequest* request, v1::DeleteResponse* response) {
  return RunOnWorker(context, request, response, &QueueApiService::DoDelete);
}

grpc::ServerUnaryReactor* QueueApiService::Requeue(grpc::CallbackServerContext* context,
                                                   const v1::MessageRequest* request, v1::Message* response) {
  return RunOnWorker(context, request, response, &QueueApiService::DoRequeue);
}

grpc::Status QueueApiService::DoGetQueueStatus(const grpc::ServerContextBase&, const v1::GetQueueStatusRequest&,
                                               v1::QueueStatus* response) {
  QueueIndex::Summary summary = index_.Summarize();
  for (v1::MessageState state : {v1::MESSAGE_STATE_ACTIVE, v1::MESSAGE_STATE_DEFERRED,
                                 v1::MESSAGE_STATE_DONE, v1::MESSAGE_STATE_HOLD}) {
    v1::StateCount* count = response->add_by_state();
    count->set_state(state);
    count->set_messages(summary.messages[FromApi(state)]);
    count->set_bytes(summary.bytes[FromApi(state)]);
    if (state != v1::MESSAGE_STATE_DONE) {
      response->set_total_messages(response->total_messages() + summary.messages[state]);
      response->set_total_bytes(response->total_bytes() + summary.bytes[state]);
    }
  }
  if (summary.oldest_pending) {
    response->set_oldest_message_age_seconds(
        static_cast<uint64_t>(absl::ToInt64Seconds(absl::Now() - *summary.oldest_pending)));
  }
  response->set_replica(static_cast<uint32_t>(ids_.replica()));
  response->set_accepting(accepting_.load());
  return grpc::Status::OK;
}

grpc::Status QueueApiService::DoSetAccepting(const grpc::ServerContextBase& context,
                                             const v1::SetAcceptingRequest& request, v1::QueueStatus* response) {
  if (grpc::Status allowed = admin_.Check(context, "SetAccepting"); !allowed.ok()) return allowed;
  if (accepting_.exchange(request.accepting()) != request.accepting()) {
    spdlog::warn("replica {}: {}", ids_.replica(),
                 request.accepting() ? "accepting new messages again" : "no longer accepting new messages (draining)");
    if (accepting_hook_) accepting_hook_(request.accepting());
  }
  return DoGetQueueStatus(context, v1::GetQueueStatusRequest(), response);
}

grpc::Status QueueApiService::DoGetActivity(const grpc::ServerContextBase&, const v1::GetActivityRequest&,
                                            v1::Activity* response) {
  *response = activity_.Snapshot(absl::Now());
  return grpc::Status::OK;
}

grpc::Status QueueApiService::DoListMessages(const grpc::ServerContextBase&, const v1::ListMessagesRequest& request,
                                             v1::ListMessagesResponse* response) {
  uint32_t page_size = request.page_size() == 0 ? kDefaultPageSize : request.page_size();
  if (page_size > kMaxPageSize) {
    return InvalidArgument("page_size", absl::StrCat("at most ", kMaxPageSize));
  }
  if (!request.page_token().empty() && !IsValidQueueId(request.page_token())) {
    return InvalidArgument("page_token", "not a token from a previous ListMessages response");
  }
  if (!v1::MessageState_IsValid(request.state())) return InvalidArgument("state", "unknown state");
  if (request.max_age_seconds() != 0 && request.max_age_seconds() <= request.min_age_seconds()) {
    return InvalidArgument("max_age_seconds", "must be larger than min_age_seconds");
  }
  const std::string sender = absl::AsciiStrToLower(request.sender_contains());
  const std::string recipient = absl::AsciiStrToLower(request.recipient_contains());
  const absl::Time now = absl::Now();
  auto wanted = [&](const rec::Message& message) {
    const absl::Duration age = now - FromTimestamp(message.arrival_time());
    if (age < absl::Seconds(request.min_age_seconds())) return false;
    if (request.max_age_seconds() != 0 && age >= absl::Seconds(request.max_age_seconds())) return false;
    if (!absl::StrContains(absl::AsciiStrToLower(message.envelope().sender()), sender)) return false;
    if (recipient.empty()) return true;
    for (const rec::RecipientStatus& r : message.recipients()) {
      if (absl::StrContains(absl::AsciiStrToLower(r.address()), recipient)) return true;
    }
    return false;
  };
  if (request.state() == v1::MESSAGE_STATE_DONE) return ListFinished(request, page_size, wanted, response);
  // Walk the index in order; filters may skip many, so read it in batches.
  std::string cursor = request.page_token();
  constexpr size_t kBatch = 1000;
  for (;;) {
    std::vector<std::string> ids = index_.List(FromApi(request.state()), cursor, kBatch, request.newest_first());
    for (const std::string& id : ids) {
      cursor = id;
      absl::StatusOr<StoredMessage> record = store_.Get(id);
      if (!record.ok() || !wanted(record->message())) continue;  // Gone, or filtered out.
      if (static_cast<uint32_t>(response->messages_size()) == page_size) {
        // One more match exists: the page is full and the token points just before it.
        response->set_next_page_token(response->messages(page_size - 1).queue_id());
        return grpc::Status::OK;
      }
      *response->add_messages() = ToApi(record->message());
    }
    if (ids.size() < kBatch) return grpc::Status::OK;
  }
}

grpc::Status QueueApiService::ListFinished(const v1::ListMessagesRequest& request, uint32_t page_size,
                                           const std::function<bool(const rec::Message&)>& wanted,
                                           v1::ListMessagesResponse* response) {
  // DONE messages live in the store only. One call reads at most kScanBudget records, so a
  // filter that matches nothing costs a bounded step, not the whole retained history: the token
  // then points at the last record read, and the page may be short (or empty) though more follow.
  constexpr size_t kScanBudget = 10000;
  size_t read = 0;
  std::string last_read;
  bool more = false;
  const auto visit = [&](const StoredMessage& record) {
    const rec::Message& message = record.message();
    if (message.state() == rec::MESSAGE_STATE_DONE && wanted(message)) {
      if (static_cast<uint32_t>(response->messages_size()) == page_size) {
        more = true;
        return false;
      }
      *response->add_messages() = ToApi(message);
    }
    last_read = message.queue_id();
    if (++read == kScanBudget) {
      more = true;
      return false;
    }
    return true;
  };
  absl::Status scanned = request.newest_first() ? store_.ScanBackward(request.page_token(), visit)
                                                : store_.Scan(request.page_token(), visit);
  if (!scanned.ok()) return ToGrpcStatus(scanned);
  if (more) {
    response->set_next_page_token(static_cast<uint32_t>(response->messages_size()) == page_size
                                      ? response->messages(page_size - 1).queue_id()
                                      : last_read);
  }
  return grpc::Status::OK;
}

std::optional<std::string> QueueApiService::StoredWithKey(const std::string& key) {
  if (std::optional<std::string> pending = index_.FindByIdempotencyKey(key)) return pending;
  absl::StatusOr<std::optional<std::string>> stored = store_.FindByIdempotencyKey(key);
  return stored.ok() ? *stored : std::nullopt;  // A failed read stores again: at worst a duplicate.
}

absl::Status QueueApiService::CheckQueueId(const std::string& id) {
  if (IsValidQueueId(id)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("queue_id: \"", id, "\" is not a queue ID (13 upper-case hex digits)"));
}

absl::StatusOr<StoredMessage> QueueApiService::Load(const std::string& id) {
  if (absl::Status valid = CheckQueueId(id); !valid.ok()) return valid;
  absl::StatusOr<StoredMessage> record = store_.Get(id);
  if (absl::IsNotFound(record.status())) return absl::NotFoundError(absl::StrCat("queue ID ", id, " not found"));
  return record;
}

grpc::Status QueueApiService::DoGetMessage(const grpc::ServerContextBase&, const v1::GetMessageRequest& request,
                                           v1::Message* response) {
  absl::StatusOr<StoredMessage> record = Load(request.queue_id());
  if (!record.ok()) return ToGrpcStatus(record.status());
  *response = ToApi(record->message());
  return grpc::Status::OK;
}

}  // namespace postgate::queue

namespace postgate::queue {

grpc::Status QueueApiService::DoFlush(const grpc::ServerContextBase&, const v1::FlushRequest& request,
                                      v1::FlushResponse* response) {
  absl::StatusOr<uint32_t> scheduled = request.queue_id().empty()
                                            ? agent_.Flush(request.domain(), request.include_subdomains())
                                            : agent_.FlushMessage(request.queue_id());
  if (!scheduled.ok()) return ToGrpcStatus(scheduled.status());
  response->set_messages(*scheduled);
  return grpc::Status::OK;
}

}  // namespace postgate::queue

namespace postgate::queue {

// GetMessageContent as a stream that holds no thread while the client reads: each piece (the
// stored header prefix, then chunk by chunk) is read on a status API worker, and the next read
// starts when the client has taken the previous piece.
class QueueApiService::ContentReactor : public grpc::ServerWriteReactor<v1::MessageContentChunk> {
 public:
  ContentReactor(QueueApiService& service, grpc::CallbackServerContext* context, std::string queue_id)
      : service_(service), context_(context), queue_id_(std::move(queue_id)) {
    OnWorker([this] { Open(); });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
      return;
    }
    OnWorker([this] { SendNext(); });
  }

  void OnDone() override { delete this; }

 private:
  void OnWorker(std::function<void()> step) {
    if (!service_.api_workers_.Post(std::move(step))) {
      Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "queue-service: too many status API calls waiting; try again"));
    }
  }

  void Open() {
    // Message content is personal data: reading it is an admin action.
    if (grpc::Status allowed = service_.admin_.Check(*context_, "GetMessageContent"); !allowed.ok()) {
      Finish(allowed);
      return;
    }
    absl::StatusOr<StoredMessage> record = service_.Load(queue_id_);
    if (!record.ok()) {
      Finish(ToGrpcStatus(record.status()));
      return;
    }
    if (record->message().state() == rec::MESSAGE_STATE_DONE) {
      Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          absl::StrCat("queue ID ", queue_id_, " is done; its content is gone")));
      return;
    }
    record_ = *std::move(record);
    SendNext();
  }

  // Reads and starts writing the next piece, or ends the stream after the last one.
  void SendNext() {
    if (context_->IsCancelled()) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
      return;
    }
    if (!prefix_sent_) {
      prefix_sent_ = true;
      if (!record_.header_prefix().empty()) {
        piece_.set_data(record_.header_prefix());
        StartWrite(&piece_);
        return;
      }
    }
    if (next_chunk_ == record_.chunk_count()) {
      Finish(grpc::Status::OK);
      return;
    }
    absl::StatusOr<std::string> chunk = service_.store_.ReadChunk(record_, next_chunk_++);
    if (!chunk.ok()) {
      Finish(ToGrpcStatus(chunk.status()));
      return;
    }
    piece_.set_data(*std::move(chunk));
    StartWrite(&piece_);
  }

  QueueApiService& service_;
  grpc::CallbackServerContext* context_;
  const std::string queue_id_;
  StoredMessage record_;
  bool prefix_sent_ = false;
  uint32_t next_chunk_ = 0;
  v1::MessageContentChunk piece_;  // Kept until its write is done.
};

grpc::ServerWriteReactor<v1::MessageContentChunk>* QueueApiService::GetMessageContent(
    grpc::CallbackServerContext* context, const v1::GetMessageContentRequest* request) {
  return new ContentReactor(*this, context, request->queue_id());
}

namespace {

grpc::Status Reply(const absl::StatusOr<rec::Message>& result, v1::Message* response) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = ToApi(*result);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status QueueApiService::DoHold(const grpc::ServerContextBase& context, const v1::MessageRequest& request,
                                     v1::Message* response) {
  if (grpc::Status allowed = admin_.Check(context, "Hold"); !allowed.ok()) return allowed;
  if (absl::Status valid = CheckQueueId(request.queue_id()); !valid.ok()) return ToGrpcStatus(valid);
  return Reply(agent_.Hold(request.queue_id(), request.reason()), response);
}

grpc::Status QueueApiService::DoRelease(const grpc::ServerContextBase& context, const v1::MessageRequest& request,
                                        v1::Message* response) {
  if (grpc::Status allowed = admin_.Check(context, "Release"); !allowed.ok()) return allowed;
  if (absl::Status valid = CheckQueueId(request.queue_id()); !valid.ok()) return ToGrpcStatus(valid);
  return Reply(agent_.Release(request.queue_id()), response);
}

grpc::Status QueueApiService::DoDelete(const grpc::ServerContextBase& context, const v1::MessageRequest& request,
                                       v1::DeleteResponse*) {
  if (grpc::Status allowed = admin_.Check(context, "Delete"); !allowed.ok()) return allowed;
  if (absl::Status valid = CheckQueueId(request.queue_id()); !valid.ok()) return ToGrpcStatus(valid);
  return ToGrpcStatus(agent_.Delete(request.queue_id()));
}

grpc::Status QueueApiService::DoRequeue(const grpc::ServerContextBase& context, const v1::MessageRequest& request,
                                        v1::Message* response) {
  if (grpc::Status allowed = admin_.Check(context, "Requeue"); !allowed.ok()) return allowed;
  if (absl::Status valid = CheckQueueId(request.queue_id()); !valid.ok()) return ToGrpcStatus(valid);
  return Reply(agent_.Requeue(request.queue_id()), response);
}

grpc::ServerWriteReactor<v1::QueueEvent>* QueueApiService::WatchEvents(grpc::CallbackServerContext* context,
                                                                        const v1::WatchEventsRequest* request) {
  return StartWatch(events_, *request);
}

}  // namespace postgate::queue
