#include "smtp-gateway/policy/access_map.h"

#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace postgate::gateway::policy {
namespace {

using smtp::Reply;

// "user+ext@domain" → "user@domain" (nullopt without an extension).
std::optional<std::string> WithoutExtension(absl::string_view local, absl::string_view domain, char delimiter) {
  if (delimiter == '\0') return std::nullopt;
  const size_t at = local.find(delimiter);
  if (at == absl::string_view::npos || at == 0) return std::nullopt;
  return absl::StrCat(local.substr(0, at), domain.empty() ? "" : "@", domain);
}

bool IsEnhancedCode(absl::string_view word) {
  int dots = 0;
  for (char c : word) {
    if (c == '.') ++dots;
    else if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return dots == 2 && word.size() >= 5;
}

}  // namespace

std::optional<AccessDecision> ApplyAccessAction(absl::string_view action, absl::string_view address,
                                                absl::string_view what) {
  action = absl::StripAsciiWhitespace(action);
  const size_t space = action.find_first_of(" \t");
  const absl::string_view word = action.substr(0, space);
  const absl::string_view text =
      space == absl::string_view::npos ? absl::string_view() : absl::StripLeadingAsciiWhitespace(action.substr(space));
  const auto refuse = [&](int code, absl::string_view enhanced, absl::string_view reason) {
    return AccessDecision{AccessDecision::Kind::kRefuse,
                          Reply::Make(code, enhanced, absl::StrCat("<", address, ">: ", what, " rejected: ", reason))};
  };
  if (absl::EqualsIgnoreCase(word, "OK") || absl::EqualsIgnoreCase(word, "PERMIT")) {
    return AccessDecision{AccessDecision::Kind::kPermit, {}};
  }
  int number = 0;
  if (space == absl::string_view::npos && absl::SimpleAtoi(word, &number)) {
    return AccessDecision{AccessDecision::Kind::kPermit, {}};  // All-numeric: OK, as Postfix reads it.
  }
  if (absl::EqualsIgnoreCase(word, "DUNNO")) return AccessDecision{};
  if (absl::EqualsIgnoreCase(word, "REJECT")) return refuse(554, "5.7.1", text.empty() ? "Access denied" : text);
  if (absl::EqualsIgnoreCase(word, "DEFER")) return refuse(450, "4.7.1", text.empty() ? "Access denied" : text);
  // "NNN [x.y.z] text" with a 4xx or 5xx code.
  if (word.size() == 3 && absl::SimpleAtoi(word, &number) && number >= 400 && number <= 599 && !text.empty()) {
    const size_t text_space = text.find_first_of(" \t");
    const absl::string_view first = text.substr(0, text_space);
    if (IsEnhancedCode(first) && first[0] == word[0]) {
      const absl::string_view rest = text_space == absl::string_view::npos
                                         ? absl::string_view()
                                         : absl::StripLeadingAsciiWhitespace(text.substr(text_space));
      return refuse(number, first, rest);
    }
    return refuse(number, number < 500 ? "4.7.1" : "5.7.1", text);
  }
  return std::nullopt;
}

absl::StatusOr<std::shared_ptr<const AccessMap>> AccessMap::FromTable(config::LookupTable table, std::string name,
                                                                      char recipient_delimiter) {
  for (const auto& [key, value] : table.entries()) {
    if (!ApplyAccessAction(value, "x@example.com", "Sender address")) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": the action for \"", key,
          "\" is not one Postgate has (OK, PERMIT, DUNNO, REJECT [text], DEFER [text], 4NN/5NN [x.y.z] text)"));
    }
  }
  return std::shared_ptr<const AccessMap>(new AccessMap(std::move(table), recipient_delimiter));
}

absl::StatusOr<std::shared_ptr<const AccessMap>> AccessMap::Load(absl::string_view spec, char recipient_delimiter) {
  absl::StatusOr<config::LookupTable> table = config::LoadLookupTable(spec);
  if (!table.ok()) return table.status();
  return FromTable(*std::move(table), std::string(spec), recipient_delimiter);
}

const std::string* AccessMap::Find(absl::string_view address) const {
  const size_t at = address.rfind('@');
  const absl::string_view local = at == absl::string_view::npos ? address : address.substr(0, at);
  const absl::string_view domain = at == absl::string_view::npos ? absl::string_view() : address.substr(at + 1);
  std::vector<std::string> keys = {std::string(address)};
  if (std::optional<std::string> plain = WithoutExtension(local, domain, delimiter_)) keys.push_back(*plain);
  if (!domain.empty()) {
    keys.emplace_back(domain);
    for (size_t dot = domain.find('.'); dot != absl::string_view::npos; dot = domain.find('.', dot + 1)) {
      keys.emplace_back(domain.substr(dot + 1));  // A parent domain matches its subdomains…
      keys.emplace_back(domain.substr(dot));      // …as ".parent" does.
    }
  }
  if (!local.empty()) {
    keys.push_back(absl::StrCat(local, "@"));
    if (std::optional<std::string> plain = WithoutExtension(local, "", delimiter_)) keys.push_back(absl::StrCat(*plain, "@"));
  }
  for (const std::string& key : keys) {
    if (const std::string* value = table_.Find(key)) return value;
  }
  return nullptr;
}

AccessDecision AccessMap::Decide(absl::string_view address, absl::string_view what) const {
  const std::string* value = Find(address);
  if (value == nullptr) return AccessDecision{};
  return ApplyAccessAction(*value, address, what).value_or(AccessDecision{});
}

}  // namespace postgate::gateway::policy
