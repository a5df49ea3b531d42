// QueueClient over gRPC (postgate.queue.v1.QueueService/Enqueue, a bidirectional stream), bridged
// into Asio: gRPC's callback reactor posts each completion to the session's executor, so the
// session coroutine simply co_awaits. Every step has a deadline (postgate_queue_timeout); when it
// passes the call is cancelled and the step fails, so a stuck queue-service costs the client a
// 451, never a hung session. Thread-safe: one client serves all sessions.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "smtp-gateway/queue_client/queue_client.h"

namespace grpc {
class Channel;
}

namespace postgate::gateway {

// TLS for the channel to queue-service; all empty means plain gRPC (a trusted network only).
struct QueueChannelTls {
  std::string ca_pem;    // Verifies the queue's certificate; non-empty turns TLS on.
  std::string cert_pem;  // The gateway's client certificate, for mutual TLS.
  std::string key_pem;
};

class GrpcQueueClient : public QueueClient {
 public:
  // `address`: one replica, or several through gRPC's resolver ("dns:///name:port" → round_robin
  // over every address the name has, "ipv4:a:p,b:p"). Messages up to `replay_limit` bytes are
  // kept while they upload so a broken stream can be replayed (postgate_queue_replay_limit).
  // Messages go over `streams` shared EnqueueMany streams (postgate_queue_streams; 0: an
  // Enqueue call each).
  GrpcQueueClient(const std::string& address, std::chrono::milliseconds step_timeout,
                  const QueueChannelTls& tls = {}, size_t replay_limit = 0, size_t streams = 0);
  ~GrpcQueueClient() override;

  asio::awaitable<absl::StatusOr<std::unique_ptr<MessageUpload>>> Open(
      const OutgoingEnvelope& envelope) override;
  asio::awaitable<absl::StatusOr<uint32_t>> Flush(const std::string& domain,
                                                  bool include_subdomains) override;

  // Connected to queue-service right now (the channel is READY); asks it to connect if idle.
  // nullopt while connecting: not known yet.
  std::optional<bool> Connected();

 public:
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace postgate::gateway
