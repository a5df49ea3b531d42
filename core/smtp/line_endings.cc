#include "core/smtp/line_endings.h"

namespace postgate::smtp {

void CrlfToLf::Convert(absl::string_view input, std::string* out) {
  const size_t before = out->size();
  out->reserve(before + input.size() + 1);
  for (char c : input) {
    if (pending_cr_) {
      pending_cr_ = false;
      if (c == '\n') {
        out->push_back('\n');
        continue;
      }
      out->push_back('\r');
    }
    if (c == '\r') {
      pending_cr_ = true;
    } else {
      if (c == '\n') saw_bare_lf_ = true;
      out->push_back(c);
    }
  }
  if (!input.empty()) {
    empty_ = false;
    ends_with_newline_ = !pending_cr_ && input.back() == '\n';
  }
  output_size_ += out->size() - before;
}

void CrlfToLf::Finish(std::string* out) {
  const size_t before = out->size();
  if (pending_cr_) {
    out->push_back('\r');
    pending_cr_ = false;
  }
  if (!empty_ && !ends_with_newline_) out->push_back('\n');
  ends_with_newline_ = true;
  output_size_ += out->size() - before;
}

}  // namespace postgate::smtp
