#include "queue-service/store/store_writer.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "queue-service/store/memory_message_store.h"
#include "queue-service/store/rocksdb_message_store.h"
#include "queue-service/model/record.h"

namespace postgate::queue {
namespace {

StoredMessage Record(const std::string& id, uint32_t chunks) {
  StoredMessage record;
  record.mutable_message()->set_queue_id(id);
  record.mutable_message()->mutable_envelope()->set_sender("foo@mail169.com");
  record.set_chunk_count(chunks);
  return record;
}

std::string Content(MessageStore& store, const std::string& id) {
  absl::StatusOr<StoredMessage> record = store.Get(id);
  if (!record.ok()) return record.status().ToString();
  std::string content;
  EXPECT_TRUE(store.ReadContent(*record, [&](absl::string_view chunk) {
    content.append(chunk.data(), chunk.size());
    return absl::OkStatus();
  }).ok());
  return content;
}

std::string Id(int n) { return absl::StrCat(absl::Hex(n, absl::kZeroPad13)); }

TEST(StoreWriterTest, ChunksThenCommitInArrivalOrder) {
  MemoryMessageStore store;
  std::vector<std::string> order;
  absl::Notification committed;
  {
    StoreWriter writer(store);
    writer.PutChunk(Id(1), 0, "Subject: a\n\n", [&](absl::Status s) { order.push_back("chunk " + s.ToString()); });
    writer.Commit(Record(Id(1), 2), std::string("body\n"), [&](absl::Status s) {
      order.push_back("commit " + s.ToString());
      committed.Notify();
    });
    writer.Commit(Record(Id(2), 0), std::nullopt, [&](absl::Status s) { order.push_back("empty " + s.ToString()); });
    ASSERT_TRUE(committed.WaitForNotificationWithTimeout(absl::Seconds(10)));
  }  // The destructor writes what is still waiting.
  EXPECT_EQ(order, (std::vector<std::string>{"chunk OK", "commit OK", "empty OK"}));
  EXPECT_EQ(Content(store, Id(1)), "Subject: a\n\nbody\n");
  EXPECT_EQ(Content(store, Id(2)), "");
}

TEST(StoreWriterTest, UpdatesReplaceRecordsAndMayDropTheirContent) {
  MemoryMessageStore store;
  ASSERT_TRUE(store.PutChunk(Id(1), 0, "kept\n").ok());
  ASSERT_TRUE(store.Commit(Record(Id(1), 1)).ok());
  ASSERT_TRUE(store.PutChunk(Id(2), 0, "dropped\n").ok());
  ASSERT_TRUE(store.Commit(Record(Id(2), 1)).ok());
  std::vector<std::string> answers;
  {
    StoreWriter writer(store);
    StoredMessage first = Record(Id(1), 1), second = Record(Id(2), 1);
    first.mutable_message()->set_state(rec::MESSAGE_STATE_DEFERRED);
    second.mutable_message()->set_state(rec::MESSAGE_STATE_DONE);
    writer.Update(first, false, [&](absl::Status s) { answers.push_back("first " + s.ToString()); });
    writer.Update(second, true, [&](absl::Status s) { answers.push_back("second " + s.ToString()); });
  }
  EXPECT_EQ(answers, (std::vector<std::string>{"first OK", "second OK"}));
  EXPECT_EQ(store.Get(Id(1))->message().state(), rec::MESSAGE_STATE_DEFERRED);
  EXPECT_EQ(Content(store, Id(1)), "kept\n");
  EXPECT_EQ(store.Get(Id(2))->message().state(), rec::MESSAGE_STATE_DONE);
  EXPECT_FALSE(store.ReadChunk(*store.Get(Id(2)), 0).ok());
}

TEST(StoreWriterTest, ConcurrentCommitsShareFsyncs) {
  const std::string dir = (std::filesystem::temp_directory_path() / absl::StrCat("postgate-writer-", getpid())).string();
  std::filesystem::remove_all(dir);
  std::unique_ptr<RocksDbMessageStore> store = std::move(RocksDbMessageStore::Open(dir).value());
  constexpr int kMessages = 300;
  std::atomic<int> ok{0}, answered{0};
  absl::Notification all_answered;
  uint64_t groups = 0;
  // What the observer is told (metrics): every group, with its requests and a duration.
  std::atomic<uint64_t> observed_groups{0}, observed_requests{0}, negative_durations{0};
  {
    StoreWriter writer(*store, [&](const StoreWriter::GroupWritten& group) {
      ++observed_groups;
      observed_requests += group.requests;
      if (group.duration < absl::ZeroDuration()) ++negative_durations;
    });
    for (int i = 0; i < kMessages; ++i) {
      writer.Commit(Record(Id(i + 1), 1), "message " + std::to_string(i) + "\n", [&](absl::Status status) {
        if (status.ok()) ++ok;
        if (++answered == kMessages) all_answered.Notify();
      });
    }
    ASSERT_TRUE(all_answered.WaitForNotificationWithTimeout(absl::Seconds(60)));
    groups = writer.groups_written();
  }
  EXPECT_EQ(ok.load(), kMessages);
  EXPECT_EQ(Content(*store, Id(kMessages)), "message " + std::to_string(kMessages - 1) + "\n");
  // Requests that arrive while an fsync runs wait for the next group: far fewer groups (and WAL
  // syncs) than messages.
  EXPECT_LT(groups, static_cast<uint64_t>(kMessages) / 2) << groups;
  EXPECT_LE(store->WalSyncs(), groups);
  EXPECT_GE(store->WalSyncs(), 1u);
  EXPECT_EQ(observed_groups.load(), groups);
  EXPECT_EQ(observed_requests.load(), static_cast<uint64_t>(kMessages));
  EXPECT_EQ(negative_durations.load(), 0u);
  store.reset();
  std::filesystem::remove_all(dir);
}

// A store whose writes fail (a full disk): every request of the group hears it.
class FailingStore : public MemoryMessageStore {
 public:
  absl::Status WriteGroup(const std::vector<ChunkWrite>&, const std::vector<const StoredMessage*>&) override {
    return absl::ResourceExhaustedError("no space left on device");
  }
};

TEST(StoreWriterTest, AFailedWriteIsReportedToEveryRequest) {
  FailingStore store;
  std::vector<absl::StatusCode> codes;
  {
    StoreWriter writer(store);
    writer.PutChunk(Id(3), 0, "x", [&](absl::Status s) { codes.push_back(s.code()); });
    writer.Commit(Record(Id(3), 2), std::string("y"), [&](absl::Status s) { codes.push_back(s.code()); });
  }
  EXPECT_EQ(codes, (std::vector<absl::StatusCode>{absl::StatusCode::kResourceExhausted,
                                                   absl::StatusCode::kResourceExhausted}));
  EXPECT_EQ(store.Get(Id(3)).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace postgate::queue
