#include "core/smtp/reply.h"

#include "gtest/gtest.h"

namespace postgate::smtp {
namespace {

TEST(ReplyTest, SingleLineWithEnhancedCode) {
  EXPECT_EQ(Reply::Make(250, "2.1.0", "Ok").Format(), "250 2.1.0 Ok\r\n");
  EXPECT_EQ(Reply::Make(451, "4.3.0", "Error: queue file write error").ReplyClass(), "4xx");
}

TEST(ReplyTest, MultiLineUsesDashUntilLast) {
  Reply ehlo{250, {"mail169.com", "PIPELINING", "8BITMIME"}};
  EXPECT_EQ(ehlo.Format(), "250-mail169.com\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
}

}  // namespace
}  // namespace postgate::smtp
