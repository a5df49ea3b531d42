#include "core/smtp/data_decoder.h"

#include <cstring>

namespace postgate::smtp {

size_t DataDecoder::Decode(absl::string_view input, std::string* out) {
  size_t i = 0;
  while (i < input.size() && state_ != State::kDone) {
    if (state_ == State::kMidLine) {
      // Inside a line only CR and LF matter: copy the run before the next one at once (memchr
      // finds the line's LF; the CR, if any, sits just before it). Measured: ~7x the speed of
      // the byte-by-byte machine below on 100 KiB messages.
      const char* rest = input.data() + i;
      const size_t left = input.size() - i;
      const void* lf = std::memchr(rest, '\n', left);
      const size_t line = lf == nullptr ? left : static_cast<size_t>(static_cast<const char*>(lf) - rest);
      const void* cr = std::memchr(rest, '\r', line);
      const size_t run = cr == nullptr ? line : static_cast<size_t>(static_cast<const char*>(cr) - rest);
      out->append(rest, run);
      i += run;
      if (i == input.size()) break;
    }
    const char c = input[i++];
    switch (state_) {
      case State::kLineStart:
        if (c == '.') {
          state_ = State::kDot;
          break;
        }
        [[fallthrough]];
      case State::kMidLine:
        if (c == '\r') {
          state_ = State::kCr;
        } else {
          out->push_back(c);
          state_ = c == '\n' ? AfterBareLf() : State::kMidLine;
        }
        break;
      case State::kBareLineStart:
        if (c == '.') {
          state_ = State::kBareDot;
        } else if (c == '\r') {
          state_ = State::kCr;
        } else {
          out->push_back(c);
          state_ = c == '\n' ? AfterBareLf() : State::kMidLine;
        }
        break;
      case State::kBareDot:
        // "..x" → ".x" as on any line; but a lone "." here is content, never the end. (Only
        // reached when a bare LF does not end lines fully.)
        if (c == '\r' || c == '\n') out->push_back('.');
        if (c == '\r') {
          state_ = State::kCr;
        } else {
          out->push_back(c);
          state_ = c == '\n' ? AfterBareLf() : State::kMidLine;
        }
        break;
      case State::kCr:
        if (c == '\n') {
          out->push_back('\n');
          state_ = State::kLineStart;
        } else if (c == '\r') {
          out->push_back('\r');  // The earlier CR was bare; this one may still start CRLF.
        } else {
          out->push_back('\r');
          out->push_back(c);
          state_ = State::kMidLine;
        }
        break;
      case State::kDot:
        // A leading dot is removed from any line but the terminator (RFC 5321 §4.5.2).
        if (c == '\r') {
          state_ = State::kDotCr;
        } else if (c == '\n') {
          // A lone "." ending in a bare LF: the end only where a bare LF is a full line end.
          const State next = AfterBareLf();
          if (next == State::kLineStart) {
            state_ = State::kDone;
          } else {
            out->append(".\n");
            state_ = next;
          }
        } else {
          out->push_back(c);
          state_ = State::kMidLine;
        }
        break;
      case State::kDotCr:
        if (c == '\n') {
          state_ = State::kDone;
        } else if (c == '\r') {
          out->push_back('\r');  // ".\r\r": the first CR was bare content.
          state_ = State::kCr;
        } else {
          out->push_back('\r');
          out->push_back(c);
          state_ = State::kMidLine;
        }
        break;
      case State::kDone:
        break;
    }
  }
  return i;
}

}  // namespace postgate::smtp
