// aliases(5) tables named by alias_maps ("hash:/etc/aliases", "texthash:$config_directory/aliases").
// Postgate reads the text source itself, so no postalias/newaliases step exists: "hash:" and
// "texthash:" both name the text file. Format: "name: address, address" with "#" comment lines
// and indented continuation lines. Only address targets are supported; "|command", "/file" and
// ":include:" are refused with file:line, never silently ignored.
#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/config/main_cf.h"

namespace postgate::config {

class AliasTable {
 public:
  // Names are matched case-insensitively.
  const std::vector<std::string>* Find(absl::string_view name) const;
  bool Contains(absl::string_view name) const { return Find(name) != nullptr; }
  size_t size() const { return entries_.size(); }

  // Adds the entries of one aliases file; a later name does not override an earlier one
  // (Postfix searches alias_maps in order and stops at the first match).
  absl::Status Parse(absl::string_view text, const std::string& filename);

 private:
  absl::flat_hash_map<std::string, std::vector<std::string>> entries_;
};

// Reads every table in `alias_maps` of `cf`; errors name the parameter or the file and line.
absl::StatusOr<AliasTable> LoadAliasMaps(const MainCf& cf);

}  // namespace postgate::config
