#include "queue-service/delivery/local_deliverer.h"

#include <utility>

namespace postgate::queue {

ContentSource LocalDeliverer::ContentOf(const StoredMessage& record) const {
  return [this, &record](const std::function<absl::Status(absl::string_view)>& sink) {
    return store_.ReadContent(record, sink);
  };
}

bool LocalDeliverer::MayHaveMoved(const DeliveryRequest& request, int index) {
  return request.after_restart || request.record->message().recipients(index).attempts() > 0;
}

void LocalDeliverer::Deliver(const DeliveryRequest& request, DeliveryDone done) {
  const ContentSource content = ContentOf(*request.record);
  DeliveryResult result;
  result.outcomes.reserve(request.recipients.size());
  for (int index : request.recipients) {
    result.outcomes.push_back(local_.Deliver(request.record->message(), index, content, MayHaveMoved(request, index)));
  }
  done(std::move(result));
}

void LocalDeliverer::Stage(const DeliveryRequest& request, MaildirBatch& batch) const {
  const ContentSource content = ContentOf(*request.record);
  for (int index : request.recipients) {
    local_.Prewrite(request.record->message(), index, content, MayHaveMoved(request, index), batch);
  }
}

}  // namespace postgate::queue
