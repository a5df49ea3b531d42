#include "core/smtp/address.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace postgate::smtp {
namespace {

// RFC 6531 adds UTF8-non-ascii to atext and to domain labels; whether a transaction may use it
// (SMTPUTF8) and whether the bytes are valid UTF-8 is decided by the caller.
bool IsNonAscii(char c) { return static_cast<unsigned char>(c) >= 0x80; }

bool IsAtext(char c) {
  if (absl::ascii_isalnum(static_cast<unsigned char>(c)) || IsNonAscii(c)) return true;
  return absl::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != absl::string_view::npos;
}

bool IsDotAtom(absl::string_view text) {
  if (text.empty() || text.front() == '.' || text.back() == '.') return false;
  char previous = 0;
  for (char c : text) {
    if (c == '.' && previous == '.') return false;
    if (c != '.' && !IsAtext(c)) return false;
    previous = c;
  }
  return true;
}

bool IsQuotedString(absl::string_view text) {
  if (text.size() < 2 || text.front() != '"' || text.back() != '"') return false;
  for (size_t i = 1; i + 1 < text.size(); ++i) {
    unsigned char c = text[i];
    if (c == '\\') {
      if (++i + 1 >= text.size()) return false;
      continue;
    }
    if (c == '"' || c < 32 || c == 127) return false;
  }
  return true;
}

bool IsHostName(absl::string_view domain) {
  if (domain.empty() || domain.size() > 255) return false;
  for (absl::string_view label : absl::StrSplit(domain, '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && !IsNonAscii(c)) {
        return false;
      }
    }
  }
  return true;
}

bool IsAddressLiteral(absl::string_view domain) {
  if (domain.size() < 3 || domain.front() != '[' || domain.back() != ']') return false;
  for (char c : domain.substr(1, domain.size() - 2)) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != ':') return false;
  }
  return true;
}

// Position of the '@' that separates local part and domain, skipping quoted parts.
size_t DomainSeparator(absl::string_view address) {
  bool quoted = false;
  size_t at = absl::string_view::npos;
  for (size_t i = 0; i < address.size(); ++i) {
    if (address[i] == '\\' && quoted) {
      ++i;
    } else if (address[i] == '"') {
      quoted = !quoted;
    } else if (address[i] == '@' && !quoted) {
      at = i;
    }
  }
  return at;
}

}  // namespace

MailboxParts SplitMailbox(absl::string_view address) {
  size_t at = DomainSeparator(address);
  if (at == absl::string_view::npos) return {std::string(address), ""};
  return {std::string(address.substr(0, at)), std::string(address.substr(at + 1))};
}

bool IsValidDomain(absl::string_view domain) {
  return IsHostName(domain) || IsAddressLiteral(domain);
}

bool IsValidMailbox(absl::string_view address) {
  size_t at = DomainSeparator(address);
  absl::string_view local = address.substr(0, at);
  // Like Postfix, "user@example.org@mail169.com" is a local part with an '@' in it (the relay
  // policy, not the syntax check, decides what that is): each '@'-separated piece must be a
  // dot-atom or a quoted string.
  bool quoted = false;
  size_t piece_start = 0;
  for (size_t i = 0; i <= local.size(); ++i) {
    if (i < local.size() && local[i] == '\\' && quoted) {
      ++i;
      continue;
    }
    if (i < local.size() && local[i] == '"') quoted = !quoted;
    if (i == local.size() || (local[i] == '@' && !quoted)) {
      absl::string_view piece = local.substr(piece_start, i - piece_start);
      if (!IsDotAtom(piece) && !IsQuotedString(piece)) return false;
      piece_start = i + 1;
    }
  }
  if (at == absl::string_view::npos) return true;
  absl::string_view domain = address.substr(at + 1);
  // A fully qualified name may end in its root dot ("example.org."), as Postfix accepts.
  if (domain.size() > 1 && domain.back() == '.' && domain.front() != '[') domain.remove_suffix(1);
  return IsHostName(domain) || IsAddressLiteral(domain);
}

ParsedPath ParsePathArgument(absl::string_view argument, absl::string_view prefix) {
  ParsedPath result;
  if (!absl::StartsWithIgnoreCase(argument, prefix)) {
    result.error = PathError::kMissingPrefix;
    return result;
  }
  absl::string_view rest = absl::StripLeadingAsciiWhitespace(argument.substr(prefix.size()));
  if (rest.empty()) {
    result.error = PathError::kMissingPrefix;
    return result;
  }
  absl::string_view path;
  if (rest.front() == '<') {
    // Find the closing bracket outside quotes.
    bool quoted = false;
    size_t close = absl::string_view::npos;
    for (size_t i = 1; i < rest.size(); ++i) {
      if (rest[i] == '\\' && quoted) {
        ++i;
      } else if (rest[i] == '"') {
        quoted = !quoted;
      } else if (rest[i] == '>' && !quoted) {
        close = i;
        break;
      } else if (rest[i] == '<' && !quoted) {
        break;
      }
    }
    if (close == absl::string_view::npos) {
      result.error = PathError::kBadAddress;
      return result;
    }
    path = rest.substr(1, close - 1);
    rest = rest.substr(close + 1);
    if (!rest.empty() && rest.front() != ' ' && rest.front() != '\t') {
      result.error = PathError::kBadAddress;
      return result;
    }
  } else {
    size_t end = rest.find_first_of(" \t");
    path = rest.substr(0, end);
    rest = end == absl::string_view::npos ? absl::string_view() : rest.substr(end);
    if (path.find_first_of("<>") != absl::string_view::npos) {
      result.error = PathError::kBadAddress;
      return result;
    }
  }
  // Drop a source route "@a,@b:" (RFC 5321 §4.1.1.3 / Appendix C).
  if (!path.empty() && path.front() == '@') {
    size_t colon = path.find(':');
    if (colon == absl::string_view::npos) {
      result.error = PathError::kBadAddress;
      return result;
    }
    path = path.substr(colon + 1);
    if (path.empty()) {
      result.error = PathError::kBadAddress;
      return result;
    }
  }
  if (!path.empty() && !IsValidMailbox(path)) {
    result.error = PathError::kBadAddress;
    return result;
  }
  result.path.address = std::string(path);

  for (absl::string_view word : absl::StrSplit(rest, absl::ByAnyChar(" \t"), absl::SkipEmpty())) {
    EsmtpParameter parameter;
    size_t eq = word.find('=');
    absl::string_view keyword = word.substr(0, eq);
    if (keyword.empty() || !std::all_of(keyword.begin(), keyword.end(), [](char c) {
          return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-';
        })) {
      result.error = PathError::kBadParameter;
      return result;
    }
    parameter.text = std::string(word);
    parameter.keyword = absl::AsciiStrToUpper(keyword);
    if (eq != absl::string_view::npos) {
      parameter.value = std::string(word.substr(eq + 1));
      parameter.has_value = true;
    }
    result.path.parameters.push_back(std::move(parameter));
  }
  return result;
}

}  // namespace postgate::smtp
