#include "core/addressing/address_maps.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace postgate::addressing {

AddressMaps::AddressMaps(std::vector<Table> tables, char recipient_delimiter)
    : tables_(std::move(tables)), delimiter_(recipient_delimiter) {}

absl::StatusOr<AddressMaps> AddressMaps::Load(const std::vector<std::string>& specs, char recipient_delimiter) {
  std::vector<Table> tables;
  std::vector<std::string> files;
  for (const std::string& spec : specs) {
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
  AddressMaps maps(std::move(tables), recipient_delimiter);
  maps.files_ = std::move(files);
  return maps;
}

std::optional<std::string> AddressMaps::FindKey(absl::string_view key, bool fixed_only) const {
  for (const Table& table : tables_) {
    if (table.hash) {
      if (const std::string* value = table.hash->Find(key)) return *value;
    } else if (!fixed_only) {
      if (std::optional<std::string> value = table.regexp->Match(key)) return value;
    }
  }
  return std::nullopt;
}

std::optional<AddressMaps::Found> AddressMaps::Find(absl::string_view address, const LocalDomainTest& is_local) const {
  if (tables_.empty()) return std::nullopt;
  if (std::optional<std::string> full = FindKey(address, /*fixed_only=*/false)) return Found{*std::move(full), ""};
  const size_t at = address.rfind('@');
  const absl::string_view local = address.substr(0, at);
  const absl::string_view domain = at == absl::string_view::npos ? absl::string_view() : address.substr(at);
  // "user" and "+ext" (a delimiter at the very start is no extension, as Postfix's strip_addr).
  absl::string_view base = local, extension;
  if (delimiter_ != '\0') {
    if (const size_t mark = local.find(delimiter_); mark != absl::string_view::npos && mark > 0) {
      base = local.substr(0, mark);
      extension = local.substr(mark);
    }
  }
  if (!extension.empty()) {
    if (std::optional<std::string> bare = FindKey(absl::StrCat(base, domain), true)) {
      return Found{*std::move(bare), std::string(extension)};
    }
  }
  if (domain.empty()) return std::nullopt;
  if (is_local && is_local(domain.substr(1))) {
    if (!extension.empty()) {
      if (std::optional<std::string> whole = FindKey(local, true)) return Found{*std::move(whole), ""};
    }
    if (std::optional<std::string> user = FindKey(base, true)) return Found{*std::move(user), std::string(extension)};
  }
  if (domain.size() > 1) {
    if (std::optional<std::string> catch_all = FindKey(domain, true)) return Found{*std::move(catch_all), ""};
  }
  return std::nullopt;
}

std::optional<std::vector<std::string>> AddressMaps::Map(absl::string_view address, bool propagate,
                                                         const LocalDomainTest& is_local) const {
  std::optional<Found> found = Find(address, is_local);
  if (!found) return std::nullopt;
  std::string result = std::move(found->result);
  if (!result.empty() && result.front() == '@') {
    // "@otherdomain": the same user there (its extension only when propagated, below).
    const size_t at = address.rfind('@');
    absl::string_view user = address.substr(0, at);
    user.remove_suffix(std::min(user.size(), found->extension.size()));
    result = absl::StrCat(user, result);
  }
  std::vector<std::string> addresses;
  for (absl::string_view one : absl::StrSplit(result, absl::ByAnyChar(", \t"), absl::SkipEmpty())) {
    addresses.push_back(propagate && !found->extension.empty() ? WithExtension(one, found->extension)
                                                               : std::string(one));
  }
  return addresses;
}

absl::StatusOr<bool> PropagatesUnmatchedExtensions(const config::MainCf& cf, absl::string_view map_class) {
  bool found = false;
  for (const std::string& word : cf.GetList("propagate_unmatched_extensions")) {
    const std::string lower = absl::AsciiStrToLower(word);
    if (lower != "canonical" && lower != "virtual" && lower != "alias" && lower != "forward" && lower != "include" &&
        lower != "generic") {
      return cf.Error("propagate_unmatched_extensions",
                      absl::StrCat("\"", word, "\": use canonical, virtual, alias, forward, include or generic"));
    }
    found = found || lower == map_class;
  }
  return found;
}

std::string WithExtension(absl::string_view address, absl::string_view extension) {
  const size_t at = address.rfind('@');
  if (at == absl::string_view::npos) return absl::StrCat(address, extension);
  return absl::StrCat(address.substr(0, at), extension, address.substr(at));
}

}  // namespace postgate::addressing
