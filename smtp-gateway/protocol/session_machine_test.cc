#include "smtp-gateway/protocol/session_machine.h"

#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace postgate::gateway::protocol {
namespace {

using smtp::Reply;

// Accepts foo and bar at mail169.com, refuses other local users and every other domain.
class FakeDecider : public Decider {
 public:
  Verdict CheckSender(const std::string& address) override { return Verdict::Accept(address); }
  Verdict CheckRecipient(const std::string& address) override {
    if (address == "foo@mail169.com" || address == "bar@mail169.com") {
      return Verdict::Accept(address);
    }
    if (absl::EndsWith(address, "@mail169.com")) return Verify(address);
    return Verdict::Reject(Reply::Make(554, "5.7.1", "<" + address + ">: Relay access denied"));
  }
  bool MayFlush(const std::string& domain) override { return domain == "example.org"; }
  Verdict Verify(const std::string& address) override {
    if (absl::StartsWith(address, "bar")) return Verdict::Accept(address);
    return Verdict::Reject(Reply::Make(
        550, "5.1.1",
        "<" + address + ">: Recipient address rejected: User unknown in local recipient table"));
  }
};

class SessionMachineTest : public ::testing::Test {
 protected:
  SessionMachineTest() : machine_({"mail169.com", "mail169.com ESMTP Postgate", 10240000, 3}, decider_) {}

  // Sends one line and returns the reply as it would go on the wire ("" when there is none).
  std::string Send(const std::string& line) {
    last_ = machine_.OnLine({line, false});
    return last_.reply ? last_.reply->Format() : "";
  }

  // Plays a transcript: each pair is (client line, expected wire reply).
  void Play(const std::vector<std::pair<std::string, std::string>>& transcript) {
    for (const auto& [line, expected] : transcript) EXPECT_EQ(Send(line), expected) << line;
  }

