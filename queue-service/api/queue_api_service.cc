#include "queue-service/api/queue_api_service.h"

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

grpc::Status QueueApiService::Enqueue(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::EnqueueResponse, v1::EnqueueRequest>* stream) {
  v1::EnqueueRequest request;
  if (!stream->Read(&request)) return grpc::Status(grpc::StatusCode::CANCELLED, "no envelope");
  if (!request.has_envelope()) return InvalidArgument("envelope", "must be the first message");
  if (request.envelope().recipients().empty()) return InvalidArgument("envelope.recipients", "empty");
  if (request.envelope().recipient_options_size() != 0 &&
      request.envelope().recipient_options_size() != request.envelope().recipients_size()) {
    return InvalidArgument("envelope.recipient_options", "one entry per recipient, or none");
  }

  const absl::Time arrival = absl::Now();
  const std::string id = ids_.Next(arrival);
  v1::EnqueueResponse response;
  response.set_queue_id(id);
  if (!stream->Write(response)) return grpc::Status(grpc::StatusCode::CANCELLED, "client gone");

  v1::Envelope envelope = std::move(*request.mutable_envelope());
  uint32_t chunks = 0;
  uint64_t size = 0;
  bool committed = false;
  while (stream->Read(&request)) {
    if (request.has_commit()) {
      if (request.commit().size() != size) {
        return Fail(id, chunks, "size_mismatch",
                    InvalidArgument("commit.size", absl::StrCat("says ", request.commit().size(),
                                                                " bytes, received ", size)));
      }
      committed = true;
      break;
    }
    if (request.part_case() != v1::EnqueueRequest::kContent) {
      return Fail(id, chunks, "protocol", InvalidArgument("part", "expected content or commit"));
    }
    size += request.content().size();
    if (max_message_bytes_ > 0 && size > max_message_bytes_) {
      return Fail(id, chunks, "too_big",
                  grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "message too big"));
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

  StoredMessage record = NewMessageRecord(id, std::move(envelope), size, chunks, arrival);
  const v1::Message& message = record.message();
  const absl::Time commit_start = absl::Now();
  if (absl::Status saved = store_.Commit(record); !saved.ok()) {
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
  agent_.Submit(id);
  return grpc::Status::OK;
}

grpc::Status QueueApiService::GetQueueStatus(grpc::ServerContext*, const v1::GetQueueStatusRequest*,
                                             v1::QueueStatus* response) {
  QueueIndex::Summary summary = index_.Summarize();
  for (v1::MessageState state :
       {v1::MESSAGE_STATE_ACTIVE, v1::MESSAGE_STATE_DEFERRED, v1::MESSAGE_STATE_DONE}) {
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
  return grpc::Status::OK;
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
  // One more than asked tells whether another page exists.
  std::vector<std::string> ids = index_.List(request->state(), request->page_token(), page_size + 1);
  for (size_t i = 0; i < ids.size() && i < page_size; ++i) {
    absl::StatusOr<StoredMessage> record = store_.Get(ids[i]);
    if (!record.ok()) continue;  // Deleted since the index was read.
    *response->add_messages() = record->message();
  }
  if (ids.size() > page_size) response->set_next_page_token(ids[page_size - 1]);
  return grpc::Status::OK;
}

grpc::Status QueueApiService::GetMessage(grpc::ServerContext*, const v1::GetMessageRequest* request,
                                         v1::Message* response) {
  if (!IsValidQueueId(request->queue_id())) {
    return InvalidArgument("queue_id", absl::StrCat("\"", request->queue_id(),
                                                    "\" is not a queue ID (13 upper-case hex digits)"));
  }
  absl::StatusOr<StoredMessage> record = store_.Get(request->queue_id());
  if (absl::IsNotFound(record.status())) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("queue ID ", request->queue_id(), " not found"));
  }
  if (!record.ok()) return ToGrpcStatus(record.status());
  *response = record->message();
  return grpc::Status::OK;
}

}  // namespace postgate::queue

namespace postgate::queue {

grpc::Status QueueApiService::Flush(grpc::ServerContext*, const v1::FlushRequest* request,
                                    v1::FlushResponse* response) {
  absl::StatusOr<uint32_t> scheduled = agent_.Flush(request->domain(), request->include_subdomains());
  if (!scheduled.ok()) return ToGrpcStatus(scheduled.status());
  response->set_messages(*scheduled);
  return grpc::Status::OK;
}

}  // namespace postgate::queue
