// Which replica `queuectl move` sends a message to: rendezvous (highest random weight) hashing
// of the queue ID over the target addresses. The choice depends only on the ID and the set of
// targets – not their order, not the other messages, not an earlier interrupted run – so a rerun
// sends each message to the replica it went to before, whose idempotency key ("move:ID") then
// stores nothing twice. Pure; the hash is fixed (FNV-1a), the same in every process.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace postgate::queuectl {

// Index into `targets` (not empty) of the replica for `queue_id`.
size_t ChooseReplica(absl::string_view queue_id, const std::vector<std::string>& targets);

}  // namespace postgate::queuectl
