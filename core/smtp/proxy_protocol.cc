#include "core/smtp/proxy_protocol.h"

#include <arpa/inet.h>

#include <cstring>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace postgate::smtp {
namespace {

constexpr char kV2Signature[] = "\r\n\r\n\0\r\nQUIT\n";
constexpr size_t kV2SignatureLength = 12;
constexpr size_t kV1MaxLength = 107;

ProxyHeader Invalid(std::string why) {
  ProxyHeader header;
  header.result = ProxyHeader::Result::kInvalid;
  header.error = std::move(why);
  return header;
}

ProxyHeader ParseV1(absl::string_view input) {
  const size_t end = input.find("\r\n");
  if (end == absl::string_view::npos) {
    return input.size() >= kV1MaxLength ? Invalid("v1 header too long") : ProxyHeader{};
  }
  std::vector<absl::string_view> words = absl::StrSplit(input.substr(0, end), ' ');
  ProxyHeader header;
  header.result = ProxyHeader::Result::kDone;
  header.consumed = end + 2;
  if (words.size() >= 2 && words[1] == "UNKNOWN") return header;
  if (words.size() != 6 || (words[1] != "TCP4" && words[1] != "TCP6")) {
    return Invalid("malformed v1 header");
  }
  const int family = words[1] == "TCP4" ? AF_INET : AF_INET6;
  unsigned char buffer[16];
  const std::string source(words[2]), destination(words[3]);
  int source_port = 0, destination_port = 0;
  if (inet_pton(family, source.c_str(), buffer) != 1 || inet_pton(family, destination.c_str(), buffer) != 1 ||
      !absl::SimpleAtoi(words[4], &source_port) || !absl::SimpleAtoi(words[5], &destination_port) ||
      source_port < 0 || source_port > 65535 || destination_port < 0 || destination_port > 65535) {
    return Invalid("bad address or port in v1 header");
  }
  header.has_address = true;
  header.source_address = source;
  header.source_port = source_port;
  return header;
}

ProxyHeader ParseV2(absl::string_view input) {
  if (input.size() < 16) return ProxyHeader{};
  const unsigned char version_command = static_cast<unsigned char>(input[12]);
  const unsigned char family = static_cast<unsigned char>(input[13]);
  const size_t length = (static_cast<unsigned char>(input[14]) << 8) | static_cast<unsigned char>(input[15]);
  if ((version_command >> 4) != 2) return Invalid("unsupported v2 version");
  if (input.size() < 16 + length) return ProxyHeader{};
  ProxyHeader header;
  header.result = ProxyHeader::Result::kDone;
  header.consumed = 16 + length;
  const unsigned command = version_command & 0x0F;
  if (command == 0x0) return header;  // LOCAL: a health check from the proxy itself.
  if (command != 0x1) return Invalid("unknown v2 command");
  const char* body = input.data() + 16;
  char text[INET6_ADDRSTRLEN] = {};
  if (family == 0x11 && length >= 12) {  // TCP over IPv4.
    inet_ntop(AF_INET, body, text, sizeof(text));
    header.source_port = (static_cast<unsigned char>(body[8]) << 8) | static_cast<unsigned char>(body[9]);
  } else if (family == 0x21 && length >= 36) {  // TCP over IPv6.
    inet_ntop(AF_INET6, body, text, sizeof(text));
    header.source_port = (static_cast<unsigned char>(body[32]) << 8) | static_cast<unsigned char>(body[33]);
  } else if ((family >> 4) == 0) {
    return header;  // AF_UNSPEC: no address to use.
  } else {
    return Invalid("unsupported v2 address family");
  }
  header.has_address = true;
  header.source_address = text;
  return header;
}

}  // namespace

ProxyHeader ParseProxyHeader(absl::string_view input) {
  const size_t v2_prefix = std::min(input.size(), kV2SignatureLength);
  if (v2_prefix > 0 && std::memcmp(input.data(), kV2Signature, v2_prefix) == 0) {
    return input.size() < kV2SignatureLength ? ProxyHeader{} : ParseV2(input);
  }
  const size_t v1_prefix = std::min<size_t>(input.size(), 6);
  if (absl::string_view("PROXY ").substr(0, v1_prefix) == input.substr(0, v1_prefix)) {
    return input.size() < 6 ? ProxyHeader{} : ParseV1(input);
  }
  return Invalid("no PROXY protocol header");
}

}  // namespace postgate::smtp
