#include "core/smtp/line_reader.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace postgate::smtp {
namespace {

// Feeds `input` in pieces of `step` bytes, as a socket might deliver it, and collects lines.
std::vector<std::string> Lines(absl::string_view input, size_t step, size_t max = 64) {
  LineReader reader(max);
  std::string buffer;
  std::vector<std::string> lines;
  for (size_t i = 0; i < input.size(); i += step) {
    buffer.append(std::string(input.substr(i, step)));
    for (;;) {
      size_t consumed = 0;
      std::optional<CommandLine> line = reader.Next(buffer, &consumed);
      if (line) lines.push_back(line->too_long ? "<too long>" : std::string(line->text));
      buffer.erase(0, consumed);
      if (!line) break;
    }
  }
  return lines;
}

TEST(LineReaderTest, CrLfAndBareLfAtAnyChunking) {
  const std::string input = "EHLO a\r\nMAIL FROM:<x>\nQUIT\r\n";
  for (size_t step : {1u, 2u, 3u, 7u, 100u}) {
    EXPECT_EQ(Lines(input, step), (std::vector<std::string>{"EHLO a", "MAIL FROM:<x>", "QUIT"}))
        << "step " << step;
  }
}

TEST(LineReaderTest, ReportsWhichLinesEndInABareLf) {
  LineReader reader(64);
  size_t consumed = 0;
  EXPECT_FALSE(reader.Next("EHLO a\r\n", &consumed)->bare_lf);
  EXPECT_TRUE(reader.Next("EHLO a\n", &consumed)->bare_lf);
  EXPECT_TRUE(reader.Next("\n", &consumed)->bare_lf);
  EXPECT_FALSE(reader.Next("\r\n", &consumed)->bare_lf);
  std::optional<CommandLine> cr_inside = reader.Next("NOOP\rx\n", &consumed);
  EXPECT_TRUE(cr_inside->bare_lf);
  EXPECT_EQ(cr_inside->text, "NOOP\rx");
}

TEST(LineReaderTest, IncompleteLineWaits) {
  LineReader reader(64);
  size_t consumed = 99;
  EXPECT_FALSE(reader.Next("NOOP", &consumed).has_value());
  EXPECT_EQ(consumed, 0u);
}

TEST(LineReaderTest, OverlongLineIsDroppedOnceWithoutBuffering) {
  std::string input = std::string(1000, 'A') + "\r\nNOOP\r\n";
  for (size_t step : {1u, 10u, 1000u}) {
    EXPECT_EQ(Lines(input, step, 64), (std::vector<std::string>{"<too long>", "NOOP"}));
  }
}

}  // namespace
}  // namespace postgate::smtp
