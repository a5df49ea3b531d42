#include "smtp-gateway/policy/virtual_aliases.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace postgate::gateway::policy {
namespace {

using ::testing::ElementsAre;

std::shared_ptr<const VirtualAliases> Aliases(absl::string_view text, VirtualAliasLimits limits = {}) {
  absl::StatusOr<config::LookupTable> table = config::LookupTable::Parse(text, "virtual");
  EXPECT_TRUE(table.ok()) << table.status();
  std::vector<VirtualAliases::Table> tables(1);
  tables[0].hash = *std::move(table);
  return VirtualAliases::FromTables(std::move(tables), {"example.com"}, '+', limits);
}

TEST(VirtualAliasesTest, OneToManyCatchAllAndExtensions) {
  auto aliases = Aliases(
      "sales@example.com bar@mail169.com, someone@example.org\n"
      "team@example.com sales@example.com foo@mail169.com\n"
      "@example.com catchall@mail169.com\n"
      "info@example.com info@example.com, bar@mail169.com\n");
  EXPECT_THAT(aliases->Expand("team@example.com").addresses,
              ElementsAre("bar@mail169.com", "foo@mail169.com", "someone@example.org"));
  EXPECT_THAT(aliases->Expand("nobody@example.com").addresses, ElementsAre("catchall@mail169.com"));
  // The extension the table did not match goes onto the results.
  EXPECT_THAT(aliases->Expand("sales+q4@example.com").addresses,
              ElementsAre("bar+q4@mail169.com", "someone+q4@example.org"));
  // An address may expand to itself once: it is kept, the rest delivered too.
  EXPECT_THAT(aliases->Expand("info@example.com").addresses, ElementsAre("info@example.com", "bar@mail169.com"));
  EXPECT_THAT(aliases->Expand("x@elsewhere.example").addresses, ElementsAre("x@elsewhere.example"));
  EXPECT_TRUE(aliases->IsVirtualDomain("EXAMPLE.com"));
  EXPECT_FALSE(aliases->IsVirtualDomain("mail169.com"));
}

TEST(VirtualAliasesTest, LoopsAndExcessiveExpansionAreErrorsAsInPostfix) {
  auto loop = Aliases("a@example.com b@example.com\nb@example.com a@example.com\n");
  VirtualAliases::Expansion looped = loop->Expand("a@example.com");
  EXPECT_TRUE(looped.addresses.empty());
  EXPECT_EQ(looped.error, "unreasonable virtual_alias_maps map nesting for a@example.com");
  std::string many = "big@example.com";
  for (int i = 0; i < 5; ++i) many += " u" + std::to_string(i) + "@example.org";
  auto wide = Aliases(many + "\n", {.recursion = 1000, .expansion = 3});
  EXPECT_EQ(wide->Expand("big@example.com").error, "unreasonable virtual_alias_maps map expansion size for big@example.com");
}

}  // namespace
}  // namespace postgate::gateway::policy
