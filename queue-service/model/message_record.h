// The record a message starts its life in the queue with: every recipient QUEUED, carrying its
// DSN options. One place for both ways in: the gateway's Enqueue and the queue's own
// notifications. Pure.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "queue-service/model/record.h"

namespace postgate::queue {

// What the queue takes from any client (the gateway, or anything else that reaches its port):
// at least one recipient, every address a mailbox (the sender may be the null path), DSN options
// one per recipient or none. The error names the field. Pure.
absl::Status ValidateEnvelope(const rec::Envelope& envelope);

rec::StoredMessage NewMessageRecord(const std::string& queue_id, rec::Envelope envelope, uint64_t size,
                                   uint32_t chunk_count, absl::Time arrival);

}  // namespace postgate::queue
