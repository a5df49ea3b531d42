#include "queue-service/metrics/queue_metrics.h"

#include <malloc.h>

#if defined(__SANITIZE_ADDRESS__)
// The sanitizer runtime's allocator statistics (declared here: g++ 12 ships no
// <sanitizer/allocator_interface.h>, only clang does).
extern "C" size_t __sanitizer_get_current_allocated_bytes();
extern "C" size_t __sanitizer_get_free_bytes();
#endif

#include "prometheus/client_metric.h"
#include "prometheus/metric_family.h"
#include "queue-service/model/record.h"

namespace postgate::queue {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildHistogram;
using prometheus::Histogram;

class DepthCollector : public prometheus::Collectable {
 public:
  explicit DepthCollector(const QueueIndex& index) : index_(index) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    QueueIndex::Summary summary = index_.Summarize();
    prometheus::MetricFamily messages{"postgate_queue_messages",
                                      "Messages in the queue by state (done: kept for the status API).",
                                      prometheus::MetricType::Gauge, {}};
    prometheus::MetricFamily bytes{"postgate_queue_bytes", "Content bytes in the queue by state.",
                                   prometheus::MetricType::Gauge, {}};
    const std::pair<rec::MessageState, const char*> states[] = {
        {rec::MESSAGE_STATE_ACTIVE, "active"},
        {rec::MESSAGE_STATE_DEFERRED, "deferred"},
        {rec::MESSAGE_STATE_HOLD, "hold"},
        {rec::MESSAGE_STATE_DONE, "done"}};
    for (const auto& [state, name] : states) {
      prometheus::ClientMetric metric;
      metric.label = {{"state", name}};
      metric.gauge.value = static_cast<double>(summary.messages[state]);
      messages.metric.push_back(metric);
      metric.gauge.value = static_cast<double>(summary.bytes[state]);
      bytes.metric.push_back(metric);
    }
    prometheus::MetricFamily oldest{"postgate_queue_oldest_message_age_seconds",
                                    "Age of the oldest message not yet done; 0 when none.",
                                    prometheus::MetricType::Gauge, {}};
    prometheus::ClientMetric age;
    age.gauge.value = summary.oldest_pending
                          ? absl::ToDoubleSeconds(absl::Now() - *summary.oldest_pending)
                          : 0.0;
    oldest.metric.push_back(age);
    prometheus::MetricFamily oldest_deferred{
        "postgate_queue_oldest_deferred_age_seconds",
        "Age (since arrival) of the oldest deferred message; 0 when nothing is deferred.",
        prometheus::MetricType::Gauge, {}};
    age.gauge.value = summary.oldest_deferred
                          ? absl::ToDoubleSeconds(absl::Now() - *summary.oldest_deferred)
                          : 0.0;
    oldest_deferred.metric.push_back(age);
    return {messages, bytes, oldest, oldest_deferred};
  }

 private:
  const QueueIndex& index_;
};

struct HeapBytes {
  size_t in_use = 0;
  size_t free = 0;
};

// AddressSanitizer replaces malloc, and glibc's mallinfo2 then reports zeros: under it the
// sanitizer's own allocator statistics are the heap (scripts/sanitize runs this code too).
HeapBytes CurrentHeap() {
#if defined(__SANITIZE_ADDRESS__)
  return {__sanitizer_get_current_allocated_bytes(), __sanitizer_get_free_bytes()};
#else
  const struct mallinfo2 heap = mallinfo2();
  return {heap.uordblks + heap.hblkhd, heap.fordblks};
#endif
}

class MemoryCollector : public prometheus::Collectable {
 public:
  explicit MemoryCollector(std::function<QueueMetrics::NamedBytes()> store_parts)
      : store_parts_(std::move(store_parts)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    prometheus::MetricFamily family{"postgate_queue_memory_bytes",
                                    "Where queue-service's memory is: the store's memtables, table readers and block cache "
                                    "(RocksDB's figures), the C heap in use and free bytes the allocator keeps.",
                                    prometheus::MetricType::Gauge, {}};
    auto add = [&family](const std::string& part, double bytes) {
      prometheus::ClientMetric metric;
      metric.label = {{"part", part}};
      metric.gauge.value = bytes;
      family.metric.push_back(std::move(metric));
    };
    for (const auto& [part, bytes] : store_parts_()) add(part, static_cast<double>(bytes));
    const HeapBytes heap = CurrentHeap();
    add("heap_in_use", static_cast<double>(heap.in_use));
    add("heap_free", static_cast<double>(heap.free));
    return {family};
  }

 private:
  std::function<QueueMetrics::NamedBytes()> store_parts_;
};

}  // namespace

