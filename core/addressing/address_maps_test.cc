#include "core/addressing/address_maps.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace postgate::addressing {
namespace {

using ::testing::ElementsAre;
using ::testing::Optional;

AddressMaps Maps(absl::string_view hash_text, absl::string_view regexp_text = "") {
  std::vector<AddressMaps::Table> tables;
  if (!regexp_text.empty()) {
    absl::StatusOr<std::shared_ptr<const config::RegexpTable>> regexp = config::RegexpTable::Parse(regexp_text, "re");
    EXPECT_TRUE(regexp.ok()) << regexp.status();
    tables.push_back({.hash = std::nullopt, .regexp = *regexp});
  }
  absl::StatusOr<config::LookupTable> hash = config::LookupTable::Parse(hash_text, "map");
  EXPECT_TRUE(hash.ok()) << hash.status();
  tables.push_back({.hash = *std::move(hash), .regexp = nullptr});
  return AddressMaps(std::move(tables), '+');
}

bool IsOurs(absl::string_view domain) { return domain == "mail169.com"; }

TEST(AddressMapsTest, FullThenWithoutExtensionThenLocalPartThenCatchAll) {
  AddressMaps maps = Maps(
      "full+tag@x.example  full-tag@y.example\n"
      "full@x.example      full@y.example\n"
      "joe                 Joe.Smith@mail169.com\n"
      "@old.example        @new.example\n");
  EXPECT_THAT(maps.Map("full+tag@x.example", true), Optional(ElementsAre("full-tag@y.example")));
  EXPECT_THAT(maps.Map("full+other@x.example", true), Optional(ElementsAre("full+other@y.example")));
  EXPECT_THAT(maps.Map("full+other@x.example", false), Optional(ElementsAre("full@y.example")));
  // Bare local parts only for our domains.
  EXPECT_THAT(maps.Map("joe+x@mail169.com", true, IsOurs), Optional(ElementsAre("Joe.Smith+x@mail169.com")));
  EXPECT_EQ(maps.Map("joe@elsewhere.example", true, IsOurs), std::nullopt);
  EXPECT_EQ(maps.Map("joe@mail169.com", true), std::nullopt);
  // "@domain" results keep the user; its extension only when propagated.
  EXPECT_THAT(maps.Map("ann+x@old.example", true), Optional(ElementsAre("ann+x@new.example")));
  EXPECT_THAT(maps.Map("ann+x@old.example", false), Optional(ElementsAre("ann+x@new.example")));
  EXPECT_EQ(maps.Map("ann@unrelated.example", true), std::nullopt);
}

TEST(AddressMapsTest, PatternTablesSeeOnlyTheFullAddressAndComeInOrder) {
  AddressMaps maps = Maps("@x.example  hash@z.example\n", "/^(.*)@x\\.example$/ $1@regexp.example\n");
  EXPECT_THAT(maps.Map("a@x.example", true), Optional(ElementsAre("a@regexp.example")));
  ASSERT_TRUE(maps.Find("a@x.example").has_value());
  EXPECT_EQ(maps.Find("a@x.example")->extension, "");
  AddressMaps lists = Maps("team@x.example  a@y.example, b@y.example\tc@y.example\n");
  EXPECT_THAT(lists.Map("team+t@x.example", true),
              Optional(ElementsAre("a+t@y.example", "b+t@y.example", "c+t@y.example")));
}

TEST(AddressMapsTest, LoadNamesTheFileOfABadTable) {
  EXPECT_FALSE(AddressMaps::Load({"texthash:/nonexistent/canonical"}, '+').ok());
  EXPECT_THAT(std::string(AddressMaps::Load({"btree:/x"}, '+').status().message()),
              ::testing::HasSubstr("unsupported map type"));
}

}  // namespace
}  // namespace postgate::addressing
