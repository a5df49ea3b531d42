#include "core/smtp/xtext.h"

#include "gtest/gtest.h"

namespace postgate::smtp {
namespace {

TEST(XtextTest, DecodeAndEncode) {
  EXPECT_EQ(DecodeXtext("env+2B1"), "env+1");
  EXPECT_EQ(DecodeXtext("rfc822;bar+2Btag@mail169.com"), "rfc822;bar+tag@mail169.com");
  EXPECT_EQ(DecodeXtext(""), "");
  EXPECT_FALSE(DecodeXtext("ab+ZZ").has_value());
  EXPECT_FALSE(DecodeXtext("ab+2").has_value());
  EXPECT_FALSE(DecodeXtext("ab+2b").has_value());  // Hex must be upper case.
  EXPECT_FALSE(DecodeXtext("a=b").has_value());
  EXPECT_FALSE(DecodeXtext("a b").has_value());
  EXPECT_FALSE(DecodeXtext("a\x01" "b").has_value());
  EXPECT_EQ(EncodeXtext("a+b=c d"), "a+2Bb+3Dc+20d");
  EXPECT_EQ(DecodeXtext(EncodeXtext("x+y=z")), "x+y=z");
}

}  // namespace
}  // namespace postgate::smtp
