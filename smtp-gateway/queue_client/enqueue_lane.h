// One message's way to the queue as the upload sees it: an Enqueue call of its own
// (grpc_queue_client.cc) or a lane of a shared EnqueueMany stream (enqueue_many_stream.h).
// Used by one coroutine at a time; each wait completes on that coroutine's executor and is
// bounded by the step timeout (and by Bound).
#pragma once

#include <chrono>
#include <string>

#include "asio/awaitable.hpp"
#include "grpcpp/support/status.h"
#include "postgate/queue/v1/queue.pb.h"

namespace postgate::gateway {

class EnqueueLane {
 public:
  virtual ~EnqueueLane() = default;
  // Waits until the next request may be sent (the previous one is through); false on failure.
  virtual asio::awaitable<bool> ReadyToSend() = 0;
  // Sends `request` without waiting; `last` (the commit) ends what this lane sends.
  virtual void Send(queue::v1::EnqueueRequest&& request, bool last) = 0;
  // Asks for the next answer (the queue ID, the commit's); Received waits for it.
  virtual void StartReceive() = 0;
  virtual asio::awaitable<bool> Received(queue::v1::EnqueueResponse* response) = 0;
  // After a failure: ends the lane and says why (gRPC's status, or the queue's for this message).
  virtual asio::awaitable<grpc::Status> Finish() = 0;
  // The message is committed: nothing more is asked of the lane.
  virtual void Release() = 0;
  // Gives the message up: the queue keeps nothing of it.
  virtual void Cancel() = 0;
  // Caps every later wait at `limit` besides each wait's own step timeout.
  virtual void Bound(std::chrono::steady_clock::time_point limit) = 0;
  // A wait ran out of time.
  virtual bool timed_out() const = 0;
  // The replica serving this lane ("ipv4:10.1.2.3:50051"), once it has answered.
  virtual std::string peer() = 0;
};

}  // namespace postgate::gateway