  FakeDecider decider_;
  SessionMachine machine_;
  Step last_;
};

TEST_F(SessionMachineTest, ReferenceSession) {
  EXPECT_EQ(machine_.Greeting().Format(), "220 mail169.com ESMTP Postgate\r\n");
  Play({{"ehlo 172.20.169.6",
         "250-mail169.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n"
         "250-ETRN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"},
        {"mail from:<foo@mail169.com>", "250 2.1.0 Ok\r\n"},
        {"rcpt to:<bar@mail169.com>", "250 2.1.5 Ok\r\n"},
        {"data", ""}});
  EXPECT_EQ(last_.action, Action::kOpenQueue);
  Step opened = machine_.QueueOpened(true);
  EXPECT_EQ(opened.reply->Format(), "354 End data with <CR><LF>.<CR><LF>\r\n");
  EXPECT_EQ(opened.action, Action::kReadData);
  EXPECT_EQ(machine_.transaction().sender, "foo@mail169.com");
  EXPECT_EQ(machine_.transaction().recipients, std::vector<std::string>{"bar@mail169.com"});
  EXPECT_EQ(machine_.DataFinished(DataOutcome::kQueued, "4F1A09C2B7").reply->Format(),
            "250 2.0.0 Ok: queued as 4F1A09C2B7\r\n");
  Play({{"quit", "221 2.0.0 Bye\r\n"}});
  EXPECT_EQ(last_.action, Action::kClose);
}

TEST_F(SessionMachineTest, CommandOrderErrorsAsPostfix) {
  Play({{"rcpt to:<bar@mail169.com>", "503 5.5.1 Error: need MAIL command\r\n"},
        {"data", "503 5.5.1 Error: need RCPT command\r\n"},
        {"helo", "501 Syntax: HELO hostname\r\n"},
        {"ehlo", "501 Syntax: EHLO hostname\r\n"},
        {"helo client", "250 mail169.com\r\n"},
        {"mail from:<foo@mail169.com>", "250 2.1.0 Ok\r\n"},
        {"mail from:<foo@mail169.com>", "503 5.5.1 Error: nested MAIL command\r\n"},
        {"data", "503 5.5.1 Error: need RCPT command\r\n"},
        {"rcpt to:<nobody@mail169.com>",
         "550 5.1.1 <nobody@mail169.com>: Recipient address rejected: User unknown in local "
         "recipient table\r\n"},
        {"data", "554 5.5.1 Error: no valid recipients\r\n"},
        {"rset", "250 2.0.0 Ok\r\n"},
        {"rcpt to:<bar@mail169.com>", "503 5.5.1 Error: need MAIL command\r\n"}});
}

TEST_F(SessionMachineTest, SyntaxErrorsAsPostfix) {
  Play({{"", "500 5.5.2 Error: bad syntax\r\n"},
        {"foo", "500 5.5.2 Error: command not recognized\r\n"},
        {"mail", "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"},
        {"mail from:<a", "501 5.1.7 Bad sender address syntax\r\n"},
        {"mail from:<foo@mail169.com> size=abc", "501 5.5.4 Bad message size syntax\r\n"},
        {"mail from:<foo@mail169.com> size=99999999", "552 5.3.4 Message size exceeds fixed limit\r\n"},
        {"mail from:<foo@mail169.com> body=9bit", "555 5.5.4 Unsupported option: body=9bit\r\n"},
        {"mail from:<foo@mail169.com> xyz=1", "555 5.5.4 Unsupported option: xyz=1\r\n"},
        {"mail from:<foo@mail169.com> SIZE=100 BODY=8BITMIME", "250 2.1.0 Ok\r\n"},
        {"rcpt", "501 5.5.4 Syntax: RCPT TO:<address>\r\n"},
        {"rcpt to:<a b>", "501 5.1.3 Bad recipient address syntax\r\n"},
        {"rcpt to:<bar@mail169.com> foo=bar", "555 5.5.4 Unsupported option: foo=bar\r\n"},
        {"data x", "501 5.5.4 Syntax: DATA\r\n"},
        {"rset x", "501 5.5.4 Syntax: RSET\r\n"},
        {"noop x", "250 2.0.0 Ok\r\n"}});
  EXPECT_EQ(machine_.transaction().body_type, BodyType::k8BitMime);
  EXPECT_EQ(machine_.transaction().declared_size, 100u);
  EXPECT_EQ(machine_.OnLine({"", true}).reply->Format(), "500 5.5.2 Error: line too long\r\n");
}

TEST_F(SessionMachineTest, RelayAndRecipientLimit) {
  Play({{"ehlo x", Send("ehlo x")},
        {"mail from:<>", "250 2.1.0 Ok\r\n"},
        {"rcpt to:<x@example.org>", "554 5.7.1 <x@example.org>: Relay access denied\r\n"},
        {"rcpt to:<bar@mail169.com>", "250 2.1.5 Ok\r\n"},
        {"rcpt to:<bar@mail169.com>", "250 2.1.5 Ok\r\n"},
        {"rcpt to:<foo@mail169.com>", "250 2.1.5 Ok\r\n"},
        {"rcpt to:<foo@mail169.com>", "452 4.5.3 Error: too many recipients\r\n"}});
  EXPECT_EQ(machine_.transaction().recipients.size(), 3u);
}

TEST_F(SessionMachineTest, VrfyAndHelp) {
  Play({{"vrfy", "501 5.5.4 Syntax: VRFY address [SMTPUTF8]\r\n"},
        {"vrfy bar SMTPUTF8", "252 2.0.0 bar\r\n"},
        {"vrfy bar", "252 2.0.0 bar\r\n"},
        {"vrfy <bar+x@mail169.com>", "252 2.0.0 <bar+x@mail169.com>\r\n"},
        {"vrfy nosuch",
         "550 5.1.1 <nosuch>: Recipient address rejected: User unknown in local recipient "
         "table\r\n"},
        {"vrfy a b", "501 5.1.3 Bad recipient address syntax\r\n"}});
  EXPECT_EQ(Send("help").substr(0, 8), "214-2.0.");
}

TEST_F(SessionMachineTest, QueueFailuresAndSizeResetTheTransaction) {
  Play({{"mail from:<foo@mail169.com>", "250 2.1.0 Ok\r\n"},
        {"rcpt to:<bar@mail169.com>", "250 2.1.5 Ok\r\n"},
        {"data", ""}});
  EXPECT_EQ(machine_.QueueOpened(false).reply->Format(), "451 4.3.0 Error: queue file write error\r\n");
  Play({{"rcpt to:<bar@mail169.com>", "503 5.5.1 Error: need MAIL command\r\n"},
        {"mail from:<foo@mail169.com>", "250 2.1.0 Ok\r\n"},
        {"rcpt to:<bar@mail169.com>", "250 2.1.5 Ok\r\n"},
        {"data", ""}});
  machine_.QueueOpened(true);
  EXPECT_EQ(machine_.DataFinished(DataOutcome::kTooBig, "").reply->Format(),
            "552 5.3.4 Message size exceeds fixed limit\r\n");
  EXPECT_EQ(Send("mail from:<foo@mail169.com>"), "250 2.1.0 Ok\r\n");
}

TEST_F(SessionMachineTest, FullQueueDiskIsInsufficientStorage) {
  Play({{"mail from:<foo@mail169.com>", "250 2.1.0 Ok\r\n"},
        {"rcpt to:<bar@mail169.com>", "250 2.1.5 Ok\r\n"},
        {"data", ""}});
  EXPECT_EQ(machine_.QueueOpened(false, true).reply->Format(), "452 4.3.1 Insufficient system storage\r\n");
  Play({{"mail from:<foo@mail169.com>", "250 2.1.0 Ok\r\n"},
        {"rcpt to:<bar@mail169.com>", "250 2.1.5 Ok\r\n"},
        {"data", ""}});
  machine_.QueueOpened(true);
  EXPECT_EQ(machine_.DataFinished(DataOutcome::kNoStorage, "").reply->Format(),
            "452 4.3.1 Insufficient system storage\r\n");
  EXPECT_EQ(Send("rcpt to:<bar@mail169.com>"), "503 5.5.1 Error: need MAIL command\r\n");
}

// Feeds a BDAT command; the session would read the bytes; `outcome` is what it made of them.
std::string Bdat(SessionMachine& machine, const std::string& line, BdatOutcome outcome,
                 uint64_t total = 0, const std::string& id = "") {
  Step step = machine.OnLine({line, false});
  if (step.action != Action::kReadChunk) return step.reply ? step.reply->Format() : "";
  if (machine.bdat_chunk().discard) outcome = BdatOutcome::kDiscarded;
  return machine.BdatChunkRead(outcome, total, id).reply->Format();
}

TEST_F(SessionMachineTest, BdatChunksLikePostfix) {
  Play({{"ehlo x", Send("ehlo x")}, {"mail from:<foo@mail169.com>", "250 2.1.0 Ok\r\n"},
        {"rcpt to:<bar@mail169.com>", "250 2.1.5 Ok\r\n"}});
  machine_.OnLine({"BDAT 4", false});
  EXPECT_TRUE(machine_.bdat_chunk().open_queue);
  EXPECT_FALSE(machine_.bdat_chunk().discard);
  EXPECT_EQ(machine_.BdatChunkRead(BdatOutcome::kKept, 4, "").reply->Format(), "250 2.0.0 Ok: 4 bytes\r\n");
  EXPECT_TRUE(machine_.bdat_in_progress());
  Play({{"DATA", "503 5.5.1 Error: DATA after BDAT\r\n"},
        {"MAIL FROM:<foo@mail169.com>", "503 5.5.1 Error: MAIL after BDAT\r\n"},
        {"RCPT TO:<foo@mail169.com>", "503 5.5.1 Error: RCPT after BDAT\r\n"}});
  machine_.OnLine({"bdat 0 last", false});
  EXPECT_FALSE(machine_.bdat_chunk().open_queue);
  EXPECT_TRUE(machine_.bdat_chunk().last);
  EXPECT_EQ(machine_.BdatChunkRead(BdatOutcome::kQueued, 4, "ABC").reply->Format(),
            "250 2.0.0 Ok: 4 bytes queued as ABC\r\n");
  EXPECT_FALSE(machine_.bdat_in_progress());
  EXPECT_EQ(Send("mail from:<foo@mail169.com>"), "250 2.1.0 Ok\r\n");
}

TEST_F(SessionMachineTest, BdatErrorsDiscardUntilLast) {
  EXPECT_EQ(Bdat(machine_, "BDAT 5", BdatOutcome::kKept), "503 5.5.1 Error: need RCPT command\r\n");
  EXPECT_EQ(Bdat(machine_, "BDAT 5", BdatOutcome::kKept), "551 5.0.0 Discarded 5 bytes after earlier error\r\n");
  EXPECT_EQ(Send("MAIL FROM:<foo@mail169.com>"), "503 5.5.1 Error: MAIL after BDAT\r\n");
  EXPECT_EQ(Bdat(machine_, "BDAT 2 LAST", BdatOutcome::kKept), "551 5.0.0 Discarded 2 bytes after earlier error\r\n");
  EXPECT_EQ(Send("MAIL FROM:<foo@mail169.com>"), "250 2.1.0 Ok\r\n");
  EXPECT_EQ(Send("RCPT TO:<nobody@mail169.com>").substr(0, 3), "550");
  EXPECT_EQ(Bdat(machine_, "BDAT 3 LAST", BdatOutcome::kKept), "554 5.5.1 Error: no valid recipients\r\n");
  Play({{"MAIL FROM:<foo@mail169.com>", "250 2.1.0 Ok\r\n"}, {"RCPT TO:<bar@mail169.com>", "250 2.1.5 Ok\r\n"}});
  EXPECT_EQ(Bdat(machine_, "BDAT 100", BdatOutcome::kTooBig), "552 5.3.4 Message size exceeds fixed limit\r\n");
  EXPECT_EQ(Bdat(machine_, "BDAT 1 LAST", BdatOutcome::kKept), "551 5.0.0 Discarded 1 bytes after earlier error\r\n");
  Play({{"MAIL FROM:<foo@mail169.com>", "250 2.1.0 Ok\r\n"}, {"RCPT TO:<bar@mail169.com>", "250 2.1.5 Ok\r\n"}});
  EXPECT_EQ(Bdat(machine_, "BDAT 1", BdatOutcome::kQueueError), "451 4.3.0 Error: queue file write error\r\n");
  EXPECT_EQ(Send("RSET"), "250 2.0.0 Ok\r\n");
  EXPECT_EQ(Send("MAIL FROM:<foo@mail169.com>"), "250 2.1.0 Ok\r\n");
}

// smtpd_forbid_bare_newline = reject: Postfix 3.7.11's replies (code from
// smtpd_forbid_bare_newline_reject_code) and the stage its log line names.
TEST_F(SessionMachineTest, BareNewlineRepliesAndStagesLikePostfix) {
  EXPECT_EQ(machine_.stage(), "CONNECT");
  Step command = machine_.BareNewlineInCommand();
  EXPECT_EQ(command.reply->Format(), "550 5.5.2 mail169.com Error: bare <LF> received\r\n");
  EXPECT_EQ(command.action, Action::kClose);
  Play({{"EHLO x", Send("EHLO x")}, {"MAIL FROM:<foo@mail169.com>", "250 2.1.0 Ok\r\n"}});
  EXPECT_EQ(machine_.stage(), "MAIL");
  EXPECT_TRUE(machine_.in_transaction());
  Send("RCPT TO:<bar@mail169.com>");
  Send("DATA");
  machine_.QueueOpened(true);
  EXPECT_EQ(machine_.DataFinished(DataOutcome::kBareNewline, "ABC").reply->Format(),
            "550 5.5.2 mail169.com Error: bare <LF> received\r\n");
  EXPECT_EQ(machine_.stage(), "END-OF-MESSAGE");
  EXPECT_FALSE(machine_.in_transaction());
  Play({{"MAIL FROM:<foo@mail169.com>", "250 2.1.0 Ok\r\n"}, {"RCPT TO:<bar@mail169.com>", "250 2.1.5 Ok\r\n"}});
  EXPECT_EQ(Bdat(machine_, "BDAT 3", BdatOutcome::kBareNewline), "550 5.5.2 mail169.com Error: bare <LF> received\r\n");
  EXPECT_EQ(Bdat(machine_, "BDAT 1 LAST", BdatOutcome::kKept), "551 5.0.0 Discarded 1 bytes after earlier error\r\n");

  ProtocolLimits limits{"mail169.com", "mail169.com ESMTP Postgate"};
  limits.bare_newline_reject_code = 521;
  SessionMachine other(limits, decider_);
  EXPECT_EQ(other.BareNewlineInCommand().reply->Format(), "521 5.5.2 mail169.com Error: bare <LF> received\r\n");
}

TEST_F(SessionMachineTest, BdatSyntaxErrorCloses) {
  for (const char* line : {"BDAT", "BDAT x", "BDAT 3 FOO", "BDAT -1", "BDAT 1 LAST x", "BDAT 99999999999999999999"}) {
    Step step = machine_.OnLine({line, false});
    EXPECT_EQ(step.reply->Format(), "521 5.5.4 Syntax: BDAT count [LAST]\r\n") << line;
    EXPECT_EQ(step.action, Action::kClose) << line;
  }
}

TEST_F(SessionMachineTest, Smtputf8) {
  Play({{"EHLO h\xc3\xa9", Send("EHLO h\xc3\xa9")},
        {"MAIL FROM:<p\xffl@mail169.com> SMTPUTF8", "500 5.5.2 Error: bad UTF-8 syntax\r\n"},
        {"MAIL FROM:<pel\xc3\xa9@mail169.com> SMTPUTF8", "250 2.1.0 Ok\r\n"},
        {"RCPT TO:<b\xff" "ar@mail169.com>", "500 5.5.2 Error: bad UTF-8 syntax\r\n"},
        {"RCPT TO:<bar@mail169.com>", "250 2.1.5 Ok\r\n"}});
  EXPECT_TRUE(machine_.transaction().smtputf8);
  EXPECT_EQ(machine_.transaction().sender, "pel\xc3\xa9@mail169.com");
}

TEST(SessionMachineStrictTest, StrictSmtputf8RefusesUndeclaredUnicode) {
  FakeDecider decider;
  SessionMachine machine({"mail169.com", "mail169.com ESMTP Postgate", 10240000, 10, true}, decider);
  EXPECT_EQ(machine.OnLine({"MAIL FROM:<pel\xc3\xa9@mail169.com>", false}).reply->Format(),
            "553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n");
  EXPECT_EQ(machine.OnLine({"MAIL FROM:<foo@mail169.com>", false}).reply->Format(), "250 2.1.0 Ok\r\n");
  EXPECT_EQ(machine.OnLine({"RCPT TO:<pel\xc3\xa9@mail169.com>", false}).reply->Format(),
            "553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n");
}

TEST(SessionMachineTlsTest, StartTlsOfferedOnceAndResetsTheSession) {
  FakeDecider decider;
  ProtocolLimits limits{"mail169.com", "mail169.com ESMTP Postgate", 10240000, 10};
  limits.tls_available = true;
  SessionMachine machine(limits, decider);
  auto send = [&](const std::string& line) { return machine.OnLine({line, false}); };
  std::string ehlo = send("EHLO x").reply->Format();
  EXPECT_NE(ehlo.find("250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n"), std::string::npos) << ehlo;
  EXPECT_EQ(send("STARTTLS now").reply->Format(), "501 5.5.4 Syntax: STARTTLS\r\n");
  send("MAIL FROM:<foo@mail169.com>");
  EXPECT_EQ(send("STARTTLS").reply->Format(), "503 5.5.1 Error: MAIL transaction in progress\r\n");
  send("RSET");
  Step step = send("starttls");
  EXPECT_EQ(step.reply->Format(), "220 2.0.0 Ready to start TLS\r\n");
  EXPECT_EQ(step.action, Action::kStartTls);
  machine.TlsStarted();
  EXPECT_TRUE(machine.helo().empty());
  EXPECT_EQ(send("RCPT TO:<bar@mail169.com>").reply->Format(), "503 5.5.1 Error: need MAIL command\r\n");
  ehlo = send("EHLO x").reply->Format();
  EXPECT_EQ(ehlo.find("STARTTLS"), std::string::npos) << ehlo;
  EXPECT_EQ(send("STARTTLS").reply->Format(), "554 5.5.1 Error: TLS already active\r\n");
}

TEST(SessionMachineTlsTest, EncryptLevelRequiresTlsFirst) {
  FakeDecider decider;
  ProtocolLimits limits{"mail169.com", "mail169.com ESMTP Postgate", 10240000, 10};
  limits.tls_available = limits.tls_required = true;
  SessionMachine machine(limits, decider);
  EXPECT_EQ(machine.OnLine({"MAIL FROM:<foo@mail169.com>", false}).reply->Format(),
            "530 5.7.0 Must issue a STARTTLS command first\r\n");
  EXPECT_EQ(machine.OnLine({"VRFY bar", false}).reply->Format(),
            "530 5.7.0 Must issue a STARTTLS command first\r\n");
  machine.OnLine({"STARTTLS", false});
  machine.TlsStarted();
  EXPECT_EQ(machine.OnLine({"MAIL FROM:<foo@mail169.com>", false}).reply->Format(), "250 2.1.0 Ok\r\n");
}

TEST_F(SessionMachineTest, StartTlsWithoutCertificateIsNotImplemented) {
  EXPECT_EQ(Send("STARTTLS"), "502 5.5.1 Error: command not implemented\r\n");
}

TEST_F(SessionMachineTest, EtrnLikePostfix) {
  Play({{"ETRN", "500 Syntax: ETRN domain\r\n"},
        {"ETRN bad..domain", "501 Error: invalid parameter syntax\r\n"},
        {"ETRN mail169.com", "459 <mail169.com>: service unavailable\r\n"},
        {"ETRN #deferred", "459 <deferred>: service unavailable\r\n"},
        {"ETRN Example.ORG.", ""}});
  EXPECT_EQ(last_.action, Action::kFlushQueue);
  EXPECT_EQ(machine_.etrn_request().domain, "example.org");
  EXPECT_FALSE(machine_.etrn_request().include_subdomains);
  EXPECT_EQ(machine_.EtrnFinished(true).reply->Format(), "250 Queuing started\r\n");
  Send("ETRN @example.org");
  EXPECT_TRUE(machine_.etrn_request().include_subdomains);
  EXPECT_EQ(machine_.EtrnFinished(false).reply->Format(), "458 Unable to queue messages\r\n");
  Play({{"MAIL FROM:<foo@mail169.com>", "250 2.1.0 Ok\r\n"},
        {"ETRN example.org", "503 Error: MAIL transaction in progress\r\n"}});
}

TEST_F(SessionMachineTest, DsnParametersLikePostfix) {
  Play({{"MAIL FROM:<foo@mail169.com> RET=BOGUS", "501 5.5.4 Bad RET parameter syntax\r\n"},
        {"MAIL FROM:<foo@mail169.com> RET=FULL RET=HDRS", "501 5.5.4 Bad RET parameter syntax\r\n"},
        {"MAIL FROM:<foo@mail169.com> ENVID=ab+ZZ", "501 5.5.4 Bad ENVID parameter syntax\r\n"},
        {"MAIL FROM:<foo@mail169.com> ENVID=a+01b", "501 5.5.4 Bad ENVID parameter syntax\r\n"},
        {"MAIL FROM:<foo@mail169.com> RET=hdrs ENVID=QQ+2B123", "250 2.1.0 Ok\r\n"},
        {"RCPT TO:<bar@mail169.com> NOTIFY=NEVER,SUCCESS", "501 5.5.4 Error: Bad NOTIFY parameter syntax\r\n"},
        {"RCPT TO:<bar@mail169.com> NOTIFY=BOGUS", "501 5.5.4 Error: Bad NOTIFY parameter syntax\r\n"},
        {"RCPT TO:<bar@mail169.com> NOTIFY=SUCCESS,SUCCESS", "501 5.5.4 Error: Bad NOTIFY parameter syntax\r\n"},
        {"RCPT TO:<bar@mail169.com> NOTIFY=NEVER NOTIFY=NEVER", "501 5.5.4 Error: Bad NOTIFY parameter syntax\r\n"},
        {"RCPT TO:<bar@mail169.com> ORCPT=bogus", "501 5.5.4 Error: Bad ORCPT parameter syntax\r\n"},
        {"RCPT TO:<bar@mail169.com> ORCPT=rfc822;bar+2Bx@mail169.com NOTIFY=success,failure", "250 2.1.5 Ok\r\n"},
        {"RCPT TO:<foo@mail169.com> NOTIFY=NEVER", "250 2.1.5 Ok\r\n"},
        {"RCPT TO:<foo@mail169.com>", "250 2.1.5 Ok\r\n"}});
  const Transaction& t = machine_.transaction();
  EXPECT_EQ(t.dsn_return, DsnReturn::kHeaders);
  EXPECT_EQ(t.envid, "QQ+123");
  ASSERT_EQ(t.recipient_dsn.size(), 3u);
  EXPECT_TRUE(t.recipient_dsn[0].notify_given && t.recipient_dsn[0].success && t.recipient_dsn[0].failure);
  EXPECT_FALSE(t.recipient_dsn[0].delay);
  EXPECT_EQ(t.recipient_dsn[0].original_recipient, "rfc822;bar+x@mail169.com");
  EXPECT_TRUE(t.recipient_dsn[1].notify_given);
  EXPECT_FALSE(t.recipient_dsn[1].success || t.recipient_dsn[1].failure || t.recipient_dsn[1].delay);
  EXPECT_FALSE(t.recipient_dsn[2].notify_given);
}

TEST(SessionMachineLimitsTest, HardErrorLimitLikePostfix) {
  FakeDecider decider;
  SessionMachine machine({"mail169.com", "mail169.com ESMTP Postgate", 10240000, 10}, decider);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(machine.OnLine({"FOO", false}).reply->code, 500) << i;
  }
  Step step = machine.OnLine({"NOOP", false});
  EXPECT_EQ(step.reply->Format(), "421 4.7.0 mail169.com Error: too many errors\r\n");
  EXPECT_EQ(step.action, Action::kClose);
}

