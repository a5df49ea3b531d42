// Live queue events for WatchEvents: publishers never block, each watcher has a bounded backlog;
// a watcher that falls behind loses its oldest events and is told how many (QueueEvent.missed).
// Thread-safe.
#pragma once

#include <cstdint>
#include <deque>
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

  class Subscription {
   public:
    ~Subscription();
    // The next matching event, or nullopt after `timeout` without one.
    std::optional<v1::QueueEvent> Next(absl::Duration timeout);

   private:
    friend class EventBus;
    Subscription(EventBus& bus, v1::WatchEventsRequest filter) : bus_(bus), filter_(std::move(filter)) {}
    EventBus& bus_;
    const v1::WatchEventsRequest filter_;
    std::deque<v1::QueueEvent> backlog_;  // Guarded by bus_.mu_.
    uint32_t missed_ = 0;                 // Guarded by bus_.mu_.
  };

  std::unique_ptr<Subscription> Subscribe(v1::WatchEventsRequest filter);

  // `recipients` are the addresses a message-level event concerns (for the domain filter).
  void Publish(const v1::QueueEvent& event, const std::vector<std::string>& recipients = {});

 private:
  static bool Matches(const v1::WatchEventsRequest& filter, const v1::QueueEvent& event,
                      const std::vector<std::string>& recipients);

  absl::Mutex mu_;
  std::vector<Subscription*> subscriptions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace postgate::queue
