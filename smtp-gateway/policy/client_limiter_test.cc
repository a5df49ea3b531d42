#include "smtp-gateway/policy/client_limiter.h"

#include "gtest/gtest.h"

namespace postgate::gateway::policy {
namespace {

using Verdict = ClientLimiter::Verdict;
const absl::Time kStart = absl::FromUnixSeconds(1'000'000);

TEST(ClientLimiterTest, CountLimitIsPerClientAndFreedOnRelease) {
  ClientLimiter limiter;
  const ClientLimits limits{.count_limit = 2};
  EXPECT_EQ(limiter.Admit("192.0.2.1", limits, kStart).verdict, Verdict::kAdmitted);
  EXPECT_EQ(limiter.Admit("192.0.2.1", limits, kStart).verdict, Verdict::kAdmitted);
  ClientLimiter::Admission third = limiter.Admit("192.0.2.1", limits, kStart);
  EXPECT_EQ(third.verdict, Verdict::kTooManyOpen);
  EXPECT_EQ(third.count, 3u);  // Postfix logs "Connection concurrency limit exceeded: 3 from …".
  EXPECT_EQ(limiter.Admit("192.0.2.2", limits, kStart).verdict, Verdict::kAdmitted);  // Another client.
  limiter.Release("192.0.2.1");
  EXPECT_EQ(limiter.Admit("192.0.2.1", limits, kStart).verdict, Verdict::kAdmitted);
}

TEST(ClientLimiterTest, RateLimitCountsEveryAttemptInTheTimeUnit) {
  ClientLimiter limiter;
  const ClientLimits limits{.count_limit = 0, .rate_limit = 3, .time_unit = absl::Seconds(60)};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(limiter.Admit("198.51.100.7", limits, kStart + absl::Seconds(i)).verdict, Verdict::kAdmitted);
    limiter.Release("198.51.100.7");
  }
  ClientLimiter::Admission fourth = limiter.Admit("198.51.100.7", limits, kStart + absl::Seconds(10));
  EXPECT_EQ(fourth.verdict, Verdict::kTooFast);
  EXPECT_EQ(fourth.count, 4u);
  // A new time unit starts afresh.
  EXPECT_EQ(limiter.Admit("198.51.100.7", limits, kStart + absl::Seconds(61)).verdict, Verdict::kAdmitted);
}

TEST(ClientLimiterTest, AuthCommandsCountPerClientInTheTimeUnit) {
  ClientLimiter limiter;
  const absl::Duration unit = absl::Seconds(60);
  EXPECT_EQ(limiter.CountAuth("smtp:198.51.100.7", unit, kStart), 1u);
  EXPECT_EQ(limiter.CountAuth("smtp:198.51.100.7", unit, kStart + absl::Seconds(5)), 2u);
  EXPECT_EQ(limiter.CountAuth("submission:198.51.100.7", unit, kStart), 1u);  // Another service's count.
  EXPECT_EQ(limiter.CountAuth("smtp:198.51.100.7", unit, kStart + absl::Seconds(59)), 3u);
  EXPECT_EQ(limiter.CountAuth("smtp:198.51.100.7", unit, kStart + absl::Seconds(61)), 1u);  // A new unit.
}

TEST(ClientLimiterTest, ZeroMeansNoLimit) {
  ClientLimiter limiter;
  const ClientLimits limits{.count_limit = 0, .rate_limit = 0};
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(limiter.Admit("a", limits, kStart).verdict, Verdict::kAdmitted);
}

TEST(ClientLimiterTest, ForgetsIdleClients) {
  ClientLimiter limiter;
  const ClientLimits limits{.time_unit = absl::Seconds(60)};
  for (int i = 0; i < 100; ++i) {
    const std::string client = "10.0.0." + std::to_string(i);
    limiter.Admit(client, limits, kStart);
    limiter.Release(client);
  }
  limiter.Admit("still-open", limits, kStart);
  EXPECT_EQ(limiter.TrackedClients(), 101u);
  limiter.Admit("later", limits, kStart + absl::Seconds(120));  // Sweeps: only open or recent remain.
  EXPECT_EQ(limiter.TrackedClients(), 2u);
}

}  // namespace
}  // namespace postgate::gateway::policy
