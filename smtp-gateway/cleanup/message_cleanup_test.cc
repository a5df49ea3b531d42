#include "smtp-gateway/cleanup/message_cleanup.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace postgate::gateway::cleanup {
namespace {

constexpr char kReceived[] =
    "Received: from client.example (localhost [127.0.0.1])\n"
    "\tby mail169.com (Postgate) with ESMTP id 89F3A110234\n"
    "\tfor <bar@mail169.com>; Mon, 30 Nov 2026 16:23:39 +0000 (UTC)\n";

CleanupOptions LabOptions(std::string sender = "foo@mail169.com") {
  CleanupOptions options;
  options.add_missing_headers = true;
  options.myhostname = "mail169.com";
  options.queue_id = "89F3A110234";
  options.arrival = absl::FromUnixSeconds(1796055819);  // Mon, 30 Nov 2026 16:23:39 UTC
  options.local_zone = absl::UTCTimeZone();
  options.sender = std::move(sender);
  return options;
}

// Feeds the Received: header, then `content` one byte at a time (every split must give the same).
std::string Clean(const CleanupOptions& options, const std::string& content, MessageCleanup** keep = nullptr) {
  static thread_local std::unique_ptr<MessageCleanup> cleanup;
  cleanup = std::make_unique<MessageCleanup>(options, nullptr);
  std::string out;
  cleanup->Feed(kReceived, &out);
  for (char c : content) cleanup->Feed(std::string(1, c), &out);
  cleanup->Finish(&out);
  if (keep != nullptr) *keep = cleanup.get();
  std::string whole_out;
  MessageCleanup whole(options, nullptr);
  whole.Feed(absl::StrCat(kReceived, content), &whole_out);
  whole.Finish(&whole_out);
  EXPECT_EQ(out, whole_out);
  return out;
}

// Expected outputs are what Debian's Postfix 3.7.11 stored for the same input (postfix-peer.sh,
// 2026-11-30), with its own Received: header in place of ours.
TEST(MessageCleanupTest, TheLabsNetcatMessageGetsMessageIdDateAndFromAsPostfixAddsThem) {
  MessageCleanup* cleanup = nullptr;
  EXPECT_EQ(Clean(LabOptions(), "Subject: test\n\nhello\n", &cleanup),
            absl::StrCat(kReceived,
                         "Subject: test\n"
                         "Message-Id: <20261130162339.89F3A110234@mail169.com>\n"
                         "Date: Mon, 30 Nov 2026 16:23:39 +0000 (UTC)\n"
                         "From: foo@mail169.com\n"
                         "\n"
                         "hello\n"));
  EXPECT_EQ(cleanup->message_id(), "<20261130162339.89F3A110234@mail169.com>");
  EXPECT_EQ(cleanup->hops(), 1);
  EXPECT_FALSE(cleanup->too_many_hops());
}

TEST(MessageCleanupTest, TheNullSenderIsMailerDaemonAndAQuotedLocalPartStaysQuoted) {
  EXPECT_EQ(Clean(LabOptions(""), "Subject: x\n\nb\n"),
            absl::StrCat(kReceived, "Subject: x\nMessage-Id: <20261130162339.89F3A110234@mail169.com>\n",
                         "Date: Mon, 30 Nov 2026 16:23:39 +0000 (UTC)\nFrom: MAILER-DAEMON\n\nb\n"));
  EXPECT_EQ(Clean(LabOptions("\"a b\"@mail169.com"), "\nb\n"),
            absl::StrCat(kReceived, "Message-Id: <20261130162339.89F3A110234@mail169.com>\n",
                         "Date: Mon, 30 Nov 2026 16:23:39 +0000 (UTC)\nFrom: \"a b\"@mail169.com\n\nb\n"));
  EXPECT_EQ(QuoteLocalPart("\"ab\"@x.example"), "ab@x.example");
  EXPECT_EQ(QuoteLocalPart("a.b+c@x.example"), "a.b+c@x.example");
  EXPECT_EQ(QuoteLocalPart("a..b@x.example"), "\"a..b\"@x.example");
  EXPECT_EQ(QuoteLocalPart("\"a\\\"b\"@x.example"), "\"a\\\"b\"@x.example");
}

TEST(MessageCleanupTest, AResentHeaderMakesTheAddedHeadersResentOnes) {
  EXPECT_EQ(Clean(LabOptions(), "From: a@example.com\nResent-From: x@example.com\nSubject: r\n\nbody\n"),
            absl::StrCat(kReceived,
                         "From: a@example.com\nResent-From: x@example.com\nSubject: r\n"
                         "Resent-Message-Id: <20261130162339.89F3A110234@mail169.com>\n"
                         "Resent-Date: Mon, 30 Nov 2026 16:23:39 +0000 (UTC)\n\nbody\n"));
  EXPECT_EQ(Clean(LabOptions(), "Resent-Date: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: r\n\nbody\n"),
            absl::StrCat(kReceived,
                         "Resent-Date: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: r\n"
                         "Resent-Message-Id: <20261130162339.89F3A110234@mail169.com>\n"
                         "Resent-From: foo@mail169.com\n\nbody\n"));
}

TEST(MessageCleanupTest, HeadersPresentInAnyCaseAreNotAddedAndTheirMessageIdIsLogged) {
  const std::string content = "message-id: <x@y>\ndate: Mon, 1 Jan 2024 00:00:00 +0000\nfrom: q@example.com\n\nbody\n";
  MessageCleanup* cleanup = nullptr;
  EXPECT_EQ(Clean(LabOptions(), content, &cleanup), absl::StrCat(kReceived, content));
  EXPECT_EQ(cleanup->message_id(), "<x@y>");
}

TEST(MessageCleanupTest, AMessageThatEndsInItsHeadersGetsTheAddedHeadersAndNoEmptyLine) {
  EXPECT_EQ(Clean(LabOptions(), "Subject: nobody\n"),
            absl::StrCat(kReceived, "Subject: nobody\nMessage-Id: <20261130162339.89F3A110234@mail169.com>\n",
                         "Date: Mon, 30 Nov 2026 16:23:39 +0000 (UTC)\nFrom: foo@mail169.com\n"));
  // A last line without its LF is ended before what is appended.
  EXPECT_EQ(Clean(LabOptions(), "Subject: cut"),
            absl::StrCat(kReceived, "Subject: cut\nMessage-Id: <20261130162339.89F3A110234@mail169.com>\n",
                         "Date: Mon, 30 Nov 2026 16:23:39 +0000 (UTC)\nFrom: foo@mail169.com\n"));
}

TEST(MessageCleanupTest, TextWithoutTheEmptyLineGetsItBeforeTheAddedHeadersEnd) {
  // The reference lab's netcat line: not a header, so the header section ends before it.
  EXPECT_EQ(Clean(LabOptions(), "MOREAU--THOMAS, hello\nsecond line\n"),
            absl::StrCat(kReceived, "Message-Id: <20261130162339.89F3A110234@mail169.com>\n",
                         "Date: Mon, 30 Nov 2026 16:23:39 +0000 (UTC)\nFrom: foo@mail169.com\n",
                         "\nMOREAU--THOMAS, hello\nsecond line\n"));
}

TEST(MessageCleanupTest, NothingIsAddedForRemoteClientsButTheUndisclosedHeaderWhenConfigured) {
  CleanupOptions remote = LabOptions();
  remote.add_missing_headers = false;
  EXPECT_EQ(Clean(remote, "Subject: x\n\nb\n"), absl::StrCat(kReceived, "Subject: x\n\nb\n"));
  CleanupOptions undisclosed = LabOptions();
  undisclosed.undisclosed_recipients_header = "To: undisclosed-recipients:;";
  EXPECT_EQ(Clean(undisclosed, "From: a@b.example\nDate: x\nMessage-ID: <1@b>\n\nb\n"),
            absl::StrCat(kReceived, "From: a@b.example\nDate: x\nMessage-ID: <1@b>\n",
                         "To: undisclosed-recipients:;\n\nb\n"));
  EXPECT_EQ(Clean(undisclosed, "From: a@b.example\nDate: x\nMessage-ID: <1@b>\nCC: c@d\n\nb\n"),
            absl::StrCat(kReceived, "From: a@b.example\nDate: x\nMessage-ID: <1@b>\nCC: c@d\n\nb\n"));
}

TEST(MessageCleanupTest, HopsCountOurReceivedHeaderAndTheLimitIsReachedAtFifty) {
  // Postfix 3.7 (hopcount_limit = 50) took 48 Received: headers from the client and refused 49.
  std::string received;
  for (int i = 0; i < 48; ++i) absl::StrAppend(&received, "Received: from x", i, ".example by y.example\n");
  MessageCleanup* cleanup = nullptr;
  Clean(LabOptions(), absl::StrCat(received, "Subject: hops\n\nbody\nReceived: in the body\n"), &cleanup);
  EXPECT_EQ(cleanup->hops(), 49);
  EXPECT_FALSE(cleanup->too_many_hops());
  Clean(LabOptions(), absl::StrCat(received, "received : from the 49th\n\tcontinued\nSubject: hops\n\nbody\n"), &cleanup);
  EXPECT_EQ(cleanup->hops(), 50);
  EXPECT_TRUE(cleanup->too_many_hops());
}

TEST(MessageCleanupTest, AHeaderFieldLongerThanTheLimitKeepsItsFirstBytes) {
  CleanupOptions options = LabOptions();
  options.header_size_limit = 200;  // Our Received: header is 166 bytes.
  const std::string long_subject = absl::StrCat("Subject: ", std::string(300, 's'), "\n\tmore\n");
  const std::string out = Clean(options, absl::StrCat(long_subject, "Message-Id: <1@x>\nDate: d\nFrom: f\n\nbody\n"));
  EXPECT_EQ(out, absl::StrCat(kReceived, "Subject: ", std::string(191, 's'), "\n",
                              "Message-Id: <1@x>\nDate: d\nFrom: f\n\nbody\n"));
}

class Recorder : public ContentObserver {
 public:
  void HeaderField(absl::string_view field) override { events.push_back(absl::StrCat("H:", field)); }
  void EndOfHeaders() override { events.push_back("EOH"); }
  void Body(absl::string_view piece) override { body.append(piece.data(), piece.size()); }
  std::vector<std::string> events;
  std::string body;
};

TEST(MessageCleanupTest, TheObserverSeesWhatIsStoredFieldByFieldThenTheBody) {
  Recorder recorder;
  MessageCleanup cleanup(LabOptions(), &recorder);
  std::string out;
  cleanup.Feed(kReceived, &out);
  cleanup.Feed("From: a@b.example\nSubject: folded\n\tline\n", &out);
  cleanup.Feed("\nbody 1\n", &out);
  cleanup.Feed("body 2\n", &out);
  cleanup.Finish(&out);
  EXPECT_EQ(recorder.events,
            (std::vector<std::string>{absl::StrCat("H:", kReceived), "H:From: a@b.example\n",
                                      "H:Subject: folded\n\tline\n",
                                      "H:Message-Id: <20261130162339.89F3A110234@mail169.com>\n",
                                      "H:Date: Mon, 30 Nov 2026 16:23:39 +0000 (UTC)\n", "EOH"}));
  EXPECT_EQ(recorder.body, "body 1\nbody 2\n");
  EXPECT_EQ(out.substr(out.size() - recorder.body.size() - 1), absl::StrCat("\n", recorder.body));
}

}  // namespace
}  // namespace postgate::gateway::cleanup
