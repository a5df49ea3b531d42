// Splits an SMTP command line into verb and argument (RFC 5321 §4.1). Verbs are case-insensitive.
// Does not judge whether the command is allowed now: that is the session state machine's job.
#pragma once

#include "absl/strings/string_view.h"

namespace postgate::smtp {

enum class Verb {
  kHelo, kEhlo, kMail, kRcpt, kData, kRset, kNoop, kQuit, kHelp, kVrfy, kBdat, kEtrn, kStarttls, kAuth,
  kUnknown,  // Anything else, including an empty line.
};

struct Command {
  Verb verb = Verb::kUnknown;
  absl::string_view verb_text;  // As sent, e.g. "ehlo".
  absl::string_view argument;   // After the verb, surrounding spaces removed.
};

// `line` has no line terminator.
Command ParseCommand(absl::string_view line);

// Upper-case name for logs and metric labels ("EHLO"); "UNKNOWN" for kUnknown.
absl::string_view VerbName(Verb verb);

}  // namespace postgate::smtp
