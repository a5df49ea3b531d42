#include "core/config/lookup_table.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/config/logical_lines.h"

namespace postgate::config {

absl::StatusOr<LookupTable> LookupTable::Parse(absl::string_view text, absl::string_view filename) {
  absl::StatusOr<std::vector<LogicalLine>> lines = ReadLogicalLines(text, filename);
  if (!lines.ok()) return lines.status();
  LookupTable table;
  for (const LogicalLine& line : *lines) {
    const size_t end_of_key = line.text.find_first_of(" \t");
    absl::string_view value =
        end_of_key == std::string::npos ? "" : absl::StripAsciiWhitespace(absl::string_view(line.text).substr(end_of_key));
    if (value.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(filename, ":", line.line, ": expected \"key value\""));
    }
    table.entries_.try_emplace(absl::AsciiStrToLower(line.text.substr(0, end_of_key)), value);
  }
  return table;
}

const std::string* LookupTable::Find(absl::string_view key) const {
  auto it = entries_.find(absl::AsciiStrToLower(key));
  return it == entries_.end() ? nullptr : &it->second;
}

const std::string* LookupTable::FindAddress(absl::string_view address) const {
  if (const std::string* exact = Find(address)) return exact;
  const size_t at = address.rfind('@');
  if (at == absl::string_view::npos || at + 1 == address.size()) return nullptr;
  return Find(address.substr(at));  // "@domain"
}

absl::StatusOr<LookupTable> LoadLookupTable(absl::string_view spec) {
  const size_t colon = spec.find(':');
  const absl::string_view type = colon == absl::string_view::npos ? "" : spec.substr(0, colon);
  if (type != "hash" && type != "texthash") {
    return absl::InvalidArgumentError(absl::StrCat("\"", spec, "\": unsupported map type (use texthash:)"));
  }
  const std::string path(spec.substr(colon + 1));
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream text;
  text << in.rdbuf();
  return LookupTable::Parse(text.str(), path);
}

}  // namespace postgate::config
