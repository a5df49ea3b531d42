#include "smtp-gateway/dkim/dkim_signer.h"

#include "smtp-gateway/dkim/opendkim_api.h"

#include <cstring>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "smtp-gateway/cleanup/message_cleanup.h"
#include "smtp-gateway/dkim/dkim_test_keys.h"

namespace postgate::gateway::dkim {
namespace {

using ::testing::HasSubstr;
using testing::TestDirectory;

// The TXT records a verifier looks up, served from memory instead of DNS.
std::map<std::string, std::string>& Records() {
  static std::map<std::string, std::string> records;
  return records;
}

DKIM_STAT LookUpKey(DKIM*, DKIM_SIGINFO* sig, unsigned char* buf, size_t buflen) {
  const std::string name = absl::StrCat(reinterpret_cast<char*>(dkim_sig_getselector(sig)), "._domainkey.",
                                        reinterpret_cast<char*>(dkim_sig_getdomain(sig)));
  auto found = Records().find(name);
  if (found == Records().end() || found->second.size() + 1 > buflen) return DKIM_STAT_NOKEY;
  std::memcpy(buf, found->second.c_str(), found->second.size() + 1);
  return DKIM_STAT_OK;
}

// Verifies `message` (LF line ends) with libopendkim as a receiver would; DKIM_STAT_OK when every
// signature verifies.
DKIM_STAT Verify(const std::string& message) {
  DKIM_LIB* library = dkim_init(nullptr, nullptr);
  unsigned int flags = DKIM_LIBFLAGS_FIXCRLF;
  dkim_options(library, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags);
  dkim_set_key_lookup(library, LookUpKey);
  DKIM_STAT status = DKIM_STAT_OK;
  DKIM* dkim = dkim_verify(library, reinterpret_cast<const unsigned char*>("verify"), nullptr, &status);
  const size_t end = message.find("\n\n");
  std::vector<std::string> fields;
  for (absl::string_view line : absl::StrSplit(message.substr(0, end), '\n')) {
    // Folded with CRLF, as on the wire (libopendkim parses the signature's own tags that way).
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) absl::StrAppend(&fields.back(), "\r\n", line);
    else fields.emplace_back(line);
  }
  for (std::string& field : fields) {
    if (status == DKIM_STAT_OK) status = dkim_header(dkim, reinterpret_cast<unsigned char*>(field.data()), field.size());
  }
  if (status == DKIM_STAT_OK) status = dkim_eoh(dkim);
  std::string body = message.substr(end + 2);
  if (status == DKIM_STAT_OK) status = dkim_body(dkim, reinterpret_cast<unsigned char*>(body.data()), body.size());
  if (status == DKIM_STAT_OK) status = dkim_eom(dkim, nullptr);
  dkim_free(dkim);
  dkim_close(library);
  return status;
}

class DkimSignerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string rsa = dir_.WriteKey("rsa.pem", "RSA");
    const std::string ed = dir_.WriteKey("ed.pem", "ED25519");
    absl::StatusOr<DkimKeys> keys = DkimKeys::Load(
        dir_.Write("KeyTable", absl::StrCat("rsa example.com:r:", rsa, "\ned example.com:e:", ed, "\n")),
        dir_.Write("SigningTable", "example.com rsa\nexample.com ed\n"));
    ASSERT_TRUE(keys.ok()) << keys.status();
    for (const DkimKey& key : keys->keys()) {
      const std::string record = DnsRecord(key);
      std::string value;  // The zone-file strings joined, as a resolver hands them over.
      for (absl::string_view piece : absl::StrSplit(record.substr(record.find('"')), '"', absl::SkipWhitespace())) {
        if (piece != " )") absl::StrAppend(&value, piece);
      }
      Records()[absl::StrCat(key.selector, "._domainkey.", key.domain)] = value;
    }
    SignerOptions options{.signed_headers = {"From", "To", "Subject", "Date", "Message-Id"},
                          .oversigned_headers = {"From"}};
    absl::StatusOr<std::shared_ptr<const DkimSigner>> signer = DkimSigner::Create(options, *std::move(keys));
    ASSERT_TRUE(signer.ok()) << signer.status();
    signer_ = *std::move(signer);
  }

  // The message as the gateway stores it: the signatures in front of what cleanup wrote.
  std::string SignThroughCleanup(const std::string& content, std::string* fields = nullptr) {
    std::unique_ptr<MessageSignature> signature = signer_->Start("Q1");
    cleanup::CleanupOptions options{.add_missing_headers = true, .myhostname = "mail.example.com",
                                    .queue_id = "Q1", .arrival = absl::FromUnixSeconds(1796055819),
                                    .sender = "ann@example.com"};
    cleanup::MessageCleanup cleanup(options, signature.get());
    std::string stored;
    for (size_t i = 0; i < content.size(); i += 7) cleanup.Feed(content.substr(i, 7), &stored);
    cleanup.Finish(&stored);
    absl::StatusOr<std::string> signed_fields = signature->Finish();
    EXPECT_TRUE(signed_fields.ok()) << signed_fields.status();
    if (fields != nullptr) *fields = *signed_fields;
    return absl::StrCat(*signed_fields, stored);
  }

  TestDirectory dir_;
  std::shared_ptr<const DkimSigner> signer_;
};

