// Live queue events for WatchEvents: publishers never block, each watcher has a bounded backlog;
// a watcher that falls behind loses its oldest events and is told how many (QueueEvent.missed).
// A watcher either waits in Next() (a thread of its own) or is told by its `ready` callback that
// an event came after NextOrArm() found none – so a gRPC callback reactor holds no thread at all.
// Thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "postgate/queue/v1/queue.pb.h"

namespace postgate::queue {

class EventBus {
 public:
  static constexpr size_t kBacklog = 10000;

  // `observer` sees every event published, before any watcher (the activity counts).
  explicit EventBus(std::function<void(const v1::QueueEvent&)> observer = nullptr)
      : observer_(std::move(observer)) {}

  class Subscription {
   public:
    ~Subscription();
    // The next matching event, or nullopt after `timeout` without one.
    std::optional<v1::QueueEvent> Next(absl::Duration timeout);
    // The next event if there is one; otherwise nullopt, and the `ready` callback given to
    // Subscribe runs (once, on the publishing thread, outside the bus's lock) when one comes.
    std::optional<v1::QueueEvent> NextOrArm();

   private:
    friend class EventBus;
    Subscription(EventBus& bus, v1::WatchEventsRequest filter, std::function<void()> ready)
        : bus_(bus), filter_(std::move(filter)), ready_(std::move(ready)) {}
    v1::QueueEvent PopLocked();  // Requires bus_.mu_ and a non-empty backlog.
    EventBus& bus_;
    const v1::WatchEventsRequest filter_;
    const std::function<void()> ready_;
    bool armed_ = false;                  // Guarded by bus_.mu_.
    std::deque<v1::QueueEvent> backlog_;  // Guarded by bus_.mu_.
    uint32_t missed_ = 0;                 // Guarded by bus_.mu_.
  };

  // `ready`: see NextOrArm(); it may run until the subscription is destroyed, never after.
  std::unique_ptr<Subscription> Subscribe(v1::WatchEventsRequest filter, std::function<void()> ready = nullptr);

  // `recipients` are the addresses a message-level event concerns (for the domain filter).
  void Publish(const v1::QueueEvent& event, const std::vector<std::string>& recipients = {});

 private:
  static bool Matches(const v1::WatchEventsRequest& filter, const v1::QueueEvent& event,
                      const std::vector<std::string>& recipients);

  const std::function<void(const v1::QueueEvent&)> observer_;
  absl::Mutex mu_;
  std::vector<Subscription*> subscriptions_ ABSL_GUARDED_BY(mu_);
  // Held while `ready` callbacks run, so a subscription can wait out its own before it goes.
  absl::Mutex notify_mu_ ABSL_ACQUIRED_BEFORE(mu_);
};

}  // namespace postgate::queue
