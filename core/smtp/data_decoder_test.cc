#include "core/smtp/data_decoder.h"

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace postgate::smtp {
namespace {

struct Decoded {
  std::string content;
  bool done = false;
  size_t consumed = 0;
  bool saw_bare_lf = false;
};

// Feeds `input` `step` bytes at a time, the way a socket may split it.
Decoded DecodeInSteps(absl::string_view input, size_t step,
                      DataDecoder::EndOfData end_of_data = DataDecoder::EndOfData::kCrLfOnly) {
  DataDecoder decoder(end_of_data);
  Decoded result;
  for (size_t i = 0; i < input.size() && !decoder.done(); i += step) {
    absl::string_view piece = input.substr(i, step);
    size_t used = decoder.Decode(piece, &result.content);
    result.consumed += used;
    if (used < piece.size()) break;
  }
  result.done = decoder.done();
  result.saw_bare_lf = decoder.saw_bare_lf();
  return result;
}

class DataDecoderTest : public ::testing::TestWithParam<size_t> {};

TEST_P(DataDecoderTest, ReferenceMessage) {
  Decoded d = DecodeInSteps("MOREAU--THOMAS, MARY, alphacassiopeabetagruis, 169\r\n.\r\nQUIT\r\n",
                            GetParam());
  EXPECT_TRUE(d.done);
  EXPECT_EQ(d.content, "MOREAU--THOMAS, MARY, alphacassiopeabetagruis, 169\n");
  EXPECT_EQ(d.consumed, 55u);  // Stops before the pipelined QUIT.
}

TEST_P(DataDecoderTest, DotUnstuffing) {
  Decoded d = DecodeInSteps("..leading\r\n...\r\n.x\r\nend.\r\n.\r\n", GetParam());
  EXPECT_TRUE(d.done);
  EXPECT_EQ(d.content, ".leading\n..\nx\nend.\n");
}

TEST_P(DataDecoderTest, EmptyMessage) {
  Decoded d = DecodeInSteps(".\r\n", GetParam());
  EXPECT_TRUE(d.done);
  EXPECT_EQ(d.content, "");
}

TEST_P(DataDecoderTest, OnlyCrLfDotCrLfEndsTheMessage) {
  // Each of these must stay content; the real end comes after.
  for (absl::string_view fake : {"a\n.\nb", "a\r.\rb", "a\n.\r\nb", "a\r\n.\nb", "a\r.\r\nb"}) {
    std::string input = std::string(fake) + "\r\n.\r\n";
    Decoded d = DecodeInSteps(input, GetParam());
    EXPECT_TRUE(d.done) << fake;
    EXPECT_EQ(d.consumed, input.size()) << fake;
    EXPECT_NE(d.content.find('b'), std::string::npos) << fake;
  }
}

TEST_P(DataDecoderTest, BareCrAndLfAreKept) {
  Decoded d = DecodeInSteps("a\rb\nc\r\r\nd\r\n.\r\n", GetParam());
  EXPECT_EQ(d.content, "a\rb\nc\r\nd\n");
}

TEST_P(DataDecoderTest, BareLfStartsALineButNeverTheEnd) {
  // As Postfix 3.7 with smtpd_forbid_bare_newline = normalize: "..B" after a bare LF is ".B".
  EXPECT_EQ(DecodeInSteps("A\n..B\n.C\r\n.\r\n", GetParam()).content, "A\n.B\nC\n");
  // Unlike it, a lone dot before or after a bare LF is content, whatever follows.
  for (absl::string_view fake : {"A\n.\r\nD\r\n.\r\n", "A\n.\nD\r\n.\r\n", "A\n\n.\r\nD\r\n.\r\n",
                                 "A\r\n.\nD\r\n.\r\n", ".\nD\r\n.\r\n"}) {
    Decoded d = DecodeInSteps(fake, GetParam());
    EXPECT_TRUE(d.done) << fake;
    EXPECT_NE(d.content.find(".\nD\n"), std::string::npos) << fake;
    EXPECT_TRUE(d.saw_bare_lf) << fake;
  }
}

TEST_P(DataDecoderTest, NotesBareLfOnlyWhereALineEndsInOne) {
  EXPECT_FALSE(DecodeInSteps("a\r\nb\rc\r\n\r\n..d\r\n.\r\n", GetParam()).saw_bare_lf);
  EXPECT_TRUE(DecodeInSteps("a\nb\r\n.\r\n", GetParam()).saw_bare_lf);
  EXPECT_TRUE(DecodeInSteps("a\r\r\n\n.\r\n", GetParam()).saw_bare_lf);
}

// smtpd_forbid_bare_newline = no (a client in its exclusions): a bare LF is a line end in every
// respect, so a dot line next to one ends the message, and what follows is the client's next command.
TEST_P(DataDecoderTest, WhereBareLfEndsLinesFullyADotLineWithOneEndsTheMessage) {
  for (absl::string_view end : {"\n.\n", "\n.\r\n", "\r\n.\n"}) {
    const std::string input = absl::StrCat("A\n..B", end, "QUIT\r\n");
    Decoded d = DecodeInSteps(input, GetParam(), DataDecoder::EndOfData::kAnyLineEnd);
    EXPECT_TRUE(d.done) << absl::CEscape(end);
    EXPECT_EQ(d.content, "A\n.B\n") << absl::CEscape(end);
    EXPECT_EQ(d.consumed, input.size() - 6) << absl::CEscape(end);
  }
  Decoded first_line = DecodeInSteps(".\nQUIT\n", GetParam(), DataDecoder::EndOfData::kAnyLineEnd);
  EXPECT_TRUE(first_line.done);
  EXPECT_EQ(first_line.content, "");
  // A bare CR still ends nothing.
  Decoded cr = DecodeInSteps("A\r.\rB\r\n.\r\n", GetParam(), DataDecoder::EndOfData::kAnyLineEnd);
  EXPECT_EQ(cr.content, "A\r.\rB\n");
}

TEST_P(DataDecoderTest, NotDoneWithoutTerminator) {
  Decoded d = DecodeInSteps("line\r\n.", GetParam());
  EXPECT_FALSE(d.done);
  EXPECT_EQ(d.content, "line\n");
}

INSTANTIATE_TEST_SUITE_P(Splits, DataDecoderTest, ::testing::Values(1, 2, 3, 5, 1024));

}  // namespace
}  // namespace postgate::smtp
