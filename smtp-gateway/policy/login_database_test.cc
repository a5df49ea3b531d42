#include "smtp-gateway/policy/login_database.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace postgate::gateway::policy {
namespace {

namespace fs = std::filesystem;

std::string Mkpasswd(const std::string& password) {  // As an operator makes a hash (package whois).
  const std::string command = absl::StrCat("mkpasswd -m sha-512 '", password, "'");
  FILE* pipe = popen(command.c_str(), "r");
  char buffer[256] = {};
  std::string out = pipe != nullptr && fgets(buffer, sizeof(buffer), pipe) != nullptr ? buffer : "";
  if (pipe != nullptr) pclose(pipe);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class LoginDatabaseTest : public ::testing::Test {
 protected:
  LoginDatabaseTest() : dir_(fs::temp_directory_path() / absl::StrCat("postgate-logins-", getpid())) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~LoginDatabaseTest() override { fs::remove_all(dir_); }
  // As a Secret volume is updated: a new file, then the name swapped onto it.
  void Write(const std::string& text) {
    const fs::path data = dir_ / absl::StrCat("v", version_++);
    std::ofstream(data) << text;
    fs::create_symlink(data, dir_ / "tmp");
    fs::rename(dir_ / "tmp", dir_ / "users");
  }
  std::string path() const { return (dir_ / "users").string(); }
  fs::path dir_;
  int version_ = 0;
};

TEST_F(LoginDatabaseTest, ARotatedFileIsUsedAtTheNextLoginAndABrokenOneIsNot) {
  Write(absl::StrCat("foo:", Mkpasswd("first"), "\n"));
  absl::StatusOr<std::shared_ptr<LoginDatabase>> logins = LoginDatabase::Open(path());
  ASSERT_TRUE(logins.ok()) << logins.status();
  EXPECT_TRUE((*logins)->Verify("foo", sasl::Secret(std::string("first"))));
  Write(absl::StrCat("foo:", Mkpasswd("second"), "\n"));
  EXPECT_FALSE((*logins)->Verify("foo", sasl::Secret(std::string("first"))));
  EXPECT_TRUE((*logins)->Verify("foo", sasl::Secret(std::string("second"))));
  Write("foo:not-a-hash\n");
  EXPECT_TRUE((*logins)->Verify("foo", sasl::Secret(std::string("second"))));
  fs::remove(path());
  EXPECT_TRUE((*logins)->Verify("foo", sasl::Secret(std::string("second"))));
}

TEST_F(LoginDatabaseTest, AStartWithABrokenFileFailsNamingTheLine) {
  Write("# users\nfoo:plaintext\n");
  absl::StatusOr<std::shared_ptr<LoginDatabase>> logins = LoginDatabase::Open(path());
  ASSERT_FALSE(logins.ok());
  EXPECT_TRUE(absl::StartsWith(logins.status().message(), absl::StrCat(path(), ":2: user foo:")))
      << logins.status();
  const std::string missing = (dir_ / "missing").string();
  EXPECT_EQ(LoginDatabase::Open(missing).status().message(), absl::StrCat(missing, ": cannot open"));
}

}  // namespace
}  // namespace postgate::gateway::policy
