// Postfix's simple lookup tables ("texthash:/path", and "hash:/path" read from its text source,
// as Postgate has no postmap step): one "key value" pair per logical line, "#" comments,
// indented continuation lines. Keys match case-insensitively; the value is the rest of the line.
// Used by smtp_sasl_password_maps, sender_dependent_relayhost_maps and smtpd_sender_login_maps.
// Pure: LoadLookupTable reads the file, Parse does not.
//
// Errors never quote a line: these tables hold passwords (smtp_sasl_password_maps), and an error
// message goes to the log.
#pragma once

#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace postgate::config {

class LookupTable {
 public:
  // "file:line" errors for a line without a value, or a continuation before any key. A key given
  // twice keeps its first value (Postfix's postmap warns and does the same).
  static absl::StatusOr<LookupTable> Parse(absl::string_view text, absl::string_view filename);

  const std::string* Find(absl::string_view key) const;
  // Postfix's address lookup (mail_addr_find) for a full address: "user@domain", then
  // "@domain". For a bare name: the name.
  const std::string* FindAddress(absl::string_view address) const;
  size_t size() const { return entries_.size(); }
  const absl::flat_hash_map<std::string, std::string>& entries() const { return entries_; }

 private:
  absl::flat_hash_map<std::string, std::string> entries_;  // Lower-case key → value.
};

// "texthash:/path" or "hash:/path": the table in that file. Errors name the file (and line).
absl::StatusOr<LookupTable> LoadLookupTable(absl::string_view spec);

}  // namespace postgate::config
