// An SMTP reply (RFC 5321 §4.2) and its wire form. Replies carry RFC 3463 enhanced status codes
// where Postfix sends them; multi-line replies (EHLO, HELP) hold one text per line.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace postgate::smtp {

struct Reply {
  int code = 0;
  std::vector<std::string> lines;  // Each line's text after "NNN-" / "NNN ", enhanced code included.

  // Single line "code enhanced text", e.g. Make(250, "2.1.0", "Ok").
  static Reply Make(int code, absl::string_view enhanced, absl::string_view text);
  // Single line without an enhanced code (greeting, HELO).
  static Reply Plain(int code, absl::string_view text);

  bool IsPositive() const { return code >= 200 && code < 400; }
  // "2xx", "4xx", "5xx" – the label metrics use.
  std::string ReplyClass() const;
  // Wire form, every line ending in CRLF.
  std::string Format() const;
  void AppendTo(std::string* out) const;
};

}  // namespace postgate::smtp
