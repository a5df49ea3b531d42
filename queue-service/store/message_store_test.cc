// One contract, every MessageStore: the same typed tests run against RocksDB and memory.
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "queue-service/model/timestamps.h"
#include "queue-service/store/memory_message_store.h"
#include "queue-service/store/rocksdb_message_store.h"
#include "rocksdb/db.h"
#include "queue-service/model/record.h"

namespace postgate::queue {
namespace {

std::string TempDir() {
  std::string path = (std::filesystem::temp_directory_path() /
                      ("postgate-store-" + std::to_string(getpid()) + "-" +
                       std::to_string(reinterpret_cast<uintptr_t>(&path))))
                         .string();
  std::filesystem::remove_all(path);
  return path;
}

StoredMessage Record(const std::string& id, uint32_t chunks) {
  StoredMessage record;
  record.mutable_message()->set_queue_id(id);
  record.mutable_message()->mutable_envelope()->set_sender("foo@mail169.com");
  record.mutable_message()->mutable_envelope()->add_recipients("bar@mail169.com");
  record.set_chunk_count(chunks);
  return record;
}

std::string Content(MessageStore& store, const StoredMessage& record) {
  std::string content;
  absl::Status status = store.ReadContent(record, [&](absl::string_view chunk) {
    content.append(chunk.data(), chunk.size());
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
  return content;
}

std::vector<std::string> Ids(MessageStore& store, const std::string& after = "") {
  std::vector<std::string> ids;
  EXPECT_TRUE(store.Scan(after, [&](const StoredMessage& r) {
    ids.push_back(r.message().queue_id());
    return true;
  }).ok());
  return ids;
}

class RocksDbFactory {
 public:
  std::unique_ptr<MessageStore> Make() {
    dir_ = TempDir();
    return std::move(RocksDbMessageStore::Open(dir_).value());
  }
  ~RocksDbFactory() { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

class MemoryFactory {
 public:
  std::unique_ptr<MessageStore> Make() { return std::make_unique<MemoryMessageStore>(); }
};

template <typename Factory>
class MessageStoreContractTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = factory_.Make(); }
  Factory factory_;
  std::unique_ptr<MessageStore> store_;
};

using Factories = ::testing::Types<RocksDbFactory, MemoryFactory>;
TYPED_TEST_SUITE(MessageStoreContractTest, Factories);

TYPED_TEST(MessageStoreContractTest, CommitMakesChunksAndRecordVisible) {
  MessageStore& store = *this->store_;
  ASSERT_TRUE(store.PutChunk("0000000000001", 0, "Subject: hi\n\n").ok());
  ASSERT_TRUE(store.PutChunk("0000000000001", 1, "body\n").ok());
  EXPECT_EQ(store.Get("0000000000001").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Ids(store).empty());
  ASSERT_TRUE(store.Commit(Record("0000000000001", 2)).ok());
  absl::StatusOr<StoredMessage> got = store.Get("0000000000001");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->message().envelope().sender(), "foo@mail169.com");
  EXPECT_EQ(Content(store, *got), "Subject: hi\n\nbody\n");
}

TYPED_TEST(MessageStoreContractTest, WriteGroupStoresChunksAndCommitsAtOnce) {
  MessageStore& store = *this->store_;
  ASSERT_TRUE(store.PutChunk("0000000000006", 0, "Subject: hi\n\n").ok());
  // Chunks alone: written, still invisible.
  ASSERT_TRUE(store.WriteGroup({{"0000000000007", 0, "Subject: a\n\n"}}, {}).ok());
  EXPECT_TRUE(Ids(store).empty());
  const StoredMessage six = Record("0000000000006", 2), seven = Record("0000000000007", 2);
  const StoredMessage eight = Record("0000000000008", 1);
  ASSERT_TRUE(store.WriteGroup({{"0000000000006", 1, "last\n"}, {"0000000000007", 1, "b\n"},
                                {"0000000000008", 0, "only\n"}, {"0000000000009", 0, "not yet\n"}},
                               {&six, &seven, &eight})
                  .ok());
  EXPECT_EQ(Ids(store), (std::vector<std::string>{"0000000000006", "0000000000007", "0000000000008"}));
  EXPECT_EQ(Content(store, *store.Get("0000000000006")), "Subject: hi\n\nlast\n");
  EXPECT_EQ(Content(store, *store.Get("0000000000007")), "Subject: a\n\nb\n");
  EXPECT_EQ(Content(store, *store.Get("0000000000008")), "only\n");
  EXPECT_EQ(store.RemoveOrphans().value(), 1u);  // 9's chunk: never committed.
}

TYPED_TEST(MessageStoreContractTest, DiscardAndOrphansLeaveNothing) {
  MessageStore& store = *this->store_;
  ASSERT_TRUE(store.PutChunk("0000000000002", 0, "a").ok());
  ASSERT_TRUE(store.Discard("0000000000002", 1).ok());
  ASSERT_TRUE(store.PutChunk("0000000000003", 0, "b").ok());
  ASSERT_TRUE(store.PutChunk("0000000000003", 1, "c").ok());
  ASSERT_TRUE(store.PutChunk("0000000000004", 0, "kept").ok());
  ASSERT_TRUE(store.Commit(Record("0000000000004", 1)).ok());
  EXPECT_EQ(store.RemoveOrphans().value(), 2u);
  EXPECT_EQ(store.RemoveOrphans().value(), 0u);
  EXPECT_EQ(Content(store, *store.Get("0000000000004")), "kept");
}

TYPED_TEST(MessageStoreContractTest, UpdateDropContentAndDelete) {
  MessageStore& store = *this->store_;
  ASSERT_TRUE(store.PutChunk("0000000000005", 0, "x").ok());
  StoredMessage record = Record("0000000000005", 1);
  ASSERT_TRUE(store.Commit(record).ok());
  record.mutable_message()->set_state(rec::MESSAGE_STATE_DONE);
  ASSERT_TRUE(store.UpdateAndDropContent(record).ok());
  EXPECT_EQ(store.Get("0000000000005")->message().state(), rec::MESSAGE_STATE_DONE);
  EXPECT_EQ(store.ReadContent(record, [](absl::string_view) { return absl::OkStatus(); }).code(),
            absl::StatusCode::kDataLoss);
  ASSERT_TRUE(store.Delete(record).ok());
  EXPECT_EQ(store.Get("0000000000005").status().code(), absl::StatusCode::kNotFound);
}

TYPED_TEST(MessageStoreContractTest, UpdateAllWritesEveryRecordAndDropsOnlyWhatIsDone) {
  MessageStore& store = *this->store_;
  ASSERT_TRUE(store.PutChunk("0000000000006", 0, "six").ok());
  ASSERT_TRUE(store.PutChunk("0000000000007", 0, "seven").ok());
  StoredMessage done = Record("0000000000006", 1);
  StoredMessage deferred = Record("0000000000007", 1);
  ASSERT_TRUE(store.Commit(done).ok());
  ASSERT_TRUE(store.Commit(deferred).ok());
  done.mutable_message()->set_state(rec::MESSAGE_STATE_DONE);
  deferred.mutable_message()->set_state(rec::MESSAGE_STATE_DEFERRED);
  ASSERT_TRUE(store.UpdateAll({{&done, true}, {&deferred, false}}).ok());
  EXPECT_EQ(store.Get("0000000000006")->message().state(), rec::MESSAGE_STATE_DONE);
  EXPECT_EQ(store.Get("0000000000007")->message().state(), rec::MESSAGE_STATE_DEFERRED);
  EXPECT_EQ(store.ReadContent(done, [](absl::string_view) { return absl::OkStatus(); }).code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(Content(store, deferred), "seven");
}

TYPED_TEST(MessageStoreContractTest, ScanIsInIdOrderAndResumesAfterAnId) {
  MessageStore& store = *this->store_;
  for (const char* id : {"000000000000B", "000000000000A", "000000000000C"}) {
    ASSERT_TRUE(store.Commit(Record(id, 0)).ok());
  }
  EXPECT_EQ(Ids(store), (std::vector<std::string>{"000000000000A", "000000000000B", "000000000000C"}));
  EXPECT_EQ(Ids(store, "000000000000A"), (std::vector<std::string>{"000000000000B", "000000000000C"}));
  std::vector<std::string> backwards;
  const auto collect = [&backwards](const StoredMessage& r) {
    backwards.push_back(r.message().queue_id());
    return true;
  };
  ASSERT_TRUE(store.ScanBackward("", collect).ok());
  EXPECT_EQ(backwards, (std::vector<std::string>{"000000000000C", "000000000000B", "000000000000A"}));
  backwards.clear();
  ASSERT_TRUE(store.ScanBackward("000000000000C", collect).ok());
  EXPECT_EQ(backwards, (std::vector<std::string>{"000000000000B", "000000000000A"}));
}

StoredMessage Finished(StoredMessage record, absl::Time completed, uint64_t size) {
  record.mutable_message()->set_state(rec::MESSAGE_STATE_DONE);
  record.mutable_message()->set_size(size);
  SetTimestamp(record.mutable_message()->mutable_completion_time(), completed);
  return record;
}

std::vector<std::string> Pending(MessageStore& store) {
  std::vector<std::string> ids;
  EXPECT_TRUE(store.ScanPending([&](const StoredMessage& r) {
    ids.push_back(r.message().queue_id());
    return true;
  }).ok());
  return ids;
}

std::vector<std::string> Done(MessageStore& store, absl::Time before = absl::InfiniteFuture()) {
  std::vector<std::string> done;
  EXPECT_TRUE(store.ScanDone(before, [&](const std::string& id, uint64_t size) {
    done.push_back(absl::StrCat(id, ":", size));
    return true;
  }).ok());
  return done;
}

TYPED_TEST(MessageStoreContractTest, IndexesFollowTheRecords) {
  MessageStore& store = *this->store_;
  const absl::Time t0 = absl::FromUnixSeconds(1796000000), t1 = t0 + absl::Seconds(5);
  StoredMessage a = Record("000000000000A", 0), b = Record("000000000000B", 0);
  StoredMessage c = Record("000000000000C", 0), d = Record("000000000000D", 0);
  a.mutable_message()->mutable_envelope()->set_idempotency_key("key-a");
  for (const StoredMessage* record : {&a, &b, &c, &d}) ASSERT_TRUE(store.Commit(*record).ok());
  b.mutable_message()->set_state(rec::MESSAGE_STATE_DEFERRED);
  ASSERT_TRUE(store.Update(b).ok());
  c = Finished(c, t1, 300);
  d = Finished(d, t0, 400);
  ASSERT_TRUE(store.UpdateAndDropContent(c).ok());
  ASSERT_TRUE(store.UpdateAll({{&d, true}}).ok());
  EXPECT_EQ(Pending(store), (std::vector<std::string>{"000000000000A", "000000000000B"}));
  EXPECT_EQ(Done(store), (std::vector<std::string>{"000000000000D:400", "000000000000C:300"}));  // By completion.
  EXPECT_EQ(Done(store, t1), std::vector<std::string>{"000000000000D:400"});
  EXPECT_EQ(store.FindByIdempotencyKey("key-a").value(), std::optional<std::string>("000000000000A"));
  EXPECT_EQ(store.FindByIdempotencyKey("key-x").value(), std::nullopt);
  EXPECT_EQ(store.LastId().value(), "000000000000D");
  ASSERT_TRUE(store.Delete(c).ok());
  ASSERT_TRUE(store.Delete(a).ok());
  EXPECT_EQ(Done(store), std::vector<std::string>{"000000000000D:400"});
  EXPECT_EQ(Pending(store), std::vector<std::string>{"000000000000B"});
  EXPECT_EQ(store.FindByIdempotencyKey("key-a").value(), std::nullopt);
  ASSERT_TRUE(store.Delete(d).ok());
  ASSERT_TRUE(store.Delete(b).ok());
  EXPECT_EQ(store.LastId().value(), "");
}

// The store's memory does not follow its history: 100 MB of content (three memtables' worth, so
// table files on disk) read back in full leaves the block cache at its 8 MiB and the open files'
// own memory at their small top-level indexes (unpartitioned, it would be ~0.8 MiB here and grow
// with every file).
TEST(RocksDbMessageStoreTest, MemoryIsBoundedByTheBlockCacheNotByTheData) {
  std::string dir = TempDir();
  {
    auto store = RocksDbMessageStore::Open(dir);
    ASSERT_TRUE(store.ok()) << store.status();
    const std::string block(4096, 'x');
    constexpr uint32_t kChunks = 25000;
    for (uint32_t i = 0; i < kChunks; ++i) ASSERT_TRUE((*store)->PutChunk("0000000000001", i, block).ok());
    const StoredMessage record = Record("0000000000001", kChunks);
    for (uint32_t i = 0; i < kChunks; ++i) ASSERT_EQ((*store)->ReadChunk(record, i)->size(), block.size());
    const RocksDbMessageStore::MemoryUsage usage = (*store)->Memory();
    EXPECT_GT(usage.block_cache, 0u);
    EXPECT_LE(usage.block_cache, 8u << 20);
    EXPECT_LT(usage.table_readers, 256u << 10);
    EXPECT_LE(usage.memtables, 2u * (32u << 20) + (1u << 20));
  }
  std::filesystem::remove_all(dir);
}

// A queue written by the release before the indexes: records ("m/<id>") and chunks only, no
// layout version. Open indexes it once; a newer layout than this release knows is refused.
TEST(RocksDbMessageStoreTest, AQueueWithoutIndexesIsUpgradedAtOpen) {
  std::string dir = TempDir();
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    StoredMessage pending = Record("0000000000001", 1);
    pending.mutable_message()->set_state(rec::MESSAGE_STATE_DEFERRED);
    pending.mutable_message()->mutable_envelope()->set_idempotency_key("retry-1");
    const StoredMessage done = Finished(Record("0000000000002", 0), absl::FromUnixSeconds(1796000000), 700);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "m/0000000000001", pending.SerializeAsString()).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "c/0000000000001/00000000", "Subject: old\n\nbody\n").ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "m/0000000000002", done.SerializeAsString()).ok());
  }
  {
    auto store = RocksDbMessageStore::Open(dir);
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ((*store)->upgraded_records(), 2u);
    EXPECT_EQ(Pending(**store), std::vector<std::string>{"0000000000001"});
    EXPECT_EQ(Done(**store), std::vector<std::string>{"0000000000002:700"});
    EXPECT_EQ((*store)->FindByIdempotencyKey("retry-1").value(), std::optional<std::string>("0000000000001"));
    EXPECT_EQ(Content(**store, *(*store)->Get("0000000000001")), "Subject: old\n\nbody\n");
  }
  {
    auto store = RocksDbMessageStore::Open(dir);
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ((*store)->upgraded_records(), 0u);  // Once only.
  }
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir, &raw).ok());
    ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), "v/format", "3").ok());
    delete raw;
  }
  auto newer = RocksDbMessageStore::Open(dir);
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.status().code(), absl::StatusCode::kFailedPrecondition) << newer.status();
  std::filesystem::remove_all(dir);
}

