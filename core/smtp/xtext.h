// xtext (RFC 3461 §4): the encoding of ENVID and ORCPT values. "+XX" (two upper-case hex digits)
// stands for one byte; every other character must be printable ASCII other than "+" and "=".
// Pure.
#pragma once

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace postgate::smtp {

// The decoded text, or nullopt when `xtext` is malformed.
std::optional<std::string> DecodeXtext(absl::string_view xtext);
std::string EncodeXtext(absl::string_view text);

}  // namespace postgate::smtp
