// Finds command lines in bytes received from an SMTP client. Lines end in CRLF; a bare LF is also
// accepted so that a person typing into plain `nc` is understood, and reported, so that the
// caller can apply smtpd_forbid_bare_newline. A line longer than the limit is
// reported once as too long and its bytes are dropped as they arrive, so an endless line costs no
// memory. Pure: the caller owns the buffer and the socket. Feed it a byte at a time or all at once.
#pragma once

#include <cstddef>
#include <optional>
#include "absl/strings/string_view.h"

namespace postgate::smtp {

struct CommandLine {
  absl::string_view text;  // Without the line terminator; empty when too_long.
  bool too_long = false;
  bool bare_lf = false;  // Ended in LF without CR before it.
};

class LineReader {
 public:
  explicit LineReader(size_t max_length) : max_length_(max_length) {}

  // Looks at the front of `input`. Sets *consumed to the bytes used (possibly all of them while an
  // overlong line is being dropped) and returns the line if one was completed. The returned view
  // points into `input`.
  std::optional<CommandLine> Next(absl::string_view input, size_t* consumed);

 private:
  size_t max_length_;
  bool dropping_ = false;  // Inside an overlong line, waiting for its end.
};

}  // namespace postgate::smtp
