#include "core/smtp/line_endings.h"

#include "gtest/gtest.h"

namespace postgate::smtp {
namespace {

std::string ConvertInSteps(absl::string_view input, size_t step) {
  CrlfToLf converter;
  std::string out;
  for (size_t i = 0; i < input.size(); i += step) converter.Convert(input.substr(i, step), &out);
  converter.Finish(&out);
  EXPECT_EQ(converter.output_size(), out.size());
  return out;
}

TEST(CrlfToLfTest, AnySplit) {
  for (size_t step : {1u, 2u, 3u, 100u}) {
    EXPECT_EQ(ConvertInSteps("Subject: x\r\n\r\n.dot stays\r\nbare\rcr\nbare lf\r\n", step),
              "Subject: x\n\n.dot stays\nbare\rcr\nbare lf\n")
        << step;
    EXPECT_EQ(ConvertInSteps("no final newline", step), "no final newline\n");
    EXPECT_EQ(ConvertInSteps("ends in cr\r", step), "ends in cr\r\n");
    EXPECT_EQ(ConvertInSteps("", step), "");
  }
}

TEST(CrlfToLfTest, NotesABareLfEvenAcrossChunks) {
  const auto saw_bare_lf = [](std::initializer_list<absl::string_view> chunks) {
    CrlfToLf converter;
    std::string out;
    for (absl::string_view chunk : chunks) converter.Convert(chunk, &out);
    return converter.saw_bare_lf();
  };
  EXPECT_FALSE(saw_bare_lf({"a\r\nb\r\n"}));
  EXPECT_FALSE(saw_bare_lf({"a\r", "\nb\r\n"}));  // The CRLF split between two BDAT chunks.
  EXPECT_FALSE(saw_bare_lf({"bare\rcr\r\n"}));
  EXPECT_TRUE(saw_bare_lf({"a\nb\r\n"}));
  EXPECT_TRUE(saw_bare_lf({"a\r\n", "\n"}));
  EXPECT_TRUE(saw_bare_lf({"a\r\r", "x\n"}));
}

}  // namespace
}  // namespace postgate::smtp
