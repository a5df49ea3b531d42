// queue-service's Prometheus metrics in one place. Labels are bounded: states, transports and
// results from fixed sets – never queue IDs or addresses. Queue depth is computed from the
// QueueIndex at scrape time, so it can never drift from the truth.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "queue-service/scheduler/queue_index.h"

namespace postgate::queue {

class QueueMetrics {
 public:
  explicit QueueMetrics(prometheus::Registry& registry);

  prometheus::Counter& messages_stored;
  prometheus::Counter& stored_bytes;
  prometheus::Counter& enqueue_duplicates;  // Retries answered from the idempotency key.
  prometheus::Family<prometheus::Counter>& enqueue_failures;  // {reason}
  prometheus::Family<prometheus::Counter>& enqueue_calls;     // {rpc}: Enqueue, EnqueueMany
  prometheus::Histogram& commit_seconds;                      // fsync'd commit latency
  prometheus::Histogram& store_group_seconds;   // One Enqueue store group's writes, fsync included.
  prometheus::Histogram& store_group_requests;  // Requests (commits, chunks) per such group.
  prometheus::Family<prometheus::Counter>& deliveries;        // {transport, result}
  prometheus::Histogram& delivery_seconds;                    // arrival → final delivery
  prometheus::Family<prometheus::Counter>& notifications;     // {kind, to}
  prometheus::Family<prometheus::Counter>& smtp_connection_cache;  // {result}: hit, miss
  prometheus::Family<prometheus::Counter>& smtp_sasl_logins;       // {mechanism, result}: success, failed
  prometheus::Family<prometheus::Counter>& admin_denied;      // {method}

  // A collector reporting queue depth and oldest age from `index`; register it with the Exposer.
  static std::shared_ptr<prometheus::Collectable> QueueDepthCollector(const QueueIndex& index);

  // A collector reporting where the process's memory is, as postgate_queue_memory_bytes{part}:
  // the parts `store_parts` names at each scrape (the store's memtables, table readers and block
  // cache) and the C heap's bytes in use and held free by the allocator (glibc's mallinfo2) – so
  // an operator can tell a growing store from a growing heap from fragmentation.
  using NamedBytes = std::vector<std::pair<std::string, uint64_t>>;
  static std::shared_ptr<prometheus::Collectable> MemoryCollector(std::function<NamedBytes()> store_parts);
};

}  // namespace postgate::queue
