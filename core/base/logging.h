// Log lines in Postfix's shape, so pflogsumm, grep habits and log pipelines keep working:
//   2026-11-26T17:19:09.123+00:00 mail169.com postgate/smtpd[1234]: 4F1A09C2B7: client=…
// Info lines carry no level; warnings, errors and fatal errors say "warning: ", "error: ",
// "fatal: " as Postfix does. With format "json", one JSON object per line instead. stderr only.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"

namespace spdlog {
class logger;
}

namespace postgate::base {

// `program` is e.g. "postgate/smtpd"; `format` is "text" or "json".
absl::Status InitLogging(const std::string& hostname, const std::string& program,
                         const std::string& format);

// A logger writing where the default one does, in its format, under another program name: a
// master.cf service's syslog_name ("postgate/submission" → "postgate/submission/smtpd[…]").
// Call after InitLogging.
std::shared_ptr<spdlog::logger> ProgramLogger(const std::string& program);

// Postfix's way of printing delays: "0" below 10 ms, then at most two decimals, no trailing zeros.
std::string FormatDelay(double seconds);

}  // namespace postgate::base