TEST_F(DkimSignerTest, BothSignaturesVerifyAndATamperedMessageDoesNot) {
  std::string fields;
  const std::string message = SignThroughCleanup(
      "Received: from x by y\nFrom: Ann <ann@example.com>\nTo: bob@example.org\nSubject: a folded\n\tsubject\n\n"
      "Hello,  world \n\n\n", &fields);
  EXPECT_EQ(std::count(fields.begin(), fields.end(), '\n') >= 2, true);
  EXPECT_THAT(fields, HasSubstr("a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=r;"));
  EXPECT_THAT(fields, HasSubstr("a=ed25519-sha256; c=relaxed/relaxed;\n\td=example.com; s=e;"));
  EXPECT_THAT(fields, HasSubstr("c=relaxed/relaxed"));
  EXPECT_THAT(fields, ::testing::Not(HasSubstr("l=")));
  EXPECT_THAT(fields, ::testing::Not(HasSubstr("\r")));
  // From is signed once more than it appears; the Date: and Message-Id: cleanup added are signed.
  const std::string h = absl::StrReplaceAll(fields.substr(fields.find("h=")), {{"\n\t", ""}, {" ", ""}});
  EXPECT_TRUE(absl::StrContains(h, ";h=From:To:Subject:Message-Id:Date:from;")) << h;
  const std::string ed_h = absl::StrReplaceAll(fields.substr(fields.find("h=", fields.find("ed25519"))), {{"\n\t", ""}, {" ", ""}});
  EXPECT_TRUE(absl::StartsWith(ed_h, "h=from:to:subject:message-id:date:from;")) << ed_h;
  EXPECT_EQ(Verify(message), DKIM_STAT_OK);
  EXPECT_NE(Verify(absl::StrReplaceAll(message, {{"Hello", "Hallo"}})), DKIM_STAT_OK);
  EXPECT_NE(Verify(absl::StrReplaceAll(message, {{"To: bob", "To: eve"}})), DKIM_STAT_OK);
  // relaxed/relaxed: whitespace changes in transit do not matter.
  EXPECT_EQ(Verify(absl::StrReplaceAll(message, {{"Hello,  world \n", "Hello, world\n"}})), DKIM_STAT_OK);
}

// Postgate's own ed25519-sha256 in both canonicalisations, through libopendkim's verifier, with
// the bodies whose canonical forms differ most: empty, only empty lines, no final line end.
TEST_F(DkimSignerTest, Ed25519SignaturesVerifyInEachCanonicalisation) {
  for (const char* canonicalization : {"relaxed/relaxed", "simple/simple", "relaxed/simple", "simple/relaxed"}) {
    const bool relaxed_header = absl::StartsWith(canonicalization, "relaxed");
    const bool relaxed_body = absl::EndsWith(canonicalization, "relaxed");
    absl::StatusOr<DkimKeys> keys = DkimKeys::Load(
        dir_.Write("EdKeyTable", absl::StrCat("ed example.com:e:", dir_.WriteKey("ed2.pem", "ED25519"), "\n")),
        dir_.Write("EdSigningTable", "example.com ed\n"));
    ASSERT_TRUE(keys.ok()) << keys.status();
    const std::string record = DnsRecord(keys->keys()[0]);
    Records()["e._domainkey.example.com"] = record.substr(record.find('"') + 1, record.rfind('"') - record.find('"') - 1);
    signer_ = *DkimSigner::Create({.signed_headers = {"From", "To", "Subject"}, .oversigned_headers = {"From"},
                                   .relaxed_header = relaxed_header, .relaxed_body = relaxed_body},
                                  *std::move(keys));
    for (const char* body : {"", "\n\n", "no line end", "a  b \t\n\n \nc\n\n\n", ".\n..x\n"}) {
      const std::string message = SignThroughCleanup(
          absl::StrCat("From: Ann <ann@example.com>\nTo: b@example.org,\n  c@example.org\nSubject:  x  y \n\n", body));
      EXPECT_THAT(message, HasSubstr(absl::StrCat("a=ed25519-sha256; c=", canonicalization, ";")));
      EXPECT_EQ(Verify(message), DKIM_STAT_OK) << canonicalization << " body \"" << body << "\"\n" << message;
      EXPECT_NE(Verify(absl::StrReplaceAll(message, {{"Subject:  x", "Subject:  z"}})), DKIM_STAT_OK);
    }
  }
}

TEST_F(DkimSignerTest, AnAuthorWithoutAKeyOrWithoutFromIsNotSigned) {
  std::string fields = "unset";
  SignThroughCleanup("From: x@other.example\nSubject: s\n\nbody\n", &fields);
  EXPECT_EQ(fields, "");
  // No From: in the content, and cleanup adds the envelope sender's (ann@example.com): signed.
  SignThroughCleanup("Subject: s\n\nbody\n", &fields);
  EXPECT_THAT(fields, HasSubstr("d=example.com"));
}

TEST(DkimSignerOptionsTest, FromMustBeSignedAndOversignedHeadersSigned) {
  EXPECT_THAT(DkimSigner::Create({.signed_headers = {"subject"}}, DkimKeys()).status().message(),
              HasSubstr("must include From"));
  EXPECT_THAT(DkimSigner::Create({.signed_headers = {"from"}, .oversigned_headers = {"to"}}, DkimKeys()).status().message(),
              HasSubstr("\"to\" is oversigned but not signed"));
}

}  // namespace
}  // namespace postgate::gateway::dkim
