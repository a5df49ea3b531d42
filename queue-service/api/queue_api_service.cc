#include "queue-service/api/queue_api_service.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "queue-service/api/status_conversion.h"
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
  if (!requested.empty() && !service_.ids_in_flight_.contains(requested) && !service_.index_.Contains(requested) &&
      service_.ids_.Adopt(requested, now)) {
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

grpc::Status QueueApiService::AnswerDuplicate(
    const std::string& id, grpc::ServerReaderWriter<v1::EnqueueResponse, v1::EnqueueRequest>* stream) {
  v1::EnqueueResponse response;
  response.set_queue_id(id);
  if (!stream->Write(response)) return grpc::Status(grpc::StatusCode::CANCELLED, "client gone");
  v1::EnqueueRequest request;
  while (stream->Read(&request)) {  // The content again: already stored, not kept.
    if (request.has_commit()) {
      metrics_.enqueue_duplicates.Increment();
      spdlog::info("{}: retry with the same idempotency key: already stored, not stored again", id);
      response.set_committed_queue_id(id);
      stream->Write(response);
      return grpc::Status::OK;
    }
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "stream ended before commit");
}

grpc::Status QueueApiService::Enqueue(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::EnqueueResponse, v1::EnqueueRequest>* stream) {
  v1::EnqueueRequest request;
  if (!stream->Read(&request)) return grpc::Status(grpc::StatusCode::CANCELLED, "no envelope");
  if (!request.has_envelope()) return InvalidArgument("envelope", "must be the first message");
  if (absl::Status valid = ValidateEnvelope(request.envelope()); !valid.ok()) return ToGrpcStatus(valid);

  if (!accepting_.load()) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "this replica is not accepting new messages (draining)");
  }
  if (storage_check_) {
    if (absl::Status space = storage_check_(); !space.ok()) {
      metrics_.enqueue_failures.Add({{"reason", "storage"}}).Increment();
      return ToGrpcStatus(space);
    }
  }
  // A retry of a message this replica already stored: answer its ID, store nothing.
  const std::string key = request.envelope().idempotency_key();
  std::optional<KeyClaim> claim;
  if (!key.empty()) {
    if (std::optional<std::string> stored = index_.FindByIdempotencyKey(key)) {
      return AnswerDuplicate(*stored, stream);
    }
    claim.emplace(*this, key);
    if (!claim->claimed()) {
      return grpc::Status(grpc::StatusCode::ABORTED, "a message with this idempotency_key is being stored");
    }
    if (std::optional<std::string> stored = index_.FindByIdempotencyKey(key)) {  // Stored meanwhile.
      return AnswerDuplicate(*stored, stream);
    }
  }

  const absl::Time arrival = absl::Now();
  // A retry keeps the ID already written into its Received: header (this replica gave it out,
  // perhaps before a restart). Only with a claimed key: the attempt that was given the ID has the
  // same key, so it is over (its chunks discarded) before the claim could be taken.
  InFlightId in_flight(*this);
  const std::string id = in_flight.Take(claim ? request.envelope().requested_queue_id() : std::string(), arrival);
  v1::EnqueueResponse response;
  response.set_queue_id(id);
  if (!stream->Write(response)) return grpc::Status(grpc::StatusCode::CANCELLED, "client gone");

  v1::Envelope envelope = std::move(*request.mutable_envelope());
  uint32_t chunks = 0;
  uint64_t size = 0;
  auto too_big = [&] { return max_message_bytes_ > 0 && size > max_message_bytes_; };
  std::string last_chunk;  // Carried by the commit; stored in the same write as the record.
  bool committed = false;
  while (stream->Read(&request)) {
    if (request.has_commit()) {
      size += request.commit().content().size();
      if (too_big()) {
        return Fail(id, chunks, "too_big", grpc::Status(grpc::StatusCode::OUT_OF_RANGE, "message too big"));
      }
      if (request.commit().size() != size) {
        return Fail(id, chunks, "size_mismatch",
                    InvalidArgument("commit.size", absl::StrCat("says ", request.commit().size(),
                                                                " bytes, received ", size)));
      }
      // Too late (the gateway has given up and said 451) or abandoned: storing it now would
      // deliver a message its sender was told failed, and will send again.
      if ((request.commit().has_deadline() && absl::Now() > FromTimestamp(request.commit().deadline())) ||
          context->IsCancelled()) {
        return Fail(id, chunks, "expired",
                    grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "commit arrived after its deadline"));
      }
      last_chunk = std::move(*request.mutable_commit()->mutable_content());
      committed = true;
      break;
    }
    if (request.part_case() != v1::EnqueueRequest::kContent) {
      return Fail(id, chunks, "protocol", InvalidArgument("part", "expected content or commit"));
    }
    size += request.content().size();
    if (too_big()) {
      return Fail(id, chunks, "too_big", grpc::Status(grpc::StatusCode::OUT_OF_RANGE, "message too big"));
    }
    if (absl::Status put = store_.PutChunk(id, chunks, request.content()); !put.ok()) {
      return Fail(id, chunks + 1, "store", ToGrpcStatus(put));
    }
    ++chunks;
  }
  if (!committed) {
    return Fail(id, chunks, "cancelled",
                grpc::Status(grpc::StatusCode::CANCELLED, "stream ended before commit"));
  }

  if (!last_chunk.empty()) ++chunks;
  StoredMessage record = NewMessageRecord(id, std::move(envelope), size, chunks, arrival);
  const v1::Message& message = record.message();
  const absl::Time commit_start = absl::Now();
  SetTimestamp(record.mutable_message()->mutable_queued_time(), commit_start);
  absl::Status saved = last_chunk.empty() ? store_.Commit(record) : store_.CommitWithLastChunk(record, last_chunk);
  if (!saved.ok()) {
    spdlog::error("{}: queue file write error: {}", id, saved.ToString());
    return Fail(id, chunks, "store", ToGrpcStatus(saved));
  }
  metrics_.commit_seconds.Observe(absl::ToDoubleSeconds(absl::Now() - commit_start));
  metrics_.messages_stored.Increment();
  metrics_.stored_bytes.Increment(static_cast<double>(size));
  index_.Upsert(message);
  spdlog::info("{}: from=<{}>, size={}, nrcpt={} (queue active)", id, message.envelope().sender(),
               size, message.recipients_size());

  response.set_committed_queue_id(id);
  stream->Write(response);  // The message is stored whether or not the gateway still listens.
  agent_.PublishReceived(message);
  agent_.Submit(id);
  return grpc::Status::OK;
}

