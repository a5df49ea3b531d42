#include "console/web/text.h"

#include "gtest/gtest.h"

namespace postgate::console {
namespace {

TEST(TextTest, HtmlEscapesEveryCharacterThatCanOpenMarkupOrEndAnAttribute) {
  EXPECT_EQ(Html("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;");
  EXPECT_EQ(Html("plain text é"), "plain text é");
}

TEST(TextTest, JsonStringIsInertInHtmlAndValidJson) {
  EXPECT_EQ(JsonString("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
  EXPECT_EQ(JsonString("</script>&"), "\"\\u003c/script\\u003e\\u0026\"");
  EXPECT_EQ(JsonString("é \xE2\x80\xA8"), "\"é \\u2028\"");
  // Invalid UTF-8 (a lone continuation byte, a truncated sequence, an overlong '/') is replaced.
  EXPECT_EQ(JsonString("x\x80y\xC3"), "\"x\\ufffdy\\ufffd\"");
  EXPECT_EQ(JsonString("\xC0\xAF"), "\"\\ufffd\\ufffd\"");
}

TEST(TextTest, UrlEncodingRoundTripsAndFormsDecodePlusAsSpace) {
  const std::string odd = "a b&c=d/é?%";
  EXPECT_EQ(UrlEncode(odd), "a%20b%26c%3Dd%2F%C3%A9%3F%25");
  EXPECT_EQ(UrlDecode(UrlEncode(odd)), odd);
  EXPECT_EQ(UrlDecode("x+y%2"), "x y%2");  // A cut escape stays as it is.
  auto form = ParseForm("state=deferred&recipient=%40example.org&sender=&state=hold&flag");
  EXPECT_EQ(form["state"], "deferred");  // The first of a repeated name.
  EXPECT_EQ(form["recipient"], "@example.org");
  EXPECT_EQ(form["sender"], "");
  EXPECT_TRUE(form.count("flag"));
}

TEST(TextTest, CookiesSplitOnSemicolons) {
  auto cookies = ParseCookies("a=1; postgate_console=abc; b=; =x; a=2");
  EXPECT_EQ(cookies["a"], "1");
  EXPECT_EQ(cookies["postgate_console"], "abc");
  EXPECT_EQ(cookies["b"], "");
  EXPECT_EQ(cookies.count(""), 0u);
}

}  // namespace
}  // namespace postgate::console