TEST(SessionMachineLimitsTest, JunkCommandsCountAsErrorsPastTheLimit) {
  FakeDecider decider;
  ProtocolLimits limits{"mail169.com", "mail169.com ESMTP Postgate", 10240000, 10};
  limits.junk_command_limit = 5;
  limits.hard_error_limit = 3;
  SessionMachine machine(limits, decider);
  // As Postfix (junk_cmds++ > limit): NOOPs 7, 8 and 9 are errors; the hard limit then answers 421.
  for (int i = 0; i < 9; ++i) EXPECT_EQ(machine.OnLine({"NOOP", false}).reply->code, 250) << i;
  EXPECT_EQ(machine.error_count(), 3u);
  EXPECT_EQ(machine.OnLine({"NOOP", false}).reply->code, 421);
}

TEST_F(SessionMachineTest, EhloResetsTransaction) {
  Play({{"mail from:<foo@mail169.com>", "250 2.1.0 Ok\r\n"}});
  Send("EHLO again");
  EXPECT_EQ(Send("rcpt to:<bar@mail169.com>"), "503 5.5.1 Error: need MAIL command\r\n");
  EXPECT_TRUE(machine_.esmtp());
  EXPECT_EQ(machine_.helo(), "again");
}


// SMTP AUTH as Postfix answers it; the machine asks the session to check each completed login.
class SessionMachineAuthTest : public ::testing::Test {
 protected:
  class RecordingDecider : public FakeDecider {
   public:
    void LoggedIn(const std::string& user) override { logged_in = user; }
    std::string logged_in;
  };

