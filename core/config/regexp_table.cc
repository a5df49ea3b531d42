#include "core/config/regexp_table.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/config/logical_lines.h"

namespace postgate::config {

struct RegexpTable::Rule {
  enum class Kind { kMatch, kIf, kEndif };
  Kind kind = Kind::kMatch;
  int line = 0;
  pcre2_code* code = nullptr;  // Owned; shared read-only by every lookup.
  bool negated = false;
  std::string result;
  size_t endif = 0;            // kIf: the index of its endif.
};

namespace {

std::string PcreError(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof buffer);
  return reinterpret_cast<const char*>(buffer);
}

// "/pattern/flags rest" at the start of `text`: the compiled pattern and what follows it.
absl::StatusOr<std::pair<pcre2_code*, absl::string_view>> ParsePattern(absl::string_view text) {
  if (text.empty() || absl::ascii_isalnum(static_cast<unsigned char>(text[0])) ||
      absl::ascii_isspace(static_cast<unsigned char>(text[0])) || text[0] == '\\') {
    return absl::InvalidArgumentError("expected /pattern/");
  }
  const char delimiter = text[0];
  size_t end = 1;
  while (end < text.size() && text[end] != delimiter) {
    if (text[end] == '\\' && end + 1 < text.size()) ++end;  // An escaped delimiter stays in the pattern.
    ++end;
  }
  if (end >= text.size()) return absl::InvalidArgumentError(absl::StrCat("missing closing ", std::string(1, delimiter)));
  std::string pattern(text.substr(1, end - 1));
  uint32_t options = PCRE2_CASELESS | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
  size_t i = end + 1;
  for (; i < text.size() && !absl::ascii_isspace(static_cast<unsigned char>(text[i])); ++i) {
    switch (text[i]) {
      case 'i': options ^= PCRE2_CASELESS; break;
      case 'm': options |= PCRE2_MULTILINE; break;
      case 's': options |= PCRE2_DOTALL; break;
      case 'x': options |= PCRE2_EXTENDED; break;
      case 'U': options |= PCRE2_UNGREEDY; break;
      case 'A': options |= PCRE2_ANCHORED; break;
      case 'E': options |= PCRE2_DOLLAR_ENDONLY; break;
      default: return absl::InvalidArgumentError(absl::StrCat("unknown flag \"", std::string(1, text[i]), "\""));
    }
  }
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &error,
                                   &offset, nullptr);
  if (code == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("bad pattern at offset ", offset, ": ", PcreError(error)));
  }
  return std::make_pair(code, absl::StripLeadingAsciiWhitespace(text.substr(i)));
}

// `result` with $N / ${N} replaced by the groups of the match in `ovector`; "$$" is "$".
std::string Substitute(absl::string_view result, absl::string_view subject, const PCRE2_SIZE* ovector, int groups) {
  std::string out;
  for (size_t i = 0; i < result.size(); ++i) {
    if (result[i] != '$' || i + 1 == result.size()) {
      out.push_back(result[i]);
      continue;
    }
    if (result[i + 1] == '$') {
      out.push_back('$');
      ++i;
      continue;
    }
    size_t start = i + 1;
    const bool braced = result[start] == '{';
    if (braced) ++start;
    size_t stop = start;
    while (stop < result.size() && absl::ascii_isdigit(static_cast<unsigned char>(result[stop]))) ++stop;
    if (stop == start || (braced && (stop >= result.size() || result[stop] != '}'))) {
      out.push_back('$');
      continue;
    }
    const int group = std::stoi(std::string(result.substr(start, stop - start)));
    if (group < groups && ovector[2 * group] != PCRE2_UNSET) {
      absl::StrAppend(&out, subject.substr(ovector[2 * group], ovector[2 * group + 1] - ovector[2 * group]));
    }
    i = braced ? stop : stop - 1;
  }
  return out;
}

}  // namespace

RegexpTable::~RegexpTable() {
  for (Rule& rule : rules_) pcre2_code_free(rule.code);
}

bool IsRegexpTableSpec(absl::string_view spec) {
  return absl::StartsWith(spec, "regexp:") || absl::StartsWith(spec, "pcre:");
}

