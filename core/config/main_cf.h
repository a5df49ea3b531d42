// main.cf reader in Postfix's syntax: "name = value" lines, "#" comment lines, lines that start with
// whitespace continue the previous one, and $name / ${name} / $(name) expand other parameters
// (lazily, at lookup, as Postfix does). Every parameter must be one of KnownParameters(); values
// are type-checked at load time so a bad file stops a service at start, with "file:line: name: why".
//
// Pure: the caller reads the file (LoadMainCf does it for convenience) and supplies the computed
// defaults (host name, config directory). Not thread-safe for writes; const use is safe.
#pragma once

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace postgate::config {

class MainCf {
 public:
  // Parses `text` (named `filename` in errors). `system_hostname` supplies the myhostname default.
  static absl::StatusOr<MainCf> Parse(absl::string_view text, std::string filename,
                                      std::string system_hostname);

  // Sets a value from a command-line flag; it wins over the file. Validated like a file value.
  absl::Status Override(absl::string_view name, std::string value, std::string origin);

  // Fully expanded values. Names must be known parameters (checked at Parse time for the file).
  std::string Get(absl::string_view name) const;
  std::vector<std::string> GetList(absl::string_view name) const;
  int64_t GetInteger(absl::string_view name) const;
  absl::Duration GetTime(absl::string_view name) const;
  bool GetBool(absl::string_view name) const;

  // "file:line: name: problem" (or "default: name: problem") for errors a consumer finds later,
  // e.g. a mynetworks entry that is not a network.
  absl::Status Error(absl::string_view name, absl::string_view problem) const;

 private:
  struct Value {
    std::string raw;
    std::string origin;  // "main.cf:12", "--listen", "default".
  };

  absl::StatusOr<std::string> Expand(absl::string_view name, int depth) const;
  absl::Status Validate(absl::string_view name) const;

  absl::flat_hash_map<std::string, Value> values_;
};

// The contents of the file a parameter names (a certificate, a CA bundle…); the error names the
// parameter's file:line and the path.
absl::StatusOr<std::string> ReadFileParameter(const MainCf& cf, absl::string_view name);

// Applies "name=value" overrides from the command line (Postfix's `-o`), in order; each is
// validated like a file value and errors name it as "-o: name: …".
absl::Status ApplyOverrides(MainCf& cf, const std::vector<std::string>& assignments);

// Reads and parses a file. Errors name the file.
absl::StatusOr<MainCf> LoadMainCf(const std::string& path);

// Splits a Postfix list value on commas and whitespace, dropping empty words.
std::vector<std::string> SplitList(absl::string_view value);

// Parses "300", "300s", "5m", "1h", "5d", "1w"; a bare number takes default_unit.
absl::StatusOr<absl::Duration> ParseTime(absl::string_view text, char default_unit);

}  // namespace postgate::config
