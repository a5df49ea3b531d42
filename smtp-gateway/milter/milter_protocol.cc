#include "smtp-gateway/milter/milter_protocol.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace postgate::gateway::milter {
namespace {

void AppendUint32(std::string* out, uint32_t value) {
  out->push_back(static_cast<char>((value >> 24) & 0xff));
  out->push_back(static_cast<char>((value >> 16) & 0xff));
  out->push_back(static_cast<char>((value >> 8) & 0xff));
  out->push_back(static_cast<char>(value & 0xff));
}

uint32_t ReadUint32(absl::string_view bytes) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(bytes[0])) << 24) |
         (static_cast<uint32_t>(static_cast<unsigned char>(bytes[1])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(bytes[2])) << 8) |
         static_cast<uint32_t>(static_cast<unsigned char>(bytes[3]));
}

void AppendString(std::string* out, absl::string_view text) {
  out->append(text.data(), text.size());
  out->push_back('\0');
}

// The NUL-terminated strings of a reply's data, in order; an error when the last is unterminated.
absl::StatusOr<std::vector<std::string>> Strings(absl::string_view data, char command) {
  std::vector<std::string> strings;
  while (!data.empty()) {
    const size_t nul = data.find('\0');
    if (nul == absl::string_view::npos) {
      return absl::DataLossError(absl::StrCat("milter reply '", std::string(1, command), "': unterminated string"));
    }
    strings.emplace_back(data.substr(0, nul));
    data.remove_prefix(nul + 1);
  }
  return strings;
}

absl::Status Malformed(char command, absl::string_view what) {
  return absl::DataLossError(absl::StrCat("milter reply '", std::string(1, command), "': ", what));
}

}  // namespace

std::string Packet(char command, absl::string_view data) {
  std::string packet;
  packet.reserve(5 + data.size());
  AppendUint32(&packet, static_cast<uint32_t>(data.size() + 1));
  packet.push_back(command);
  packet.append(data.data(), data.size());
  return packet;
}

std::string OptionNegotiation(uint32_t actions, uint32_t protocol, uint32_t version) {
  std::string data;
  AppendUint32(&data, version);
  AppendUint32(&data, actions);
  AppendUint32(&data, protocol);
  return Packet('O', data);
}

std::string Macros(char for_command, const std::vector<std::pair<std::string, std::string>>& macros) {
  std::string data(1, for_command);
  for (const auto& [name, value] : macros) {
    AppendString(&data, name);
    AppendString(&data, value);
  }
  return Packet('D', data);
}

std::string Connect(absl::string_view hostname, Family family, uint16_t port, absl::string_view address) {
  std::string data;
  AppendString(&data, hostname);
  data.push_back(static_cast<char>(family));
  if (family != Family::kUnknown) {
    data.push_back(static_cast<char>(port >> 8));
    data.push_back(static_cast<char>(port & 0xff));
    AppendString(&data, address);
  }
  return Packet('C', data);
}

std::string Helo(absl::string_view name) {
  std::string data;
  AppendString(&data, name);
  return Packet('H', data);
}

namespace {
std::string AddressCommand(char command, absl::string_view address, const std::vector<std::string>& parameters) {
  std::string data;
  AppendString(&data, absl::StrCat("<", address, ">"));
  for (const std::string& parameter : parameters) AppendString(&data, parameter);
  return Packet(command, data);
}
}  // namespace

std::string Mail(absl::string_view address, const std::vector<std::string>& parameters) {
  return AddressCommand('M', address, parameters);
}
std::string Recipient(absl::string_view address, const std::vector<std::string>& parameters) {
  return AddressCommand('R', address, parameters);
}
std::string Data() { return Packet('T', ""); }
std::string Header(absl::string_view name, absl::string_view value) {
  std::string data;
  AppendString(&data, name);
  AppendString(&data, value);
  return Packet('L', data);
}
std::string EndOfHeaders() { return Packet('N', ""); }
std::string Body(absl::string_view chunk) { return Packet('B', chunk); }
std::string EndOfMessage() { return Packet('E', ""); }
std::string Abort() { return Packet('A', ""); }
std::string Quit() { return Packet('Q', ""); }
std::string QuitNewConnection() { return Packet('K', ""); }

