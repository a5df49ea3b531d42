// A list of Postfix address tables (canonical_maps, virtual_alias_maps, smtp_generic_maps…) and the
// way Postfix searches them for an address (mail_addr_find) and turns a result into addresses
// (mail_addr_map). For "user+ext@domain", recipient_delimiter "+":
//   1. "user+ext@domain" in every table (regexp:/pcre: tables see only this full address);
//   2. "user@domain" (the "+ext" is then unmatched);
//   3. when the domain is $myorigin or one of ours (the caller says): "user+ext", then "user";
//   4. "@domain".
// Each key is tried in every table, in the order given, before the next key. A result that starts
// with "@" keeps the address's local part (without the extension) and changes the domain; with
// propagation (propagate_unmatched_extensions) an unmatched extension goes onto every result.
// Pure but for Load; read-only and thread-safe once built.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/config/lookup_table.h"
#include "core/config/main_cf.h"
#include "core/config/regexp_table.h"

namespace postgate::addressing {

class AddressMaps {
 public:
  struct Table {
    std::optional<config::LookupTable> hash;          // texthash: / hash:
    std::shared_ptr<const config::RegexpTable> regexp;  // regexp: / pcre:
  };
  // Is this domain ours (mydestination, $myorigin…)? Decides whether bare local parts are tried.
  using LocalDomainTest = std::function<bool(absl::string_view domain)>;

  AddressMaps() = default;
  AddressMaps(std::vector<Table> tables, char recipient_delimiter);
  // The words of a table-list parameter ("texthash:/etc/postfix/canonical, pcre:/…"). Errors name
  // the file and line.
  static absl::StatusOr<AddressMaps> Load(const std::vector<std::string>& specs, char recipient_delimiter);

  bool empty() const { return tables_.empty(); }
  const std::vector<std::string>& files() const { return files_; }
  const std::vector<Table>& tables() const { return tables_; }

  struct Found {
    std::string result;     // The table's value, as written.
    std::string extension;  // "+ext" when the match was on the address without it, else "".
  };
  // mail_addr_find: the first match, or nullopt. `is_local` may be empty (no bare local parts).
  std::optional<Found> Find(absl::string_view address, const LocalDomainTest& is_local = {}) const;

  // mail_addr_map: the addresses the result stands for (comma or blank separated; "@domain"
  // expanded; the unmatched extension added when `propagate`), or nullopt when not found.
  std::optional<std::vector<std::string>> Map(absl::string_view address, bool propagate,
                                              const LocalDomainTest& is_local = {}) const;

 private:
  // `fixed_only`: the key is a partial one ("user@domain", "@domain"), which pattern tables skip.
  std::optional<std::string> FindKey(absl::string_view key, bool fixed_only) const;

  std::vector<Table> tables_;
  char delimiter_ = '\0';
  std::vector<std::string> files_;
};

// Whether propagate_unmatched_extensions names `map_class` (canonical, virtual, alias, forward,
// include, generic); an unknown word there is an error naming the parameter.
absl::StatusOr<bool> PropagatesUnmatchedExtensions(const config::MainCf& cf, absl::string_view map_class);

// Adds `extension` ("+ext") to the local part of `address`.
std::string WithExtension(absl::string_view address, absl::string_view extension);

}  // namespace postgate::addressing
