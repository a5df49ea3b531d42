#include "smtp-gateway/milter/milter_config.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "core/config/main_cf.h"
#include "smtp-gateway/milter/milter_protocol.h"

namespace postgate::gateway::milter {
namespace {

absl::Status Invalid(absl::string_view parameter, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(parameter, ": ", what));
}

// Splits a list on commas and whitespace, keeping "{ … }" groups whole (without the braces).
absl::StatusOr<std::vector<std::string>> SplitGroups(absl::string_view parameter, absl::string_view value) {
  std::vector<std::string> items;
  size_t i = 0;
  while (i < value.size()) {
    const char c = value[i];
    if (c == ',' || absl::ascii_isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    if (c == '{') {
      const size_t close = value.find('}', i + 1);
      if (close == absl::string_view::npos) return Invalid(parameter, "missing '}' in the milter list");
      items.emplace_back(absl::StrCat("{", value.substr(i + 1, close - i - 1)));  // '{' marks a group.
      i = close + 1;
      continue;
    }
    if (c == '}') return Invalid(parameter, "'}' without '{' in the milter list");
    size_t end = i;
    while (end < value.size() && value[end] != ',' && value[end] != '{' && value[end] != '}' &&
           !absl::ascii_isspace(static_cast<unsigned char>(value[end]))) {
      ++end;
    }
    items.emplace_back(value.substr(i, end - i));
    i = end;
  }
  return items;
}

}  // namespace

absl::string_view DefaultActionName(DefaultAction action) {
  switch (action) {
    case DefaultAction::kTempfail: return "tempfail";
    case DefaultAction::kAccept: return "accept";
    case DefaultAction::kReject: return "reject";
    case DefaultAction::kQuarantine: return "quarantine";
    case DefaultAction::kShutdown: return "shutdown";
  }
  return "tempfail";
}

absl::StatusOr<MilterEndpoint> ParseMilterEndpoint(absl::string_view text) {
  MilterEndpoint endpoint;
  absl::string_view rest = text;
  if (absl::ConsumePrefix(&rest, "unix:") || absl::ConsumePrefix(&rest, "local:")) {
    if (rest.empty()) return absl::InvalidArgumentError(absl::StrCat("milter '", text, "': no socket path"));
    endpoint.kind = MilterEndpoint::Kind::kUnix;
    endpoint.path = std::string(rest);
    return endpoint;
  }
  if (!absl::ConsumePrefix(&rest, "inet:")) {
    return absl::InvalidArgumentError(
        absl::StrCat("milter '", text, "': expected inet:host:port or unix:/path"));
  }
  size_t colon;
  if (absl::StartsWith(rest, "[")) {
    const size_t close = rest.find(']');
    if (close == absl::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return absl::InvalidArgumentError(absl::StrCat("milter '", text, "': expected inet:[address]:port"));
    }
    endpoint.host = std::string(rest.substr(1, close - 1));
    colon = close + 1;
  } else {
    colon = rest.rfind(':');
    if (colon == absl::string_view::npos || colon == 0) {
      return absl::InvalidArgumentError(absl::StrCat("milter '", text, "': expected inet:host:port"));
    }
    endpoint.host = std::string(rest.substr(0, colon));
  }
  uint32_t port = 0;
  if (!absl::SimpleAtoi(rest.substr(colon + 1), &port) || port == 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("milter '", text, "': bad port"));
  }
  endpoint.port = static_cast<uint16_t>(port);
  return endpoint;
}

absl::StatusOr<DefaultAction> ParseDefaultAction(absl::string_view name, absl::string_view value) {
  const std::string lower = absl::AsciiStrToLower(value);
  if (lower == "tempfail") return DefaultAction::kTempfail;
  if (lower == "accept") return DefaultAction::kAccept;
  if (lower == "reject") return DefaultAction::kReject;
  if (lower == "quarantine") return DefaultAction::kQuarantine;
  if (lower == "shutdown") return DefaultAction::kShutdown;
  return Invalid(name, absl::StrCat("'", value, "' is not accept, reject, tempfail, quarantine or shutdown"));
}

