#include "queue-service/scheduler/event_bus.h"

#include <thread>

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

}  // namespace
}  // namespace postgate::queue
