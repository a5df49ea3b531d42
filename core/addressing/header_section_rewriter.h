// Rewrites the fields of a stored message's top-level header section as the message streams by,
// in pieces that may split lines anywhere (smtp_generic_maps on the way out: the SMTP client
// never holds a whole message). Only complete header fields (with their folded lines) are
// offered; the body and the empty line pass untouched. Memory: one header field.
// Pure.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace postgate::addressing {

class HeaderSectionRewriter {
 public:
  // Returns the field's replacement (same shape: "Name: value\n", folds as it likes), or nullopt.
  using FieldRewrite = std::function<std::optional<std::string>(absl::string_view field)>;
  explicit HeaderSectionRewriter(FieldRewrite rewrite) : rewrite_(std::move(rewrite)) {}

  // Appends what can be passed on of `piece` to *out.
  void Feed(absl::string_view piece, std::string* out);
  // The content ended: what is held back (a last field without a line end) goes out.
  void Finish(std::string* out);

 private:
  void EndField(std::string* out);

  FieldRewrite rewrite_;
  bool in_body_ = false;
  bool at_line_start_ = true;
  std::string field_;  // The field being read, complete lines only once a new line starts.
};

}  // namespace postgate::addressing
