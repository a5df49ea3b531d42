#include "core/base/logging.h"

#include "gtest/gtest.h"

namespace postgate::base {
namespace {

TEST(LoggingTest, DelaysLikePostfix) {
  EXPECT_EQ(FormatDelay(0.001), "0");
  EXPECT_EQ(FormatDelay(0.03), "0.03");
  EXPECT_EQ(FormatDelay(0.1), "0.1");
  EXPECT_EQ(FormatDelay(1.2), "1.2");
  EXPECT_EQ(FormatDelay(2), "2");
  EXPECT_EQ(FormatDelay(12.4), "12");
}

TEST(LoggingTest, RejectsUnknownFormat) {
  EXPECT_FALSE(InitLogging("h", "postgate/test", "xml").ok());
  EXPECT_TRUE(InitLogging("h", "postgate/test", "json").ok());
}

}  // namespace
}  // namespace postgate::base
