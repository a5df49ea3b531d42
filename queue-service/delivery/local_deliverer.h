// The local transport behind the Deliverer interface: LocalDelivery's mailboxes, the content
// streamed from the store. Answers before Deliver returns, on the caller's thread.
#pragma once

#include "queue-service/delivery/deliverer.h"
#include "queue-service/delivery/local_delivery.h"
#include "queue-service/delivery/mailbox_writer.h"
#include "queue-service/store/message_store.h"

namespace postgate::queue {

class LocalDeliverer final : public Deliverer {
 public:
  LocalDeliverer(const LocalDelivery& local, MessageStore& store) : local_(local), store_(store) {}

  const char* transport() const override { return "local"; }
  void Deliver(const DeliveryRequest& request, DeliveryDone done) override;

  // Whether Stage can share the durable steps of many deliveries (Maildir, not mbox).
  bool BatchesWrites() const { return local_.BatchesWrites(); }
  // Stages into `batch` the mailbox files Deliver would write for `request`; once the batch is
  // finished, Deliver finds them in place and only reports them delivered.
  void Stage(const DeliveryRequest& request, MaildirBatch& batch) const;

 private:
  ContentSource ContentOf(const StoredMessage& record) const;
  // After an earlier attempt or a restart, a delivered file may have been moved on to cur/.
  static bool MayHaveMoved(const DeliveryRequest& request, int index);

  const LocalDelivery& local_;
  MessageStore& store_;
};

}  // namespace postgate::queue
