#include "queue-service/api/enqueue_upload.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "queue-service/api/record_conversion.h"
#include "queue-service/api/status_conversion.h"
#include "queue-service/model/message_record.h"
#include "queue-service/model/timestamps.h"
#include "spdlog/spdlog.h"

namespace postgate::queue {
namespace {

// Header fields the gateway adds after the content (DKIM-Signature fields are well under 1 KiB each).
constexpr size_t kMaxHeaderPrefix = 64 * 1024;

grpc::Status InvalidArgument(absl::string_view field, absl::string_view problem) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, absl::StrCat(field, ": ", problem));
}

}  // namespace

void QueueApiService::EnqueueUpload::Handle(v1::EnqueueRequest& request) {
  {
    absl::MutexLock lock(&mu_);
    if (writing_) {  // The sender did not wait for ChunkStored: the write's completion fails it.
      out_of_turn_ = true;
      abandoned_ = true;
      return;
    }
  }
  switch (stage_) {
    case Stage::kEnvelope: return OnEnvelope(request);
    case Stage::kContent: return OnContent(request);
    case Stage::kDuplicate: return OnDuplicateContent(request);
    case Stage::kEnded: return;
  }
}

void QueueApiService::EnqueueUpload::Abandon() {
  {
    absl::MutexLock lock(&mu_);
    abandoned_ = true;
    // A write under way: its completion ends the upload (OnChunkWritten), or stores it (OnCommitted).
    if (writing_ || stage_ == Stage::kEnded) return;
  }
  switch (stage_) {
    case Stage::kEnvelope:
    case Stage::kDuplicate:
      return End(std::nullopt, grpc::Status(grpc::StatusCode::CANCELLED, "stream ended before commit"));
    case Stage::kContent:
      return Fail("cancelled", grpc::Status(grpc::StatusCode::CANCELLED, "stream ended before commit"));
    case Stage::kEnded: return;
  }
}

void QueueApiService::EnqueueUpload::BeginWrite() {
  absl::MutexLock lock(&mu_);
  writing_ = true;
}

void QueueApiService::EnqueueUpload::OnEnvelope(v1::EnqueueRequest& request) {
  if (!request.has_envelope()) return End(std::nullopt, InvalidArgument("envelope", "must be the first message"));
  envelope_ = FromApi(request.envelope());
  if (absl::Status valid = ValidateEnvelope(envelope_); !valid.ok()) return End(std::nullopt, ToGrpcStatus(valid));
  if (!service_.accepting_.load()) {
    return End(std::nullopt,
               grpc::Status(grpc::StatusCode::UNAVAILABLE, "this replica is not accepting new messages (draining)"));
  }
  if (service_.storage_check_) {
    if (absl::Status space = service_.storage_check_(); !space.ok()) {
      service_.metrics_.enqueue_failures.Add({{"reason", "storage"}}).Increment();
      return End(std::nullopt, ToGrpcStatus(space));
    }
  }
  // A retry of a message this replica already stored: answer its ID, store nothing.
  // The key is claimed before the store is asked, so one lookup serves: an attempt that stored
  // the message released its claim only after the commit.
  const std::string& key = request.envelope().idempotency_key();
  if (!key.empty()) {
    claim_.emplace(service_, key);
    if (std::optional<std::string> stored = service_.StoredWithKey(key)) return AnswerDuplicate(*stored);
    if (!claim_->claimed()) {
      return End(std::nullopt, grpc::Status(grpc::StatusCode::ABORTED,
                                            "a message with this idempotency_key is being stored"));
    }
  }
  arrival_ = absl::Now();
  // A retry keeps the ID already written into its Received: header (this replica gave it out,
  // perhaps before a restart). Only with a claimed key: the attempt that was given the ID has
  // the same key, so it is over (its chunks discarded) before the claim could be taken.
  id_ = in_flight_.Take(claim_ ? request.envelope().requested_queue_id() : std::string(), arrival_);
  stage_ = Stage::kContent;
  v1::EnqueueResponse response;
  response.set_queue_id(id_);
  replies_.QueueIdAssigned(std::move(response));
}

void QueueApiService::EnqueueUpload::AnswerDuplicate(const std::string& stored_id) {
  id_ = stored_id;
  stage_ = Stage::kDuplicate;
  v1::EnqueueResponse response;
  response.set_queue_id(id_);
  replies_.QueueIdAssigned(std::move(response));
}

void QueueApiService::EnqueueUpload::OnDuplicateContent(const v1::EnqueueRequest& request) {
  // The content again: already stored, not kept.
  if (!request.has_commit()) return replies_.ChunkStored();
  service_.metrics_.enqueue_duplicates.Increment();
  spdlog::info("{}: retry with the same idempotency key: already stored, not stored again", id_);
  v1::EnqueueResponse response;
  response.set_committed_queue_id(id_);
  End(std::move(response), grpc::Status::OK);
}

void QueueApiService::EnqueueUpload::OnContent(v1::EnqueueRequest& request) {
  if (request.has_commit()) return OnCommit(*request.mutable_commit());
  if (request.part_case() != v1::EnqueueRequest::kContent) {
    return Fail("protocol", InvalidArgument("part", "expected content or commit"));
  }
  size_ += request.content().size();
  if (TooBig()) return Fail("too_big", grpc::Status(grpc::StatusCode::OUT_OF_RANGE, "message too big"));
  BeginWrite();
  service_.writer_.PutChunk(id_, chunks_++, std::move(*request.mutable_content()),
                            [self = shared_from_this()](absl::Status put) { self->OnChunkWritten(put); });
}

