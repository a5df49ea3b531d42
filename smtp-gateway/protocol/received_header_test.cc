#include "smtp-gateway/protocol/received_header.h"

#include "gtest/gtest.h"

namespace postgate::gateway::protocol {
namespace {

ReceivedFields Reference() {
  return ReceivedFields{"x", "localhost", "127.0.0.1", "mail169.com", "Postgate", "ESMTP",
                        "40F2D10A249", {"bar@mail169.com"}, "Thu, 26 Nov 2026 16:23:51 +0000 (UTC)", ""};
}

TEST(ReceivedHeaderTest, OneRecipientLikePostfix) {
  EXPECT_EQ(FormatReceivedHeader(Reference()),
            "Received: from x (localhost [127.0.0.1])\n"
            "\tby mail169.com (Postgate) with ESMTP id 40F2D10A249\n"
            "\tfor <bar@mail169.com>; Thu, 26 Nov 2026 16:23:51 +0000 (UTC)\n");
}

TEST(ReceivedHeaderTest, SeveralRecipientsAreNotListed) {
  ReceivedFields fields = Reference();
  fields.recipients.push_back("foo@mail169.com");
  fields.helo.clear();
  EXPECT_EQ(FormatReceivedHeader(fields),
            "Received: from localhost (localhost [127.0.0.1])\n"
            "\tby mail169.com (Postgate) with ESMTP id 40F2D10A249;\n"
            "\tThu, 26 Nov 2026 16:23:51 +0000 (UTC)\n");
}

TEST(ReceivedHeaderTest, TlsLikePostfix) {
  ReceivedFields fields = Reference();
  fields.protocol = "ESMTPS";
  fields.tls = "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)";
  EXPECT_EQ(FormatReceivedHeader(fields),
            "Received: from x (localhost [127.0.0.1])\n"
            "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\n"
            "\t(No client certificate requested)\n"
            "\tby mail169.com (Postgate) with ESMTPS id 40F2D10A249\n"
            "\tfor <bar@mail169.com>; Thu, 26 Nov 2026 16:23:51 +0000 (UTC)\n");
}

}  // namespace
}  // namespace postgate::gateway::protocol
