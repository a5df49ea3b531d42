// The gateway's side of EnqueueMany (queue.proto): a few long-lived streams, each carrying the
// messages of many sessions as lanes, so a message costs no gRPC call of its own and, under
// load, one frame carries the requests of many. Each I/O thread sends on its own stream; a
// stream is replaced after a number of messages or a short while, whichever comes first, and
// round_robin picks the replica of each new stream: over seconds every replica gets its share,
// one that joins included (no longer each message the next replica). A stream that breaks fails its lanes –
// the upload then replays the message with an Enqueue call of its own – and is replaced by the
// next message. Against a queue-service without EnqueueMany, calls are used from then on.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "asio/any_io_executor.hpp"
#include "postgate/queue/v1/queue.grpc.pb.h"
#include "smtp-gateway/queue_client/enqueue_lane.h"

namespace postgate::gateway {

class EnqueueManyStream;

class EnqueueManyStreams {
 public:
  // `streams` at once over `stub`'s channel, each replaced after `messages_per_stream` or
  // `stream_lifetime`.
  EnqueueManyStreams(queue::v1::QueueService::Stub& stub, size_t streams, uint64_t messages_per_stream,
                     std::chrono::milliseconds stream_lifetime);
  // Cancels the streams still open (their lanes fail).
  ~EnqueueManyStreams();
  EnqueueManyStreams(const EnqueueManyStreams&) = delete;
  EnqueueManyStreams& operator=(const EnqueueManyStreams&) = delete;

  // A lane for one new message, its waits completing on `executor`; nullptr when no stream can
  // take it (the caller then makes an Enqueue call of its own).
  std::shared_ptr<EnqueueLane> NewLane(asio::any_io_executor executor, std::chrono::milliseconds timeout);

 private:
  struct Slot;
  queue::v1::QueueService::Stub& stub_;
  const uint64_t messages_per_stream_;
  const std::chrono::milliseconds stream_lifetime_;
  // The queue answered UNIMPLEMENTED (an older queue-service): calls from then on.
  std::shared_ptr<std::atomic<bool>> unimplemented_;
  std::vector<std::unique_ptr<Slot>> slots_;
};

}  // namespace postgate::gateway