  SessionMachineAuthTest() : machine_(Limits(), decider_) {}
  static ProtocolLimits Limits() {
    ProtocolLimits limits{"mail169.com", "mail169.com ESMTP Postgate", 10240000, 10};
    limits.tls_available = true;
    limits.auth_enabled = true;
    limits.auth_tls_only = true;
    return limits;
  }
  std::string Send(const std::string& line) {
    last_ = machine_.OnLine({line, false});
    return last_.reply ? last_.reply->Format() : "";
  }
  void StartTls() {
    ASSERT_EQ(Send("STARTTLS"), "220 2.0.0 Ready to start TLS\r\n");
    machine_.TlsStarted();
  }

  RecordingDecider decider_;
  SessionMachine machine_;
  Step last_;
};

TEST_F(SessionMachineAuthTest, OfferedOnlyInsideTlsWithTlsAuthOnly) {
  EXPECT_EQ(Send("EHLO c").find("AUTH"), std::string::npos);
  EXPECT_EQ(Send("AUTH PLAIN AGZvbwBzZWNyZXQ="), "503 5.5.1 Error: authentication not enabled\r\n");
  StartTls();
  EXPECT_EQ(Send("EHLO c"),
            "250-mail169.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n"
            "250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n"
            "250 CHUNKING\r\n");
}

