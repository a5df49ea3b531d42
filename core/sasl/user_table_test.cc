#include "core/sasl/user_table.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace postgate::sasl {
namespace {

// Hashes made as an operator makes them: mkpasswd (Debian's whois package).
std::string Mkpasswd(const char* method, const char* password) {
  const std::string command = std::string("mkpasswd -m ") + method + " '" + password + "'";
  FILE* pipe = popen(command.c_str(), "r");
  std::string out;
  char buffer[256];
  while (pipe != nullptr && fgets(buffer, sizeof(buffer), pipe) != nullptr) out += buffer;
  if (pipe != nullptr) pclose(pipe);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

TEST(UserTableTest, VerifiesHashesStandardToolsMake) {
  for (const char* method : {"yescrypt", "bcrypt", "sha-512"}) {
    const std::string hash = Mkpasswd(method, "s3cret");
    ASSERT_FALSE(hash.empty()) << "mkpasswd -m " << method << " (Debian package whois)";
    absl::StatusOr<UserTable> table = UserTable::Parse("# users\nalice:" + hash + "\n", "users");
    ASSERT_TRUE(table.ok()) << method << ": " << table.status();
    EXPECT_TRUE(table->Verify("alice", Secret(std::string("s3cret")))) << method;
    EXPECT_FALSE(table->Verify("alice", Secret(std::string("s3cret ")))) << method;
    EXPECT_FALSE(table->Verify("Alice", Secret(std::string("s3cret")))) << method;
    EXPECT_FALSE(table->Verify("bob", Secret(std::string("s3cret")))) << method;
  }
}

TEST(UserTableTest, RefusesWeakOrMalformedEntriesNamingTheLineOnly) {
  EXPECT_EQ(UserTable::Parse("alice:plaintext-password\n", "users").status().message(),
            "users:1: user alice: not a password hash libcrypt accepts (use yescrypt, bcrypt or SHA-512-crypt, "
            "e.g. mkpasswd -m yescrypt)");
  EXPECT_FALSE(UserTable::Parse("alice:$1$abcdefgh$0123456789012345678901\n", "users").ok());  // MD5: legacy.
  EXPECT_EQ(UserTable::Parse("\nno-colon-here\n", "users").status().message(), "users:2: expected \"name:hash\"");
  const std::string hash = Mkpasswd("sha-512", "x");
  EXPECT_EQ(UserTable::Parse("a:" + hash + "\na:" + hash + "\n", "users").status().message(),
            "users:2: user a is listed twice");
  EXPECT_FALSE(UserTable::Parse("", "users")->Verify("anyone", Secret(std::string("x"))));
}

TEST(UserTableTest, AnUnknownNameCostsWhatAKnownOneDoes) {
  // bcrypt at cost 10 takes tens of milliseconds: a refusal for a missing name that returned at
  // once would tell a client which names exist.
  const std::string hash = Mkpasswd("bcrypt -R 10", "s3cret");
  absl::StatusOr<UserTable> table = UserTable::Parse("alice:" + hash + "\n", "users");
  ASSERT_TRUE(table.ok()) << table.status();
  // The fastest of five: what the work costs, without the time others took the CPU away.
  auto cost = [&](const char* user) {
    absl::Duration fastest = absl::InfiniteDuration();
    for (int i = 0; i < 5; ++i) {
      const absl::Time start = absl::Now();
      EXPECT_FALSE(table->Verify(user, Secret(std::string("wrong"))));
      fastest = std::min(fastest, absl::Now() - start);
    }
    return fastest;
  };
  const absl::Duration known = cost("alice");
  const absl::Duration unknown = cost("mallory");
  // The stand-in hash has the same method and cost: the same work, not a shortcut. (A bound
  // loose enough for a busy machine; a shortcut would be thousands of times faster.)
  EXPECT_GT(unknown, known / 4) << "known " << known << " unknown " << unknown;
}

}  // namespace
}  // namespace postgate::sasl
