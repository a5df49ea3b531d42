// libFuzzer target: what reaches queue-service from the network and from its own disk, as
// protobuf. Bytes as an EnqueueRequest: a valid envelope becomes a message record that survives
// serialising and parsing unchanged. Bytes as a StoredMessage (a damaged store record): the index
// and the state logic take it without crashing, whatever its times and states say.
#include <cstdint>
#include <cstdlib>

#include "postgate/queue/v1/queue.pb.h"
#include "queue-service/api/record_conversion.h"
#include "queue-service/model/message_record.h"
#include "queue-service/model/timestamps.h"
#include "queue-service/scheduler/queue_index.h"

using namespace postgate::queue;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  v1::EnqueueRequest request;
  if (request.ParseFromArray(data, static_cast<int>(size)) && request.has_envelope() &&
      ValidateEnvelope(FromApi(request.envelope())).ok()) {
    const rec::StoredMessage record =
        NewMessageRecord("4F1A09C2B70", FromApi(request.envelope()), size, 1, absl::FromUnixSeconds(1'700'000'000));
    rec::StoredMessage again;
    if (!again.ParseFromString(record.SerializeAsString())) std::abort();
    if (again.SerializeAsString() != record.SerializeAsString()) std::abort();
    if (again.message().recipients_size() != request.envelope().recipients_size()) std::abort();
    if (DeriveState(again.message()) != rec::MESSAGE_STATE_ACTIVE) std::abort();
  }
  rec::StoredMessage stored;
  if (stored.ParseFromArray(data, static_cast<int>(size))) {
    QueueIndex index;
    const rec::Message& message = stored.message();
    (void)DeriveState(message);
    (void)FromTimestamp(message.arrival_time());
    (void)FromTimestamp(message.next_attempt_time());
    index.Upsert(message);
    (void)index.Summarize();
    (void)index.Due(absl::Now());
    (void)index.List(rec::MESSAGE_STATE_UNSPECIFIED, "", 10);
    index.Remove(message);
  }
  return 0;
}