absl::StatusOr<Reply> DecodeReply(char command, absl::string_view data) {
  using Kind = Reply::Kind;
  Reply reply;
  const auto simple = [&](Kind kind) -> absl::StatusOr<Reply> {
    reply.kind = kind;
    return reply;
  };
  switch (command) {
    case 'O': {
      if (data.size() < 12) return Malformed(command, "option negotiation shorter than 12 bytes");
      reply.kind = Kind::kOptionNegotiation;
      reply.version = ReadUint32(data);
      reply.actions = ReadUint32(data.substr(4));
      reply.protocol = ReadUint32(data.substr(8));
      data.remove_prefix(12);
      while (!data.empty()) {  // Macro lists the milter wants: stage, then "{name} {name}…\0".
        if (data.size() < 5) return Malformed(command, "truncated macro list");
        const uint32_t stage = ReadUint32(data);
        data.remove_prefix(4);
        const size_t nul = data.find('\0');
        if (nul == absl::string_view::npos) return Malformed(command, "unterminated macro list");
        if (stage > static_cast<uint32_t>(MacroStage::kEndOfHeaders)) return Malformed(command, "unknown macro stage");
        reply.macro_lists.emplace_back(static_cast<MacroStage>(stage), std::string(data.substr(0, nul)));
        data.remove_prefix(nul + 1);
      }
      return reply;
    }
    case 'a': return simple(Kind::kAccept);
    case 'c': return simple(Kind::kContinue);
    case 'r': return simple(Kind::kReject);
    case 't': return simple(Kind::kTempfail);
    case 'd': return simple(Kind::kDiscard);
    case 'f': return simple(Kind::kConnectionFailure);
    case 'p': return simple(Kind::kProgress);
    case 's': return simple(Kind::kSkip);
    case 'b':
      reply.kind = Kind::kReplaceBody;
      reply.text = std::string(data);
      return reply;
    case 'i':
    case 'm': {
      if (data.size() < 4) return Malformed(command, "no header index");
      reply.kind = command == 'i' ? Kind::kInsertHeader : Kind::kChangeHeader;
      reply.index = ReadUint32(data);
      absl::StatusOr<std::vector<std::string>> strings = Strings(data.substr(4), command);
      if (!strings.ok()) return strings.status();
      if (strings->size() != 2 || (*strings)[0].empty()) return Malformed(command, "expected a header name and value");
      reply.name = (*strings)[0];
      reply.value = (*strings)[1];
      return reply;
    }
    default:
      break;
  }
  absl::StatusOr<std::vector<std::string>> strings = Strings(data, command);
  if (!strings.ok()) return strings.status();
  const std::vector<std::string>& s = *strings;
  switch (command) {
    case 'y':
      if (s.size() != 1 || s[0].size() < 3) return Malformed(command, "expected one reply text");
      reply.kind = Kind::kReplyCode;
      reply.text = s[0];
      return reply;
    case 'q':
      if (s.size() != 1) return Malformed(command, "expected one reason");
      reply.kind = Kind::kQuarantine;
      reply.text = s[0];
      return reply;
    case 'h':
      if (s.size() != 2 || s[0].empty()) return Malformed(command, "expected a header name and value");
      reply.kind = Kind::kAddHeader;
      reply.name = s[0];
      reply.value = s[1];
      return reply;
    case '+':
    case '-':
      if (s.size() != 1 || s[0].empty()) return Malformed(command, "expected one address");
      reply.kind = command == '+' ? Kind::kAddRecipient : Kind::kDeleteRecipient;
      reply.address = s[0];
      return reply;
    case '2':
    case 'e':
      if (s.empty() || s.size() > 2 || s[0].empty()) return Malformed(command, "expected an address and arguments");
      reply.kind = command == '2' ? Kind::kAddRecipient : Kind::kChangeSender;
      reply.address = s[0];
      if (s.size() == 2) reply.text = s[1];
      return reply;
    default:
      return Malformed(command, "unknown reply");
  }
}

uint32_t OfferedProtocolFlags(uint32_t version) {
  constexpr uint32_t kVersion2 =
      kNoConnect | kNoHelo | kNoMail | kNoRecipient | kNoBody | kNoHeaders | kNoEndOfHeaders;
  switch (version) {
    case 2: return kVersion2;
    case 3: return kVersion2 | kNoUnknown;
    case 4: return kVersion2 | kNoUnknown | kNoData;
    case 6: return kAllProtocolFlags;
    default: return 0;
  }
}

absl::StatusOr<Negotiated> Negotiate(const Reply& reply, uint32_t offered_actions, uint32_t offered_protocol) {
  if (reply.kind != Reply::Kind::kOptionNegotiation) {
    return absl::FailedPreconditionError("milter: expected an option negotiation reply");
  }
  if (reply.version < 2) {
    return absl::FailedPreconditionError(absl::StrCat("milter: protocol version ", reply.version, " is too old"));
  }
  if ((reply.actions & ~offered_actions) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "milter: requested action mask 0x%x does not match the offered 0x%x", reply.actions, offered_actions));
  }
  if ((reply.protocol & ~offered_protocol) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "milter: event mask 0x%x includes features not offered (0x%x)", reply.protocol, offered_protocol));
  }
  Negotiated negotiated;
  negotiated.version = std::min(reply.version, kProtocolVersion);
  negotiated.actions = reply.actions;
  negotiated.events = reply.protocol;
  negotiated.macro_lists = reply.macro_lists;
  return negotiated;
}

std::optional<absl::StatusOr<Reply>> ReplyReader::Next() {
  if (buffer_.size() < 4) return std::nullopt;
  const uint32_t length = ReadUint32(buffer_);
  if (length == 0 || length > kMaxPacketData + 1) {
    return absl::StatusOr<Reply>(absl::DataLossError(absl::StrCat("milter reply of ", length, " bytes")));
  }
  if (buffer_.size() < 4 + static_cast<size_t>(length)) return std::nullopt;
  absl::StatusOr<Reply> reply = DecodeReply(buffer_[4], absl::string_view(buffer_).substr(5, length - 1));
  buffer_.erase(0, 4 + length);
  return reply;
}

}  // namespace postgate::gateway::milter