TEST_F(SessionMachineAuthTest, PlainWithInitialResponseThenTheCheck) {
  StartTls();
  Send("EHLO c");
  EXPECT_EQ(Send("AUTH PLAIN AGZvbwBzM2NyZXQ="), "");  // "\0foo\0s3cret": checked off the I/O thread.
  EXPECT_EQ(last_.action, Action::kCheckLogin);
  EXPECT_EQ(machine_.login_attempt().mechanism, "PLAIN");
  EXPECT_EQ(machine_.login_attempt().user, "foo");
  EXPECT_EQ(machine_.login_attempt().password.reveal(), "s3cret");
  EXPECT_EQ(machine_.LoginChecked(true).reply->Format(), "235 2.7.0 Authentication successful\r\n");
  EXPECT_TRUE(machine_.login_attempt().password.empty());
  EXPECT_EQ(machine_.sasl_username(), "foo");
  EXPECT_EQ(machine_.sasl_method(), "PLAIN");
  EXPECT_EQ(decider_.logged_in, "foo");
  EXPECT_EQ(Send("AUTH LOGIN"), "503 5.5.1 Error: already authenticated\r\n");
  EXPECT_EQ(Send("MAIL FROM:<foo@mail169.com> AUTH=foo@mail169.com"), "250 2.1.0 Ok\r\n");
  EXPECT_EQ(Send("AUTH PLAIN"), "503 5.5.1 Error: MAIL transaction in progress\r\n");
}

