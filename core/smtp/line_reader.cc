#include "core/smtp/line_reader.h"

namespace postgate::smtp {

std::optional<CommandLine> LineReader::Next(absl::string_view input, size_t* consumed) {
  size_t newline = input.find('\n');
  if (newline == absl::string_view::npos) {
    if (dropping_ || input.size() > max_length_) {
      dropping_ = true;
      *consumed = input.size();
    } else {
      *consumed = 0;
    }
    return std::nullopt;
  }
  *consumed = newline + 1;
  absl::string_view line = input.substr(0, newline);
  const bool bare_lf = line.empty() || line.back() != '\r';
  if (!bare_lf) line.remove_suffix(1);
  if (dropping_ || line.size() > max_length_) {
    dropping_ = false;
    return CommandLine{{}, true, bare_lf};
  }
  return CommandLine{line, false, bare_lf};
}

}  // namespace postgate::smtp
