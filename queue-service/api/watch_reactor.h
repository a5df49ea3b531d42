// WatchEvents on gRPC's callback API: a watcher holds no thread. Its reactor takes events from
// an EventBus subscription one write at a time; when the backlog is empty it arms the
// subscription, whose callback (on the publishing thread) starts the next write. A slow watcher
// loses its oldest events as the bus says (QueueEvent.missed); a cancelled one finishes.
#pragma once

#include "grpcpp/support/server_callback.h"
#include "postgate/queue/v1/queue.pb.h"
#include "queue-service/scheduler/event_bus.h"

namespace postgate::queue {

// Validates `request` and returns the reactor (gRPC owns it; it deletes itself when done).
grpc::ServerWriteReactor<v1::QueueEvent>* StartWatch(EventBus& events, const v1::WatchEventsRequest& request);

}  // namespace postgate::queue
