// The pure parts of the SMTP client: reply parsing and the DATA encoding.
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "queue-service/delivery/smtp_client.h"

namespace postgate::queue {
namespace {

std::string Enhanced(absl::string_view text) {
  // "2.1.5 Ok" → "2.1.5".
  size_t end = text.find(' ');
  absl::string_view word = text.substr(0, end);
  std::vector<absl::string_view> parts = absl::StrSplit(word, '.');
  if (parts.size() != 3 || word.size() > 11) return "";
  for (absl::string_view part : parts) {
    int value = 0;
    if (part.empty() || !absl::SimpleAtoi(part, &value)) return "";
  }
  if (word[0] != '2' && word[0] != '4' && word[0] != '5') return "";
  return std::string(word);
}

// What a server said, safe for logs, the API (protobuf strings must be UTF-8) and reports:
// bytes other than printable ASCII become '?', as Postfix's printable() does.
std::string Printable(absl::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  }
  return out;
}

}  // namespace

std::optional<ServerReply> ParseServerReply(const std::vector<std::string>& lines) {
  if (lines.empty()) return std::nullopt;
  const std::string& last = lines.back();
  if (last.size() >= 4 && last[3] == '-') return std::nullopt;  // More lines follow.
  ServerReply reply;
  int code = 0;
  if (last.size() < 3 || !absl::SimpleAtoi(last.substr(0, 3), &code) || code < 200 || code > 599) {
    reply.code = 0;  // Not SMTP: treated as a protocol error (a 4xx-like deferral).
    reply.text = Printable(last);
    reply.lines = {reply.text};
    return reply;
  }
  reply.code = code;
  for (const std::string& line : lines) reply.lines.push_back(line.size() > 4 ? Printable(line.substr(4)) : "");
  reply.enhanced = Enhanced(reply.lines.back());
  reply.text = absl::StrCat(code, " ", absl::StrJoin(reply.lines, " "));
  return reply;
}

std::string WireDataEncoder::Encode(absl::string_view piece) {
  std::string wire;
  wire.reserve(piece.size() + piece.size() / 40 + 8);
  for (char ch : piece) {
    if (line_start_ && ch == '.') wire += '.';
    if (ch == '\n') {
      wire += "\r\n";
      line_start_ = true;
      continue;
    }
    wire += ch;
    line_start_ = false;
  }
  return wire;
}

std::string WireDataEncoder::Finish() { return line_start_ ? ".\r\n" : "\r\n.\r\n"; }

std::string ToWireData(absl::string_view stored) {
  WireDataEncoder encoder;
  std::string wire = encoder.Encode(stored);  // Before Finish: the operands of + are unsequenced.
  return wire + encoder.Finish();
}

}  // namespace postgate::queue