absl::StatusOr<std::chrono::milliseconds> ParseMilterTime(absl::string_view name, absl::string_view value) {
  absl::StatusOr<absl::Duration> duration = config::ParseTime(value, 's');
  if (!duration.ok() || *duration <= absl::ZeroDuration()) {
    return Invalid(name, absl::StrCat("'", value, "' is not a positive time (e.g. 30s, 5m)"));
  }
  return std::chrono::milliseconds(absl::ToInt64Milliseconds(*duration));
}

absl::StatusOr<uint32_t> ParseMilterProtocol(absl::string_view value) {
  uint32_t protocol = 0;
  if (!absl::SimpleAtoi(value, &protocol) || OfferedProtocolFlags(protocol) == 0) {
    return Invalid("milter_protocol", absl::StrCat("'", value, "' is not protocol version 2, 3, 4 or 6"));
  }
  return protocol;
}

std::chrono::milliseconds* MilterDefaults::Timeout(absl::string_view name) {
  if (name == "connect_timeout") return &connect_timeout;
  if (name == "command_timeout") return &command_timeout;
  if (name == "content_timeout") return &content_timeout;
  return nullptr;
}

absl::StatusOr<std::vector<MilterConfig>> ParseMilterList(absl::string_view parameter, absl::string_view value,
                                                          const MilterDefaults& defaults) {
  absl::StatusOr<std::vector<std::string>> items = SplitGroups(parameter, value);
  if (!items.ok()) return items.status();
  std::vector<MilterConfig> milters;
  for (const std::string& item : *items) {
    MilterConfig milter;
    static_cast<MilterDefaults&>(milter) = defaults;
    std::vector<std::string> settings;
    if (absl::StartsWith(item, "{")) {
      // "{ endpoint, name = value, … }": the first word is the endpoint, then name=value pairs
      // separated by commas (spaces around '=' allowed).
      absl::string_view group = absl::string_view(item).substr(1);
      std::vector<absl::string_view> parts = absl::StrSplit(group, ',');
      std::vector<std::string> words;
      for (absl::string_view part : parts) {
        std::string word(absl::StripAsciiWhitespace(part));
        if (!word.empty()) words.push_back(std::move(word));
      }
      if (words.empty()) return Invalid(parameter, "empty '{ }' in the milter list");
      milter.name = words.front();
      settings.assign(words.begin() + 1, words.end());
    } else {
      milter.name = item;
    }
    absl::StatusOr<MilterEndpoint> endpoint = ParseMilterEndpoint(milter.name);
    if (!endpoint.ok()) return Invalid(parameter, endpoint.status().message());
    milter.endpoint = *std::move(endpoint);
    for (const std::string& setting : settings) {
      const size_t equals = setting.find('=');
      if (equals == std::string::npos) {
        return Invalid(parameter, absl::StrCat("'", setting, "' in '{ ", milter.name, " … }' is not name = value"));
      }
      const std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(setting.substr(0, equals)));
      const absl::string_view setting_value = absl::StripAsciiWhitespace(absl::string_view(setting).substr(equals + 1));
      const std::string qualified = absl::StrCat(parameter, " { ", milter.name, " }: ", name);
      if (std::chrono::milliseconds* timeout = milter.Timeout(name); timeout != nullptr) {
        absl::StatusOr<std::chrono::milliseconds> time = ParseMilterTime(qualified, setting_value);
        if (!time.ok()) return time.status();
        *timeout = *time;
      } else if (name == "default_action") {
        absl::StatusOr<DefaultAction> action = ParseDefaultAction(qualified, setting_value);
        if (!action.ok()) return action.status();
        milter.default_action = *action;
      } else if (name == "protocol") {
        absl::StatusOr<uint32_t> protocol = ParseMilterProtocol(setting_value);
        if (!protocol.ok()) return Invalid(qualified, protocol.status().message());
        milter.protocol = *protocol;
      } else {
        return Invalid(parameter, absl::StrCat("unknown setting '", name, "' in '{ ", milter.name,
                                               " … }' (connect_timeout, command_timeout, content_timeout, "
                                               "default_action or protocol)"));
      }
    }
    milters.push_back(std::move(milter));
  }
  return milters;
}

}  // namespace postgate::gateway::milter