QueueMetrics::QueueMetrics(prometheus::Registry& registry)
    : messages_stored(BuildCounter()
                          .Name("postgate_queue_messages_stored_total")
                          .Help("Messages committed to the store (fsync'd) from the gateway.")
                          .Register(registry)
                          .Add({})),
      stored_bytes(BuildCounter()
                       .Name("postgate_queue_stored_bytes_total")
                       .Help("Content bytes of committed messages.")
                       .Register(registry)
                       .Add({})),
      enqueue_duplicates(BuildCounter()
                             .Name("postgate_queue_enqueue_duplicates_total")
                             .Help("Enqueue retries whose idempotency key named a stored message: answered, not stored again.")
                             .Register(registry)
                             .Add({})),
      enqueue_failures(BuildCounter()
                           .Name("postgate_queue_enqueue_failures_total")
                           .Help("Enqueue streams that ended without a stored message, by reason.")
                           .Register(registry)),
      enqueue_calls(BuildCounter()
                        .Name("postgate_queue_enqueue_calls_total")
                        .Help("gRPC calls that brought messages, by RPC: Enqueue (one message each) or EnqueueMany "
                              "(a gateway's shared stream).")
                        .Register(registry)),
      commit_seconds(BuildHistogram()
                         .Name("postgate_queue_commit_duration_seconds")
                         .Help("Time to commit a message durably (the fsync'd write).")
                         .Register(registry)
                         .Add({}, Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                              0.025, 0.05, 0.1, 0.25, 0.5, 1})),
      store_group_seconds(BuildHistogram()
                              .Name("postgate_queue_store_group_duration_seconds")
                              .Help("Enqueue store writer: time to write one group of commits and chunks, the fsync included.")
                              .Register(registry)
                              .Add({}, Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                                   0.01, 0.025, 0.05, 0.1, 0.25, 1})),
      store_group_requests(BuildHistogram()
                               .Name("postgate_queue_store_group_requests")
                               .Help("Enqueue store writer: commits and chunks written per group (one fsync each).")
                               .Register(registry)
                               .Add({}, Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256})),
      deliveries(BuildCounter()
                     .Name("postgate_queue_deliveries_total")
                     .Help("Delivery attempts per recipient, by transport and result.")
                     .Register(registry)),
      delivery_seconds(BuildHistogram()
                           .Name("postgate_queue_delivery_duration_seconds")
                           .Help("Time from arrival to final delivery of a recipient.")
                           .Register(registry)
                           .Add({}, Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                                0.5, 1, 2.5, 5, 10, 30, 60, 300,
                                                                900, 3600})),
      notifications(BuildCounter()
                        .Name("postgate_queue_notifications_total")
                        .Help("Delivery status notifications (RFC 3464) queued, by kind and by who gets them (sender, postmaster).")
                        .Register(registry)),
      smtp_connection_cache(BuildCounter()
                                .Name("postgate_queue_smtp_connection_cache_total")
                                .Help("SMTP transactions by connection: over a cached one (hit) or a new one (miss).")
                                .Register(registry)),
      smtp_sasl_logins(BuildCounter()
                           .Name("postgate_queue_smtp_sasl_logins_total")
                           .Help("SMTP AUTH logins to next hops (smtp_sasl_auth_enable), by mechanism and result "
                                 "(mechanism none: no mechanism could be used).")
                           .Register(registry)),
      admin_denied(BuildCounter()
                       .Name("postgate_queue_admin_denied_total")
                       .Help("Admin RPCs refused for missing or wrong credentials, by method.")
                       .Register(registry)) {
  // Known label values start at 0, so ratios and alerts work before the first event.
  for (const char* transport : {"local", "smtp"}) {
    for (const char* result : {"sent", "deferred", "bounced"}) {
      deliveries.Add({{"transport", transport}, {"result", result}});
    }
  }
  for (const char* kind : {"failure", "success", "delay"}) {
    for (const char* to : {"sender", "postmaster"}) notifications.Add({{"kind", kind}, {"to", to}});
  }
  for (const char* result : {"hit", "miss"}) smtp_connection_cache.Add({{"result", result}});
  for (const char* mechanism : {"PLAIN", "LOGIN"}) {
    for (const char* result : {"success", "failed"}) smtp_sasl_logins.Add({{"mechanism", mechanism}, {"result", result}});
  }
  for (const char* method : {"GetMessageContent", "Hold", "Release", "Delete", "Requeue"}) {
    admin_denied.Add({{"method", method}});
  }
  for (const char* reason : {"cancelled", "store", "storage", "too_big", "size_mismatch", "protocol", "expired"}) {
    enqueue_failures.Add({{"reason", reason}});
  }
  for (const char* rpc : {"Enqueue", "EnqueueMany"}) enqueue_calls.Add({{"rpc", rpc}});
}

std::shared_ptr<prometheus::Collectable> QueueMetrics::QueueDepthCollector(const QueueIndex& index) {
  return std::make_shared<DepthCollector>(index);
}

std::shared_ptr<prometheus::Collectable> QueueMetrics::MemoryCollector(std::function<NamedBytes()> store_parts) {
  return std::make_shared<queue::MemoryCollector>(std::move(store_parts));
}

}  // namespace postgate::queue
