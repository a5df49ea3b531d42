#include "core/smtp/utf8.h"

#include "gtest/gtest.h"

namespace postgate::smtp {
namespace {

TEST(Utf8Test, ValidAndInvalid) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("pel\xc3\xa9@m\xc3\xa4il.example"));
  EXPECT_TRUE(IsValidUtf8("\xe2\x82\xac \xf0\x9f\x93\xa7"));  // € and 📧
  EXPECT_FALSE(IsValidUtf8("b\xff" "ar"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));               // Truncated.
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));           // Overlong "/".
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));       // Overlong.
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));       // Surrogate U+D800.
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));   // Above U+10FFFF.
  EXPECT_FALSE(IsValidUtf8("\x80"));
  EXPECT_TRUE(IsAscii("bar@mail169.com"));
  EXPECT_FALSE(IsAscii("pel\xc3\xa9"));
}

}  // namespace
}  // namespace postgate::smtp
