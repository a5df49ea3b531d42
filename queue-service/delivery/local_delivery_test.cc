#include "queue-service/delivery/local_delivery.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "queue-service/model/record.h"

namespace postgate::queue {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class LocalDeliveryTest : public ::testing::Test {
 protected:
  LocalDeliveryTest()
      : dir_(fs::temp_directory_path() / ("postgate-local-" + std::to_string(getpid()))),
        cf_(*config::MainCf::Parse("myhostname = mail169.com\nmydomain = mail169.com\n"
                                   "mydestination = mail169.com, localhost\n"
                                   "recipient_delimiter = +\npostgate_local_users = foo bar\n",
                                   "main.cf", "host")),
        domain_(cf_, Aliases()) {
    fs::remove_all(dir_);
  }
  ~LocalDeliveryTest() override { fs::remove_all(dir_); }

  static config::AliasTable Aliases() {
    config::AliasTable aliases;
    EXPECT_TRUE(aliases.Parse("postmaster: root\nroot: bar\nteam: foo, bar\nloop1: loop2\n"
                              "loop2: loop1\n", "aliases").ok());
    return aliases;
  }

  LocalDelivery Make(MailboxFormat format, uint64_t limit = 0) {
    return LocalDelivery(domain_, {dir_.string(), format, limit, "mail169.com"});
  }

  static rec::Message Message(std::vector<std::string> recipients, std::string sender = "foo@mail169.com") {
    rec::Message message;
    message.set_queue_id("0000000000ABC");
    message.mutable_envelope()->set_sender(sender);
    message.mutable_arrival_time()->set_seconds(1795000000);
    for (const std::string& r : recipients) message.add_recipients()->set_address(r);
    message.set_size(body_.size());
    return message;
  }

  static absl::Status Content(const std::function<absl::Status(absl::string_view)>& sink) {
    // Two chunks, split inside a "From " line, as the store may hand them out.
    if (absl::Status s = sink(body_.substr(0, 20)); !s.ok()) return s;
    return sink(body_.substr(20));
  }

  std::vector<std::string> Files(const std::string& user, const char* sub = "new") {
    std::vector<std::string> files;
    fs::path path = dir_ / user / sub;
    if (!fs::exists(path)) return files;
    for (const auto& entry : fs::directory_iterator(path)) {
      std::ifstream in(entry.path());
      std::stringstream text;
      text << in.rdbuf();
      files.push_back(text.str());
    }
    return files;
  }

  static inline const std::string body_ = "Subject: hi\n\nline one\nFrom me\n>From you\nend\n";
  fs::path dir_;
  config::MainCf cf_;
  addressing::LocalDomain domain_;
};

TEST_F(LocalDeliveryTest, MaildirWithPostfixHeaders) {
  LocalDelivery delivery = Make(MailboxFormat::kMaildir);
  rec::Message message = Message({"bar+tag@mail169.com"});
  DeliveryOutcome outcome = delivery.Deliver(message, 0, Content, false);
  EXPECT_EQ(outcome.state, rec::RECIPIENT_STATE_DELIVERED);
  EXPECT_EQ(outcome.dsn_status, "2.0.0");
  EXPECT_EQ(outcome.reason, "delivered to maildir");
  std::vector<std::string> files = Files("bar");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0], "Return-Path: <foo@mail169.com>\nX-Original-To: bar+tag@mail169.com\n"
                      "Delivered-To: bar+tag@mail169.com\n" + body_);
  EXPECT_TRUE(Files("bar", "tmp").empty());
}

TEST_F(LocalDeliveryTest, RetryDoesNotDeliverTwice) {
  LocalDelivery delivery = Make(MailboxFormat::kMaildir);
  rec::Message message = Message({"bar@mail169.com"});
  delivery.Deliver(message, 0, Content, false);
  // A reader moved it to cur/ before the crash; the recovered retry must still see it.
  fs::path only = fs::directory_iterator(dir_ / "bar" / "new")->path();
  fs::rename(only, dir_ / "bar" / "cur" / (only.filename().string() + ":2,S"));
  EXPECT_EQ(delivery.Deliver(message, 0, Content, true).state, rec::RECIPIENT_STATE_DELIVERED);
  EXPECT_TRUE(Files("bar").empty());
  EXPECT_EQ(Files("bar", "cur").size(), 1u);
}

