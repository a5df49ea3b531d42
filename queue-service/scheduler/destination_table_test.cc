#include "queue-service/scheduler/destination_table.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "queue-service/scheduler/fake_clock.h"

namespace postgate::queue {
namespace {

TEST(DestinationTableTest, AtItsLimitADestinationQueuesConversationsAndHandsFreedSlotsInOrder) {
  DestinationTable table({.per_destination = 2, .total = 0});
  std::vector<int> granted;
  EXPECT_TRUE(table.Acquire("a", [](bool) { FAIL(); }));
  EXPECT_TRUE(table.Acquire("a", [](bool) { FAIL(); }));
  EXPECT_FALSE(table.Acquire("a", [&](bool) { granted.push_back(1); }));
  EXPECT_FALSE(table.Acquire("a", [&](bool) { granted.push_back(2); }));
  EXPECT_FALSE(table.TryAcquire("a"));  // Nobody overtakes the line.
  EXPECT_TRUE(table.TryAcquire("b"));   // Another destination is not held up.
  EXPECT_EQ(table.waiting("a"), 2u);
  table.Release("a");
  EXPECT_EQ(granted, std::vector<int>{1});
  EXPECT_EQ(table.active("a"), 2);  // Handed over, not freed.
  table.Release("a");
  table.Release("a");
  EXPECT_EQ(granted, (std::vector<int>{1, 2}));
  EXPECT_EQ(table.active("a"), 1);
  table.Release("a");
  table.Release("b");
  EXPECT_EQ(table.active_total(), 0);
  table.Release("a");  // Not held: ignored.
  EXPECT_EQ(table.active_total(), 0);
}

TEST(DestinationTableTest, WhenTheProcessIsFullFreedSlotsGoRoundTheWaitingDestinations) {
  DestinationTable table({.per_destination = 10, .total = 2});
  std::vector<std::string> granted;
  EXPECT_TRUE(table.TryAcquire("busy"));
  EXPECT_TRUE(table.TryAcquire("busy"));
  EXPECT_FALSE(table.Acquire("busy", [&](bool) { granted.push_back("busy"); }));
  EXPECT_FALSE(table.Acquire("busy", [&](bool) { granted.push_back("busy"); }));
  EXPECT_FALSE(table.Acquire("quiet", [&](bool) { granted.push_back("quiet"); }));
  table.Release("busy");  // Its own line first.
  table.Release("busy");  // Then the next destination in turn, not "busy" again.
  EXPECT_EQ(granted, (std::vector<std::string>{"busy", "quiet"}));
  table.Release("quiet");
  EXPECT_EQ(granted, (std::vector<std::string>{"busy", "quiet", "busy"}));
  EXPECT_EQ(table.active_total(), 2);
}

TEST(DestinationTableTest, ASlotIsNeverLostBetweenManyThreads) {
  // Every thread takes a slot (now or by hand-over) and gives it back, many times: at the end
  // nothing is held and nobody waits – a missed wake-up would leave a waiter behind.
  DestinationTable table({.per_destination = 3, .total = 5});
  std::atomic<int> held{0}, most{0}, grants{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const std::string name = t % 2 == 0 ? "a" : "b";
      for (int i = 0; i < 2000; ++i) {
        std::atomic<bool> mine{false};
        if (table.Acquire(name, [&](bool) { mine = true; })) mine = true;
        while (!mine) std::this_thread::yield();
        const int now = ++held;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        --held;
        ++grants;
        table.Release(name);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(grants.load(), 8 * 2000);
  EXPECT_LE(most.load(), 5);
  EXPECT_EQ(table.active_total(), 0);
  EXPECT_EQ(table.waiting("a") + table.waiting("b"), 0u);
}

TEST(DestinationTableTest, ClosingTellsEveryWaiterNoAndRefusesNewWaiters) {
  DestinationTable table({.per_destination = 1, .total = 0});
  std::vector<bool> answers;
  EXPECT_TRUE(table.TryAcquire("a"));
  EXPECT_FALSE(table.Acquire("a", [&](bool granted) { answers.push_back(granted); }));
  table.Close();
  EXPECT_EQ(answers, std::vector<bool>{false});
  EXPECT_FALSE(table.Acquire("a", [&](bool granted) { answers.push_back(granted); }));
  EXPECT_EQ(answers, (std::vector<bool>{false, false}));
  EXPECT_EQ(table.waiting("a"), 0u);
  table.Release("a");
  EXPECT_EQ(table.active_total(), 0);
  EXPECT_TRUE(table.TryAcquire("a"));  // A free slot is still taken: conversations under way finish.
}

TEST(DestinationTableTest, ASuspensionEndsWithItsTimeOrAFlush) {
  FakeClock clock;
  DestinationTable table({}, clock);
  EXPECT_FALSE(table.Suspended("mx.example.org"));
  table.Suspend("mx.example.org", absl::Minutes(5), "connect to mx.example.org[192.0.2.1]:25: Connection refused");
  EXPECT_EQ(table.Suspended("mx.example.org").value_or(""),
            "connect to mx.example.org[192.0.2.1]:25: Connection refused");
  EXPECT_FALSE(table.Suspended("other.example.org"));
  clock.Advance(absl::Minutes(5) - absl::Seconds(1));
  EXPECT_TRUE(table.Suspended("mx.example.org"));
  clock.Advance(absl::Seconds(1));
  EXPECT_FALSE(table.Suspended("mx.example.org"));
  table.Suspend("mx.example.org", absl::Minutes(5), "down");
  table.ResumeAll();
  EXPECT_FALSE(table.Suspended("mx.example.org"));
  table.Suspend("mx.example.org", absl::Minutes(5), "down");
  table.Resume("mx.example.org");
  EXPECT_FALSE(table.Suspended("mx.example.org"));
}

}  // namespace
}  // namespace postgate::queue
