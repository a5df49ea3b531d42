#include "smtp-gateway/metrics/gateway_metrics.h"

#include "gtest/gtest.h"

namespace postgate::gateway {
namespace {

// The replies' first lines as the policy writes them (Debian's Postfix 3.7.11's words).
TEST(RejectReasonTest, RelayRefusalsAreNotMixedWithOtherPolicyRefusals) {
  EXPECT_EQ(GatewayMetrics::RejectReason(554, "5.7.1 <x@example.org>: Relay access denied"), "relay_denied");
  EXPECT_EQ(GatewayMetrics::RejectReason(454, "4.7.1 <x@example.org>: Relay access denied"), "relay_denied");
  EXPECT_EQ(GatewayMetrics::RejectReason(554, "5.7.1 <x@other.example>: Sender address rejected: Access denied"),
            "access_denied");
  EXPECT_EQ(GatewayMetrics::RejectReason(450, "4.7.1 <x@held.example>: Recipient address rejected: Try later"),
            "access_denied");
  EXPECT_EQ(GatewayMetrics::RejectReason(553, "5.7.1 <foo@mail169.com>: Sender address rejected: not logged in"),
            "access_denied");
  EXPECT_EQ(GatewayMetrics::RejectReason(550, "5.1.1 <n@mail169.com>: Recipient address rejected: User unknown"),
            "unknown_recipient");
  EXPECT_EQ(GatewayMetrics::RejectReason(504, "5.5.2 <x>: Sender address rejected: need fully-qualified address"),
            "other");
}

}  // namespace
}  // namespace postgate::gateway