TEST_F(LocalDeliveryTest, PrewrittenBatchIsWhatDeliverWouldWriteAndIsNotWrittenAgain) {
  LocalDelivery delivery = Make(MailboxFormat::kMaildir);
  rec::Message first = Message({"bar+tag@mail169.com", "team@mail169.com"});
  rec::Message second = Message({"bar@mail169.com"});
  second.set_queue_id("0000000000ABD");
  int content_reads = 0;
  auto counted = [&](const std::function<absl::Status(absl::string_view)>& sink) {
    ++content_reads;
    return Content(sink);
  };
  MaildirBatch batch;
  delivery.Prewrite(first, 0, counted, false, batch);
  delivery.Prewrite(first, 1, counted, false, batch);  // team: foo and bar.
  delivery.Prewrite(second, 0, counted, false, batch);
  EXPECT_EQ(batch.staged(), 4u);
  EXPECT_TRUE(Files("bar").empty());  // Nothing in new/ before the batch is durable.
  ASSERT_TRUE(batch.Finish().ok());
  EXPECT_EQ(Files("bar").size(), 3u);
  EXPECT_EQ(Files("foo").size(), 1u);
  EXPECT_TRUE(Files("bar", "tmp").empty());
  // Deliver finds every file in place: same outcome, no second copy, the content not read again.
  const int reads_after_prewrite = content_reads;
  for (int i : {0, 1}) EXPECT_EQ(delivery.Deliver(first, i, counted, false).state, rec::RECIPIENT_STATE_DELIVERED);
  EXPECT_EQ(delivery.Deliver(second, 0, counted, false).reason, "delivered to maildir");
  EXPECT_EQ(content_reads, reads_after_prewrite);
  EXPECT_EQ(Files("bar").size(), 3u);
  EXPECT_THAT(Files("bar"), ::testing::Contains("Return-Path: <foo@mail169.com>\nX-Original-To: bar+tag@mail169.com\n"
                                                 "Delivered-To: bar+tag@mail169.com\n" + body_));
}

TEST_F(LocalDeliveryTest, UnfinishedBatchLeavesNothingBehind) {
  LocalDelivery delivery = Make(MailboxFormat::kMaildir);
  {
    MaildirBatch batch;
    delivery.Prewrite(Message({"bar@mail169.com"}), 0, Content, false, batch);
    EXPECT_EQ(batch.staged(), 1u);
    EXPECT_TRUE(Files("bar").empty());  // Nothing in new/ before Finish (the file is unnamed in tmp/ here).
  }
  EXPECT_TRUE(Files("bar", "tmp").empty());
  EXPECT_TRUE(Files("bar").empty());
}

TEST_F(LocalDeliveryTest, PrewriteLeavesLimitsAndMboxToDeliver) {
  MaildirBatch batch;
  Make(MailboxFormat::kMaildir, 50).Prewrite(Message({"bar@mail169.com"}), 0, Content, false, batch);
  Make(MailboxFormat::kMbox).Prewrite(Message({"bar@mail169.com"}), 0, Content, false, batch);
  EXPECT_EQ(batch.staged(), 0u);
}

TEST_F(LocalDeliveryTest, PrewriteAfterACrashLooksInCurToo) {
  LocalDelivery delivery = Make(MailboxFormat::kMaildir);
  rec::Message message = Message({"bar@mail169.com"});
  delivery.Deliver(message, 0, Content, false);
  fs::path only = fs::directory_iterator(dir_ / "bar" / "new")->path();
  fs::rename(only, dir_ / "bar" / "cur" / (only.filename().string() + ":2,S"));  // A reader took it.
  MaildirBatch batch;
  delivery.Prewrite(message, 0, Content, true, batch);
  EXPECT_EQ(batch.staged(), 0u);  // Not written a second time.
  delivery.Prewrite(message, 0, Content, false, batch);
  EXPECT_EQ(batch.staged(), 1u);  // Without the hint only new/ is looked at, as Deliver does.
}

TEST_F(LocalDeliveryTest, AliasesExpandRecursivelyAndLoopsEnd) {
  LocalDelivery delivery = Make(MailboxFormat::kMaildir);
  Expansion postmaster = delivery.Expand("postmaster@mail169.com");
  ASSERT_EQ(postmaster.targets.size(), 1u);
  EXPECT_EQ(postmaster.targets[0].user, "bar");
  EXPECT_EQ(postmaster.targets[0].delivered_to, "bar@mail169.com");
  EXPECT_EQ(delivery.Expand("team@localhost").targets.size(), 2u);
  Expansion loop = delivery.Expand("loop1@mail169.com");
  ASSERT_TRUE(loop.error.has_value());
  EXPECT_EQ(loop.error->state, rec::RECIPIENT_STATE_BOUNCED);
  Expansion unknown = delivery.Expand("nobody@mail169.com");
  ASSERT_TRUE(unknown.error.has_value());
  EXPECT_EQ(unknown.error->dsn_status, "5.1.1");
  EXPECT_EQ(unknown.error->reason, "unknown user: \"nobody\"");
}

