// The store's write path for one message: its content chunk, then the committed record – with
// the fsync the services always do, and without it to show what durability costs. Threads > 1
// show RocksDB's group commit: concurrent synced commits share an fsync. Runs in a temporary
// directory under $TMPDIR (put it on the disk you want to measure).
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "queue-service/model/message_record.h"
#include "queue-service/store/rocksdb_message_store.h"
#include "queue-service/model/record.h"

namespace postgate::queue {
namespace {

class StoreFixture : public benchmark::Fixture {
 public:
  void SetUp(const benchmark::State& state) override {
    if (state.thread_index() != 0) return;
    directory_ = std::filesystem::temp_directory_path() /
                 absl::StrCat("postgate-store-benchmark-", getpid(), "-", state.range(0));
    std::filesystem::remove_all(directory_);
    absl::StatusOr<std::unique_ptr<RocksDbMessageStore>> opened =
        RocksDbMessageStore::Open(directory_.string(), /*sync=*/state.range(0) != 0);
    if (!opened.ok()) std::abort();
    store_ = *std::move(opened);
  }
  void TearDown(const benchmark::State& state) override {
    if (state.thread_index() != 0) return;
    store_.reset();
    std::filesystem::remove_all(directory_);
  }

 protected:
  std::filesystem::path directory_;
  std::unique_ptr<RocksDbMessageStore> store_;
};

// range(0): 1 = synced commits (what the services do), 0 = no fsync (for comparison only).
BENCHMARK_DEFINE_F(StoreFixture, WriteOneKibMessage)(benchmark::State& state) {
  rec::Envelope envelope;
  envelope.set_sender("foo@mail169.com");
  envelope.add_recipients("bar@mail169.com");
  const std::string content(1024, 'x');
  uint64_t n = 0;
  for (auto _ : state) {
    const std::string id = absl::StrCat("T", state.thread_index(), "-", n++);
    if (!store_->PutChunk(id, 0, content).ok()) std::abort();
    if (!store_->Commit(NewMessageRecord(id, envelope, content.size(), 1, absl::Now())).ok()) std::abort();
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    // A message is two WAL writes (its chunk unsynced, its record synced): 0.5 is one fsync per
    // message; less means concurrent commits were grouped into one fsync.
    state.counters["wal_syncs_per_wal_write"] =
        static_cast<double>(store_->WalSyncs()) / static_cast<double>(std::max<uint64_t>(1, store_->SyncedWrites()));
  }
}
BENCHMARK_REGISTER_F(StoreFixture, WriteOneKibMessage)
    ->Arg(1)->Arg(0)->Threads(1)->Threads(8)->UseRealTime()->MeasureProcessCPUTime();

}  // namespace
}  // namespace postgate::queue
