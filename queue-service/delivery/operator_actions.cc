// Operator actions on the queue: postsuper's -h, -H, -d and -r, postqueue's -f and -i. Each
// takes the message's lock, so it never races a delivery attempt on the same message.
#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/absl_fmt.h"
#include "queue-service/delivery/delivery_agent.h"
#include "queue-service/model/timestamps.h"
#include "spdlog/spdlog.h"
#include "queue-service/model/record.h"

namespace postgate::queue {

absl::StatusOr<StoredMessage> DeliveryAgent::LoadForChange(const std::string& id) {
  absl::StatusOr<StoredMessage> record = store_.Get(id);
  if (absl::IsNotFound(record.status())) {
    return absl::NotFoundError(absl::StrCat("queue ID ", id, " not found"));
  }
  return record;
}

absl::StatusOr<rec::Message> DeliveryAgent::ChangeMessage(
    const std::string& id, const std::function<absl::Status(rec::Message&)>& change,
    absl::string_view log_text, v1::EventKind event, bool attempt_now) {
  locks_.Lock(id);
  absl::Cleanup unlock = [&] { locks_.Unlock(id); };
  absl::StatusOr<StoredMessage> record = LoadForChange(id);
  if (!record.ok()) return record.status();
  rec::Message& message = *record->mutable_message();
  if (absl::Status allowed = change(message); !allowed.ok()) return allowed;
  if (absl::Status saved = store_.Update(*record); !saved.ok()) return saved;
  index_.Upsert(message);
  spdlog::info("{}: {}", id, log_text);
  if (event != v1::EVENT_KIND_UNSPECIFIED) Publish(event, message, nullptr);
  if (attempt_now) Submit(id);
  return message;
}

absl::StatusOr<rec::Message> DeliveryAgent::Hold(const std::string& id, const std::string& reason) {
  return ChangeMessage(
      id,
      [&id, &reason](rec::Message& message) {
        if (message.state() == rec::MESSAGE_STATE_DONE || message.state() == rec::MESSAGE_STATE_HOLD) {
          return absl::FailedPreconditionError(absl::StrCat(
              "queue ID ", id, " is ", message.state() == rec::MESSAGE_STATE_DONE ? "done" : "already held"));
        }
        message.set_state(rec::MESSAGE_STATE_HOLD);
        message.set_hold_reason(reason);
        return absl::OkStatus();
      },
      reason.empty() ? std::string("placed on hold") : absl::StrCat("placed on hold (", reason, ")"),
      v1::EVENT_KIND_HELD, false);
}

absl::StatusOr<rec::Message> DeliveryAgent::Release(const std::string& id) {
  return ChangeMessage(
      id,
      [&id](rec::Message& message) {
        if (message.state() != rec::MESSAGE_STATE_HOLD) {
          return absl::FailedPreconditionError(absl::StrCat("queue ID ", id, " is not held"));
        }
        // Waiting recipients are attempted right away, deferred ones included.
        message.clear_hold_reason();
        message.set_state(DeriveState(message) == rec::MESSAGE_STATE_DONE ? rec::MESSAGE_STATE_DONE
                                                                         : rec::MESSAGE_STATE_ACTIVE);
        if (message.state() == rec::MESSAGE_STATE_DONE && !message.has_completion_time()) {
          SetTimestamp(message.mutable_completion_time(), absl::Now());  // Its retention starts now.
        }
        return absl::OkStatus();
      },
      "released from hold", v1::EVENT_KIND_RELEASED, true);
}

absl::Status DeliveryAgent::Delete(const std::string& id) {
  locks_.Lock(id);
  absl::Cleanup unlock = [&] { locks_.Unlock(id); };
  absl::StatusOr<StoredMessage> record = LoadForChange(id);
  if (!record.ok()) return record.status();
  if (absl::Status deleted = store_.Delete(*record); !deleted.ok()) return deleted;
  index_.Remove(record->message());
  spdlog::info("{}: removed", id);
  Publish(v1::EVENT_KIND_DELETED, record->message(), nullptr);
  return absl::OkStatus();
}

absl::StatusOr<rec::Message> DeliveryAgent::Requeue(const std::string& id) {
  return ChangeMessage(
      id,
      [&id](rec::Message& message) {
        if (message.state() == rec::MESSAGE_STATE_DONE || message.state() == rec::MESSAGE_STATE_HOLD) {
          return absl::FailedPreconditionError(absl::StrCat(
              "queue ID ", id, " is ", message.state() == rec::MESSAGE_STATE_DONE ? "done" : "held (release it)"));
        }
        for (rec::RecipientStatus& recipient : *message.mutable_recipients()) {
          if (recipient.state() == rec::RECIPIENT_STATE_DEFERRED) recipient.set_state(rec::RECIPIENT_STATE_QUEUED);
        }
        message.set_state(DeriveState(message));
        return absl::OkStatus();
      },
      "requeued", v1::EVENT_KIND_UNSPECIFIED, true);
}

absl::StatusOr<uint32_t> DeliveryAgent::Flush(const std::string& domain, bool include_subdomains) {
  destinations_.ResumeAll();  // A flush tries suspended destinations again too.
  const std::string wanted = absl::AsciiStrToLower(domain);
  uint32_t scheduled = 0;
  for (const std::string& id : index_.List(rec::MESSAGE_STATE_DEFERRED, "", SIZE_MAX)) {
    absl::StatusOr<StoredMessage> record = store_.Get(id);
    if (absl::IsNotFound(record.status())) continue;  // Finished since the index was read.
    if (!record.ok()) return record.status();
    for (const rec::RecipientStatus& recipient : record->message().recipients()) {
      if (recipient.state() != rec::RECIPIENT_STATE_DEFERRED) continue;
      const std::string at = domain_.Classify(recipient.address()).domain;
      if (wanted.empty() || at == wanted || (include_subdomains && absl::EndsWith(at, "." + wanted))) {
        Submit(id);
        ++scheduled;
        break;
      }
    }
  }
  spdlog::info("flush {}{}: {} messages scheduled", include_subdomains ? "@" : "",
               wanted.empty() ? "(all)" : wanted, scheduled);
  return scheduled;
}

absl::StatusOr<uint32_t> DeliveryAgent::FlushMessage(const std::string& id) {
  absl::StatusOr<StoredMessage> record = LoadForChange(id);
  if (!record.ok()) return record.status();
  const rec::MessageState state = record->message().state();
  if (state == rec::MESSAGE_STATE_HOLD || state == rec::MESSAGE_STATE_DONE) {
    return absl::FailedPreconditionError(
        absl::StrCat("queue ID ", id, " is ", state == rec::MESSAGE_STATE_DONE ? "done" : "held (release it)"));
  }
  destinations_.ResumeAll();  // As a flush does: its destinations are tried for real.
  Submit(id);
  spdlog::info("flush {}: scheduled", id);
  return 1u;
}

}  // namespace postgate::queue
