#include "core/smtp/command.h"

#include "gtest/gtest.h"

namespace postgate::smtp {
namespace {

TEST(CommandTest, VerbsAreCaseInsensitive) {
  Command command = ParseCommand("ehlo 172.20.169.6");
  EXPECT_EQ(command.verb, Verb::kEhlo);
  EXPECT_EQ(command.argument, "172.20.169.6");
  EXPECT_EQ(ParseCommand("MaIl FROM:<a@b>").verb, Verb::kMail);
  EXPECT_EQ(ParseCommand("mail from:<a@b>").argument, "from:<a@b>");
}

TEST(CommandTest, ArgumentIsTrimmed) {
  EXPECT_EQ(ParseCommand("RCPT   TO:<x@y>  ").argument, "TO:<x@y>");
  EXPECT_EQ(ParseCommand("DATA").argument, "");
  EXPECT_EQ(ParseCommand("QUIT\t").verb, Verb::kQuit);
}

TEST(CommandTest, UnknownAndEmpty) {
  EXPECT_EQ(ParseCommand("").verb, Verb::kUnknown);
  EXPECT_EQ(ParseCommand("DATAX").verb, Verb::kUnknown);
  EXPECT_EQ(ParseCommand("GET / HTTP/1.0").verb, Verb::kUnknown);
  EXPECT_EQ(VerbName(Verb::kVrfy), "VRFY");
  EXPECT_EQ(VerbName(Verb::kUnknown), "UNKNOWN");
}

}  // namespace
}  // namespace postgate::smtp
