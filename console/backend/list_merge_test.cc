#include "console/backend/list_merge.h"

#include "gtest/gtest.h"

namespace postgate::console {
namespace {

namespace v1 = ::postgate::queue::v1;

v1::ListMessagesResponse Page(std::vector<std::string> ids, std::string next = "") {
  v1::ListMessagesResponse page;
  for (const std::string& id : ids) page.add_messages()->set_queue_id(id);
  page.set_next_page_token(next);
  return page;
}

std::vector<std::string> Ids(const MergedPage& page) {
  std::vector<std::string> ids;
  for (const auto& m : page.messages) ids.push_back(m.queue_id());
  return ids;
}

TEST(MergePagesTest, InterleavesReplicasInIdOrderAndCutsAtThePageSize) {
  // Replica A has more after A3; replica B is complete.
  MergedPage page = MergePages({Page({"A1", "A3", "A5"}, "A5"), Page({"A2", "A4"})}, 3, false);
  EXPECT_EQ(Ids(page), (std::vector<std::string>{"A1", "A2", "A3"}));
  EXPECT_EQ(page.next_after, "A3");
}

TEST(MergePagesTest, NeverShowsWhatLiesBeyondALessAdvancedReplica) {
  // Replica 1 stopped at B2 with more to come; replica 2's C1 might come after messages replica 1
  // has not shown yet, so it waits for the next page.
  MergedPage page = MergePages({Page({"B1", "B2"}, "B2"), Page({"C1"})}, 2, false);
  EXPECT_EQ(Ids(page), (std::vector<std::string>{"B1", "B2"}));
  EXPECT_EQ(page.next_after, "B2");
  // A short page (DONE's bounded scan) still moves the cursor to the bound.
  MergedPage short_page = MergePages({Page({}, "B9"), Page({"C1"})}, 2, false);
  EXPECT_TRUE(short_page.messages.empty());
  EXPECT_EQ(short_page.next_after, "B9");
}

TEST(MergePagesTest, LastPageHasNoCursor) {
  MergedPage page = MergePages({Page({"A1"}), Page({"A2"})}, 5, false);
  EXPECT_EQ(Ids(page), (std::vector<std::string>{"A1", "A2"}));
  EXPECT_EQ(page.next_after, "");
}

TEST(MergePagesTest, NewestFirstReversesTheOrderAndTheBound) {
  MergedPage page = MergePages({Page({"A9", "A7", "A5"}, "A5"), Page({"A8", "A1"})}, 3, true);
  EXPECT_EQ(Ids(page), (std::vector<std::string>{"A9", "A8", "A7"}));
  EXPECT_EQ(page.next_after, "A7");
  // A1 lies beyond replica 1's bound (A5) in this order: held back.
  MergedPage bounded = MergePages({Page({"A9", "A5"}, "A5"), Page({"A1"})}, 5, true);
  EXPECT_EQ(Ids(bounded), (std::vector<std::string>{"A9", "A5"}));
  EXPECT_EQ(bounded.next_after, "A5");
}

}  // namespace
}  // namespace postgate::console