grpc::Status QueueApiService::GetQueueStatus(grpc::ServerContext*, const v1::GetQueueStatusRequest*,
                                             v1::QueueStatus* response) {
  QueueIndex::Summary summary = index_.Summarize();
  for (v1::MessageState state : {v1::MESSAGE_STATE_ACTIVE, v1::MESSAGE_STATE_DEFERRED,
                                 v1::MESSAGE_STATE_DONE, v1::MESSAGE_STATE_HOLD}) {
    v1::StateCount* count = response->add_by_state();
    count->set_state(state);
    count->set_messages(summary.messages[state]);
    count->set_bytes(summary.bytes[state]);
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

grpc::Status QueueApiService::SetAccepting(grpc::ServerContext* context, const v1::SetAcceptingRequest* request,
                                           v1::QueueStatus* response) {
  if (grpc::Status allowed = admin_.Check(*context, "SetAccepting"); !allowed.ok()) return allowed;
  if (accepting_.exchange(request->accepting()) != request->accepting()) {
    spdlog::warn("replica {}: {}", ids_.replica(),
                 request->accepting() ? "accepting new messages again" : "no longer accepting new messages (draining)");
    if (accepting_hook_) accepting_hook_(request->accepting());
  }
  return GetQueueStatus(context, nullptr, response);
}

grpc::Status QueueApiService::ListMessages(grpc::ServerContext*, const v1::ListMessagesRequest* request,
                                           v1::ListMessagesResponse* response) {
  uint32_t page_size = request->page_size() == 0 ? kDefaultPageSize : request->page_size();
  if (page_size > kMaxPageSize) {
    return InvalidArgument("page_size", absl::StrCat("at most ", kMaxPageSize));
  }
  if (!request->page_token().empty() && !IsValidQueueId(request->page_token())) {
    return InvalidArgument("page_token", "not a token from a previous ListMessages response");
  }
  if (!v1::MessageState_IsValid(request->state())) return InvalidArgument("state", "unknown state");
  if (request->max_age_seconds() != 0 && request->max_age_seconds() <= request->min_age_seconds()) {
    return InvalidArgument("max_age_seconds", "must be larger than min_age_seconds");
  }
  const std::string sender = absl::AsciiStrToLower(request->sender_contains());
  const std::string recipient = absl::AsciiStrToLower(request->recipient_contains());
  const absl::Time now = absl::Now();
  auto wanted = [&](const v1::Message& message) {
    const absl::Duration age = now - FromTimestamp(message.arrival_time());
    if (age < absl::Seconds(request->min_age_seconds())) return false;
    if (request->max_age_seconds() != 0 && age >= absl::Seconds(request->max_age_seconds())) return false;
    if (!absl::StrContains(absl::AsciiStrToLower(message.envelope().sender()), sender)) return false;
    if (recipient.empty()) return true;
    for (const v1::RecipientStatus& r : message.recipients()) {
      if (absl::StrContains(absl::AsciiStrToLower(r.address()), recipient)) return true;
    }
    return false;
  };
  // Walk the index in order; filters may skip many, so read it in batches.
  std::string cursor = request->page_token();
  constexpr size_t kBatch = 1000;
  for (;;) {
    std::vector<std::string> ids = index_.List(request->state(), cursor, kBatch, request->newest_first());
    for (const std::string& id : ids) {
      cursor = id;
      absl::StatusOr<StoredMessage> record = store_.Get(id);
      if (!record.ok() || !wanted(record->message())) continue;  // Gone, or filtered out.
      if (static_cast<uint32_t>(response->messages_size()) == page_size) {
        // One more match exists: the page is full and the token points just before it.
        response->set_next_page_token(response->messages(page_size - 1).queue_id());
        return grpc::Status::OK;
      }
      *response->add_messages() = record->message();
    }
    if (ids.size() < kBatch) return grpc::Status::OK;
  }
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

grpc::Status QueueApiService::GetMessage(grpc::ServerContext*, const v1::GetMessageRequest* request,
                                         v1::Message* response) {
  absl::StatusOr<StoredMessage> record = Load(request->queue_id());
  if (!record.ok()) return ToGrpcStatus(record.status());
  *response = record->message();
  return grpc::Status::OK;
}

}  // namespace postgate::queue

namespace postgate::queue {

grpc::Status QueueApiService::Flush(grpc::ServerContext*, const v1::FlushRequest* request,
                                    v1::FlushResponse* response) {
  absl::StatusOr<uint32_t> scheduled = request->queue_id().empty()
                                            ? agent_.Flush(request->domain(), request->include_subdomains())
                                            : agent_.FlushMessage(request->queue_id());
  if (!scheduled.ok()) return ToGrpcStatus(scheduled.status());
  response->set_messages(*scheduled);
  return grpc::Status::OK;
}

}  // namespace postgate::queue

namespace postgate::queue {

grpc::Status QueueApiService::GetMessageContent(grpc::ServerContext* context,
                                                const v1::GetMessageContentRequest* request,
                                                grpc::ServerWriter<v1::MessageContentChunk>* writer) {
  // Message content is personal data: reading it is an admin action.
  if (grpc::Status allowed = admin_.Check(*context, "GetMessageContent"); !allowed.ok()) return allowed;
  absl::StatusOr<StoredMessage> record = Load(request->queue_id());
  if (!record.ok()) return ToGrpcStatus(record.status());
  if (record->message().state() == v1::MESSAGE_STATE_DONE) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("queue ID ", request->queue_id(), " is done; its content is gone"));
  }
  absl::Status read = store_.ReadContent(*record, [&](absl::string_view chunk) {
    if (context->IsCancelled()) return absl::CancelledError("client went away");
    v1::MessageContentChunk out;
    out.set_data(std::string(chunk));
    return writer->Write(out) ? absl::OkStatus() : absl::CancelledError("client went away");
  });
  return ToGrpcStatus(read);
}

namespace {

template <typename Result>
grpc::Status Reply(const absl::StatusOr<Result>& result, Result* response) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *result;
  return grpc::Status::OK;
}

}  // namespace

