// The remote phase of a message: one coroutine on the SMTP pool per message with recipients
// routed to a next hop. For each next hop it takes a conversation slot (or waits in that
// destination's line, holding neither the message's lock nor a thread), has the SmtpDeliverer
// deliver and records the outcomes; the results are group-committed by their own store writer.
#include <map>

// g++ 12 at -O1 with AddressSanitizer inlines Asio's coroutine frame allocation (aligned_alloc in
// awaitable_frame_base::operator new) and then flags the matching operator delete (which frees it
// with std::free) as a mismatch: a false positive of the checker, not of the code.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "core/base/absl_fmt.h"
#include "asio/co_spawn.hpp"
#include "asio/strand.hpp"
#include "core/io/awaitable_callback.h"
#include "queue-service/delivery/delivery_agent.h"
#include "spdlog/spdlog.h"
#include "queue-service/model/record.h"

namespace postgate::queue {

void DeliveryAgent::EnqueueRemote(const Work& work) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || !remote_.insert(work.id).second) return;  // Stopping, or already under way.
  }
  asio::co_spawn(asio::make_strand(pool_), RemoteAttempt(work), [this, id = work.id](std::exception_ptr error) {
    if (error) {
      // Everything on the way reports by value; this is a last resort that keeps the process up.
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        spdlog::error("{}: remote delivery ended by an error: {}", id, e.what());
      }
    }
    absl::MutexLock lock(&mu_);
    remote_.erase(id);
  });
}

asio::awaitable<void> DeliveryAgent::RemoteAttempt(Work work) {
  // A slot handed over while the message waited in a destination's line, for that destination.
  std::optional<std::string> granted_slot;
  absl::Cleanup give_back = [&] {
    if (granted_slot) destinations_.Release(*granted_slot);
  };
  for (;;) {
    co_await io::AwaitCallback<bool>([&](auto locked) {
      if (locks_.LockOrWait(work.id, [locked] { locked(true); })) locked(true);
    });
    bool locked = true;
    absl::Cleanup unlock = [&] {
      if (locked) locks_.Unlock(work.id);
    };
    absl::StatusOr<StoredMessage> loaded = store_.Get(work.id);
    if (!loaded.ok()) {
      if (!absl::IsNotFound(loaded.status())) {
        spdlog::warn("{}: cannot load for delivery: {}", work.id, loaded.status().ToString());
      }
      co_return;  // Deleted by an operator meanwhile, or unreadable.
    }
    StoredMessage record = *std::move(loaded);
    const rec::Message& message = record.message();
    if (message.state() == rec::MESSAGE_STATE_HOLD || message.state() == rec::MESSAGE_STATE_DONE) co_return;

    // Waiting remote recipients by next hop.
    std::map<std::string, std::pair<NextHop, std::vector<int>>> by_next_hop;
    for (int i = 0; options_.router != nullptr && i < message.recipients_size(); ++i) {
      const rec::RecipientStatus& recipient = message.recipients(i);
      if (recipient.state() != rec::RECIPIENT_STATE_QUEUED && recipient.state() != rec::RECIPIENT_STATE_DEFERRED) {
        continue;
      }
      const addressing::ClassifiedAddress address = domain_.Classify(recipient.address());
      if (address.local) continue;
      const Route route = options_.router->Resolve(address.domain);
      if (route.kind != Route::Kind::kSmtp) continue;  // The local phase defers it.
      auto& group = by_next_hop[route.next_hop.ToString()];
      group.first = route.next_hop;
      group.second.push_back(i);
    }
    const bool notification = IsNotification(message);
    DeliveryAttempt attempt(record, retry_, notification, metrics_);
    std::optional<std::string> wait_for;  // A destination with no free slot.
    for (const auto& [name, group] : by_next_hop) {
      const bool owned = granted_slot == name;
      if (owned) granted_slot.reset();
      if (std::optional<std::string> why = destinations_.Suspended(name)) {
        if (owned) destinations_.Release(name);
        const absl::Time now = absl::Now();
        for (int i : group.second) {
          attempt.Record(i, {rec::RECIPIENT_STATE_DEFERRED, 0, "4.4.1", "delivery temporarily suspended: " + *why, "none"},
                         "smtp", now);
        }
        continue;
      }
      if (!owned && !destinations_.TryAcquire(name)) {
        if (!wait_for) wait_for = name;  // These recipients wait their turn.
        continue;
      }
      absl::Cleanup release = [&] { destinations_.Release(name); };
      co_await DeliverToNextHop(group.first, group.second, attempt);
    }
    if (granted_slot) {  // Handed a slot for a destination this message no longer needs.
      destinations_.Release(*granted_slot);
      granted_slot.reset();
    }
    if (attempt.attempted() > 0) {
      const bool done = Finish(attempt);
      const absl::Status saved = co_await io::AwaitCallback<absl::Status>(
          [&](auto written) { results_.Update(record, done, [written](absl::Status status) { written(status); }); });
      if (saved.ok()) {
        AfterSave(record.message(), done, attempt.report());
      } else {
        spdlog::error("{}: cannot record delivery results: {}", work.id, saved.ToString());
      }
    }
    locked = false;
    locks_.Unlock(work.id);
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) co_return;
    }
    if (!wait_for) co_return;
    // In the destination's line until a slot is handed over; then the message is loaded again.
    const bool granted = co_await io::AwaitCallback<bool>([&](auto handed) {
      if (destinations_.Acquire(*wait_for, [handed](bool yes) { handed(yes); })) handed(true);
    });
    if (!granted) co_return;  // Shutting down: the message stays queued for the next start.
    granted_slot = *wait_for;
  }
}

asio::awaitable<void> DeliveryAgent::DeliverToNextHop(const NextHop& hop, const std::vector<int>& recipients,
                                                      DeliveryAttempt& attempt) {
  // At most default_destination_recipient_limit recipients per conversation (one message each).
  const size_t per_conversation = static_cast<size_t>(std::max(1, options_.destination_recipient_limit));
  for (size_t first = 0; first < recipients.size(); first += per_conversation) {
    const auto begin = recipients.begin() + static_cast<std::ptrdiff_t>(first);
    DeliveryRequest request{&attempt.record(),
                            {begin, begin + static_cast<std::ptrdiff_t>(std::min(recipients.size() - first, per_conversation))},
                            hop,
                            false};
    const absl::Time attempt_start = absl::Now();
    // The record lives in RemoteAttempt's frame, unchanged until the answer has come.
    DeliveryResult result = co_await io::AwaitCallback<DeliveryResult>(
        [&](auto done) { smtp_.Deliver(request, [done](DeliveryResult answer) { done(std::move(answer)); }); });
    NoteConversation(hop.ToString(), result);
    for (size_t k = 0; k < request.recipients.size(); ++k) {
      attempt.Record(request.recipients[k], std::move(result.outcomes[k]), smtp_.transport(), attempt_start);
    }
  }
}

void DeliveryAgent::NoteConversation(const std::string& next_hop, const DeliveryResult& result) {
  if (!result.next_hop_answered.has_value()) return;  // Nobody was asked (DNS): nothing learnt.
  if (*result.next_hop_answered) {
    destinations_.Resume(next_hop);
  } else {
    destinations_.Suspend(next_hop, options_.minimal_backoff, result.outcomes.front().reason);
  }
}

}  // namespace postgate::queue
