// The line discipline Postfix's table and main.cf files share: "#" comment lines and blank lines
// are skipped, and a line that starts with whitespace continues the previous one. Pure.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace postgate::config {

struct LogicalLine {
  std::string text;  // Continuations joined with one space; surrounding whitespace removed.
  int line = 0;      // Where it began (1-based), for file:line errors.
};

// Errors (naming `filename` and the line) when the first logical line is a continuation.
absl::StatusOr<std::vector<LogicalLine>> ReadLogicalLines(absl::string_view text,
                                                         absl::string_view filename);

}  // namespace postgate::config
