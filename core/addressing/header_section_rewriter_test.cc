#include "core/addressing/header_section_rewriter.h"

#include "gtest/gtest.h"

namespace postgate::addressing {
namespace {

// Every split of the input must give the same output.
std::string RewriteAllSplits(absl::string_view content) {
  std::string first;
  for (size_t step = 1; step <= content.size() + 1; ++step) {
    HeaderSectionRewriter rewriter([](absl::string_view field) -> std::optional<std::string> {
      if (field.substr(0, 3) != "To:") return std::nullopt;
      return std::string("To: <rewritten>\n");
    });
    std::string out;
    for (size_t at = 0; at < content.size(); at += step) rewriter.Feed(content.substr(at, step), &out);
    rewriter.Finish(&out);
    if (step == 1) first = out;
    EXPECT_EQ(out, first) << "split every " << step << " bytes";
  }
  return first;
}

TEST(HeaderSectionRewriterTest, WholeFoldedFieldsOfTheHeaderSectionOnly) {
  EXPECT_EQ(RewriteAllSplits("Subject: a\nTo: x@y,\n\tz@w\nCc: c\n\nTo: body@line\n"),
            "Subject: a\nTo: <rewritten>\nCc: c\n\nTo: body@line\n");
  EXPECT_EQ(RewriteAllSplits("To: last-without-newline"), "To: <rewritten>\n");
  EXPECT_EQ(RewriteAllSplits("\nTo: only body\n"), "\nTo: only body\n");
}

}  // namespace
}  // namespace postgate::addressing
