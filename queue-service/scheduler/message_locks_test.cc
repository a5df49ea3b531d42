#include "queue-service/scheduler/message_locks.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace postgate::queue {
namespace {

TEST(MessageLocksTest, WaitersGetTheLockInTurnWhenItIsHandedOver) {
  MessageLocks locks;
  std::vector<int> order;
  EXPECT_TRUE(locks.LockOrWait("A", [] { FAIL(); }));
  EXPECT_FALSE(locks.TryLock("A"));
  EXPECT_TRUE(locks.TryLock("B"));
  EXPECT_FALSE(locks.LockOrWait("A", [&] { order.push_back(1); }));
  EXPECT_FALSE(locks.LockOrWait("A", [&] { order.push_back(2); }));
  locks.Unlock("A");
  EXPECT_EQ(order, std::vector<int>{1});
  EXPECT_FALSE(locks.TryLock("A"));  // Still held, by the first waiter now.
  locks.Unlock("A");
  locks.Unlock("A");
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_TRUE(locks.TryLock("A"));
  locks.Unlock("A");
  locks.Unlock("B");
  EXPECT_EQ(locks.held(), 0u);
}

TEST(MessageLocksTest, ThreadsAndCallbacksShareOneLockWithoutOverlap) {
  MessageLocks locks;
  std::atomic<int> inside{0}, overlaps{0}, done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        if (t % 2 == 0) {
          locks.Lock("A");
        } else {
          std::atomic<bool> mine{false};
          if (locks.LockOrWait("A", [&] { mine = true; })) mine = true;
          while (!mine) std::this_thread::yield();
        }
        if (++inside > 1) ++overlaps;
        --inside;
        ++done;
        locks.Unlock("A");
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(done.load(), 4000);
  EXPECT_EQ(locks.held(), 0u);
}

}  // namespace
}  // namespace postgate::queue
