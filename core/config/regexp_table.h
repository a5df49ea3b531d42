// Postfix's regexp: and pcre: tables (regexp_table(5), pcre_table(5)), both with PCRE2 from Debian:
//   /pattern/flags result      the result when the pattern matches
//   !/pattern/flags result     the result when it does not
//   if /pattern/flags … endif  the lines between only for input that matches (nesting allowed)
// Any punctuation may delimit a pattern. Patterns are case-insensitive unless flag "i" toggles
// that; "m", "s" and "x" are PCRE2's multiline, dotall and extended. "$1" or "${1}" in a result
// is the first group's text ("$$" is a "$"). The first line that matches gives the result.
// A regexp: table is read the same way (PCRE2 in place of POSIX regex: the same meaning for the
// patterns Postfix's documentation shows). "#" comments and continuation lines as in every
// table. Errors name the file and line. Thread-safe to look up once loaded.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace postgate::config {

class RegexpTable {
 public:
  static absl::StatusOr<std::shared_ptr<const RegexpTable>> Parse(absl::string_view text, absl::string_view filename);
  // "regexp:/path" or "pcre:/path".
  static absl::StatusOr<std::shared_ptr<const RegexpTable>> Load(absl::string_view spec);
  ~RegexpTable();

  // The result of the first line that matches `subject`, its $N replaced; nullopt when none does.
  std::optional<std::string> Match(absl::string_view subject) const;

  struct Rule;  // One pattern line, "if" or "endif".
  // The results as written (before $N), with their lines, so a user can check them once at load.
  std::vector<std::pair<int, std::string>> Results() const;

 private:
  RegexpTable() = default;
  std::vector<Rule> rules_;
};

// True for a spec this table type reads ("regexp:…" or "pcre:…").
bool IsRegexpTableSpec(absl::string_view spec);

}  // namespace postgate::config
