#include "queue-service/metrics/queue_metrics.h"

#include <map>
#include <string>

#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "queue-service/model/timestamps.h"

namespace postgate::queue {
namespace {

rec::Message Message(const std::string& id, rec::MessageState state, uint64_t size, absl::Time arrival) {
  rec::Message message;
  message.set_queue_id(id);
  message.set_state(state);
  message.set_size(size);
  SetTimestamp(message.mutable_arrival_time(), arrival);
  return message;
}

// Gauge values by family and "state" label (or "" for families without one).
std::map<std::string, double> Collect(const prometheus::Collectable& collector) {
  std::map<std::string, double> values;
  for (const prometheus::MetricFamily& family : collector.Collect()) {
    for (const prometheus::ClientMetric& metric : family.metric) {
      const std::string state = metric.label.empty() ? "" : metric.label.front().value;
      values[family.name + (state.empty() ? "" : "{" + state + "}")] = metric.gauge.value;
    }
  }
  return values;
}

TEST(QueueDepthCollectorTest, ReportsTheIndexAtEachScrape) {
  QueueIndex index;
  const std::shared_ptr<prometheus::Collectable> collector = QueueMetrics::QueueDepthCollector(index);
  std::map<std::string, double> empty = Collect(*collector);
  EXPECT_EQ(empty["postgate_queue_messages{active}"], 0);
  EXPECT_EQ(empty["postgate_queue_oldest_message_age_seconds"], 0);

  const absl::Time now = absl::Now();
  index.Upsert(Message("A", rec::MESSAGE_STATE_ACTIVE, 100, now - absl::Seconds(30)));
  index.Upsert(Message("B", rec::MESSAGE_STATE_DEFERRED, 200, now - absl::Seconds(600)));
  index.Upsert(Message("C", rec::MESSAGE_STATE_HOLD, 300, now));
  index.SetDone(7, 7000);  // What the store's done index held at start.
  std::map<std::string, double> values = Collect(*collector);
  EXPECT_EQ(values["postgate_queue_messages{active}"], 1);
  EXPECT_EQ(values["postgate_queue_messages{deferred}"], 1);
  EXPECT_EQ(values["postgate_queue_messages{hold}"], 1);
  EXPECT_EQ(values["postgate_queue_messages{done}"], 7);
  EXPECT_EQ(values["postgate_queue_bytes{deferred}"], 200);
  EXPECT_EQ(values["postgate_queue_bytes{done}"], 7000);
  EXPECT_GE(values["postgate_queue_oldest_message_age_seconds"], 600);
  EXPECT_GE(values["postgate_queue_oldest_deferred_age_seconds"], 600);

  // B is delivered: counted as done, no longer the oldest pending.
  rec::Message done = Message("B", rec::MESSAGE_STATE_DONE, 200, now - absl::Seconds(600));
  index.Upsert(done);
  values = Collect(*collector);
  EXPECT_EQ(values["postgate_queue_messages{deferred}"], 0);
  EXPECT_EQ(values["postgate_queue_messages{done}"], 8);
  EXPECT_LT(values["postgate_queue_oldest_message_age_seconds"], 600);
  EXPECT_EQ(values["postgate_queue_oldest_deferred_age_seconds"], 0);
}

TEST(QueueMetricsTest, KnownLabelsStartAtZero) {
  prometheus::Registry registry;
  QueueMetrics metrics(registry);
  size_t deliveries = 0;
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != "postgate_queue_deliveries_total") continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      ++deliveries;
      EXPECT_EQ(metric.counter.value, 0);
    }
  }
  EXPECT_EQ(deliveries, 6u);  // {local, smtp} × {sent, deferred, bounced}
}

TEST(MemoryCollectorTest, ReportsTheStorePartsAtEachScrapeAndTheHeap) {
  uint64_t memtables = 100;
  const std::shared_ptr<prometheus::Collectable> collector = QueueMetrics::MemoryCollector([&memtables] {
    return QueueMetrics::NamedBytes{{"store_memtables", memtables}, {"store_block_cache", 7}};
  });
  auto parts = [&collector] {
    std::map<std::string, double> values;
    for (const prometheus::MetricFamily& family : collector->Collect()) {
      EXPECT_EQ(family.name, "postgate_queue_memory_bytes");
      for (const prometheus::ClientMetric& metric : family.metric) values[metric.label.front().value] = metric.gauge.value;
    }
    return values;
  };
  std::map<std::string, double> values = parts();
  EXPECT_EQ(values["store_memtables"], 100);
  EXPECT_EQ(values["store_block_cache"], 7);
  EXPECT_GT(values["heap_in_use"], 0);  // This test's own allocations at least.
  EXPECT_EQ(values.count("heap_free"), 1u);
  memtables = 200;
  EXPECT_EQ(parts()["store_memtables"], 200);
}

}  // namespace
}  // namespace postgate::queue
