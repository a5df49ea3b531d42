#include "smtp-gateway/dkim/canonicalization.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace postgate::gateway::dkim {
namespace {

bool IsWsp(char c) { return c == ' ' || c == '\t'; }

}  // namespace

std::string CanonicalHeader(absl::string_view field, bool relaxed) {
  if (!relaxed) {
    std::string out;
    for (char c : field) {
      if (c == '\n') out.push_back('\r');
      out.push_back(c);
    }
    return absl::StrCat(out, "\r\n");
  }
  const size_t colon = field.find(':');
  absl::string_view name = field.substr(0, colon);
  while (!name.empty() && IsWsp(name.back())) name.remove_suffix(1);
  std::string out = absl::AsciiStrToLower(name);
  out.push_back(':');
  // The value unfolded, each run of WSP one space, none at either end.
  bool space = false;
  bool text = false;
  for (char c : colon == absl::string_view::npos ? absl::string_view() : field.substr(colon + 1)) {
    if (c == '\r' || c == '\n') continue;
    if (IsWsp(c)) {
      space = true;
      continue;
    }
    if (space && text) out.push_back(' ');
    space = false;
    text = true;
    out.push_back(c);
  }
  out.append("\r\n");
  return out;
}

void BodyCanonicalizer::StartText(std::string* out) {
  for (; empty_lines_ > 0; --empty_lines_) out->append("\r\n");
}

void BodyCanonicalizer::Feed(absl::string_view piece, std::string* out) {
  for (char c : piece) {
    if (c == '\n') {
      if (line_has_text_) {
        out->append("\r\n");
        anything_ = true;
      } else {
        ++empty_lines_;  // Relaxed: a line of blanks only is empty once they are dropped.
      }
      line_has_text_ = false;
      pending_space_ = false;
      continue;
    }
    if (relaxed_ && IsWsp(c)) {
      pending_space_ = true;
      continue;
    }
    if (!line_has_text_) StartText(out);
    if (pending_space_) out->push_back(' ');
    pending_space_ = false;
    line_has_text_ = true;
    out->push_back(c);
  }
}

void BodyCanonicalizer::Finish(std::string* out) {
  if (line_has_text_) {  // A last line without its line end gets one.
    out->append("\r\n");
    anything_ = true;
  }
  line_has_text_ = false;
  // An empty body: simple hashes one CRLF, relaxed nothing.
  if (!anything_ && !relaxed_) out->append("\r\n");
}

}  // namespace postgate::gateway::dkim
