#include "core/config/master_cf.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/config/logical_lines.h"

namespace postgate::config {
namespace {

// Splits on whitespace, keeping "{ … }" groups (Postfix 3.0's way to write a value with spaces)
// as one word without the braces.
absl::StatusOr<std::vector<std::string>> SplitWords(absl::string_view text) {
  std::vector<std::string> words;
  size_t at = 0;
  while (at < text.size()) {
    if (absl::ascii_isspace(static_cast<unsigned char>(text[at]))) {
      ++at;
      continue;
    }
    if (text[at] == '{') {
      const size_t close = text.find('}', at);
      if (close == absl::string_view::npos) return absl::InvalidArgumentError("\"{\" without \"}\"");
      words.emplace_back(absl::StripAsciiWhitespace(text.substr(at + 1, close - at - 1)));
      at = close + 1;
      continue;
    }
    size_t end = at;
    while (end < text.size() && !absl::ascii_isspace(static_cast<unsigned char>(text[end]))) ++end;
    words.emplace_back(text.substr(at, end - at));
    at = end;
  }
  return words;
}

// "port", "host:port", "[host]:port" (IPv6 in brackets).
absl::Status SplitServiceName(absl::string_view name, SmtpService& service) {
  if (absl::StartsWith(name, "[")) {
    const size_t close = name.find("]:");
    if (close == absl::string_view::npos) return absl::InvalidArgumentError("expected [address]:port");
    service.host = std::string(name.substr(1, close - 1));
    service.port = std::string(name.substr(close + 2));
  } else if (const size_t colon = name.rfind(':'); colon != absl::string_view::npos) {
    if (name.find(':') != colon) return absl::InvalidArgumentError("write an IPv6 address as [address]:port");
    service.host = std::string(name.substr(0, colon));
    service.port = std::string(name.substr(colon + 1));
  } else {
    service.port = std::string(name);
  }
  if (service.port.empty()) return absl::InvalidArgumentError("no port");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<SmtpService>> ParseMasterCf(absl::string_view text, absl::string_view filename) {
  absl::StatusOr<std::vector<LogicalLine>> lines = ReadLogicalLines(text, filename);
  if (!lines.ok()) return lines.status();
  std::vector<SmtpService> services;
  for (const LogicalLine& line : *lines) {
    auto error = [&](absl::string_view problem) {
      return absl::InvalidArgumentError(absl::StrCat(filename, ":", line.line, ": ", problem));
    };
    absl::StatusOr<std::vector<std::string>> words = SplitWords(line.text);
    if (!words.ok()) return error(words.status().message());
    if (words->size() < 8) {
      return error("expected: service type private unpriv chroot wakeup maxproc command [arguments]");
    }
    const std::string& name = (*words)[0];
    const std::string& type = (*words)[1];
    if (type == "unix" || type == "fifo" || type == "pass" || type == "unix-dgram") continue;
    if (type != "inet") return error(absl::StrCat("service ", name, ": unknown type \"", type, "\""));
    const std::string& command = (*words)[7];
    if (command != "smtpd") {
      return error(absl::StrCat("service ", name, ": command \"", command,
                                "\" is not supported (Postgate's inet services run smtpd)"));
    }
    SmtpService service;
    service.name = name;
    service.line = line.line;
    if (absl::Status split = SplitServiceName(name, service); !split.ok()) {
      return error(absl::StrCat("service ", name, ": ", split.message()));
    }
    for (size_t i = 8; i < words->size(); ++i) {
      const std::string& argument = (*words)[i];
      std::string assignment;
      if (argument == "-o" && i + 1 < words->size()) {
        assignment = (*words)[++i];
      } else if (absl::StartsWith(argument, "-o") && argument.size() > 2) {
        assignment = argument.substr(2);
      } else {
        return error(absl::StrCat("service ", name, ": unsupported argument \"", argument,
                                  "\" (only -o name=value)"));
      }
      const size_t equals = assignment.find('=');
      if (equals == std::string::npos || equals == 0) {
        return error(absl::StrCat("service ", name, ": -o ", assignment, ": expected name=value"));
      }
      service.overrides.emplace_back(absl::StripAsciiWhitespace(assignment.substr(0, equals)),
                                     absl::StripAsciiWhitespace(assignment.substr(equals + 1)));
    }
    for (const SmtpService& earlier : services) {
      if (earlier.name == service.name) {
        return error(absl::StrCat("service ", name, " is already defined at line ", earlier.line));
      }
    }
    services.push_back(std::move(service));
  }
  return services;
}

}  // namespace postgate::config
