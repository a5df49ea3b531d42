#include "core/config/logical_lines.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace postgate::config {

absl::StatusOr<std::vector<LogicalLine>> ReadLogicalLines(absl::string_view text,
                                                         absl::string_view filename) {
  std::vector<LogicalLine> logical;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    absl::string_view stripped = absl::StripLeadingAsciiWhitespace(line);
    if (stripped.empty() || stripped.front() == '#') continue;
    if (stripped.size() != line.size()) {  // Starts with whitespace: a continuation.
      if (logical.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(filename, ":", line_number, ": continuation line without a parameter"));
      }
      absl::StrAppend(&logical.back().text, " ", absl::StripAsciiWhitespace(stripped));
      continue;
    }
    logical.push_back({std::string(absl::StripTrailingAsciiWhitespace(line)), line_number});
  }
  return logical;
}

}  // namespace postgate::config
