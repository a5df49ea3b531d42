#include "core/smtp/header_body_separator.h"

#include <cstring>

namespace postgate::smtp {
namespace {

bool IsNameCharacter(unsigned char c) { return c > 32 && c < 127 && c != ':'; }
bool IsBlank(char c) { return c == ' ' || c == '\t'; }

}  // namespace

void HeaderBodySeparator::StartBody(std::string* out) {
  out->push_back('\n');
  out->append(held_);
  held_.clear();
  state_ = State::kBody;
}

void HeaderBodySeparator::Feed(absl::string_view content, std::string* out) {
  size_t i = 0;
  while (i < content.size()) {
    const char c = content[i];
    switch (state_) {
      case State::kBody:
        out->append(content.data() + i, content.size() - i);
        return;
      case State::kHeaderLine: {
        const void* end = std::memchr(content.data() + i, '\n', content.size() - i);
        const size_t stop = end == nullptr ? content.size()
                                           : static_cast<size_t>(static_cast<const char*>(end) - content.data()) + 1;
        out->append(content.data() + i, stop - i);
        i = stop;
        if (end != nullptr) {
          state_ = State::kLineStart;
          after_header_ = true;
        }
        continue;
      }
      case State::kLineStart:
        if (c == '\n') {  // The empty line is there already: the body follows as sent.
          state_ = State::kBody;
          continue;
        }
        if (IsBlank(c) && after_header_) {
          state_ = State::kHeaderLine;
          continue;
        }
        if (!IsNameCharacter(static_cast<unsigned char>(c))) {
          StartBody(out);
          continue;
        }
        state_ = State::kName;
        continue;
      case State::kName:
        if (IsNameCharacter(static_cast<unsigned char>(c)) && held_.size() < kMaxHeldName) {
          held_.push_back(c);
          ++i;
          continue;
        }
        if (IsBlank(c) && !held_.empty()) {
          state_ = State::kNameBlanks;
          continue;
        }
        break;  // ':' or not a header.
      case State::kNameBlanks:
        if (IsBlank(c) && held_.size() < kMaxHeldName) {
          held_.push_back(c);
          ++i;
          continue;
        }
        break;
    }
    // kName or kNameBlanks at a character that decides the line.
    if (c == ':' && !held_.empty() && held_.size() < kMaxHeldName) {
      out->append(held_);
      held_.clear();
      state_ = State::kHeaderLine;
      continue;  // The ':' is copied with the rest of the line.
    }
    StartBody(out);
  }
}

void HeaderBodySeparator::Finish(std::string* out) {
  if (!held_.empty()) StartBody(out);
}

}  // namespace postgate::smtp
