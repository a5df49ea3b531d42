// virtual_alias_maps and virtual_alias_domains, as Postfix's cleanup and smtpd use them: an
// address is looked up as "user+ext@domain", "user@domain" (the unmatched extension then added to
// each result, propagate_unmatched_extensions), then "@domain" (a catch-all); a result is one or
// more addresses (comma or blank separated), each expanded again. Tables: texthash: and regexp:/
// pcre: (the whole address is the key), searched in the order given.
//   - A recipient in a virtual alias domain must be found (smtpd: 550 5.1.1 "User unknown in
//     virtual alias table"); virtual_alias_domains are also "ours" for relay checks.
//   - An address may expand to itself once (it is then kept); past virtual_alias_recursion_limit
//     nested lookups (a loop) or virtual_alias_expansion_limit addresses, the message is not
//     accepted: "451 4.6.0 Alias expansion error", as Postfix's cleanup answers.
// Pure but for Load. Thread-safe once loaded.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/config/lookup_table.h"
#include "core/config/regexp_table.h"

namespace postgate::gateway::policy {

struct VirtualAliasLimits {
  size_t recursion = 1000;  // virtual_alias_recursion_limit
  size_t expansion = 1000;  // virtual_alias_expansion_limit
};

class VirtualAliases {
 public:
  // `maps`: virtual_alias_maps' words; `domains`: virtual_alias_domains' words (a domain, or a
  // table whose keys are the domains, e.g. "$virtual_alias_maps" – Postfix's default).
  static absl::StatusOr<std::shared_ptr<const VirtualAliases>> Load(const std::vector<std::string>& maps,
                                                                    const std::vector<std::string>& domains,
                                                                    char recipient_delimiter,
                                                                    VirtualAliasLimits limits);
  // The same from parsed tables (tests).
  struct Table {
    std::optional<config::LookupTable> hash;
    std::shared_ptr<const config::RegexpTable> regexp;
  };
  static std::shared_ptr<const VirtualAliases> FromTables(std::vector<Table> tables, std::vector<std::string> domains,
                                                          char recipient_delimiter, VirtualAliasLimits limits);

  bool empty() const { return tables_.empty(); }
  bool IsVirtualDomain(absl::string_view domain) const;
  // The result for `address` itself (not expanded further), or nullopt.
  std::optional<std::string> Lookup(absl::string_view address) const;

  struct Expansion {
    std::vector<std::string> addresses;  // In order, without duplicates.
    std::string error;                   // "" or the warning Postfix logs (then addresses is empty).
  };
  Expansion Expand(absl::string_view address) const;

  const std::vector<std::string>& files() const { return files_; }

 private:
  std::optional<std::string> LookupKey(absl::string_view key) const;
  std::vector<Table> tables_;
  std::vector<std::string> domains_;  // Lower case.
  char delimiter_ = '\0';
  VirtualAliasLimits limits_;
  std::vector<std::string> files_;
};

}  // namespace postgate::gateway::policy
