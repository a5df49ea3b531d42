// Threads for the status API's method bodies. gRPC's callback API runs reactions on a couple of
// shared threads (two on a 2-core machine) that also carry every Enqueue stream; a status call
// may scan the queue, read content from disk or wait for a message lock a delivery holds, so its
// body runs here and finishes its reactor from here. (The synchronous server the status API used
// before paused ~100 ms about every 1.1 s in its own request polling — bench/README.md.)
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace postgate::queue {

class CallWorkerPool {
 public:
  // `threads` run the work in arrival order; at most `max_waiting` items wait for one.
  CallWorkerPool(size_t threads, size_t max_waiting, std::string thread_name);
  // Runs what is still waiting, then joins the threads.
  ~CallWorkerPool();
  CallWorkerPool(const CallWorkerPool&) = delete;
  CallWorkerPool& operator=(const CallWorkerPool&) = delete;

  // False, without running it, when `max_waiting` items already wait: the caller answers
  // RESOURCE_EXHAUSTED instead of queueing without bound.
  bool Post(std::function<void()> work);

  size_t waiting() const;

 private:
  void Run();

  const size_t max_waiting_;
  const std::string thread_name_;
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> waiting_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace postgate::queue
