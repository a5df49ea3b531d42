// UTF-8 checks for SMTPUTF8 (RFC 6531): well-formed per RFC 3629 (no overlongs, no surrogates,
// nothing above U+10FFFF). Pure.
#pragma once

#include "absl/strings/string_view.h"

namespace postgate::smtp {

bool IsAscii(absl::string_view text);
bool IsValidUtf8(absl::string_view text);

}  // namespace postgate::smtp