grpc::Status QueueApiService::Hold(grpc::ServerContext* context, const v1::MessageRequest* request,
                                   v1::Message* response) {
  if (grpc::Status allowed = admin_.Check(*context, "Hold"); !allowed.ok()) return allowed;
  if (absl::Status valid = CheckQueueId(request->queue_id()); !valid.ok()) return ToGrpcStatus(valid);
  return Reply(agent_.Hold(request->queue_id()), response);
}

grpc::Status QueueApiService::Release(grpc::ServerContext* context, const v1::MessageRequest* request,
                                      v1::Message* response) {
  if (grpc::Status allowed = admin_.Check(*context, "Release"); !allowed.ok()) return allowed;
  if (absl::Status valid = CheckQueueId(request->queue_id()); !valid.ok()) return ToGrpcStatus(valid);
  return Reply(agent_.Release(request->queue_id()), response);
}

grpc::Status QueueApiService::Delete(grpc::ServerContext* context, const v1::MessageRequest* request,
                                     v1::DeleteResponse*) {
  if (grpc::Status allowed = admin_.Check(*context, "Delete"); !allowed.ok()) return allowed;
  if (absl::Status valid = CheckQueueId(request->queue_id()); !valid.ok()) return ToGrpcStatus(valid);
  return ToGrpcStatus(agent_.Delete(request->queue_id()));
}

grpc::Status QueueApiService::Requeue(grpc::ServerContext* context, const v1::MessageRequest* request,
                                      v1::Message* response) {
  if (grpc::Status allowed = admin_.Check(*context, "Requeue"); !allowed.ok()) return allowed;
  if (absl::Status valid = CheckQueueId(request->queue_id()); !valid.ok()) return ToGrpcStatus(valid);
  return Reply(agent_.Requeue(request->queue_id()), response);
}

grpc::Status QueueApiService::WatchEvents(grpc::ServerContext* context,
                                          const v1::WatchEventsRequest* request,
                                          grpc::ServerWriter<v1::QueueEvent>* writer) {
  if (!request->queue_id().empty() && !IsValidQueueId(request->queue_id())) {
    return InvalidArgument("queue_id", "not a queue ID");
  }
  std::unique_ptr<EventBus::Subscription> subscription = events_.Subscribe(*request);
  // Send the headers now, so the client knows the watch is in place before the first event.
  writer->SendInitialMetadata();
  while (!context->IsCancelled()) {
    std::optional<v1::QueueEvent> event = subscription->Next(absl::Milliseconds(250));
    if (event && !writer->Write(*event)) break;
  }
  return grpc::Status::OK;
}

}  // namespace postgate::queue
