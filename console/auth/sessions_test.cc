#include "console/auth/sessions.h"

#include "gtest/gtest.h"

namespace postgate::console {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1796212800);

TEST(SessionStoreTest, SessionsAreRandomAndExpireWhenIdleOrOld) {
  SessionStore store(absl::Minutes(30), absl::Hours(12));
  const Session a = store.Create("alice", kStart);
  const Session b = store.Create("bob", kStart);
  EXPECT_EQ(a.id.size(), 64u);
  EXPECT_NE(a.id, b.id);
  EXPECT_NE(a.csrf, a.id);
  ASSERT_TRUE(store.Find(a.id, kStart + absl::Minutes(29)));
  EXPECT_EQ(store.Find(a.id, kStart + absl::Minutes(29))->operator_name, "alice");
  // Used within every 30 minutes, it lives until the 12 hours are up.
  for (int minutes = 50; minutes < 12 * 60; minutes += 20) ASSERT_TRUE(store.Find(a.id, kStart + absl::Minutes(minutes))) << minutes;
  EXPECT_FALSE(store.Find(a.id, kStart + absl::Hours(12) + absl::Minutes(1)));
  EXPECT_FALSE(store.Find(b.id, kStart + absl::Hours(1)));  // Idle for an hour.
  EXPECT_FALSE(store.Find("", kStart));
  const Session c = store.Create("carol", kStart);
  store.Remove(c.id);
  EXPECT_FALSE(store.Find(c.id, kStart));
}

TEST(SessionStoreTest, ExpiredSessionsAreDroppedWhenNewOnesCome) {
  SessionStore store(absl::Minutes(30), absl::Hours(12));
  for (int i = 0; i < 100; ++i) store.Create("op", kStart);
  store.Create("op", kStart + absl::Hours(1));
  EXPECT_EQ(store.size(), 1u);
}

TEST(AuthTest, ConstantTimeEqualsAndProxyTokens) {
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secret2"));
  EXPECT_EQ(ProxyCsrfToken("key", "alice"), ProxyCsrfToken("key", "alice"));
  EXPECT_NE(ProxyCsrfToken("key", "alice"), ProxyCsrfToken("key", "bob"));
  EXPECT_NE(ProxyCsrfToken("key", "alice"), ProxyCsrfToken("other", "alice"));
  EXPECT_EQ(ProxyCsrfToken("key", "alice").size(), 64u);
}

TEST(AuthTest, OperatorNames) {
  EXPECT_TRUE(ValidOperatorName("alice.smith@example.org"));
  EXPECT_FALSE(ValidOperatorName(""));
  EXPECT_FALSE(ValidOperatorName("alice smith"));
  EXPECT_FALSE(ValidOperatorName("a\nb"));
  EXPECT_FALSE(ValidOperatorName("<script>"));
  EXPECT_FALSE(ValidOperatorName(std::string(65, 'a')));
}

TEST(LoginThrottleTest, TooManyFailuresWaitForTheWindow) {
  LoginThrottle throttle(3, absl::Minutes(5));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(throttle.Allowed("192.0.2.1", kStart));
    throttle.Failed("192.0.2.1", kStart + absl::Seconds(i));
  }
  EXPECT_FALSE(throttle.Allowed("192.0.2.1", kStart + absl::Minutes(4)));
  EXPECT_TRUE(throttle.Allowed("192.0.2.2", kStart));  // Others are not affected.
  EXPECT_TRUE(throttle.Allowed("192.0.2.1", kStart + absl::Minutes(5)));
  throttle.Failed("192.0.2.3", kStart);
  throttle.Succeeded("192.0.2.3");
  throttle.Failed("192.0.2.3", kStart);
  throttle.Failed("192.0.2.3", kStart);
  EXPECT_TRUE(throttle.Allowed("192.0.2.3", kStart));  // The success reset the count.
}

}  // namespace
}  // namespace postgate::console
