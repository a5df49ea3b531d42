#include "core/sasl/sasl.h"

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace postgate::sasl {
namespace {

TEST(SecretTest, MovesAndWipesAndCopiesOnlyOnRequest) {
  Secret secret(std::string("hunter2-long-enough-to-be-on-the-heap"));
  Secret moved(std::move(secret));
  EXPECT_TRUE(secret.empty());  // NOLINT(bugprone-use-after-move): what a move leaves is tested.
  EXPECT_EQ(moved.reveal(), "hunter2-long-enough-to-be-on-the-heap");
  Secret copy = moved.Copy();
  EXPECT_TRUE(copy == moved);
}

TEST(SecurityOptionsTest, PostfixWordsAndWhatTheyExclude) {
  absl::StatusOr<SecurityOptions> defaults = ParseSecurityOptions({"noplaintext", "noanonymous"});
  ASSERT_TRUE(defaults.ok());
  EXPECT_FALSE(Permits(*defaults, "PLAIN"));
  EXPECT_FALSE(Permits(*defaults, "LOGIN"));
  absl::StatusOr<SecurityOptions> over_tls = ParseSecurityOptions({"noanonymous"});
  EXPECT_TRUE(Permits(*over_tls, "PLAIN"));
  EXPECT_TRUE(Permits(*over_tls, "LOGIN"));
  EXPECT_FALSE(Permits(*ParseSecurityOptions({"nodictionary"}), "PLAIN"));
  EXPECT_FALSE(Permits(*over_tls, "CRAM-MD5"));  // Not implemented: never chosen.
  EXPECT_EQ(ParseSecurityOptions({"noplaintext", "bogus"}).status().message(),
            "unknown SASL security option \"bogus\"");
}

TEST(ChooseMechanismTest, PreferenceFilterAndPolicy) {
  const SecurityOptions open = *ParseSecurityOptions({"noanonymous"});
  EXPECT_EQ(*ChooseMechanism({"login", "CRAM-MD5", "plain"}, {}, open), "PLAIN");
  EXPECT_EQ(*ChooseMechanism({"LOGIN", "PLAIN"}, {"login"}, open), "LOGIN");
  EXPECT_EQ(ChooseMechanism({"CRAM-MD5"}, {}, open).status().message(), "no mechanism available");
  EXPECT_FALSE(ChooseMechanism({"PLAIN", "LOGIN"}, {}, *ParseSecurityOptions({"noplaintext"})).ok());
}

TEST(PlainTest, RoundTripAndMalformedInput) {
  const std::string encoded = EncodePlain("", "user@example.com", Secret(std::string("pa ss")));
  EXPECT_EQ(encoded, absl::Base64Escape(std::string("\0user@example.com\0pa ss", 23)));
  absl::StatusOr<PlainMessage> decoded = DecodePlain(encoded);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->authzid, "");
  EXPECT_EQ(decoded->user, "user@example.com");
  EXPECT_EQ(decoded->password.reveal(), "pa ss");
  EXPECT_EQ(DecodePlain("!!!").status().message(), "malformed BASE64 input");
  EXPECT_EQ(DecodePlain(absl::Base64Escape("no-nul-at-all")).status().message(), "malformed PLAIN message");
  EXPECT_FALSE(DecodePlain(absl::Base64Escape(std::string("a\0b\0c\0d", 7))).ok());
}

TEST(ClientExchangeTest, PlainGoesInTheCommandLoginAnswersTwoPrompts) {
  ClientExchange plain("PLAIN", "u", Secret(std::string("p")));
  EXPECT_EQ(plain.Command(), "AUTH PLAIN " + absl::Base64Escape(std::string("\0u\0p", 4)) + "\r\n");
  EXPECT_FALSE(plain.Respond("").ok());  // The response was already in the command.

  ClientExchange login("LOGIN", "user", Secret(std::string("secret")));
  EXPECT_EQ(login.Command(), "AUTH LOGIN\r\n");
  EXPECT_EQ(*login.Respond("VXNlcm5hbWU6"), absl::Base64Escape("user") + "\r\n");
  EXPECT_EQ(*login.Respond("UGFzc3dvcmQ6"), absl::Base64Escape("secret") + "\r\n");
  EXPECT_FALSE(login.Respond("").ok());  // A third challenge: a looping server.

  // A PLAIN message too long for the command line waits for the server's empty challenge.
  ClientExchange long_plain("PLAIN", std::string(400, 'u'), Secret(std::string(100, 'p')));
  EXPECT_EQ(long_plain.Command(), "AUTH PLAIN\r\n");
  EXPECT_EQ(*long_plain.Respond(""), EncodePlain("", std::string(400, 'u'), Secret(std::string(100, 'p'))) + "\r\n");
}

}  // namespace
}  // namespace postgate::sasl
