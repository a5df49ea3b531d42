#include "queuectl/api_names.h"

namespace postgate::queuectl {

namespace v1 = ::postgate::queue::v1;

std::string MessageStateName(v1::MessageState state) {
  switch (state) {
    case v1::MESSAGE_STATE_ACTIVE: return "active";
    case v1::MESSAGE_STATE_DEFERRED: return "deferred";
    case v1::MESSAGE_STATE_DONE: return "done";
    case v1::MESSAGE_STATE_HOLD: return "hold";
    default: return "unknown";
  }
}

std::string RecipientStateName(v1::RecipientState state) {
  switch (state) {
    case v1::RECIPIENT_STATE_QUEUED: return "queued";
    case v1::RECIPIENT_STATE_DELIVERED: return "delivered";
    case v1::RECIPIENT_STATE_DEFERRED: return "deferred";
    case v1::RECIPIENT_STATE_BOUNCED: return "bounced";
    default: return "unknown";
  }
}

std::string EventKindName(v1::EventKind kind) {
  switch (kind) {
    case v1::EVENT_KIND_RECEIVED: return "received";
    case v1::EVENT_KIND_DELIVERED: return "delivered";
    case v1::EVENT_KIND_DEFERRED: return "deferred";
    case v1::EVENT_KIND_BOUNCED: return "bounced";
    case v1::EVENT_KIND_HELD: return "held";
    case v1::EVENT_KIND_RELEASED: return "released";
    case v1::EVENT_KIND_DELETED: return "deleted";
    case v1::EVENT_KIND_DONE: return "done";
    default: return "unknown";
  }
}

std::optional<v1::MessageState> ParseMessageState(const std::string& name) {
  if (name.empty()) return v1::MESSAGE_STATE_UNSPECIFIED;
  for (v1::MessageState state : {v1::MESSAGE_STATE_ACTIVE, v1::MESSAGE_STATE_DEFERRED, v1::MESSAGE_STATE_HOLD,
                                 v1::MESSAGE_STATE_DONE}) {
    if (MessageStateName(state) == name) return state;
  }
  return std::nullopt;
}

}  // namespace postgate::queuectl