void QueueApiService::EnqueueUpload::OnChunkWritten(const absl::Status& put) {
  if (!put.ok()) return Fail("store", ToGrpcStatus(put));
  bool abandoned;
  bool out_of_turn;
  {
    absl::MutexLock lock(&mu_);
    abandoned = abandoned_;
    out_of_turn = out_of_turn_;
    if (!abandoned) writing_ = false;  // From here Abandon may end the upload itself.
  }
  if (out_of_turn) return Fail("protocol", InvalidArgument("request", "sent before the last chunk was stored"));
  if (abandoned) return Fail("cancelled", grpc::Status(grpc::StatusCode::CANCELLED, "stream ended before commit"));
  replies_.ChunkStored();  // The next piece only once this one is written: bounded memory.
}

void QueueApiService::EnqueueUpload::OnCommit(v1::Commit& commit) {
  size_ += commit.content().size();
  if (TooBig()) return Fail("too_big", grpc::Status(grpc::StatusCode::OUT_OF_RANGE, "message too big"));
  if (commit.size() != size_) {
    return Fail("size_mismatch",
                InvalidArgument("commit.size", absl::StrCat("says ", commit.size(), " bytes, received ", size_)));
  }
  bool abandoned;
  {
    absl::MutexLock lock(&mu_);
    abandoned = abandoned_;
  }
  // Too late (the gateway has given up and said 451) or abandoned: storing it now would
  // deliver a message its sender was told failed, and will send again.
  if ((commit.has_deadline() && absl::Now() > FromTimestamp(commit.deadline())) || abandoned ||
      replies_.Abandoned()) {
    return Fail("expired", grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "commit arrived after its deadline"));
  }
  if (commit.header_prefix().size() > kMaxHeaderPrefix) {
    return Fail("protocol", InvalidArgument("commit.header_prefix", "more than 64 KiB"));
  }
  std::optional<std::string> last_chunk;
  if (!commit.content().empty()) {
    last_chunk = std::move(*commit.mutable_content());
    ++chunks_;
  }
  size_ += commit.header_prefix().size();  // Part of the stored message from now on.
  if (!commit.redirect_to().empty()) {     // REDIRECT: one recipient replaces the envelope's.
    envelope_.clear_recipients();
    envelope_.clear_recipient_options();
    envelope_.add_recipients(commit.redirect_to());
  }
  if (commit.sender_changed()) envelope_.set_sender(commit.sender());  // Milters' edits.
  if (commit.recipients_changed()) {
    if (commit.recipients_size() != commit.recipient_options_size()) {
      return Fail("protocol", InvalidArgument("commit.recipient_options", "one entry per recipient needed"));
    }
    envelope_.clear_recipients();
    envelope_.clear_recipient_options();
    for (int i = 0; i < commit.recipients_size(); ++i) {
      envelope_.add_recipients(commit.recipients(i));
      *envelope_.add_recipient_options() = FromApi(commit.recipient_options(i));
    }
  }
  if (commit.sender_changed() || commit.recipients_changed()) {
    if (absl::Status valid = ValidateEnvelope(envelope_); !valid.ok()) return Fail("protocol", ToGrpcStatus(valid));
  }
  record_ = NewMessageRecord(id_, std::move(envelope_), size_, chunks_, arrival_);
  record_.set_header_prefix(std::move(*commit.mutable_header_prefix()));
  if (commit.hold()) {
    record_.mutable_message()->set_state(rec::MESSAGE_STATE_HOLD);
    record_.mutable_message()->set_hold_reason(commit.hold_reason());
  }
  commit_start_ = absl::Now();
  SetTimestamp(record_.mutable_message()->mutable_queued_time(), commit_start_);
  BeginWrite();
  service_.writer_.Commit(record_, std::move(last_chunk),
                          [self = shared_from_this()](absl::Status saved) { self->OnCommitted(saved); });
}

void QueueApiService::EnqueueUpload::OnCommitted(const absl::Status& saved) {
  // Stored whether or not the sender still listens; `writing_` stays set, so Abandon leaves it be.
  if (!saved.ok()) {
    spdlog::error("{}: queue file write error: {}", id_, saved.ToString());
    return Fail("store", ToGrpcStatus(saved));
  }
  const rec::Message& message = record_.message();
  service_.metrics_.commit_seconds.Observe(absl::ToDoubleSeconds(absl::Now() - commit_start_));
  service_.metrics_.messages_stored.Increment();
  service_.metrics_.stored_bytes.Increment(static_cast<double>(size_));
  service_.index_.Upsert(message);
  spdlog::info("{}: from=<{}>, size={}, nrcpt={} (queue {})", id_, message.envelope().sender(), size_,
               message.recipients_size(), message.state() == rec::MESSAGE_STATE_HOLD ? "hold" : "active");
  service_.agent_.PublishReceived(message);
  service_.agent_.Submit(id_);
  // Last: once the sender has its answer the stream may end, and the upload with it.
  v1::EnqueueResponse response;
  response.set_committed_queue_id(id_);
  End(std::move(response), grpc::Status::OK);
}

void QueueApiService::EnqueueUpload::Fail(const char* reason, grpc::Status status) {
  End(std::nullopt, service_.Fail(id_, chunks_, reason, std::move(status)));
}

void QueueApiService::EnqueueUpload::End(std::optional<v1::EnqueueResponse> last, grpc::Status status) {
  {
    absl::MutexLock lock(&mu_);
    stage_ = Stage::kEnded;
  }
  replies_.Ended(std::move(last), std::move(status));
}

}  // namespace postgate::queue
