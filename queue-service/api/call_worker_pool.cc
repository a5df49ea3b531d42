#include "queue-service/api/call_worker_pool.h"

#include <pthread.h>

namespace postgate::queue {

CallWorkerPool::CallWorkerPool(size_t threads, size_t max_waiting, std::string thread_name)
    : max_waiting_(max_waiting), thread_name_(std::move(thread_name)) {
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

CallWorkerPool::~CallWorkerPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& thread : threads_) thread.join();
}

bool CallWorkerPool::Post(std::function<void()> work) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || waiting_.size() >= max_waiting_) return false;
  waiting_.push_back(std::move(work));
  return true;
}

size_t CallWorkerPool::waiting() const {
  absl::MutexLock lock(&mu_);
  return waiting_.size();
}

void CallWorkerPool::Run() {
  // Named for top and perf (at most 15 characters).
  pthread_setname_np(pthread_self(), thread_name_.substr(0, 15).c_str());
  for (;;) {
    std::function<void()> work;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](CallWorkerPool* pool) ABSL_EXCLUSIVE_LOCKS_REQUIRED(pool->mu_) {
            return pool->stopping_ || !pool->waiting_.empty();
          },
          this));
      if (waiting_.empty()) return;  // Stopping, and nothing left to run.
      work = std::move(waiting_.front());
      waiting_.pop_front();
    }
    work();
  }
}

}  // namespace postgate::queue