TEST_F(SessionMachineAuthTest, LoginPromptsAndARefusal) {
  StartTls();
  EXPECT_EQ(Send("auth login"), "334 VXNlcm5hbWU6\r\n");
  EXPECT_TRUE(machine_.in_auth_exchange());
  EXPECT_EQ(Send("Zm9v"), "334 UGFzc3dvcmQ6\r\n");  // "foo"
  EXPECT_EQ(Send("d3Jvbmc="), "");                     // "wrong"
  EXPECT_EQ(last_.action, Action::kCheckLogin);
  EXPECT_EQ(machine_.LoginChecked(false).reply->Format(),
            "535 5.7.8 Error: authentication failed: authentication failure\r\n");
  std::optional<AuthFailure> failure = machine_.TakeAuthFailure();
  ASSERT_TRUE(failure.has_value());
  EXPECT_EQ(failure->mechanism, "LOGIN");
  EXPECT_EQ(failure->reason, "authentication failure");
  EXPECT_EQ(failure->user, "foo");
  EXPECT_FALSE(machine_.TakeAuthFailure().has_value());
  EXPECT_EQ(machine_.sasl_username(), "");
  EXPECT_EQ(machine_.error_count(), 1u);
}

// smtpd_client_auth_rate_limit: the policy counts; the machine refuses as Debian's Postfix 3.7.11
// does, after the checks that come first there (not enabled, in a transaction, logged in).
TEST(SessionMachineAuthRateTest, RefusedOverTheLimitWithPostfixsReply) {
  class RateDecider : public FakeDecider {
   public:
    std::optional<size_t> AuthRateExceeded() override {
      ++counted;
      return counted > 2 ? std::optional<size_t>(counted) : std::nullopt;
    }
    std::string ClientAddress() const override { return "10.9.9.9"; }
    size_t counted = 0;
  };
  RateDecider decider;
  ProtocolLimits limits{"mail169.com", "mail169.com ESMTP Postgate", 10240000, 10};
  limits.auth_enabled = true;
  SessionMachine machine(limits, decider);
  auto send = [&machine](const std::string& line) {
    Step step = machine.OnLine({line, false});
    return step.reply ? step.reply->Format() : "";
  };
  send("EHLO c");
  EXPECT_EQ(send("MAIL FROM:<a@example.org>"), "250 2.1.0 Ok\r\n");
  EXPECT_EQ(send("AUTH PLAIN"), "503 5.5.1 Error: MAIL transaction in progress\r\n");  // Not counted.
  send("RSET");
  EXPECT_EQ(send("AUTH LOGIN"), "334 VXNlcm5hbWU6\r\n");
  EXPECT_EQ(send("*"), "501 5.7.0 Authentication aborted\r\n");
  EXPECT_EQ(send("AUTH LOGIN"), "334 VXNlcm5hbWU6\r\n");
  EXPECT_EQ(send("*"), "501 5.7.0 Authentication aborted\r\n");
  EXPECT_FALSE(machine.TakeAuthRateExceeded().has_value());
  EXPECT_EQ(send("AUTH PLAIN AGZvbwBzM2NyZXQ="), "450 4.7.1 Error: too many AUTH commands from 10.9.9.9\r\n");
  EXPECT_EQ(machine.TakeAuthRateExceeded(), std::optional<size_t>(3));
  EXPECT_FALSE(machine.TakeAuthRateExceeded().has_value());
  EXPECT_FALSE(machine.in_auth_exchange());
  EXPECT_EQ(decider.counted, 3u);
}

