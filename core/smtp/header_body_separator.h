// Makes the stored message's header section end with an empty line, as Postfix's cleanup(8)
// does: content whose header section runs into a line that is not a header field (the reference
// netcat session's one line, "MOREAU--THOMAS, …", or "Subject: x" followed by text) gets an empty
// line inserted before that line, so readers do not take it for a header (Python's email reports
// MissingHeaderBodySeparatorDefect; some readers show an empty body). A header line is Postfix's
// is_header(): printable ASCII name characters other than ':', optional blanks, then ':'; lines
// that start with a blank continue the header before them. Unlike Postfix, a blank-led first line
// is body, not a continuation of the Received: header the gateway put in front of the content.
// Pure and incremental: content in LF-line form, fed in any split; holds at most one header name.
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace postgate::smtp {

class HeaderBodySeparator {
 public:
  // Appends `content` to *out, with the empty line inserted where it is missing. Bytes of a line
  // whose kind is not known yet are held back until it is.
  void Feed(absl::string_view content, std::string* out);
  // The content ended: releases what is held (a last line without ':' is not a header).
  void Finish(std::string* out);
  // Past the header section: Feed only copies.
  bool in_body() const { return state_ == State::kBody; }

 private:
  // A name longer than this without ':' is taken for text (RFC 5322 lines are ≤ 998 bytes).
  static constexpr size_t kMaxHeldName = 1000;
  enum class State {
    kLineStart,   // At the start of a line in the header section.
    kName,        // In a possible header name (held).
    kNameBlanks,  // Blanks after the name, before ':' (held; RFC 822 allowed them).
    kHeaderLine,  // In a header field's line, after its ':'.
    kBody,
  };
  // The current line is not a header: the empty line goes before it, and the body begins.
  void StartBody(std::string* out);

  State state_ = State::kLineStart;
  bool after_header_ = false;  // A header field came before: a blank-led line continues it.
  std::string held_;
};

}  // namespace postgate::smtp
