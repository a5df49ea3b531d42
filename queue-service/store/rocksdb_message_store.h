// MessageStore on RocksDB. Keys: "m/<id>" → StoredMessage, "c/<id>/<index:08x>" → content chunk,
// and the indexes (message_store.h): "p/<id>" while not DONE, "d/<completion µs:016x>/<id>" → size
// once DONE, "k/<idempotency key>" → id; "v/format" names the layout. A queue written by a release
// without the indexes gets them at Open (one pass over its records).
// Chunks are written without sync (they reach the WAL in order); Commit/Update write with
// sync = true, which fsyncs the WAL up to and including them – so a committed record's chunks are
// durable too. RocksDB's write group turns concurrent sync writes into one fsync (group commit).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "queue-service/store/message_store.h"
#include "queue-service/model/record.h"

namespace rocksdb {
class Cache;
class DB;
class Statistics;
class WriteBatch;
}

namespace postgate::queue {

class RocksDbMessageStore : public MessageStore {
 public:
  // Opens (creating if needed) the database in `directory`. `sync` = false makes every write
  // unsynced: only for measuring what the fsync costs (store_benchmark); the services never do.
  static absl::StatusOr<std::unique_ptr<RocksDbMessageStore>> Open(const std::string& directory,
                                                                    bool sync = true);
  ~RocksDbMessageStore() override;

  absl::Status PutChunk(const std::string& id, uint32_t index, absl::string_view data) override;
  absl::Status Commit(const StoredMessage& record) override;
  absl::Status WriteGroup(const std::vector<ChunkWrite>& chunks,
                          const std::vector<const StoredMessage*>& records) override;
  absl::Status Discard(const std::string& id, uint32_t chunk_count) override;
  absl::Status Update(const StoredMessage& record) override;
  absl::Status UpdateAndDropContent(const StoredMessage& record) override;
  absl::Status UpdateAll(const std::vector<RecordUpdate>& updates) override;
  absl::StatusOr<StoredMessage> Get(const std::string& id) override;
  absl::StatusOr<std::string> ReadChunk(const StoredMessage& record, uint32_t index) override;
  absl::Status ReadContent(const StoredMessage& record,
                           const std::function<absl::Status(absl::string_view)>& sink) override;
  absl::Status Delete(const StoredMessage& record) override;
  absl::Status Scan(const std::string& after,
                    const std::function<bool(const StoredMessage&)>& visit) override;
  absl::Status ScanBackward(const std::string& before,
                            const std::function<bool(const StoredMessage&)>& visit) override;
  absl::StatusOr<uint64_t> RemoveOrphans() override;
  absl::Status ScanPending(const std::function<bool(const StoredMessage&)>& visit) override;
  absl::Status ScanDone(absl::Time before,
                        const std::function<bool(const std::string& id, uint64_t size)>& visit) override;
  absl::StatusOr<std::optional<std::string>> FindByIdempotencyKey(const std::string& key) override;
  absl::StatusOr<std::string> LastId() override;

  // Records indexed when Open upgraded a queue written by an earlier release (0: none needed).
  uint64_t upgraded_records() const { return upgraded_records_; }
  // Write-ahead-log fsyncs so far. Fewer than synced writes means commits were grouped.
  uint64_t WalSyncs() const;
  uint64_t SyncedWrites() const;
  // What the database holds in memory now, in bytes (RocksDB's own estimates): memtables being
  // filled or flushed, what the open table files keep outside the cache (their top-level
  // indexes), and the block cache (data, index and filter blocks; bounded).
  struct MemoryUsage {
    uint64_t memtables = 0;
    uint64_t table_readers = 0;
    uint64_t block_cache = 0;
  };
  MemoryUsage Memory() const;

 private:
  RocksDbMessageStore(std::unique_ptr<rocksdb::DB> db, std::shared_ptr<rocksdb::Statistics> statistics,
                      std::shared_ptr<rocksdb::Cache> block_cache, bool sync);
  absl::Status WriteDurably(rocksdb::WriteBatch* batch, absl::string_view what);  // Synced unless !sync_.
  // A record's first write (Commit, WriteGroup, an upgrade's indexing) or a later one.
  enum class RecordWrite { kNew, kUpdate };
  absl::Status WriteRecord(const StoredMessage& record, bool drop_content, RecordWrite kind);
  static void AddRecordWrite(rocksdb::WriteBatch& batch, const StoredMessage& record, bool drop_content,
                             RecordWrite kind);
  static void AddIndexWrites(rocksdb::WriteBatch& batch, const rec::Message& message, RecordWrite kind);
  absl::Status UpgradeLayout();

  std::unique_ptr<rocksdb::DB> db_;
  std::shared_ptr<rocksdb::Statistics> statistics_;
  std::shared_ptr<rocksdb::Cache> block_cache_;
  bool sync_;
  uint64_t upgraded_records_ = 0;
};

}  // namespace postgate::queue