TEST_F(SessionMachineAuthTest, AbortsMalformedResponsesAndUnknownMechanisms) {
  StartTls();
  EXPECT_EQ(Send("AUTH PLAIN"), "334 \r\n");
  EXPECT_EQ(Send("*"), "501 5.7.0 Authentication aborted\r\n");
  EXPECT_TRUE(machine_.TakeAuthFailure()->aborted);
  EXPECT_FALSE(machine_.in_auth_exchange());
  // Each reply as Debian's Postfix 3.7.11 with Cyrus SASL gives it for the same line.
  EXPECT_EQ(Send("AUTH PLAIN !!!"), "535 5.7.8 Error: authentication failed: another step is needed in authentication\r\n");
  EXPECT_EQ(Send("AUTH PLAIN ="), "535 5.7.8 Error: authentication failed: another step is needed in authentication\r\n");
  EXPECT_EQ(Send("AUTH PLAIN UVVJVA=="), "535 5.7.8 Error: authentication failed: bad protocol / cancel\r\n");
  EXPECT_EQ(Send("AUTH CRAM-MD5"), "535 5.7.8 Error: authentication failed: no mechanism available\r\n");
  EXPECT_EQ(Send("AUTH"), "501 5.5.4 Syntax: AUTH mechanism\r\n");
  EXPECT_EQ(Send("AUTH PLAIN a b c"), "501 5.5.4 Syntax: AUTH mechanism\r\n");
  EXPECT_EQ(Send("AUTH LOGIN ="), "535 5.7.8 Error: authentication failed: bad protocol / cancel\r\n");
  // Acting as someone else (an authorization identity that is not the user) is refused.
  EXPECT_EQ(Send("AUTH plain YmFyAGZvbwBzM2NyZXQ="), "535 5.7.8 Error: authentication failed: authentication failure\r\n");
  EXPECT_EQ(machine_.TakeAuthFailure()->user, "bar");
  // A line that is a SASL response is never taken for a command.
  EXPECT_EQ(Send("AUTH LOGIN"), "334 VXNlcm5hbWU6\r\n");
  EXPECT_EQ(Send("QUIT"), "334 UGFzc3dvcmQ6\r\n");  // base64 of some user name, not QUIT
}

TEST(SessionMachineAuthDisabledTest, NotAnnouncedAndRefusedAsPostfix) {
  FakeDecider decider;
  SessionMachine machine({"mail169.com", "mail169.com ESMTP Postgate", 10240000, 10}, decider);
  EXPECT_EQ(machine.OnLine({"EHLO c", false}).reply->Format().find("AUTH"), std::string::npos);
  EXPECT_EQ(machine.OnLine({"AUTH PLAIN", false}).reply->Format(), "503 5.5.1 Error: authentication not enabled\r\n");
  EXPECT_EQ(machine.OnLine({"MAIL FROM:<a@b.c> AUTH=<>", false}).reply->Format(),
            "555 5.5.4 Unsupported option: AUTH=<>\r\n");
}

}  // namespace
}  // namespace postgate::gateway::protocol
