#include "core/smtp/xtext.h"

#include "absl/strings/str_format.h"

namespace postgate::smtp {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsXchar(char c) { return c >= '!' && c <= '~' && c != '+' && c != '='; }

}  // namespace

std::optional<std::string> DecodeXtext(absl::string_view xtext) {
  std::string out;
  for (size_t i = 0; i < xtext.size(); ++i) {
    const char c = xtext[i];
    if (c == '+') {
      if (i + 2 >= xtext.size()) return std::nullopt;
      const int high = HexValue(xtext[i + 1]);
      const int low = HexValue(xtext[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else if (IsXchar(c)) {
      out.push_back(c);
    } else {
      return std::nullopt;
    }
  }
  return out;
}

std::string EncodeXtext(absl::string_view text) {
  std::string out;
  for (char c : text) {
    if (IsXchar(c)) {
      out.push_back(c);
    } else {
      absl::StrAppendFormat(&out, "+%02X", static_cast<unsigned char>(c));
    }
  }
  return out;
}

}  // namespace postgate::smtp
