// Reverse- and forward-path arguments of MAIL and RCPT (RFC 5321 §4.1.2) and their ESMTP
// parameters. Accepts what Postfix accepts with strict_rfc821_envelopes = no: a space after the
// colon and a path without angle brackets. A source route ("@a,@b:user@c") is dropped, as RFC 5321
// §4.1.1.3 tells servers to do, so relay policy sees the real destination. Pure; no policy here.
#pragma once

#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

namespace postgate::smtp {

struct EsmtpParameter {
  std::string text;     // As the client sent it, e.g. "body=9bit" (Postfix echoes it in errors).
  std::string keyword;  // Upper-cased.
  std::string value;    // "" when there was no "=".
  bool has_value = false;
};

struct PathArgument {
  std::string address;  // Without brackets; "" for the null path "<>".
  std::vector<EsmtpParameter> parameters;
};

enum class PathError {
  kNone,
  kMissingPrefix,  // No "FROM:" / "TO:" – Postfix answers "501 5.5.4 Syntax: MAIL FROM:<address>".
  kBadAddress,     // Unbalanced brackets, bad characters, empty local part or domain.
  kBadParameter,   // "KEY=VALUE" pieces that are not ESMTP keywords.
};

struct ParsedPath {
  PathError error = PathError::kNone;
  PathArgument path;
};

// `argument` is what follows the verb, e.g. "FROM:<a@b> SIZE=10"; `prefix` is "FROM:" or "TO:".
ParsedPath ParsePathArgument(absl::string_view argument, absl::string_view prefix);

// True for "local@domain" (dot-atom or quoted local part; host name or address literal) and for a
// bare local part (which the caller qualifies with $myorigin, as Postfix does).
bool IsValidMailbox(absl::string_view address);

// A host name (letter-digit-hyphen labels; UTF-8 allowed) or an address literal "[…]".
bool IsValidDomain(absl::string_view domain);

struct MailboxParts {
  std::string local_part;
  std::string domain;  // "" when the address had none.
};
// Splits at the last '@' outside a quoted local part.
MailboxParts SplitMailbox(absl::string_view address);

}  // namespace postgate::smtp
