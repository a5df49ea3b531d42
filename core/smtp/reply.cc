#include "core/smtp/reply.h"

#include "absl/strings/str_cat.h"

namespace postgate::smtp {

Reply Reply::Make(int code, absl::string_view enhanced, absl::string_view text) {
  return Reply{code, {absl::StrCat(enhanced, " ", text)}};
}

Reply Reply::Plain(int code, absl::string_view text) { return Reply{code, {std::string(text)}}; }

std::string Reply::ReplyClass() const { return absl::StrCat(code / 100, "xx"); }

void Reply::AppendTo(std::string* out) const {
  for (size_t i = 0; i < lines.size(); ++i) {
    absl::StrAppend(out, code, i + 1 < lines.size() ? "-" : " ", lines[i], "\r\n");
  }
  if (lines.empty()) absl::StrAppend(out, code, "\r\n");
}

std::string Reply::Format() const {
  std::string out;
  AppendTo(&out);
  return out;
}

}  // namespace postgate::smtp