absl::StatusOr<std::shared_ptr<const RegexpTable>> RegexpTable::Parse(absl::string_view text,
                                                                      absl::string_view filename) {
  absl::StatusOr<std::vector<LogicalLine>> lines = ReadLogicalLines(text, filename);
  if (!lines.ok()) return lines.status();
  std::shared_ptr<RegexpTable> table(new RegexpTable());
  std::vector<size_t> open_ifs;
  for (const LogicalLine& line : *lines) {
    const std::string where = absl::StrCat(filename, ":", line.line, ": ");
    absl::string_view rest = line.text;
    Rule rule;
    rule.line = line.line;
    if (absl::EqualsIgnoreCase(rest, "endif")) {
      if (open_ifs.empty()) return absl::InvalidArgumentError(absl::StrCat(where, "endif without if"));
      table->rules_[open_ifs.back()].endif = table->rules_.size();
      open_ifs.pop_back();
      rule.kind = Rule::Kind::kEndif;
      table->rules_.push_back(std::move(rule));
      continue;
    }
    if (absl::StartsWithIgnoreCase(rest, "if") && rest.size() > 2 && absl::ascii_isspace(static_cast<unsigned char>(rest[2]))) {
      rule.kind = Rule::Kind::kIf;
      rest = absl::StripLeadingAsciiWhitespace(rest.substr(2));
    }
    if (!rest.empty() && rest[0] == '!') {
      rule.negated = true;
      rest.remove_prefix(1);
    }
    absl::StatusOr<std::pair<pcre2_code*, absl::string_view>> pattern = ParsePattern(rest);
    if (!pattern.ok()) return absl::InvalidArgumentError(absl::StrCat(where, pattern.status().message()));
    rule.code = pattern->first;
    rule.result = std::string(pattern->second);
    if (rule.kind == Rule::Kind::kIf) {
      if (!rule.result.empty()) {
        pcre2_code_free(rule.code);
        return absl::InvalidArgumentError(absl::StrCat(where, "text after the if pattern"));
      }
      open_ifs.push_back(table->rules_.size());
    } else if (rule.result.empty()) {
      pcre2_code_free(rule.code);
      return absl::InvalidArgumentError(absl::StrCat(where, "no result after the pattern"));
    }
    table->rules_.push_back(std::move(rule));
  }
  if (!open_ifs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(filename, ":", table->rules_[open_ifs.back()].line, ": if without endif"));
  }
  return std::shared_ptr<const RegexpTable>(std::move(table));
}

absl::StatusOr<std::shared_ptr<const RegexpTable>> RegexpTable::Load(absl::string_view spec) {
  if (!IsRegexpTableSpec(spec)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", spec, "\": unsupported map type (use regexp: or pcre:)"));
  }
  const std::string path(spec.substr(spec.find(':') + 1));
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path);
}

std::optional<std::string> RegexpTable::Match(absl::string_view subject) const {
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> data(pcre2_match_data_create(32, nullptr),
                                                                             &pcre2_match_data_free);
  for (size_t i = 0; i < rules_.size(); ++i) {
    const Rule& rule = rules_[i];
    if (rule.kind == Rule::Kind::kEndif) continue;
    const int found = pcre2_match(rule.code, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), 0, 0,
                                  data.get(), nullptr);
    const bool matched = (found >= 0) != rule.negated;
    if (rule.kind == Rule::Kind::kIf) {
      if (!matched) i = rule.endif;  // Skip the block.
      continue;
    }
    if (!matched) continue;
    if (rule.negated) return rule.result;  // No groups from a pattern that did not match.
    return Substitute(rule.result, subject, pcre2_get_ovector_pointer(data.get()), found == 0 ? 32 : found);
  }
  return std::nullopt;
}

std::vector<std::pair<int, std::string>> RegexpTable::Results() const {
  std::vector<std::pair<int, std::string>> results;
  for (const Rule& rule : rules_) {
    if (rule.kind == Rule::Kind::kMatch) results.emplace_back(rule.line, rule.result);
  }
  return results;
}

}  // namespace postgate::config
