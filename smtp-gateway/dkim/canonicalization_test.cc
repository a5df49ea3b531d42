#include "smtp-gateway/dkim/canonicalization.h"

#include "gtest/gtest.h"

namespace postgate::gateway::dkim {
namespace {

std::string Body(absl::string_view content, bool relaxed) {
  // Every split must give the same.
  std::string first;
  for (size_t step = 1; step <= content.size() + 1; ++step) {
    BodyCanonicalizer canonicalizer(relaxed);
    std::string out;
    for (size_t at = 0; at < content.size(); at += step) canonicalizer.Feed(content.substr(at, step), &out);
    canonicalizer.Finish(&out);
    if (step == 1) first = out;
    EXPECT_EQ(out, first) << "split every " << step;
  }
  return first;
}

// RFC 6376 §3.4.5's example, and the edge cases of §3.4.3/§3.4.4.
TEST(CanonicalizationTest, TheRfcExampleAndEmptyBodies) {
  const std::string body = " C \n D \t E\n\n\n";
  EXPECT_EQ(Body(body, false), " C \r\n D \t E\r\n");
  EXPECT_EQ(Body(body, true), " C\r\n D E\r\n");
  EXPECT_EQ(Body("", false), "\r\n");
  EXPECT_EQ(Body("", true), "");
  EXPECT_EQ(Body("\n\n", false), "\r\n");
  EXPECT_EQ(Body(" \n\t\n", true), "");
  EXPECT_EQ(Body(" \n\t\n", false), " \r\n\t\r\n");
  EXPECT_EQ(Body("last", false), "last\r\n");
  EXPECT_EQ(Body("a\n\nb", true), "a\r\n\r\nb\r\n");
}

TEST(CanonicalizationTest, HeadersRelaxedAndSimple) {
  EXPECT_EQ(CanonicalHeader("A: X", true), "a:X\r\n");
  EXPECT_EQ(CanonicalHeader("B : Y\t\n Z  ", true), "b:Y Z\r\n");
  EXPECT_EQ(CanonicalHeader("B : Y\t\n Z  ", false), "B : Y\t\r\n Z  \r\n");
}

}  // namespace
}  // namespace postgate::gateway::dkim
