#include "smtp-gateway/dkim/dkim_keys.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "smtp-gateway/dkim/dkim_test_keys.h"

namespace postgate::gateway::dkim {
namespace {

using ::testing::HasSubstr;
using testing::TestDirectory;

class DkimKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rsa_ = dir_.WriteKey("rsa.pem", "RSA");
    ed_ = dir_.WriteKey("rsa2.pem", "RSA");
    key_table_ = dir_.Write("KeyTable", absl::StrCat("# name  domain:selector:key\n", "rsa example.com:r2026:", rsa_,
                                                     "\ned  Example.COM:e2026:", ed_, "\n", "sub  sub.example.net:s:",
                                                     rsa_, "\nany  fallback.example:f:", ed_, "\n"));
  }
  absl::StatusOr<DkimKeys> Load(const std::string& signing) {
    return DkimKeys::Load(key_table_, dir_.Write("SigningTable", signing));
  }
  std::vector<std::string> NamesFor(const DkimKeys& keys, absl::string_view address) {
    std::vector<std::string> names;
    for (const DkimKey* key : keys.KeysFor(address)) names.push_back(key->name);
    return names;
  }
  TestDirectory dir_;
  std::string rsa_, ed_, key_table_;
};

TEST_F(DkimKeysTest, KeysAreReadWithTheirTypeAndPublicValue) {
  absl::StatusOr<DkimKeys> keys = Load("example.com rsa\n");
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ(keys->keys().size(), 4u);
  EXPECT_EQ(keys->keys()[0].bits, 2048);
  EXPECT_EQ(keys->keys()[0].public_key.size(), 392u);  // Base64 of a 294-byte SubjectPublicKeyInfo.
  EXPECT_EQ(keys->keys()[1].domain, "example.com");  // Lower-cased.
  EXPECT_NE(keys->keys()[1].public_key, keys->keys()[0].public_key);
  EXPECT_THAT(keys->files(), ::testing::ElementsAre(key_table_, ::testing::EndsWith("SigningTable"), rsa_, ed_, rsa_, ed_));
}

TEST_F(DkimKeysTest, TheAddressThenItsDomainThenParentsThenStar) {
  absl::StatusOr<DkimKeys> keys = Load(
      "*@example.com rsa\nexample.com ed\nboss@example.com sub\n*.example.net sub\n* any\n");
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(NamesFor(*keys, "boss@Example.com"), (std::vector<std::string>{"sub"}));
  EXPECT_EQ(NamesFor(*keys, "ann@EXAMPLE.com"), (std::vector<std::string>{"rsa", "ed"}));  // Two signatures.
  EXPECT_EQ(NamesFor(*keys, "x@deep.sub.example.net"), (std::vector<std::string>{"sub"}));
  EXPECT_EQ(NamesFor(*keys, "x@example.net"), (std::vector<std::string>{"any"}));
  EXPECT_EQ(NamesFor(*keys, "no-domain"), (std::vector<std::string>{}));
  absl::StatusOr<DkimKeys> narrow = Load("example.com rsa\n");
  EXPECT_TRUE(narrow->KeysFor("x@other.example").empty());
  EXPECT_TRUE(narrow->KeysFor("x@sub.example.com").empty());
}

