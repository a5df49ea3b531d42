#include "core/addressing/header_section_rewriter.h"

#include "absl/strings/str_cat.h"

namespace postgate::addressing {

void HeaderSectionRewriter::EndField(std::string* out) {
  if (field_.empty()) return;
  if (std::optional<std::string> replaced = rewrite_(field_)) {
    out->append(*replaced);
  } else {
    out->append(field_);
  }
  field_.clear();
}

void HeaderSectionRewriter::Feed(absl::string_view piece, std::string* out) {
  size_t i = 0;
  while (i < piece.size() && !in_body_) {
    if (at_line_start_) {
      const char c = piece[i];
      if (c == ' ' || c == '\t') {
        at_line_start_ = false;  // A folded line: the field goes on.
      } else {
        EndField(out);
        if (c == '\n' || c == '\r') {  // The empty line (stored content is LF; CRLF tolerated).
          in_body_ = true;
          break;
        }
        // A new field (stored content has well-formed header sections: cleanup made them).
        at_line_start_ = false;
      }
    }
    const size_t newline = piece.find('\n', i);
    const size_t end = newline == absl::string_view::npos ? piece.size() : newline + 1;
    absl::StrAppend(&field_, piece.substr(i, end - i));
    if (newline != absl::string_view::npos) at_line_start_ = true;
    i = end;
  }
  if (i < piece.size()) absl::StrAppend(out, piece.substr(i));
}

void HeaderSectionRewriter::Finish(std::string* out) {
  if (!in_body_) EndField(out);
}

}  // namespace postgate::addressing
