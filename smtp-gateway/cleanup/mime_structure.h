// Where a message body's lines fall in its MIME structure (RFC 2045, RFC 2046), as Postfix's
// mime_state follows it for mime_header_checks and nested_header_checks: the header section of each
// part of a multipart body (nested multiparts included) and of an attached message
// (message/rfc822, and the parts of a multipart/digest, whose default type that is). The caller
// reads lines and header fields; this says what they are. At most kMaxNesting levels are
// followed (Postfix's mime_nesting_limit); deeper parts are body text. Pure.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace postgate::gateway::cleanup {

class MimeStructure {
 public:
  static constexpr size_t kMaxNesting = 100;
  // Whose headers the current header section holds: a multipart's part (every header goes to
  // mime_header_checks) or an attached message (its MIME headers to mime_header_checks, the
  // others to nested_header_checks).
  enum class HeaderClass { kPart, kAttachedMessage };

  // The top-level Content-Type value ("" when there is none). False when the body has no
  // structure to follow (neither multipart/* with a boundary nor message/rfc822).
  bool Start(absl::string_view content_type);

  bool in_headers() const { return in_headers_; }
  HeaderClass header_class() const { return class_; }
  // A header field of the current header section (folded lines joined by LF).
  void HeaderField(absl::string_view field);
  // The empty line that ends the current header section.
  void EndOfHeaders();
  // Whether `line` (without its line end), outside a header section, is a boundary of an open
  // multipart ("--b" or "--b--").
  bool IsBoundary(absl::string_view line) const;
  // A complete line outside header sections: a boundary starts a part's header section, or
  // closes its multipart.
  void BodyLine(absl::string_view line);

 private:
  struct Level {
    std::string boundary;
    bool digest = false;  // multipart/digest: parts are message/rfc822 unless they say otherwise.
  };
  // The level `line` is a boundary of (index into levels_) and whether it closes it; -1: none.
  int BoundaryLevel(absl::string_view line, bool* closing) const;
  // Opens what a header section's (or the top level's) Content-Type announces.
  void Enter(absl::string_view content_type, bool digest_default);

  std::vector<Level> levels_;
  bool in_headers_ = false;
  HeaderClass class_ = HeaderClass::kPart;
  std::string content_type_;  // Of the header section being read.
  bool digest_default_ = false;
};

// Content-Type's media type ("multipart/mixed", lower case) and boundary parameter ("" if none).
struct ContentType {
  std::string media_type;
  std::string boundary;
};
ContentType ParseContentType(absl::string_view value);

}  // namespace postgate::gateway::cleanup