TEST_F(LocalDeliveryTest, MailboxSizeLimitBounces) {
  LocalDelivery delivery = Make(MailboxFormat::kMaildir, 50);
  DeliveryOutcome outcome = delivery.Deliver(Message({"bar@mail169.com"}), 0, Content, false);
  EXPECT_EQ(outcome.state, rec::RECIPIENT_STATE_BOUNCED);
  EXPECT_EQ(outcome.dsn_status, "5.2.2");
  EXPECT_THAT(outcome.reason, HasSubstr("mailbox_size_limit"));
  EXPECT_TRUE(Files("bar").empty());
}

TEST_F(LocalDeliveryTest, MboxQuotesFromAndSeparatesMessages) {
  LocalDelivery delivery = Make(MailboxFormat::kMbox);
  ASSERT_EQ(delivery.Deliver(Message({"bar@mail169.com"}), 0, Content, false).reason,
            "delivered to mailbox");
  ASSERT_EQ(delivery.Deliver(Message({"bar@mail169.com"}, ""), 0, Content, false).state,
            rec::RECIPIENT_STATE_DELIVERED);
  std::ifstream in(dir_ / "bar.mbox");
  std::stringstream text;
  text << in.rdbuf();
  std::string mbox = text.str();
  EXPECT_EQ(mbox.rfind("From foo@mail169.com  ", 0), 0u);
  EXPECT_THAT(mbox, HasSubstr("\nline one\n>From me\n>From you\nend\n\nFrom MAILER-DAEMON  "));
  EXPECT_THAT(mbox, HasSubstr("Return-Path: <>\n"));
  EXPECT_EQ(mbox.substr(mbox.size() - 6), "\nend\n\n");
}

TEST_F(LocalDeliveryTest, ADeliveredToForTheRecipientIsAForwardingLoopAndBounces) {
  LocalDelivery delivery = Make(MailboxFormat::kMaildir);
  // Delivered here once, forwarded out and sent back: Postfix's local bounces it (5.4.6).
  const std::string looped = "Delivered-To: other@example.org\ndelivered-to :\n  BAR@mail169.com\nSubject: x\n\nb\n";
  const ContentSource looped_content = [&looped](const std::function<absl::Status(absl::string_view)>& sink) {
    for (size_t i = 0; i < looped.size(); i += 5) {
      if (absl::Status s = sink(absl::string_view(looped).substr(i, 5)); !s.ok()) return s;
    }
    return absl::OkStatus();
  };
  MaildirBatch batch;
  delivery.Prewrite(Message({"bar@mail169.com"}), 0, looped_content, false, batch);
  ASSERT_TRUE(batch.Finish().ok());
  EXPECT_TRUE(Files("bar").empty()) << "nothing staged for a loop";
  DeliveryOutcome outcome = delivery.Deliver(Message({"bar@mail169.com"}), 0, looped_content, false);
  EXPECT_EQ(outcome.state, rec::RECIPIENT_STATE_BOUNCED);
  EXPECT_EQ(outcome.dsn_status, "5.4.6");
  EXPECT_EQ(outcome.reason, "mail forwarding loop for bar@mail169.com");
  // Through an alias: team → foo, bar; bar's copy loops.
  EXPECT_EQ(delivery.Deliver(Message({"team@mail169.com"}), 0, looped_content, false).reason,
            "mail forwarding loop for bar@mail169.com");
  EXPECT_TRUE(Files("bar").empty());
  // Another recipient, or the address only in the body: delivered.
  EXPECT_EQ(delivery.Deliver(Message({"foo@mail169.com"}), 0, looped_content, false).state,
            rec::RECIPIENT_STATE_DELIVERED);
  const ContentSource in_body = [](const std::function<absl::Status(absl::string_view)>& sink) {
    return sink("Subject: x\n\nDelivered-To: bar@mail169.com\n");
  };
  EXPECT_EQ(delivery.Deliver(Message({"bar@mail169.com"}), 0, in_body, false).state, rec::RECIPIENT_STATE_DELIVERED);
}

}  // namespace
}  // namespace postgate::queue
