#include "core/addressing/header_addresses.h"

#include <array>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace postgate::addressing {
namespace {

struct Span {
  size_t begin = 0;
  size_t end = 0;
};

// Past the quoted string or comment that starts at `at` (its closing character included; the
// end of the text when it is not closed). Comments nest; a backslash quotes the next character.
size_t SkipDelimited(absl::string_view text, size_t at, char open, char close) {
  int depth = 0;
  for (size_t i = at; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\') {
      ++i;
    } else if (open != close && c == open) {
      ++depth;
    } else if (c == close && (open == close ? i > at : --depth == 0)) {
      return i + 1;
    }
  }
  return text.size();
}

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// The address spans of an address list, in order.
std::vector<Span> FindAddresses(absl::string_view text) {
  std::vector<Span> found;
  std::optional<Span> angle;                 // The current mailbox's <…>.
  std::optional<Span> bare;                  // The current mailbox's words, without <…>.
  bool bare_has_blank = false;
  size_t last_word_end = 0;
  const auto finish = [&] {
    if (angle) {
      Span address = *angle;
      // A source route, "<@a,@b:user@domain>", is not part of the address.
      if (address.end > address.begin && text[address.begin] == '@') {
        const size_t colon = text.substr(0, address.end).find(':', address.begin);
        if (colon != absl::string_view::npos) address.begin = colon + 1;
      }
      found.push_back(address);
    } else if (bare && !bare_has_blank) {
      found.push_back(*bare);
    }
    angle.reset();
    bare.reset();
    bare_has_blank = false;
  };
  for (size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == '(') {
      i = SkipDelimited(text, i, '(', ')');
    } else if (IsBlank(c)) {
      ++i;
    } else if (c == ',' || c == ';') {
      finish();
      ++i;
    } else if (c == ':') {
      // A group's name ends: what came before was not an address.
      angle.reset();
      bare.reset();
      bare_has_blank = false;
      ++i;
    } else if (c == '<') {
      size_t j = i + 1;
      while (j < text.size() && text[j] != '>') j = text[j] == '"' ? SkipDelimited(text, j, '"', '"') : j + 1;
      angle = Span{i + 1, std::min(j, text.size())};
      i = j + 1;
    } else {
      const size_t start = i;
      i = c == '"' ? SkipDelimited(text, i, '"', '"') : i + 1;
      while (i < text.size() && !IsBlank(text[i]) && absl::string_view("(),;:<\"").find(text[i]) == absl::string_view::npos) {
        // A domain literal ("[IPv6:::1]") is one piece, colons and all.
        if (text[i] == '[') {
          const size_t close = text.find(']', i);
          i = close == absl::string_view::npos ? text.size() : close + 1;
          continue;
        }
        ++i;
      }
      if (bare) {
        if (start > last_word_end) bare_has_blank = true;
        bare->end = i;
      } else {
        bare = Span{start, i};
      }
      last_word_end = i;
    }
  }
  finish();
  return found;
}

}  // namespace

HeaderAddressRole AddressRoleOf(absl::string_view header_name) {
  static constexpr std::array<absl::string_view, 10> kSender = {
      "From", "Sender", "Reply-To", "Errors-To", "Return-Path", "Return-Receipt-To",
      "Disposition-Notification-To", "Mail-Followup-To", "Resent-From", "Resent-Sender"};
  static constexpr std::array<absl::string_view, 8> kRecipient = {
      "To", "Cc", "Bcc", "Apparently-To", "Resent-To", "Resent-Cc", "Resent-Bcc", "Resent-Reply-To"};
  for (absl::string_view name : kSender) {
    if (absl::EqualsIgnoreCase(name, header_name)) return HeaderAddressRole::kSender;
  }
  for (absl::string_view name : kRecipient) {
    if (absl::EqualsIgnoreCase(name, header_name)) return HeaderAddressRole::kRecipient;
  }
  return HeaderAddressRole::kNone;
}

std::optional<std::string> RewriteHeaderAddresses(absl::string_view field, const AddressRewrite& rewrite) {
  const size_t colon = field.find(':');
  if (colon == absl::string_view::npos) return std::nullopt;
  const absl::string_view value = field.substr(colon + 1);
  std::string out(field.substr(0, colon + 1));
  size_t copied = 0;
  bool changed = false;
  for (const Span& span : FindAddresses(value)) {
    const absl::string_view address = value.substr(span.begin, span.end - span.begin);
    if (address.empty()) continue;
    std::optional<std::string> replacement = rewrite(address);
    if (!replacement || *replacement == address) continue;
    absl::StrAppend(&out, value.substr(copied, span.begin - copied));
    out.append(*replacement);
    copied = span.end;
    changed = true;
  }
  if (!changed) return std::nullopt;
  absl::StrAppend(&out, value.substr(copied));
  return out;
}

std::optional<std::string> RewriteAddressHeader(absl::string_view field, const RoleAddressRewrite& rewrite) {
  const size_t colon = field.find(':');
  if (colon == absl::string_view::npos) return std::nullopt;
  const HeaderAddressRole role = AddressRoleOf(absl::StripTrailingAsciiWhitespace(field.substr(0, colon)));
  if (role == HeaderAddressRole::kNone) return std::nullopt;
  return RewriteHeaderAddresses(field, [&](absl::string_view address) { return rewrite(address, role); });
}

}  // namespace postgate::addressing