// Concurrent commits share fsyncs: RocksDB's write group syncs the WAL once for many writers.
TEST(RocksDbMessageStoreTest, ConcurrentCommitsAreGrouped) {
  std::string dir = TempDir();
  auto store = RocksDbMessageStore::Open(dir);
  ASSERT_TRUE(store.ok());
  constexpr int kThreads = 16, kPerThread = 40;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        char id[16];
        std::snprintf(id, sizeof(id), "%013X", t * 1000 + i);
        ASSERT_TRUE((*store)->Commit(Record(id, 0)).ok());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const uint64_t syncs = (*store)->WalSyncs();
  EXPECT_GT(syncs, 0u);
  EXPECT_LT(syncs, static_cast<uint64_t>(kThreads * kPerThread)) << "every commit paid its own fsync";
  std::printf("%d synced commits, %llu WAL fsyncs\n", kThreads * kPerThread,
              static_cast<unsigned long long>(syncs));
  store->reset();
  std::filesystem::remove_all(dir);
}

// A committed message survives the process dying without any shutdown.
TEST(RocksDbMessageStoreTest, CommittedMessageSurvivesAbruptExit) {
  std::string dir = TempDir();
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto store = RocksDbMessageStore::Open(dir);
    if (!store.ok()) _exit(2);
    if (!(*store)->PutChunk("00000000000AA", 0, "durable\n").ok()) _exit(3);
    if (!(*store)->Commit(Record("00000000000AA", 1)).ok()) _exit(4);
    (void)(*store)->PutChunk("00000000000AB", 0, "never committed\n");
    _exit(0);  // No destructor, no flush: like SIGKILL right after the 250.
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  auto reopened = RocksDbMessageStore::Open(dir);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  absl::StatusOr<StoredMessage> record = (*reopened)->Get("00000000000AA");
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(Content(**reopened, *record), "durable\n");
  EXPECT_EQ((*reopened)->Get("00000000000AB").status().code(), absl::StatusCode::kNotFound);
  reopened->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace postgate::queue
