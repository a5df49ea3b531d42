#include "queuectl/replica_choice.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace postgate::queuectl {
namespace {

const std::vector<std::string> kTargets = {"10.0.0.1:50051", "10.0.0.2:50051", "10.0.0.3:50051"};

std::string Id(int n) { return absl::StrCat("66130A5F2C1", n % 10, n % 7, n % 3); }

TEST(ChooseReplicaTest, TheOrderOfTheTargetsDoesNotMatter) {
  std::vector<std::string> reversed(kTargets.rbegin(), kTargets.rend());
  for (int n = 0; n < 200; ++n) {
    EXPECT_EQ(kTargets[ChooseReplica(Id(n), kTargets)], reversed[ChooseReplica(Id(n), reversed)]) << Id(n);
  }
}

TEST(ChooseReplicaTest, RemovingAnotherTargetMovesOnlyItsMessages) {
  const std::vector<std::string> fewer = {kTargets[0], kTargets[2]};
  for (int n = 0; n < 200; ++n) {
    const std::string& before = kTargets[ChooseReplica(Id(n), kTargets)];
    if (before == kTargets[1]) continue;
    EXPECT_EQ(fewer[ChooseReplica(Id(n), fewer)], before) << Id(n);
  }
}

TEST(ChooseReplicaTest, MessagesSpreadOverAllTargets) {
  std::map<size_t, int> counts;
  for (int n = 0; n < 300; ++n) ++counts[ChooseReplica(absl::StrCat("ID", n), kTargets)];
  ASSERT_EQ(counts.size(), 3u);
  for (const auto& [target, count] : counts) EXPECT_GT(count, 50) << target;
}

TEST(ChooseReplicaTest, OneTargetTakesEverything) {
  EXPECT_EQ(ChooseReplica("ANY", {"only:1"}), 0u);
}

}  // namespace
}  // namespace postgate::queuectl
