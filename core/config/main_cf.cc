#include "core/config/main_cf.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/base/status_macros.h"
#include "core/config/logical_lines.h"
#include "core/config/parameters.h"

namespace postgate::config {
namespace {

constexpr int kMaxExpansionDepth = 20;

bool IsNameChar(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_'; }

std::string DefaultDomain(absl::string_view hostname) {
  size_t dot = hostname.find('.');
  if (dot == absl::string_view::npos || dot + 1 >= hostname.size()) return "localdomain";
  return std::string(hostname.substr(dot + 1));
}

}  // namespace

std::vector<std::string> SplitList(absl::string_view value) {
  std::vector<std::string> words;
  for (absl::string_view word : absl::StrSplit(value, absl::ByAnyChar(", \t\r\n"), absl::SkipEmpty())) {
    words.emplace_back(word);
  }
  return words;
}

absl::StatusOr<absl::Duration> ParseTime(absl::string_view text, char default_unit) {
  text = absl::StripAsciiWhitespace(text);
  if (text.empty()) return absl::InvalidArgumentError("empty time value");
  char unit = default_unit;
  if (absl::ascii_isalpha(static_cast<unsigned char>(text.back()))) {
    unit = absl::ascii_tolower(static_cast<unsigned char>(text.back()));
    text.remove_suffix(1);
  }
  int64_t number = 0;
  if (!absl::SimpleAtoi(text, &number) || number < 0) {
    return absl::InvalidArgumentError(absl::StrCat("bad time value \"", text, "\""));
  }
  switch (unit) {
    case 's': return absl::Seconds(number);
    case 'm': return absl::Minutes(number);
    case 'h': return absl::Hours(number);
    case 'd': return absl::Hours(24 * number);
    case 'w': return absl::Hours(24 * 7 * number);
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown time unit '", std::string(1, unit),
                                                 "' (use s, m, h, d or w)"));
}

absl::StatusOr<MainCf> MainCf::Parse(absl::string_view text, std::string filename,
                                     std::string system_hostname) {
  MainCf cf;
  for (const ParameterSpec& spec : KnownParameters()) {
    cf.values_[spec.name] = Value{std::string(spec.default_value), "default"};
  }
  cf.values_["myhostname"].raw = system_hostname;
  cf.values_["mydomain"].raw = DefaultDomain(system_hostname);
  cf.values_["config_directory"].raw = std::filesystem::path(filename).parent_path().string();
  if (cf.values_["config_directory"].raw.empty()) cf.values_["config_directory"].raw = ".";

  absl::StatusOr<std::vector<LogicalLine>> logical = ReadLogicalLines(text, filename);
  if (!logical.ok()) return logical.status();
  for (const LogicalLine& entry : *logical) {
    std::string where = absl::StrCat(filename, ":", entry.line);
    size_t eq = entry.text.find('=');
    if (eq == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": missing '=' after parameter name: \"", entry.text, "\""));
    }
    std::string name(absl::StripAsciiWhitespace(absl::string_view(entry.text).substr(0, eq)));
    std::string value(absl::StripAsciiWhitespace(absl::string_view(entry.text).substr(eq + 1)));
    if (name.empty() || !std::all_of(name.begin(), name.end(), IsNameChar)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": bad parameter name \"", name, "\""));
    }
    if (FindParameter(name) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", name, ": unknown parameter"));
    }
    cf.values_[name] = Value{std::move(value), where};
  }
  // Validate after all assignments: a value may refer to a parameter set further down.
  for (const ParameterSpec& spec : KnownParameters()) {
    RETURN_IF_ERROR(cf.Validate(spec.name));
  }
  return cf;
}

absl::Status MainCf::Override(absl::string_view name, std::string value, std::string origin) {
  if (FindParameter(name) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": ", name, ": unknown parameter"));
  }
  values_[std::string(name)] = Value{std::move(value), std::move(origin)};
  return Validate(name);
}

absl::Status ApplyOverrides(MainCf& cf, const std::vector<std::string>& assignments) {
  for (const std::string& assignment : assignments) {
    size_t equals = assignment.find('=');
    if (equals == std::string::npos || equals == 0) {
      return absl::InvalidArgumentError(absl::StrCat("-o ", assignment, ": expected name=value"));
    }
    std::string name(absl::StripAsciiWhitespace(assignment.substr(0, equals)));
    std::string value(absl::StripAsciiWhitespace(assignment.substr(equals + 1)));
    RETURN_IF_ERROR(cf.Override(name, std::move(value), "-o"));
  }
  return absl::OkStatus();
}

