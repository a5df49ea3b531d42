#include "queue-service/scheduler/event_bus.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace postgate::queue {
namespace {

v1::QueueEvent Event(v1::EventKind kind, const std::string& id, const std::string& recipient = "") {
  v1::QueueEvent event;
  event.set_kind(kind);
  event.set_queue_id(id);
  event.set_recipient(recipient);
  return event;
}

TEST(EventBusTest, FiltersByIdDomainAndKind) {
  EventBus bus;
  v1::WatchEventsRequest by_domain;
  by_domain.set_domain("Example.org");
  auto domain_watch = bus.Subscribe(by_domain);
  v1::WatchEventsRequest by_id;
  by_id.set_queue_id("A");
  by_id.add_kinds(v1::EVENT_KIND_DELIVERED);
  auto id_watch = bus.Subscribe(by_id);

  bus.Publish(Event(v1::EVENT_KIND_RECEIVED, "A"), {"x@mx.example.org"});
  bus.Publish(Event(v1::EVENT_KIND_DELIVERED, "A", "bar@mail169.com"));
  bus.Publish(Event(v1::EVENT_KIND_DEFERRED, "B", "y@example.org"));

  EXPECT_EQ(domain_watch->Next(absl::ZeroDuration())->kind(), v1::EVENT_KIND_RECEIVED);
  EXPECT_EQ(domain_watch->Next(absl::ZeroDuration())->queue_id(), "B");
  EXPECT_FALSE(domain_watch->Next(absl::ZeroDuration()).has_value());
  EXPECT_EQ(id_watch->Next(absl::ZeroDuration())->recipient(), "bar@mail169.com");
  EXPECT_FALSE(id_watch->Next(absl::ZeroDuration()).has_value());
}

TEST(EventBusTest, SlowWatcherIsToldWhatItMissed) {
  EventBus bus;
  auto watch = bus.Subscribe({});
  for (size_t i = 0; i < EventBus::kBacklog + 5; ++i) bus.Publish(Event(v1::EVENT_KIND_RECEIVED, "X"));
  EXPECT_EQ(watch->Next(absl::ZeroDuration())->missed(), 5u);
  EXPECT_EQ(watch->Next(absl::ZeroDuration())->missed(), 0u);
}

TEST(EventBusTest, NextWaitsForAPublisher) {
  EventBus bus;
  auto watch = bus.Subscribe({});
  std::thread publisher([&] { bus.Publish(Event(v1::EVENT_KIND_DONE, "Z")); });
  std::optional<v1::QueueEvent> event = watch->Next(absl::Seconds(10));
  publisher.join();
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->queue_id(), "Z");
}

TEST(EventBusTest, AnArmedWatcherIsCalledOnceWhenAnEventComes) {
  EventBus bus;
  int calls = 0;
  EventBus::Subscription* self = nullptr;
  std::vector<std::string> taken;
  auto watch = bus.Subscribe({}, [&] {
    ++calls;
    // As a reactor does: take what came at once (the bus's lock is not held here).
    while (std::optional<v1::QueueEvent> event = self->NextOrArm()) taken.push_back(event->queue_id());
  });
  self = watch.get();
  bus.Publish(Event(v1::EVENT_KIND_RECEIVED, "early"));  // Not armed yet: kept, no call.
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(watch->NextOrArm()->queue_id(), "early");
  EXPECT_FALSE(watch->NextOrArm().has_value());  // Now armed.
  bus.Publish(Event(v1::EVENT_KIND_RECEIVED, "one"));
  bus.Publish(Event(v1::EVENT_KIND_RECEIVED, "two"));  // The callback re-armed after taking "one".
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(taken, (std::vector<std::string>{"one", "two"}));
}

TEST(EventBusTest, ASubscriptionGoesOnlyAfterItsRunningCallbackReturned) {
  EventBus bus;
  std::atomic<bool> in_callback{false}, release{false}, destroyed{false};
  auto watch = bus.Subscribe({}, [&] {
    in_callback = true;
    while (!release) std::this_thread::yield();
    EXPECT_FALSE(destroyed.load());
  });
  EXPECT_FALSE(watch->NextOrArm().has_value());
  std::thread publisher([&] { bus.Publish(Event(v1::EVENT_KIND_DONE, "Z")); });
  while (!in_callback) std::this_thread::yield();
  std::thread destroyer([&] {
    watch.reset();
    destroyed = true;
  });
  // While the callback runs, the destructor waits (checked for a while: it must not finish).
  const absl::Time until = absl::Now() + absl::Milliseconds(200);
  while (absl::Now() < until && !destroyed.load()) {
  }
  EXPECT_FALSE(destroyed.load());
  release = true;
  publisher.join();
  destroyer.join();
  EXPECT_TRUE(destroyed.load());
}

}  // namespace
}  // namespace postgate::queue
