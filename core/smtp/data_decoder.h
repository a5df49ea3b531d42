// Decodes the DATA phase (RFC 5321 §4.1.1.4, §4.5.2): removes dot-stuffing, turns CRLF into the
// LF line ends the queue stores, and finds the end of the message.
//
// By default (Postfix's smtpd_forbid_bare_newline = normalize) the end is only CRLF "." CRLF (or
// "." CRLF as the very first line): "\n.\n", "\r.\r", "\n.\r\n" and "\r\n.\n" are content, so one
// message can never smuggle a second one past a stricter peer. A bare LF ends a content line
// (stored as a line end, a leading dot after it unstuffed) but never an end-of-data line: a lone
// dot next to a bare LF is kept as the content line "." (Postfix drops that line; either way the
// message goes on). A bare CR is content.
//
// EndOfData::kAnyLineEnd is Postfix's "no" (for clients in smtpd_forbid_bare_newline_exclusions):
// a bare LF is a line end in every respect, so "\n.\n", "\n.\r\n" and "\r\n.\n" end the message.
//
// Pure and incremental: feed any split of the input; state is a few bytes.
#pragma once

#include <cstddef>
#include <string>
#include "absl/strings/string_view.h"

namespace postgate::smtp {

class DataDecoder {
 public:
  enum class EndOfData { kCrLfOnly, kAnyLineEnd };

  explicit DataDecoder(EndOfData end_of_data = EndOfData::kCrLfOnly)
      : bare_lf_ends_lines_fully_(end_of_data == EndOfData::kAnyLineEnd) {}

  // Appends decoded content to *out and returns how many bytes of `input` were used. Stops right
  // after the end-of-data line, so bytes a client pipelined after it stay with the caller.
  size_t Decode(absl::string_view input, std::string* out);

  bool done() const { return state_ == State::kDone; }
  // Between content lines (nothing of the current line seen yet).
  bool at_line_start() const { return state_ == State::kLineStart || state_ == State::kBareLineStart; }
  // A line (the end-of-data line included) ended in LF without CR.
  bool saw_bare_lf() const { return saw_bare_lf_; }

 private:
  enum class State {
    kLineStart,      // Start of the message or just after CRLF.
    kBareLineStart,  // Just after a bare LF: a new line, but never the end-of-data line.
    kBareDot,        // Saw "." just after a bare LF.
    kMidLine,
    kCr,         // Saw CR in a line; not yet known whether CRLF follows.
    kDot,        // Saw "." at a line start.
    kDotCr,      // Saw "." CR at a line start.
    kDone,
  };
  // The state after a content line that ended in a bare LF.
  State AfterBareLf() {
    saw_bare_lf_ = true;
    return bare_lf_ends_lines_fully_ ? State::kLineStart : State::kBareLineStart;
  }

  const bool bare_lf_ends_lines_fully_;
  State state_ = State::kLineStart;
  bool saw_bare_lf_ = false;
};

}  // namespace postgate::smtp
