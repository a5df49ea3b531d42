// What the queue manager asks of a transport, as Postfix's qmgr hands delivery requests to
// local(8) and smtp(8): the agent decides what is attempted, when and how many at once (the
// scheduler); a Deliverer only delivers and answers one outcome per recipient. Two
// implementations: LocalDeliverer (mailboxes) and SmtpDeliverer (one SMTP conversation).
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "absl/strings/string_view.h"
#include "queue-service/delivery/local_delivery.h"
#include "queue-service/routing/router.h"
#include "queue-service/store/message_store.h"

namespace postgate::queue {

struct DeliveryRequest {
  // The message; its content is read from the store while it is delivered. It must stay valid,
  // unchanged, until the request's `done` has been called.
  const StoredMessage* record = nullptr;
  std::vector<int> recipients;  // Indices into record->message().recipients().
  NextHop next_hop;             // Where to (SMTP); unused by local delivery.
  // The message was queued before a restart: a delivery made before the crash may be found in
  // place under other names too (local: in cur/, where a reader may have moved it).
  bool after_restart = false;
};

struct DeliveryResult {
  std::vector<DeliveryOutcome> outcomes;  // One per requested recipient, in the same order.
  // SMTP: whether a server of the next hop answered at all (false: it is unreachable, Postfix's
  // "dead" destination, and the scheduler suspends it). nullopt: no conversation was tried
  // (local delivery; a name that did not resolve).
  std::optional<bool> next_hop_answered;
};

using DeliveryDone = std::function<void(DeliveryResult)>;

class Deliverer {
 public:
  virtual ~Deliverer() = default;
  // The transport's name in log lines and metrics ("local", "smtp").
  virtual const char* transport() const = 0;
  // Delivers `request`, then calls `done` exactly once – before returning or later, from another
  // thread. Never throws: every failure is an outcome.
  virtual void Deliver(const DeliveryRequest& request, DeliveryDone done) = 0;
};

}  // namespace postgate::queue