TEST_F(DkimKeysTest, ErrorsNameTheFileAndLineAndNeverTheKey) {
  const std::string signing = dir_.Write("SigningTable", "example.com rsa\n");
  const std::string bad_key = dir_.Write("bad.pem", "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n-----END PRIVATE KEY-----\n");
  const std::string small = dir_.WriteKey("small.pem", "RSA", 512);
  struct Case {
    std::string key_table;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"rsa example.com:sel\n", "BadKeyTable:1: expected \"NAME DOMAIN:SELECTOR:/path/to/key.pem\""},
      {absl::StrCat("\n\nrsa example.com:s:", dir_.path(), "/missing.pem\n"), "KeyTable:3: "},
      {absl::StrCat("rsa example.com:s:", bad_key, "\n"), absl::StrCat("KeyTable:1: ", bad_key, ": not a PEM private key")},
      {absl::StrCat("rsa example.com:s:", small, "\n"), "an RSA key of 512 bits (RFC 8301: at least 1024)"},
      {absl::StrCat("ec example.com:s:", dir_.WriteKey("ec.pem", "X25519"), "\n"), "neither an RSA nor an Ed25519 key"},
      {absl::StrCat("rsa example.com:s:", rsa_, "\nrsa example.com:t:", rsa_, "\n"), "KeyTable:2: key \"rsa\" named twice"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<DkimKeys> keys = DkimKeys::Load(dir_.Write("BadKeyTable", c.key_table), signing);
    ASSERT_FALSE(keys.ok()) << c.key_table;
    EXPECT_THAT(keys.status().message(), HasSubstr(c.expected));
    EXPECT_THAT(keys.status().message(), ::testing::Not(HasSubstr("c2VjcmV0")));
  }
  absl::StatusOr<DkimKeys> unknown = Load("\nexample.com nokey\n");
  EXPECT_THAT(unknown.status().message(), HasSubstr("SigningTable:2: key \"nokey\" is not in "));
  absl::StatusOr<DkimKeys> shape = Load("example.com\n");
  EXPECT_THAT(shape.status().message(), HasSubstr("SigningTable:1: expected \"PATTERN KEYNAME\""));
}

TEST_F(DkimKeysTest, TheDnsRecordIsInZoneFileFormWithStringsOfAtMost255) {
  absl::StatusOr<DkimKeys> keys = Load("example.com rsa\n");
  ASSERT_TRUE(keys.ok());
  const std::string rsa = DnsRecord(keys->keys()[0]);
  EXPECT_TRUE(absl::StartsWith(rsa, "r2026._domainkey.example.com. IN TXT ( \"v=DKIM1; k=rsa; p=MIIBIjAN")) << rsa;
  EXPECT_TRUE(absl::EndsWith(rsa, "\" )"));
  std::string joined;
  for (absl::string_view piece : absl::StrSplit(rsa.substr(rsa.find('(') + 2), "\" \"")) absl::StrAppend(&joined, piece);
  EXPECT_THAT(joined, HasSubstr(keys->keys()[0].public_key));
  EXPECT_TRUE(absl::StartsWith(DnsRecord(keys->keys()[1]), "e2026._domainkey.example.com. IN TXT ( \"v=DKIM1; k=rsa; p="));
  // Ed25519 (RFC 8463): the raw 32-byte public key, 44 base64 characters.
  absl::StatusOr<DkimKeys> ed = DkimKeys::Load(
      dir_.Write("EdKeyTable", absl::StrCat("ed example.com:ed2026:", dir_.WriteKey("ed.pem", "ED25519"), "\n")),
      dir_.Write("EdSigningTable", "example.com ed\n"));
  ASSERT_TRUE(ed.ok()) << ed.status();
  EXPECT_EQ(ed->keys()[0].type, DkimKey::Type::kEd25519);
  EXPECT_EQ(ed->keys()[0].public_key.size(), 44u);
  EXPECT_EQ(DnsRecord(ed->keys()[0]),
            absl::StrCat("ed2026._domainkey.example.com. IN TXT ( \"v=DKIM1; k=ed25519; p=", ed->keys()[0].public_key,
                         "\" )"));
}

TEST(AuthorAddressTest, TheFromHeadersAddress) {
  EXPECT_EQ(AuthorAddress(" Ann <ann@Example.COM>"), "ann@example.com");
  EXPECT_EQ(AuthorAddress(" \"Doe, <John>\" <john@example.com>"), "john@example.com");
  EXPECT_EQ(AuthorAddress(" ann@example.com (Ann Example)"), "ann@example.com");
  EXPECT_EQ(AuthorAddress(" a@one.example, b@two.example"), "a@one.example");
  EXPECT_EQ(AuthorAddress(" undisclosed"), "");
  EXPECT_EQ(AuthorAddress(" <>"), "");
}

}  // namespace
}  // namespace postgate::gateway::dkim
