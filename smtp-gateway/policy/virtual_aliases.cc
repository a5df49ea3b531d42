#include "smtp-gateway/policy/virtual_aliases.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace postgate::gateway::policy {

std::shared_ptr<const VirtualAliases> VirtualAliases::FromTables(std::vector<Table> tables,
                                                                 std::vector<std::string> domains,
                                                                 char recipient_delimiter, VirtualAliasLimits limits) {
  auto aliases = std::make_shared<VirtualAliases>();
  aliases->maps_ = addressing::AddressMaps(std::move(tables), recipient_delimiter);
  for (std::string& domain : domains) aliases->domains_.push_back(absl::AsciiStrToLower(domain));
  aliases->limits_ = limits;
  return aliases;
}

absl::StatusOr<std::shared_ptr<const VirtualAliases>> VirtualAliases::Load(const std::vector<std::string>& maps,
                                                                          const std::vector<std::string>& domains,
                                                                          char recipient_delimiter,
                                                                          VirtualAliasLimits limits) {
  absl::StatusOr<addressing::AddressMaps> tables = addressing::AddressMaps::Load(maps, recipient_delimiter);
  if (!tables.ok()) return tables.status();
  // virtual_alias_domains: a word that names a table stands for the domains that are its keys
  // (Postfix's default, $virtual_alias_maps: "example.com anything" lines make example.com one).
  std::vector<std::string> domain_names;
  for (const std::string& word : domains) {
    if (word.find(':') == std::string::npos) {
      domain_names.push_back(word);
      continue;
    }
    if (config::IsRegexpTableSpec(word)) continue;  // A pattern table lists no domains.
    absl::StatusOr<config::LookupTable> table = config::LoadLookupTable(word);
    if (!table.ok()) return table.status();
    for (const auto& [key, value] : table->entries()) {
      if (key.find('@') == std::string::npos) domain_names.push_back(key);
    }
  }
  auto loaded = std::make_shared<VirtualAliases>();
  loaded->maps_ = *std::move(tables);
  for (std::string& domain : domain_names) loaded->domains_.push_back(absl::AsciiStrToLower(domain));
  loaded->limits_ = limits;
  return loaded;
}

bool VirtualAliases::IsVirtualDomain(absl::string_view domain) const {
  const std::string lower = absl::AsciiStrToLower(domain);
  return std::find(domains_.begin(), domains_.end(), lower) != domains_.end();
}

std::optional<std::string> VirtualAliases::Lookup(absl::string_view address) const {
  std::optional<std::vector<std::string>> results = maps_.Map(address, limits_.propagate_extensions);
  if (!results) return std::nullopt;
  return absl::StrJoin(*results, ", ");
}

VirtualAliases::Expansion VirtualAliases::Expand(absl::string_view address) const {
  Expansion expansion;
  std::vector<std::string>& addresses = expansion.addresses;
  addresses.emplace_back(address);
  std::vector<std::string> kept;  // Addresses that expanded into themselves: not expanded again.
  const auto is_kept = [&kept](absl::string_view candidate) {
    return std::any_of(kept.begin(), kept.end(), [&](const std::string& k) { return absl::EqualsIgnoreCase(k, candidate); });
  };
  for (size_t arg = 0; arg < addresses.size(); ++arg) {
    if (addresses.size() > limits_.expansion) {
      expansion.error = absl::StrCat("unreasonable virtual_alias_maps map expansion size for ", address);
      addresses.clear();
      return expansion;
    }
    for (size_t count = 0;; ++count) {
      if (is_kept(addresses[arg])) break;
      if (count >= limits_.recursion) {
        expansion.error = absl::StrCat("unreasonable virtual_alias_maps map nesting for ", address);
        addresses.clear();
        return expansion;
      }
      const std::optional<std::string> result = Lookup(addresses[arg]);
      if (!result) break;
      const std::string before = addresses[arg];
      std::vector<std::string> targets = absl::StrSplit(*result, absl::ByAnyChar(", \t"), absl::SkipEmpty());
      if (targets.empty()) break;
      for (size_t i = 0; i < targets.size(); ++i) {
        if (i == 0) addresses[arg] = targets[i];
        else addresses.push_back(targets[i]);
        if (absl::EqualsIgnoreCase(before, targets[i])) kept.push_back(before);  // Itself, once.
      }
    }
  }
  // Duplicates collapse (one delivery per address), first occurrence kept.
  std::vector<std::string> unique;
  for (std::string& candidate : addresses) {
    if (std::none_of(unique.begin(), unique.end(),
                     [&](const std::string& u) { return absl::EqualsIgnoreCase(u, candidate); })) {
      unique.push_back(std::move(candidate));
    }
  }
  addresses = std::move(unique);
  return expansion;
}

}  // namespace postgate::gateway::policy
