// virtual_alias_maps and virtual_alias_domains, as Postfix's cleanup and smtpd use them: an
// address is looked up as addressing::AddressMaps does ("user+ext@domain", "user@domain" with the
// unmatched extension added to each result, then the catch-all "@domain"); a result is one or
// more addresses (comma or blank separated), each expanded again.
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
#include "core/addressing/address_maps.h"

namespace postgate::gateway::policy {

struct VirtualAliasLimits {
  size_t recursion = 1000;  // virtual_alias_recursion_limit
  size_t expansion = 1000;  // virtual_alias_expansion_limit
  bool propagate_extensions = true;  // propagate_unmatched_extensions has "virtual"
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
  using Table = addressing::AddressMaps::Table;
  static std::shared_ptr<const VirtualAliases> FromTables(std::vector<Table> tables, std::vector<std::string> domains,
                                                          char recipient_delimiter, VirtualAliasLimits limits);

  bool empty() const { return maps_.empty(); }
  bool IsVirtualDomain(absl::string_view domain) const;
  // The result for `address` itself (not expanded further), or nullopt.
  std::optional<std::string> Lookup(absl::string_view address) const;

  struct Expansion {
    std::vector<std::string> addresses;  // In order, without duplicates.
    std::string error;                   // "" or the warning Postfix logs (then addresses is empty).
  };
  Expansion Expand(absl::string_view address) const;

  const std::vector<std::string>& files() const { return maps_.files(); }

 private:
  addressing::AddressMaps maps_;
  std::vector<std::string> domains_;  // Lower case.
  VirtualAliasLimits limits_;
};

}  // namespace postgate::gateway::policy
