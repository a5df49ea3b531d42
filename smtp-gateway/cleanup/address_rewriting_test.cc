#include "smtp-gateway/cleanup/address_rewriting.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "smtp-gateway/cleanup/message_cleanup.h"

namespace postgate::gateway::cleanup {
namespace {

addressing::AddressMaps Table(absl::string_view text) {
  absl::StatusOr<config::LookupTable> table = config::LookupTable::Parse(text, "canonical");
  EXPECT_TRUE(table.ok()) << table.status();
  std::vector<addressing::AddressMaps::Table> tables(1);
  tables[0].hash = *std::move(table);
  return addressing::AddressMaps(std::move(tables), '+');
}

// The lab's main.cf: $myorigin and mydestination mail169.com.
const addressing::LocalDomain& Lab() {
  static const addressing::LocalDomain lab(
      *config::MainCf::Parse("myhostname = mail169.com\nmydestination = mail169.com\nrecipient_delimiter = +\n",
                             "main.cf", "host"),
      config::AliasTable());
  return lab;
}

AddressRewritingOptions LabOptions() {
  AddressRewritingOptions options;
  options.local_domain = &Lab();
  return options;
}

TEST(AddressRewritingTest, SenderAndRecipientTablesComeBeforeCanonicalMapsAndRepeat) {
  AddressRewritingOptions options = LabOptions();
  options.sender_canonical = Table("foo  app@example.com\n");
  options.recipient_canonical = Table("@old.example  @new.example\n");
  options.canonical = Table("app@example.com  noreply@example.com\nnoreply@example.com  team@example.com\n");
  const AddressRewriting rewriting(std::move(options));
  EXPECT_EQ(rewriting.Rewrite("foo@mail169.com", kEnvelopeSender), "team@example.com");
  EXPECT_EQ(rewriting.Rewrite("foo+x@mail169.com", kEnvelopeSender), "team+x@example.com");
  EXPECT_EQ(rewriting.Rewrite("foo@mail169.com", kEnvelopeRecipient), "foo@mail169.com");
  EXPECT_EQ(rewriting.Rewrite("ann@old.example", kEnvelopeRecipient), "ann@new.example");
  EXPECT_EQ(rewriting.Rewrite("ann@old.example", kEnvelopeSender), "ann@old.example");
  EXPECT_EQ(rewriting.Rewrite("", kEnvelopeSender), "");
  // A result without a domain is qualified with $myorigin.
  AddressRewritingOptions bare = LabOptions();
  bare.canonical = Table("postmaster@x.example  root\n");
  EXPECT_EQ(AddressRewriting(std::move(bare)).Rewrite("postmaster@x.example", kEnvelopeRecipient), "root@mail169.com");
}

TEST(AddressRewritingTest, ALoopStopsAfterTenLookupsAndClassesLimitWhereATableApplies) {
  AddressRewritingOptions options = LabOptions();
  options.canonical = Table("a@x.example  b@x.example\nb@x.example  a@x.example\n");
  options.canonical_classes = kEnvelopeRecipient;
  const AddressRewriting rewriting(std::move(options));
  EXPECT_EQ(rewriting.Rewrite("a@x.example", kEnvelopeRecipient), "a@x.example");  // Ten lookups: even.
  EXPECT_EQ(rewriting.Rewrite("a@x.example", kEnvelopeSender), "a@x.example");
  EXPECT_EQ(rewriting.Rewrite("a@x.example", kHeaderRecipient), "a@x.example");
  EXPECT_THAT(std::string(ParseAddressClasses({"envelope_sender", "bogus"}).status().message()),
              ::testing::HasSubstr("\"bogus\": unknown address class"));
  EXPECT_EQ(*ParseAddressClasses({"Envelope_Sender", "header_recipient"}), kEnvelopeSender | kHeaderRecipient);
}

TEST(AddressRewritingTest, MasqueradingStripsSubdomainsInOrderWithExceptionsAndExclusions) {
  AddressRewritingOptions options = LabOptions();
  options.masquerade_domains = {"!keep.example.com", "example.com"};
  options.masquerade_exceptions = {"root"};
  const AddressRewriting rewriting(std::move(options));
  EXPECT_EQ(rewriting.Rewrite("joe@host.a.example.com", kEnvelopeSender), "joe@example.com");
  EXPECT_EQ(rewriting.Rewrite("joe@example.com", kEnvelopeSender), "joe@example.com");
  EXPECT_EQ(rewriting.Rewrite("joe@host.keep.example.com", kEnvelopeSender), "joe@host.keep.example.com");
  EXPECT_EQ(rewriting.Rewrite("Root@host.example.com", kEnvelopeSender), "Root@host.example.com");
  EXPECT_EQ(rewriting.Rewrite("joe@notexample.com", kEnvelopeSender), "joe@notexample.com");
  // masquerade_classes' default leaves envelope recipients alone.
  EXPECT_EQ(rewriting.Rewrite("joe@host.example.com", kEnvelopeRecipient), "joe@host.example.com");
  EXPECT_EQ(rewriting.Rewrite("joe@host.example.com", kHeaderRecipient), "joe@example.com");
}

TEST(AddressRewritingTest, HeadersOfALocalClientAreQualifiedAndMapped) {
  AddressRewritingOptions options = LabOptions();
  options.sender_canonical = Table("foo  Foo.Bar@example.com\n");
  const AddressRewriting rewriting(std::move(options));
  EXPECT_EQ(rewriting.RewriteHeader("From: Foo <foo>\n"), "From: Foo <Foo.Bar@example.com>\n");
  EXPECT_EQ(rewriting.RewriteHeader("To: foo, bar@mail169.com\n"), "To: foo@mail169.com, bar@mail169.com\n");
  EXPECT_EQ(rewriting.RewriteHeader("Subject: foo\n"), std::nullopt);
  EXPECT_EQ(rewriting.RewriteHeader("Reply-To: <>\n"), std::nullopt);

  // In MessageCleanup, after header_checks, before the added headers look at what is there.
  CleanupOptions cleanup_options;
  cleanup_options.add_missing_headers = true;
  cleanup_options.myhostname = "mail169.com";
  cleanup_options.queue_id = "89F3A110234";
  cleanup_options.sender = "Foo.Bar@example.com";
  cleanup_options.local_zone = absl::UTCTimeZone();
  cleanup_options.header_rewriting = &rewriting;
  MessageCleanup cleanup(cleanup_options, nullptr);
  std::string out;
  cleanup.Feed("From: foo\nTo: bar\nMessage-Id: <1@x>\nDate: Mon, 30 Nov 2026 16:23:39 +0000\n\nfoo\n", &out);
  cleanup.Finish(&out);
  EXPECT_EQ(out, "From: Foo.Bar@example.com\nTo: bar@mail169.com\nMessage-Id: <1@x>\n"
                 "Date: Mon, 30 Nov 2026 16:23:39 +0000\n\nfoo\n");
}

}  // namespace
}  // namespace postgate::gateway::cleanup
