// The SMTP transport behind the Deliverer interface, as Postfix's smtp(8): each request is one
// conversation with its next hop – the hop's mail exchangers looked up (unless bracketed) and
// resolved on one long-lived c-ares channel, then DeliverOverSmtp over a cached session or a new
// connection. Each request runs as a coroutine on a strand of the delivery pool's executor and
// answers from there.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "asio/any_io_executor.hpp"
#include "asio/awaitable.hpp"
#include "queue-service/delivery/deliverer.h"
#include "queue-service/delivery/smtp_client.h"
#include "core/io/mx_resolver.h"
#include "queue-service/metrics/queue_metrics.h"
#include "queue-service/store/message_store.h"

namespace postgate::queue {

struct SmtpDelivererOptions {
  SmtpClientOptions client;
  SmtpConnectionCacheOptions connection_cache;
  std::string dns_servers;  // postgate_dns_servers; "" = /etc/resolv.conf
};

class SmtpDeliverer final : public Deliverer {
 public:
  // `executor`: the pool the conversations run on; it must run until CloseIdle has returned.
  SmtpDeliverer(MessageStore& store, QueueMetrics& metrics, SmtpDelivererOptions options,
                asio::any_io_executor executor);

  const char* transport() const override { return "smtp"; }
  void Deliver(const DeliveryRequest& request, DeliveryDone done) override;

  // Says QUIT on every cached session and waits for them; call once no request is under way.
  void CloseIdle() { connection_cache_.CloseAll(); }

 private:
  asio::awaitable<DeliveryResult> Converse(DeliveryRequest request);
  // The addresses to try for `hop`: its MX hosts by preference (unless bracketed), each resolved.
  asio::awaitable<absl::StatusOr<std::vector<SmtpCandidate>>> Candidates(const NextHop& hop);

  MessageStore& store_;
  QueueMetrics& metrics_;
  const SmtpDelivererOptions options_;
  const asio::any_io_executor executor_;
  io::MxResolver resolver_;
  SmtpConnectionCache connection_cache_;  // Sessions kept between messages, by next hop.
};

}  // namespace postgate::queue
