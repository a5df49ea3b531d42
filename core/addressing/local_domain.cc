#include "core/addressing/local_domain.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/smtp/address.h"

namespace postgate::addressing {
namespace {

std::string NormalizeDomain(absl::string_view domain) {
  std::string lower = absl::AsciiStrToLower(domain);
  while (!lower.empty() && lower.back() == '.') lower.pop_back();
  return lower;
}

}  // namespace

LocalDomain::LocalDomain(const config::MainCf& cf, config::AliasTable aliases)
    : aliases_(std::move(aliases)),
      myorigin_(cf.Get("myorigin")),
      delimiter_(cf.Get("recipient_delimiter")) {
  for (const std::string& domain : cf.GetList("mydestination")) domains_.insert(NormalizeDomain(domain));
  for (const std::string& user : cf.GetList("postgate_local_users")) {
    users_.insert(absl::AsciiStrToLower(user));
  }
}

bool LocalDomain::IsOriginOrLocal(absl::string_view domain) const {
  const std::string normalized = NormalizeDomain(domain);
  return normalized == NormalizeDomain(myorigin_) || domains_.contains(normalized);
}

std::string LocalDomain::Qualify(absl::string_view address) const {
  if (address.empty()) return "";
  if (!smtp::SplitMailbox(address).domain.empty()) return std::string(address);
  return absl::StrCat(address, "@", myorigin_);
}

namespace {

// A local part without its quotes and quoting backslashes ("\"a b\"" → "a b").
std::string Dequote(absl::string_view local_part) {
  std::string out;
  bool quoted = false;
  for (size_t i = 0; i < local_part.size(); ++i) {
    const char c = local_part[i];
    if (c == '"') {
      quoted = !quoted;
    } else if (c == '\\' && quoted && i + 1 < local_part.size()) {
      out += local_part[++i];
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

ClassifiedAddress LocalDomain::Classify(absl::string_view address) const {
  smtp::MailboxParts parts = smtp::SplitMailbox(Qualify(address));
  ClassifiedAddress result;
  result.domain = NormalizeDomain(parts.domain);
  result.local = domains_.contains(result.domain);
  // Quoting changes nothing about who is meant (RFC 5321 §4.1.2): "bar"@ is bar@, while
  // "user@example.org"@ carries a route in its dequoted local part.
  result.local_part = absl::AsciiStrToLower(Dequote(parts.local_part));
  result.routing_syntax = result.local_part.find_first_of("%!@") != std::string::npos;
  result.base = result.local_part;
  if (!delimiter_.empty()) {
    size_t split = result.local_part.find_first_of(delimiter_);
    if (split != std::string::npos && split > 0) {
      result.base = result.local_part.substr(0, split);
      result.extension = result.local_part.substr(split + 1);
    }
  }
  return result;
}

bool LocalDomain::IsKnownRecipient(const ClassifiedAddress& address) const {
  if (!address.local || address.routing_syntax) return false;
  for (const std::string* name : {&address.local_part, &address.base}) {
    if (users_.contains(*name) || aliases_.Contains(*name)) return true;
  }
  return false;
}

}  // namespace postgate::addressing
