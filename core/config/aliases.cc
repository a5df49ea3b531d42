#include "core/config/aliases.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/base/status_macros.h"
#include "core/config/logical_lines.h"

namespace postgate::config {

const std::vector<std::string>* AliasTable::Find(absl::string_view name) const {
  auto it = entries_.find(absl::AsciiStrToLower(name));
  return it == entries_.end() ? nullptr : &it->second;
}

absl::Status AliasTable::Parse(absl::string_view text, const std::string& filename) {
  absl::StatusOr<std::vector<LogicalLine>> logical = ReadLogicalLines(text, filename);
  if (!logical.ok()) return logical.status();
  for (const LogicalLine& entry : *logical) {
    std::string where = absl::StrCat(filename, ":", entry.line);
    size_t colon = entry.text.find(':');
    if (colon == std::string::npos || colon == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": expected \"name: address, ...\", got \"", entry.text, "\""));
    }
    std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(entry.text.substr(0, colon)));
    std::vector<std::string> targets;
    for (absl::string_view target :
         absl::StrSplit(entry.text.substr(colon + 1), absl::ByAnyChar(", \t"), absl::SkipEmpty())) {
      if (target.front() == '|' || target.front() == '/' || absl::StartsWith(target, ":include:")) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": alias ", name, ": \"", target,
            "\": only address targets are supported (no commands, files or :include:)"));
      }
      targets.emplace_back(target);
    }
    if (targets.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": alias ", name, " has no target"));
    }
    entries_.try_emplace(std::move(name), std::move(targets));
  }
  return absl::OkStatus();
}

absl::StatusOr<AliasTable> LoadAliasMaps(const MainCf& cf) {
  AliasTable table;
  for (const std::string& map : cf.GetList("alias_maps")) {
    size_t colon = map.find(':');
    std::string type = colon == std::string::npos ? "" : map.substr(0, colon);
    if (type != "hash" && type != "texthash") {
      return cf.Error("alias_maps", absl::StrCat("\"", map,
                                                 "\": unsupported map type (use hash: or texthash:)"));
    }
    std::string path = map.substr(colon + 1);
    std::ifstream in(path, std::ios::binary);
    if (!in) return cf.Error("alias_maps", absl::StrCat(path, ": cannot open"));
    std::stringstream text;
    text << in.rdbuf();
    RETURN_IF_ERROR(table.Parse(text.str(), path));
  }
  return table;
}

}  // namespace postgate::config
