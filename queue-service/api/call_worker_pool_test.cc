#include "queue-service/api/call_worker_pool.h"

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace postgate::queue {
namespace {

TEST(CallWorkerPoolTest, RunsEveryPostedItemOnItsOwnThreads) {
  std::atomic<int> ran = 0;
  std::atomic<bool> on_caller_thread = false;
  const std::thread::id caller = std::this_thread::get_id();
  {
    CallWorkerPool pool(3, 1000, "test-pool");
    for (int i = 0; i < 500; ++i) {
      ASSERT_TRUE(pool.Post([&] {
        if (std::this_thread::get_id() == caller) on_caller_thread = true;
        ++ran;
      }));
    }
  }  // The destructor runs what still waits.
  EXPECT_EQ(ran.load(), 500);
  EXPECT_FALSE(on_caller_thread.load());
}

TEST(CallWorkerPoolTest, RefusesWhenTheWaitingLineIsFull) {
  absl::Notification started, release;
  CallWorkerPool pool(1, 2, "test-pool");
  ASSERT_TRUE(pool.Post([&] {
    started.Notify();
    release.WaitForNotification();
  }));
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(30)));
  std::atomic<int> ran = 0;
  EXPECT_TRUE(pool.Post([&] { ++ran; }));
  EXPECT_TRUE(pool.Post([&] { ++ran; }));
  EXPECT_EQ(pool.waiting(), 2u);
  EXPECT_FALSE(pool.Post([&] { ++ran; })) << "a third waiting item must be refused";
  release.Notify();
  // Once the line moves, posting works again.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (pool.waiting() != 0 && absl::Now() < deadline) std::this_thread::yield();
  ASSERT_EQ(pool.waiting(), 0u) << "the waiting items never ran";
  EXPECT_TRUE(pool.Post([&] { ++ran; }));
}

TEST(CallWorkerPoolTest, ABlockedItemDoesNotHoldUpTheOthers) {
  absl::Notification release, other_ran;
  CallWorkerPool pool(2, 10, "test-pool");
  ASSERT_TRUE(pool.Post([&] { release.WaitForNotification(); }));
  ASSERT_TRUE(pool.Post([&] { other_ran.Notify(); }));
  EXPECT_TRUE(other_ran.WaitForNotificationWithTimeout(absl::Seconds(30)));
  release.Notify();
}

}  // namespace
}  // namespace postgate::queue
