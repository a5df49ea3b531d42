#include "core/smtp/proxy_protocol.h"

#include <string>

#include "gtest/gtest.h"

namespace postgate::smtp {
namespace {

using Result = ProxyHeader::Result;

std::string V2(unsigned char command, unsigned char family, const std::string& addresses) {
  std::string header("\r\n\r\n\0\r\nQUIT\n", 12);
  header.push_back(static_cast<char>(0x20 | command));
  header.push_back(static_cast<char>(family));
  header.push_back(static_cast<char>(addresses.size() >> 8));
  header.push_back(static_cast<char>(addresses.size() & 0xff));
  return header + addresses;
}

TEST(ProxyProtocolTest, Version1ByteByByte) {
  const std::string input = "PROXY TCP4 192.168.0.10 10.0.0.1 40000 25\r\nEHLO x\r\n";
  for (size_t n = 1; n < 43; ++n) {
    EXPECT_EQ(ParseProxyHeader(absl::string_view(input).substr(0, n)).result, Result::kNeedMore) << n;
  }
  ProxyHeader header = ParseProxyHeader(input);
  ASSERT_EQ(header.result, Result::kDone);
  EXPECT_EQ(header.consumed, 43u);
  EXPECT_EQ(header.source_address, "192.168.0.10");
  EXPECT_EQ(header.source_port, 40000);
  EXPECT_TRUE(ParseProxyHeader("PROXY TCP6 2001:db8::1 2001:db8::2 1 25\r\n").has_address);
  ProxyHeader unknown = ParseProxyHeader("PROXY UNKNOWN\r\n");
  EXPECT_EQ(unknown.result, Result::kDone);
  EXPECT_FALSE(unknown.has_address);
}

TEST(ProxyProtocolTest, Version2) {
  const std::string tcp4("\xc0\xa8\x00\x0a\x0a\x00\x00\x01\x9c\x40\x00\x19", 12);
  ProxyHeader header = ParseProxyHeader(V2(0x1, 0x11, tcp4) + "EHLO");
  ASSERT_EQ(header.result, Result::kDone);
  EXPECT_EQ(header.consumed, 28u);
  EXPECT_EQ(header.source_address, "192.168.0.10");
  EXPECT_EQ(header.source_port, 40000);
  ProxyHeader local = ParseProxyHeader(V2(0x0, 0x00, ""));
  EXPECT_EQ(local.result, Result::kDone);
  EXPECT_FALSE(local.has_address);
  EXPECT_EQ(ParseProxyHeader(V2(0x1, 0x11, tcp4).substr(0, 20)).result, Result::kNeedMore);
}

TEST(ProxyProtocolTest, Invalid) {
  EXPECT_EQ(ParseProxyHeader("EHLO x\r\n").result, Result::kInvalid);
  EXPECT_EQ(ParseProxyHeader("PROXY TCP4 1.2.3 4.5.6.7 1 2\r\n").result, Result::kInvalid);
  EXPECT_EQ(ParseProxyHeader("PROXY TCP4 1.2.3.4 4.5.6.7 99999 2\r\n").result, Result::kInvalid);
  EXPECT_EQ(ParseProxyHeader("PROXY " + std::string(200, 'x')).result, Result::kInvalid);
  EXPECT_EQ(ParseProxyHeader(V2(0x5, 0x11, std::string(12, '\0'))).result, Result::kInvalid);
}

}  // namespace
}  // namespace postgate::smtp
