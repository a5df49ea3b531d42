#include "queue-service/model/message_record.h"

#include "queue-service/model/timestamps.h"

namespace postgate::queue {

v1::StoredMessage NewMessageRecord(const std::string& queue_id, v1::Envelope envelope, uint64_t size,
                                   uint32_t chunk_count, absl::Time arrival) {
  v1::StoredMessage record;
  v1::Message& message = *record.mutable_message();
  message.set_queue_id(queue_id);
  message.set_state(v1::MESSAGE_STATE_ACTIVE);
  message.set_size(size);
  SetTimestamp(message.mutable_arrival_time(), arrival);
  SetTimestamp(message.mutable_queued_time(), arrival);  // The caller sets the real one at commit.
  for (int i = 0; i < envelope.recipients_size(); ++i) {
    v1::RecipientStatus* recipient = message.add_recipients();
    recipient->set_address(envelope.recipients(i));
    recipient->set_state(v1::RECIPIENT_STATE_QUEUED);
    if (i < envelope.recipient_options_size()) *recipient->mutable_options() = envelope.recipient_options(i);
  }
  *message.mutable_envelope() = std::move(envelope);
  record.set_chunk_count(chunk_count);
  return record;
}

}  // namespace postgate::queue
