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

// The table Debian's Postfix 3.7.11 was given as header_checks (2026-11-30), and what it did.
constexpr char kHeaderChecks[] =
    "/^Subject:.*reject-plain/ REJECT\n"
    "/^Subject:.*reject-text/ REJECT Spam is not welcome here\n"
    "/^Subject:.*defer-me/ REJECT 4.7.1 Come back later\n"
    "/^Subject:.*warn-me/ WARN looks odd\n"
    "/^X-Drop-Me:/ IGNORE\n"
    "/^Subject: replace-me(.*)/ REPLACE Subject: replaced$1\n"
    "/^Subject:.*prepend-me/ PREPEND X-Prepended: yes\n"
    "/^Subject:.*hold-me/ HOLD held for review\n"
    "/^Subject:.*discard-me/ DISCARD gone\n"
    "/^Subject:.*redirect-me/ REDIRECT foo@mail169.com\n"
    "/^Content-Type:.*application\\/x-msdownload/ REJECT 5.7.1 no programs\n";

class HeaderChecksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::shared_ptr<const config::RegexpTable>> table = config::RegexpTable::Parse(kHeaderChecks, "hc");
    ASSERT_TRUE(table.ok()) << table.status();
    table_ = *table;
  }
  std::string Run(const std::string& subject, const std::string& extra = "") {
    CleanupOptions options = LabOptions();
    options.header_checks = table_.get();
    options.mime_header_checks = table_.get();
    cleanup_ = std::make_unique<MessageCleanup>(options, nullptr);
    std::string out;
    cleanup_->Feed(absl::StrCat("Subject: ", subject, "\n", extra, "Message-Id: <m@x>\nDate: d\nFrom: f\n\nbody\n"), &out);
    cleanup_->Finish(&out);
    return out;
  }
  std::shared_ptr<const config::RegexpTable> table_;
  std::unique_ptr<MessageCleanup> cleanup_;
};

TEST_F(HeaderChecksTest, RejectWithPostfixsReplies) {
  Run("reject-plain");
  ASSERT_TRUE(cleanup_->rejection());
  EXPECT_EQ(cleanup_->rejection()->code, 550);
  EXPECT_EQ(absl::StrCat(cleanup_->rejection()->enhanced, " ", cleanup_->rejection()->text), "5.7.1 message content rejected");
  ASSERT_EQ(cleanup_->actions().size(), 1u);
  EXPECT_EQ(cleanup_->actions()[0].action, "reject");
  EXPECT_EQ(cleanup_->actions()[0].header, "Subject: reject-plain");
  EXPECT_EQ(cleanup_->actions()[0].text, "5.7.1 message content rejected");
  Run("reject-text");
  EXPECT_EQ(cleanup_->rejection()->text, "Spam is not welcome here");
  Run("defer-me");
  EXPECT_EQ(cleanup_->rejection()->code, 451);
  EXPECT_EQ(cleanup_->rejection()->enhanced, "4.7.1");
  EXPECT_EQ(cleanup_->rejection()->text, "Come back later");
  Run("fine", "Content-Type: application/x-msdownload\n");  // A MIME header: mime_header_checks.
  EXPECT_EQ(cleanup_->rejection()->text, "no programs");
}

TEST_F(HeaderChecksTest, HeaderEditsAsPostfixStoredThem) {
  EXPECT_EQ(Run("warn-me"), "Subject: warn-me\nMessage-Id: <m@x>\nDate: d\nFrom: f\n\nbody\n");
  EXPECT_EQ(cleanup_->actions()[0].action, "warning");
  EXPECT_EQ(cleanup_->actions()[0].text, "looks odd");
  EXPECT_FALSE(cleanup_->rejection());
  EXPECT_EQ(Run("drop", "X-Drop-Me: 1\n"), "Subject: drop\nMessage-Id: <m@x>\nDate: d\nFrom: f\n\nbody\n");
  EXPECT_TRUE(cleanup_->actions().empty());  // IGNORE is not logged.
  EXPECT_EQ(Run("replace-me now"), "Subject: replaced now\nMessage-Id: <m@x>\nDate: d\nFrom: f\n\nbody\n");
  EXPECT_EQ(cleanup_->actions()[0].text, "Subject: replaced now");
  EXPECT_EQ(Run("prepend-me"), "X-Prepended: yes\nSubject: prepend-me\nMessage-Id: <m@x>\nDate: d\nFrom: f\n\nbody\n");
}

TEST_F(HeaderChecksTest, HoldDiscardAndRedirectAreForTheQueue) {
  Run("hold-me");
  EXPECT_EQ(cleanup_->hold(), "held for review");
  EXPECT_FALSE(cleanup_->discard());
  Run("discard-me");
  EXPECT_TRUE(cleanup_->discard());
  EXPECT_EQ(cleanup_->actions()[0].action, "discard");
  Run("redirect-me", "Content-Type: application/x-msdownload\n");  // After REDIRECT no more checks.
  EXPECT_EQ(cleanup_->redirect(), "foo@mail169.com");
  EXPECT_FALSE(cleanup_->rejection());
  EXPECT_EQ(UnsupportedHeaderAction("BCC a@b"), "BCC");
  EXPECT_EQ(UnsupportedHeaderAction("FILTER smtp:x"), "FILTER");
  EXPECT_EQ(UnsupportedHeaderAction("hold"), std::nullopt);
}

}  // namespace
}  // namespace postgate::gateway::cleanup
