// The words queuectl and the web console use for the API's enums: "active", "deferred", "hold",
// "done" (as mailq and postqueue -j name queues), recipient states and event kinds. Pure.
#pragma once

#include <optional>
#include <string>

#include "postgate/queue/v1/queue.pb.h"

namespace postgate::queuectl {

std::string MessageStateName(queue::v1::MessageState state);      // "unknown" for UNSPECIFIED.
std::string RecipientStateName(queue::v1::RecipientState state);  // "queued", "delivered", …
std::string EventKindName(queue::v1::EventKind kind);             // "received", "held", …
// "active", "deferred", "hold", "done"; "" → UNSPECIFIED (every state not done); else nullopt.
std::optional<queue::v1::MessageState> ParseMessageState(const std::string& name);

}  // namespace postgate::queuectl
