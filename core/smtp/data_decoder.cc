#include "core/smtp/data_decoder.h"

namespace postgate::smtp {

size_t DataDecoder::Decode(absl::string_view input, std::string* out) {
  size_t i = 0;
  while (i < input.size() && state_ != State::kDone) {
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
          state_ = c == '\n' ? State::kBareLineStart : State::kMidLine;
        }
        break;
      case State::kBareLineStart:
        if (c == '.') {
          state_ = State::kBareDot;
        } else if (c == '\r') {
          state_ = State::kCr;
        } else {
          out->push_back(c);
          state_ = c == '\n' ? State::kBareLineStart : State::kMidLine;
        }
        break;
      case State::kBareDot:
        // "..x" → ".x" as on any line; but a lone "." here is content, never the end.
        if (c == '\r' || c == '\n') out->push_back('.');
        if (c == '\r') {
          state_ = State::kCr;
        } else {
          out->push_back(c);
          state_ = c == '\n' ? State::kBareLineStart : State::kMidLine;
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
