#include "queue-service/model/message_record.h"

#include "absl/strings/str_cat.h"
#include "core/smtp/address.h"
#include "queue-service/model/timestamps.h"
#include "queue-service/model/record.h"

namespace postgate::queue {

absl::Status ValidateEnvelope(const rec::Envelope& envelope) {
  constexpr size_t kLongestAddress = 512;  // RFC 5321's path limit is 256; room for UTF-8.
  auto invalid = [](absl::string_view field, absl::string_view problem) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
  };
  if (envelope.recipients().empty()) return invalid("envelope.recipients", "empty");
  if (envelope.recipient_options_size() != 0 && envelope.recipient_options_size() != envelope.recipients_size()) {
    return invalid("envelope.recipient_options", "one entry per recipient, or none");
  }
  const std::string& sender = envelope.sender();
  if (sender.size() > kLongestAddress || (!sender.empty() && !smtp::IsValidMailbox(sender))) {
    return invalid("envelope.sender", "not a mailbox");
  }
  for (int i = 0; i < envelope.recipients_size(); ++i) {
    const std::string& recipient = envelope.recipients(i);
    if (recipient.empty() || recipient.size() > kLongestAddress || !smtp::IsValidMailbox(recipient)) {
      return invalid(absl::StrCat("envelope.recipients[", i, "]"), "not a mailbox");
    }
  }
  return absl::OkStatus();
}

rec::StoredMessage NewMessageRecord(const std::string& queue_id, rec::Envelope envelope, uint64_t size,
                                   uint32_t chunk_count, absl::Time arrival) {
  rec::StoredMessage record;
  rec::Message& message = *record.mutable_message();
  message.set_queue_id(queue_id);
  message.set_state(rec::MESSAGE_STATE_ACTIVE);
  message.set_size(size);
  SetTimestamp(message.mutable_arrival_time(), arrival);
  SetTimestamp(message.mutable_queued_time(), arrival);  // The caller sets the real one at commit.
  for (int i = 0; i < envelope.recipients_size(); ++i) {
    rec::RecipientStatus* recipient = message.add_recipients();
    recipient->set_address(envelope.recipients(i));
    recipient->set_state(rec::RECIPIENT_STATE_QUEUED);
    if (i < envelope.recipient_options_size()) *recipient->mutable_options() = envelope.recipient_options(i);
  }
  *message.mutable_envelope() = std::move(envelope);
  record.set_chunk_count(chunk_count);
  return record;
}

}  // namespace postgate::queue
