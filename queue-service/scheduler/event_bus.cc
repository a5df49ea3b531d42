#include "queue-service/scheduler/event_bus.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace postgate::queue {
namespace {

bool AtDomain(const std::string& address, const std::string& domain) {
  const size_t at = address.rfind('@');
  if (at == std::string::npos) return false;
  const std::string host = absl::AsciiStrToLower(address.substr(at + 1));
  return host == domain || absl::EndsWith(host, "." + domain);
}

}  // namespace

EventBus::Subscription::~Subscription() {
  absl::WriterMutexLock notifying(&bus_.notify_mu_);  // No `ready` of ours is running, or will.
  absl::MutexLock lock(&bus_.mu_);
  auto& all = bus_.subscriptions_;
  all.erase(std::remove(all.begin(), all.end(), this), all.end());
}

std::optional<v1::QueueEvent> EventBus::Subscription::Next(absl::Duration timeout) {
  absl::MutexLock lock(&bus_.mu_);
  auto has_event = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(bus_.mu_) { return !backlog_.empty(); };
  if (!bus_.mu_.AwaitWithTimeout(absl::Condition(&has_event), timeout)) return std::nullopt;
  return PopLocked();
}

std::optional<v1::QueueEvent> EventBus::Subscription::NextOrArm() {
  absl::MutexLock lock(&bus_.mu_);
  if (backlog_.empty()) {
    armed_ = true;
    return std::nullopt;
  }
  return PopLocked();
}

v1::QueueEvent EventBus::Subscription::PopLocked() {
  v1::QueueEvent event = std::move(backlog_.front());
  backlog_.pop_front();
  event.set_missed(missed_);
  missed_ = 0;
  return event;
}

std::unique_ptr<EventBus::Subscription> EventBus::Subscribe(v1::WatchEventsRequest filter,
                                                            std::function<void()> ready) {
  filter.set_domain(absl::AsciiStrToLower(filter.domain()));
  std::unique_ptr<Subscription> subscription(new Subscription(*this, std::move(filter), std::move(ready)));
  absl::MutexLock lock(&mu_);
  subscriptions_.push_back(subscription.get());
  return subscription;
}

bool EventBus::Matches(const v1::WatchEventsRequest& filter, const v1::QueueEvent& event,
                       const std::vector<std::string>& recipients) {
  if (!filter.queue_id().empty() && filter.queue_id() != event.queue_id()) return false;
  if (!filter.kinds().empty() &&
      std::find(filter.kinds().begin(), filter.kinds().end(), event.kind()) == filter.kinds().end()) {
    return false;
  }
  if (filter.domain().empty()) return true;
  if (!event.recipient().empty()) return AtDomain(event.recipient(), filter.domain());
  return std::any_of(recipients.begin(), recipients.end(),
                     [&](const std::string& r) { return AtDomain(r, filter.domain()); });
}

void EventBus::Publish(const v1::QueueEvent& event, const std::vector<std::string>& recipients) {
  if (observer_) observer_(event);
  absl::ReaderMutexLock notifying(&notify_mu_);
  std::vector<const std::function<void()>*> ready;
  {
    absl::MutexLock lock(&mu_);
    for (Subscription* subscription : subscriptions_) {
      if (!Matches(subscription->filter_, event, recipients)) continue;
      if (subscription->backlog_.size() >= kBacklog) {
        subscription->backlog_.pop_front();
        ++subscription->missed_;
      }
      subscription->backlog_.push_back(event);
      if (subscription->armed_ && subscription->ready_) {
        subscription->armed_ = false;
        ready.push_back(&subscription->ready_);
      }
    }
  }
  // Outside mu_: a watcher's callback takes the event (NextOrArm) at once.
  for (const std::function<void()>* callback : ready) (*callback)();
}

}  // namespace postgate::queue
