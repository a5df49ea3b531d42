#include "core/io/awaitable_callback.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "asio/co_spawn.hpp"
#include "asio/executor_work_guard.hpp"
#include "asio/io_context.hpp"
#include "asio/strand.hpp"
#include "gtest/gtest.h"

namespace postgate::io {
namespace {

// A thread that answers requests in batches, as the store writer and the resolver do.
class Answerer {
 public:
  Answerer() : thread_([this] { Run(); }) {}
  ~Answerer() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    ready_.notify_one();
    thread_.join();
  }
  void Ask(int question, std::function<void(int)> answer) {
    {
      std::lock_guard lock(mu_);
      waiting_.emplace_back(question, std::move(answer));
    }
    ready_.notify_one();
  }

 private:
  void Run() {
    for (;;) {
      std::deque<std::pair<int, std::function<void(int)>>> batch;
      {
        std::unique_lock lock(mu_);
        ready_.wait(lock, [this] { return stopping_ || !waiting_.empty(); });
        if (waiting_.empty()) return;
        batch.swap(waiting_);
      }
      for (auto& [question, answer] : batch) answer(question * 2);
    }
  }
  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<std::pair<int, std::function<void(int)>>> waiting_;
  bool stopping_ = false;
  std::thread thread_;
};

// Many coroutines on strands of a two-thread pool, each awaiting answers from another thread:
// every one resumes with its own answers, on its strand (AddressSanitizer, in scripts/sanitize,
// checks the hand-over between the threads).
TEST(AwaitCallbackTest, CoroutinesResumeWithAnswersFromAnotherThread) {
  asio::io_context pool;
  auto work = asio::make_work_guard(pool);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) threads.emplace_back([&] { pool.run(); });
  std::atomic<int> finished{0}, wrong{0};
  {
    Answerer answerer;
    constexpr int kCoroutines = 5000;
    for (int n = 0; n < kCoroutines; ++n) {
      auto strand = asio::make_strand(pool);
      asio::co_spawn(
          strand,
          [&answerer, &wrong, strand, n]() -> asio::awaitable<void> {
            for (int step = 0; step < 3; ++step) {
              const int answer = co_await AwaitCallback<int>(
                  [&](auto report) { answerer.Ask(n + step, [report](int value) { report(value); }); });
              if (answer != 2 * (n + step) || !strand.running_in_this_thread()) ++wrong;
            }
          },
          [&finished](std::exception_ptr) { ++finished; });
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (finished.load() < kCoroutines && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  }
  EXPECT_EQ(finished.load(), 5000);
  EXPECT_EQ(wrong.load(), 0);
  work.reset();
  for (std::thread& thread : threads) thread.join();
}

}  // namespace
}  // namespace postgate::io
