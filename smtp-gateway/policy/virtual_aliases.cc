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
  aliases->tables_ = std::move(tables);
  for (std::string& domain : domains) aliases->domains_.push_back(absl::AsciiStrToLower(domain));
  aliases->delimiter_ = recipient_delimiter;
  aliases->limits_ = limits;
  return aliases;
}

absl::StatusOr<std::shared_ptr<const VirtualAliases>> VirtualAliases::Load(const std::vector<std::string>& maps,
                                                                          const std::vector<std::string>& domains,
                                                                          char recipient_delimiter,
                                                                          VirtualAliasLimits limits) {
  std::vector<Table> tables;
  std::vector<std::string> files;
  for (const std::string& spec : maps) {
    Table table;
    if (config::IsRegexpTableSpec(spec)) {
      absl::StatusOr<std::shared_ptr<const config::RegexpTable>> regexp = config::RegexpTable::Load(spec);
      if (!regexp.ok()) return regexp.status();
      table.regexp = *std::move(regexp);
    } else {
      absl::StatusOr<config::LookupTable> hash = config::LoadLookupTable(spec);
      if (!hash.ok()) return hash.status();
      table.hash = *std::move(hash);
    }
    files.push_back(spec.substr(spec.find(':') + 1));
    tables.push_back(std::move(table));
  }
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
  std::shared_ptr<const VirtualAliases> loaded =
      FromTables(std::move(tables), std::move(domain_names), recipient_delimiter, limits);
  const_cast<VirtualAliases&>(*loaded).files_ = std::move(files);
  return loaded;
}

bool VirtualAliases::IsVirtualDomain(absl::string_view domain) const {
  const std::string lower = absl::AsciiStrToLower(domain);
  return std::find(domains_.begin(), domains_.end(), lower) != domains_.end();
}

std::optional<std::string> VirtualAliases::LookupKey(absl::string_view key) const {
  for (const Table& table : tables_) {
    if (table.hash) {
      if (const std::string* value = table.hash->Find(key)) return *value;
    } else if (std::optional<std::string> value = table.regexp->Match(key)) {
      return value;
    }
  }
  return std::nullopt;
}

std::optional<std::string> VirtualAliases::Lookup(absl::string_view address) const {
  if (std::optional<std::string> exact = LookupKey(address)) return exact;
  const size_t at = address.rfind('@');
  if (at == absl::string_view::npos) return std::nullopt;
  const absl::string_view local = address.substr(0, at);
  const absl::string_view domain = address.substr(at);  // "@domain"
  if (delimiter_ != '\0') {
    const size_t mark = local.find(delimiter_);
    if (mark != absl::string_view::npos && mark > 0) {
      if (std::optional<std::string> plain = LookupKey(absl::StrCat(local.substr(0, mark), domain))) {
        // propagate_unmatched_extensions: the extension goes onto each result.
        std::vector<std::string> results;
        for (absl::string_view result : absl::StrSplit(*plain, absl::ByAnyChar(", \t"), absl::SkipEmpty())) {
          const size_t result_at = result.rfind('@');
          results.push_back(result_at == absl::string_view::npos
                                ? absl::StrCat(result, local.substr(mark))
                                : absl::StrCat(result.substr(0, result_at), local.substr(mark), result.substr(result_at)));
        }
        return absl::StrJoin(results, ", ");
      }
    }
  }
  if (domain.size() > 1) return LookupKey(domain);  // The catch-all "@domain".
  return std::nullopt;
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
