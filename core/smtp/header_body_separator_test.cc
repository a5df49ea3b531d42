#include "core/smtp/header_body_separator.h"

#include <string>

#include "gtest/gtest.h"

namespace postgate::smtp {
namespace {

std::string Whole(absl::string_view content) {
  HeaderBodySeparator separator;
  std::string out;
  separator.Feed(content, &out);
  separator.Finish(&out);
  return out;
}

// Every split gives the same bytes: fed one byte at a time, and in two pieces at each point.
std::string Checked(absl::string_view content) {
  const std::string whole = Whole(content);
  HeaderBodySeparator bytewise;
  std::string out;
  for (char c : content) bytewise.Feed(absl::string_view(&c, 1), &out);
  bytewise.Finish(&out);
  EXPECT_EQ(out, whole) << "byte at a time: " << content;
  for (size_t cut = 0; cut <= content.size(); ++cut) {
    HeaderBodySeparator two;
    std::string split;
    two.Feed(content.substr(0, cut), &split);
    two.Feed(content.substr(cut), &split);
    two.Finish(&split);
    EXPECT_EQ(split, whole) << "cut at " << cut << ": " << content;
  }
  return whole;
}

TEST(HeaderBodySeparatorTest, TheReferenceSessionsLineBecomesTheBody) {
  EXPECT_EQ(Checked("MOREAU--THOMAS, MARY, alphacassiopeabetagruis, 169\n"),
            "\nMOREAU--THOMAS, MARY, alphacassiopeabetagruis, 169\n");
}

TEST(HeaderBodySeparatorTest, AProperMessageIsUntouched) {
  const std::string message = "Subject: hi\nTo: a@b,\n\tc@d\nX-Y : z\n\nbody: not a header\nmore\n";
  EXPECT_EQ(Checked(message), message);
  EXPECT_EQ(Checked("\nbody only\n"), "\nbody only\n");
  EXPECT_EQ(Checked("Subject: no body\n"), "Subject: no body\n");
  EXPECT_EQ(Checked(""), "");
}

TEST(HeaderBodySeparatorTest, TextAfterHeadersGetsTheEmptyLine) {
  EXPECT_EQ(Checked("Subject: hi\nhello there\n"), "Subject: hi\n\nhello there\n");
  EXPECT_EQ(Checked("Subject: hi\nword\n"), "Subject: hi\n\nword\n");
  EXPECT_EQ(Checked("Subject: hi\nlast line without end"), "Subject: hi\n\nlast line without end");
}

TEST(HeaderBodySeparatorTest, WhatIsNotAHeaderLine) {
  EXPECT_EQ(Checked("From me to you\n"), "\nFrom me to you\n");      // mbox's From_ line
  EXPECT_EQ(Checked(": no name\n"), "\n: no name\n");
  EXPECT_EQ(Checked(" leading blank\n"), "\n leading blank\n");      // Not a continuation of Received:
  EXPECT_EQ(Checked("two words: x\n"), "\ntwo words: x\n");
  EXPECT_EQ(Checked("caf\xc3\xa9: x\n"), "\ncaf\xc3\xa9: x\n");      // Postfix: ASCII names only
  EXPECT_EQ(Checked("\rX: y\n"), "\n\rX: y\n");
  const std::string long_name(2000, 'a');
  EXPECT_EQ(Whole(long_name + ": x\n"), "\n" + long_name + ": x\n");
}

TEST(HeaderBodySeparatorTest, BodyIsCopiedOnceKnown) {
  HeaderBodySeparator separator;
  std::string out;
  separator.Feed("Subject: a\n", &out);
  EXPECT_FALSE(separator.in_body());
  separator.Feed("\nFrom x\n", &out);
  EXPECT_TRUE(separator.in_body());
  EXPECT_EQ(out, "Subject: a\n\nFrom x\n");
}

}  // namespace
}  // namespace postgate::smtp
