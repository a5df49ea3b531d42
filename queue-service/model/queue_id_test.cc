#include "queue-service/model/queue_id.h"

#include <set>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace postgate::queue {
namespace {

TEST(QueueIdTest, LooksLikePostfixAndSortsByTime) {
  QueueIdGenerator generator;
  std::string a = generator.Next(absl::FromUnixSeconds(1795000000));
  std::string b = generator.Next(absl::FromUnixSeconds(1795000001));
  EXPECT_TRUE(IsValidQueueId(a)) << a;
  EXPECT_EQ(a.size(), 13u);
  EXPECT_LT(a, b);
}

TEST(QueueIdTest, UniqueWhenClockStandsStillOrStepsBack) {
  QueueIdGenerator generator;
  absl::Time t = absl::FromUnixSeconds(1795000000);
  std::string first = generator.Next(t);
  std::string second = generator.Next(t);
  std::string third = generator.Next(t - absl::Hours(1));
  EXPECT_LT(first, second);
  EXPECT_LT(second, third);
}

TEST(QueueIdTest, NeverBelowWhatTheStoreHolds) {
  QueueIdGenerator before;
  std::string stored = before.Next(absl::FromUnixSeconds(1900000000));
  QueueIdGenerator after_restart(stored);
  EXPECT_GT(after_restart.Next(absl::FromUnixSeconds(1795000000)), stored);
}

TEST(QueueIdTest, UniqueAcrossThreads) {
  QueueIdGenerator generator;
  absl::Mutex mu;
  std::set<std::string> ids;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5000; ++i) {
        std::string id = generator.Next(absl::FromUnixSeconds(1795000000));
        absl::MutexLock lock(&mu);
        ids.insert(id);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(ids.size(), 20000u);
}

TEST(QueueIdTest, Validation) {
  EXPECT_TRUE(IsValidQueueId("0123456789ABC"));
  EXPECT_FALSE(IsValidQueueId("0123456789abc"));
  EXPECT_FALSE(IsValidQueueId("0123456789AB"));
  EXPECT_FALSE(IsValidQueueId("../../etc/pass"));
}

}  // namespace
}  // namespace postgate::queue
