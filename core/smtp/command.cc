#include "core/smtp/command.h"

#include <array>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace postgate::smtp {
namespace {

constexpr std::array<std::pair<absl::string_view, Verb>, 14> kVerbs = {{
    {"HELO", Verb::kHelo}, {"EHLO", Verb::kEhlo}, {"MAIL", Verb::kMail}, {"RCPT", Verb::kRcpt},
    {"DATA", Verb::kData}, {"RSET", Verb::kRset}, {"NOOP", Verb::kNoop}, {"QUIT", Verb::kQuit},
    {"HELP", Verb::kHelp}, {"VRFY", Verb::kVrfy}, {"BDAT", Verb::kBdat}, {"ETRN", Verb::kEtrn},
    {"STARTTLS", Verb::kStarttls}, {"AUTH", Verb::kAuth},
}};

}  // namespace

Command ParseCommand(absl::string_view line) {
  line = absl::StripAsciiWhitespace(line);
  size_t space = line.find_first_of(" \t");
  Command command;
  command.verb_text = line.substr(0, space);
  command.argument =
      space == absl::string_view::npos ? absl::string_view() : absl::StripAsciiWhitespace(line.substr(space));
  for (const auto& [name, verb] : kVerbs) {
    if (absl::EqualsIgnoreCase(command.verb_text, name)) {
      command.verb = verb;
      break;
    }
  }
  return command;
}

absl::string_view VerbName(Verb verb) {
  for (const auto& [name, candidate] : kVerbs) {
    if (candidate == verb) return name;
  }
  return "UNKNOWN";
}

}  // namespace postgate::smtp
