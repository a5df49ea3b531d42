#include "smtp-gateway/cleanup/mime_structure.h"

#include <sstream>

#include "gtest/gtest.h"
#include "smtp-gateway/cleanup/message_cleanup.h"

namespace postgate::gateway::cleanup {
namespace {

TEST(MimeStructureTest, ContentTypeParameters) {
  ContentType parsed = ParseContentType(" Multipart/Mixed; charset=x; boundary=\"a b;c\" ; x=y");
  EXPECT_EQ(parsed.media_type, "multipart/mixed");
  EXPECT_EQ(parsed.boundary, "a b;c");
  EXPECT_EQ(ParseContentType("multipart/alternative;boundary=plain").boundary, "plain");
  EXPECT_EQ(ParseContentType("text/plain").boundary, "");
}

// Which lines are part headers, and of which class, for a body with nested multiparts, an
// attached message and a digest: "H" part header, "N" attached message header, "." otherwise.
std::string Classes(absl::string_view top_content_type, absl::string_view body) {
  MimeStructure mime;
  if (!mime.Start(top_content_type)) return "not followed";
  std::string classes;
  std::string field;
  std::istringstream in{std::string(body)};
  for (std::string line; std::getline(in, line);) {
    if (mime.in_headers()) {
      classes += mime.header_class() == MimeStructure::HeaderClass::kPart ? 'H' : 'N';
      if (line.empty()) {
        if (!field.empty()) mime.HeaderField(field);
        field.clear();
        mime.EndOfHeaders();
      } else if (line[0] == ' ') {
        field += "\n" + line;
      } else {
        if (!field.empty()) mime.HeaderField(field);
        field = line;
      }
      continue;
    }
    classes += '.';
    mime.BodyLine(line);
  }
  return classes;
}

TEST(MimeStructureTest, PartsNestedPartsAttachedMessagesAndDigests) {
  EXPECT_EQ(Classes("text/plain", "x\n"), "not followed");
  EXPECT_EQ(Classes("multipart/mixed", "x\n"), "not followed");  // No boundary: nothing to follow.
  EXPECT_EQ(Classes("multipart/mixed; boundary=\"o\"",
                    "preamble\n"
                    "--o\n"
                    "Content-Type: multipart/alternative;\n boundary=i\n"
                    "\n"
                    "--i\n"
                    "Content-Type: text/plain\n"
                    "\n"
                    "text\n"
                    "--i--\n"
                    "--o \n"
                    "Content-Type: message/rfc822\n"
                    "\n"
                    "Subject: attached\n"
                    "X-Mailer: m\n"
                    "\n"
                    "--o-- not a boundary\n"
                    "--o--\n"
                    "epilogue\n"),
            ".." "HHH" "." "HH" ".." "." "HH" "NNN" ".." ".");
  EXPECT_EQ(Classes("multipart/digest; boundary=d", "--d\n\nSubject: in a digest\n\nbody\n--d--\n"),
            "." "H" "NN" ".." );
  EXPECT_EQ(Classes("message/rfc822", "From: a@b\n\nbody\n"), "NN.");
}

// mime_header_checks on part headers, nested_header_checks on an attached message's others, with
// every split of the content giving the same; the DKIM observer sees the parts as body.
TEST(MimeStructureTest, PartHeadersAreCheckedInCleanup) {
  auto mime_checks = *config::RegexpTable::Parse(
      "/^Content-Type:.*name=\"?.*\\.exe/ REJECT attachment not allowed\n"
      "/^Content-Disposition: attachment; filename=\"?(.*)\\.bat/ REPLACE Content-Disposition: attachment; filename=$1.txt\n"
      "/^Content-Description:/ IGNORE\n", "mime");
  auto nested_checks = *config::RegexpTable::Parse("/^X-Secret:/ IGNORE\n/^Subject: spam/ WARN nested spam\n", "nested");
  CleanupOptions options;
  options.mime_header_checks = mime_checks.get();
  options.nested_header_checks = nested_checks.get();
  const std::string content =
      "Subject: s\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n"
      "--b\nContent-Type: text/plain\nContent-Description: gone\n  folded too\n\nhello\n"
      "--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"x.bat\"\n\nAAAA\n"
      "--b\nContent-Type: message/rfc822\n\nSubject: spam here\nX-Secret: 1\nContent-Description: also gone\n\ninner\n"
      "--b--\n";
  std::string first;
  for (size_t step : {size_t{1}, size_t{3}, size_t{64}, content.size()}) {
    MessageCleanup cleanup(options, nullptr);
    std::string out;
    for (size_t at = 0; at < content.size(); at += step) cleanup.Feed(content.substr(at, step), &out);
    cleanup.Finish(&out);
    EXPECT_FALSE(cleanup.body_passes_through());
    EXPECT_FALSE(cleanup.rejection().has_value());
    ASSERT_EQ(cleanup.actions().size(), 2u);
    EXPECT_EQ(cleanup.actions()[0].action, "replace");
    EXPECT_EQ(cleanup.actions()[1].action, "warning");
    EXPECT_EQ(cleanup.actions()[1].text, "nested spam");
    if (first.empty()) first = out;
    EXPECT_EQ(out, first) << "split every " << step;
  }
  EXPECT_EQ(first,
            "Subject: s\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n"
            "--b\nContent-Type: text/plain\n\nhello\n"
            "--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=x.txt\n\nAAAA\n"
            "--b\nContent-Type: message/rfc822\n\nSubject: spam here\n\ninner\n"
            "--b--\n");
  MessageCleanup rejecting(options, nullptr);
  std::string out;
  rejecting.Feed("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/x; name=\"a.exe\"\n\nMZ\n--b--\n",
                 &out);
  rejecting.Finish(&out);
  ASSERT_TRUE(rejecting.rejection().has_value());
  EXPECT_EQ(rejecting.rejection()->text, "attachment not allowed");
  // Without part checks the body is not followed: it passes as it is, uncopied.
  MessageCleanup plain(CleanupOptions{}, nullptr);
  plain.Feed("Content-Type: multipart/mixed; boundary=b\n\n--b\n", &out);
  EXPECT_TRUE(plain.body_passes_through());
}

}  // namespace
}  // namespace postgate::gateway::cleanup
