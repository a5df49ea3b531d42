#include "queue-service/model/queue_id.h"

#include <set>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
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

TEST(QueueIdTest, ReplicasNeverCollideAndAreNamedByTheId) {
  std::set<std::string> ids;
  const absl::Time t = absl::FromUnixSeconds(1795000000);
  for (int replica : {0, 1, 2, 15}) {
    QueueIdGenerator generator("", replica);
    std::string previous;
    for (int i = 0; i < 1000; ++i) {  // The same microsecond on every replica.
      std::string id = generator.Next(t);
      EXPECT_EQ(QueueIdReplica(id), replica) << id;
      EXPECT_GT(id, previous);
      previous = id;
      ids.insert(id);
    }
    EXPECT_FALSE(generator.Adopt(QueueIdGenerator("", (replica + 1) % kMaxReplicas).Next(t), t));
  }
  EXPECT_EQ(ids.size(), 4000u);
  // Close to the clock: at most one step of 16 µs ahead of it.
  QueueIdGenerator generator("", 9);
  std::string id = generator.Next(t);
  uint64_t value = 0;
  ASSERT_TRUE(absl::SimpleHexAtoi(id, &value));
  EXPECT_GE(value, static_cast<uint64_t>(absl::ToUnixMicros(t)));
  EXPECT_LT(value, static_cast<uint64_t>(absl::ToUnixMicros(t)) + kMaxReplicas);
}

TEST(QueueIdTest, AdoptsItsOwnIdsFromBeforeARestartButNotFutureOnes) {
  const absl::Time t = absl::FromUnixSeconds(1795000000);
  std::string before_restart = QueueIdGenerator("", 3).Next(t);
  QueueIdGenerator restarted("", 3);
  EXPECT_TRUE(restarted.Adopt(before_restart, t + absl::Seconds(2)));
  EXPECT_GT(restarted.Next(t), before_restart);  // Never issued again.
  EXPECT_FALSE(restarted.Adopt(QueueIdGenerator("", 3).Next(t + absl::Hours(1)), t));
  EXPECT_FALSE(restarted.Adopt("not-an-id", t));
}

TEST(QueueIdTest, Validation) {
  EXPECT_TRUE(IsValidQueueId("0123456789ABC"));
  EXPECT_FALSE(IsValidQueueId("0123456789abc"));
  EXPECT_FALSE(IsValidQueueId("0123456789AB"));
  EXPECT_FALSE(IsValidQueueId("../../etc/pass"));
}

}  // namespace
}  // namespace postgate::queue
