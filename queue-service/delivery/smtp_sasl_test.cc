#include "queue-service/delivery/smtp_sasl.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"

namespace postgate::queue {
namespace {

namespace fs = std::filesystem;

class SaslPasswordMapTest : public ::testing::Test {
 protected:
  SaslPasswordMapTest() : dir_(fs::temp_directory_path() / ("postgate-sasl-" + std::to_string(getpid()))) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~SaslPasswordMapTest() override { fs::remove_all(dir_); }

  // Writes `text` as a Kubernetes Secret volume does: a new file, then a symlink swapped onto it.
  void Write(const std::string& text) {
    const fs::path data = dir_ / ("data-" + std::to_string(version_++));
    std::ofstream(data) << text;
    const fs::path link = dir_ / "link.tmp";
    fs::create_symlink(data, link);
    fs::rename(link, path());
  }
  std::string path() const { return (dir_ / "sasl_passwd").string(); }

  fs::path dir_;
  int version_ = 0;
};

TEST_F(SaslPasswordMapTest, PostfixLookupOrder) {
  Write("app@example.com     sender-user:s1\n"
        "@example.com        domain-user:s2\n"
        "[relay.example.net]:587 hop-user:pass:with:colons\n"
        "mx.example.net      host-user:s4\n");
  absl::StatusOr<std::unique_ptr<SaslPasswordMap>> map = SaslPasswordMap::Open("texthash:" + path());
  ASSERT_TRUE(map.ok()) << map.status();
  const NextHop relay{"relay.example.net", 587, false};
  // The sender first (when sender-dependent), then its domain.
  EXPECT_EQ((*map)->Find("app@example.com", true, relay, "")->username, "sender-user");
  EXPECT_EQ((*map)->Find("other@example.com", true, relay, "")->username, "domain-user");
  // Not sender-dependent: the next hop as written; the password keeps its colons.
  std::optional<SaslCredentials> hop = (*map)->Find("app@example.com", false, relay, "");
  EXPECT_EQ(hop->username, "hop-user");
  EXPECT_EQ(hop->password.reveal(), "pass:with:colons");
  // Then the server connected to (an MX host of a next hop not in the table).
  EXPECT_EQ((*map)->Find("", false, NextHop{"example.net", 25, true}, "mx.example.net")->username, "host-user");
  EXPECT_FALSE((*map)->Find("", false, NextHop{"example.org", 25, true}, "mx.example.org").has_value());
  EXPECT_EQ((*map)->SenderUsername("x@example.com"), std::optional<std::string>("domain-user"));
}

TEST_F(SaslPasswordMapTest, ARotatedFileIsReadAgainAndABrokenOneKeepsTheLast) {
  Write("[relay.example.net]:587 user:old-password\n");
  absl::StatusOr<std::unique_ptr<SaslPasswordMap>> map = SaslPasswordMap::Open("texthash:" + path());
  ASSERT_TRUE(map.ok());
  const NextHop relay{"relay.example.net", 587, false};
  EXPECT_EQ((*map)->Find("", false, relay, "")->password.reveal(), "old-password");
  Write("[relay.example.net]:587 user:new-password\n");
  EXPECT_EQ((*map)->Find("", false, relay, "")->password.reveal(), "new-password");
  Write("[relay.example.net]:587\n");  // No value: does not parse.
  EXPECT_EQ((*map)->Find("", false, relay, "")->password.reveal(), "new-password");
  fs::remove(path());  // Gone for a moment: the last table stays in use.
  EXPECT_EQ((*map)->Find("", false, relay, "")->password.reveal(), "new-password");
}

TEST_F(SaslPasswordMapTest, StartErrorsNameTheFileAndLineNeverTheSecret) {
  Write("good user:pw\nsecret-in-a-broken-line\n");
  absl::StatusOr<std::unique_ptr<SaslPasswordMap>> map = SaslPasswordMap::Open("texthash:" + path());
  ASSERT_FALSE(map.ok());
  EXPECT_EQ(map.status().message(), path() + ":2: expected \"key value\"");
  EXPECT_FALSE(SaslPasswordMap::Open("texthash:" + (dir_ / "missing").string()).ok());
}

}  // namespace
}  // namespace postgate::queue