absl::Status MainCf::Validate(absl::string_view name) const {
  const ParameterSpec* spec = FindParameter(name);
  absl::StatusOr<std::string> expanded = Expand(name, 0);
  if (!expanded.ok()) return expanded.status();
  switch (spec->kind) {
    case ValueKind::kInteger: {
      int64_t number = 0;
      if (!absl::SimpleAtoi(*expanded, &number) || number < 0) {
        return Error(name, absl::StrCat("bad numerical value \"", *expanded, "\""));
      }
      break;
    }
    case ValueKind::kTime: {
      absl::StatusOr<absl::Duration> duration = ParseTime(*expanded, spec->default_time_unit);
      if (!duration.ok()) return Error(name, duration.status().message());
      break;
    }
    case ValueKind::kBool: {
      std::string lower = absl::AsciiStrToLower(*expanded);
      if (lower != "yes" && lower != "no") {
        return Error(name, absl::StrCat("bad boolean value \"", *expanded, "\" (use yes or no)"));
      }
      break;
    }
    case ValueKind::kString:
    case ValueKind::kList:
      break;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> MainCf::Expand(absl::string_view name, int depth) const {
  if (depth > kMaxExpansionDepth) {
    return Error(name, "parameter expansion loop");
  }
  auto it = values_.find(name);
  if (it == values_.end()) return Error(name, "unknown parameter");
  const std::string& raw = it->second.raw;
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '$') {
      out.push_back(raw[i]);
      continue;
    }
    if (i + 1 < raw.size() && raw[i + 1] == '$') {  // "$$" is a literal dollar.
      out.push_back('$');
      ++i;
      continue;
    }
    std::string ref;
    if (i + 1 < raw.size() && (raw[i + 1] == '{' || raw[i + 1] == '(')) {
      char close = raw[i + 1] == '{' ? '}' : ')';
      size_t end = raw.find(close, i + 2);
      if (end == std::string::npos) {
        return Error(name, absl::StrCat("unmatched '", std::string(1, raw[i + 1]), "'"));
      }
      ref = raw.substr(i + 2, end - i - 2);
      i = end;
    } else {
      size_t end = i + 1;
      while (end < raw.size() && IsNameChar(raw[end])) ++end;
      ref = raw.substr(i + 1, end - i - 1);
      i = end - 1;
    }
    if (FindParameter(ref) == nullptr) {
      return Error(name, absl::StrCat("undefined parameter $", ref));
    }
    absl::StatusOr<std::string> inner = Expand(ref, depth + 1);
    if (!inner.ok()) return inner.status();  // Already names the parameter at fault.
    out += *inner;
  }
  return out;
}

std::string MainCf::Get(absl::string_view name) const {
  absl::StatusOr<std::string> value = Expand(name, 0);
  return value.ok() ? *value : std::string();  // Validated at load: only unknown names fail here.
}

std::vector<std::string> MainCf::GetList(absl::string_view name) const { return SplitList(Get(name)); }

int64_t MainCf::GetInteger(absl::string_view name) const {
  int64_t number = 0;
  (void)absl::SimpleAtoi(Get(name), &number);
  return number;
}

absl::Duration MainCf::GetTime(absl::string_view name) const {
  const ParameterSpec* spec = FindParameter(name);
  absl::StatusOr<absl::Duration> duration = ParseTime(Get(name), spec ? spec->default_time_unit : 's');
  return duration.ok() ? *duration : absl::ZeroDuration();
}

bool MainCf::GetBool(absl::string_view name) const { return absl::AsciiStrToLower(Get(name)) == "yes"; }

absl::Status MainCf::Error(absl::string_view name, absl::string_view problem) const {
  auto it = values_.find(name);
  std::string origin = it == values_.end() ? "main.cf" : it->second.origin;
  return absl::InvalidArgumentError(absl::StrCat(origin, ": ", name, ": ", problem));
}

absl::StatusOr<std::string> ReadFileParameter(const MainCf& cf, absl::string_view name) {
  const std::string path = cf.Get(name);
  std::ifstream in(path, std::ios::binary);
  if (!in) return cf.Error(name, absl::StrCat(path, ": cannot open"));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::StatusOr<MainCf> LoadMainCf(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) std::strcpy(host, "localhost");
  // Absolute, so $config_directory/... stays valid whatever the working directory becomes.
  std::error_code ignored;
  std::string absolute = std::filesystem::absolute(path, ignored).lexically_normal().string();
  return MainCf::Parse(buffer.str(), absolute.empty() ? path : absolute, host);
}

}  // namespace postgate::config
