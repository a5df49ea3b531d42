#include "queue-service/store/rocksdb_message_store.h"

#include <cstdio>

#include <algorithm>
#include <cstdint>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "queue-service/model/timestamps.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"
#include "rocksdb/cache.h"
#include "rocksdb/options.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/statistics.h"
#include "rocksdb/write_batch.h"
#include "queue-service/model/record.h"

namespace postgate::queue {
namespace {

constexpr absl::string_view kRecordPrefix = "m/";
constexpr absl::string_view kChunkPrefix = "c/";
constexpr absl::string_view kPendingPrefix = "p/";  // "p/<id>" → "": the record is not DONE.
constexpr absl::string_view kDonePrefix = "d/";     // "d/<completion µs, 16 hex>/<id>" → size.
constexpr absl::string_view kKeyPrefix = "k/";      // "k/<idempotency key>" → id.
// Layout version. Absent: written by a release before the indexes (upgraded at Open).
constexpr absl::string_view kFormatKey = "v/format";
constexpr absl::string_view kFormat = "2";

std::string RecordKey(absl::string_view id) { return absl::StrCat(kRecordPrefix, id); }
std::string PendingKey(absl::string_view id) { return absl::StrCat(kPendingPrefix, id); }
std::string IdempotencyKey(absl::string_view key) { return absl::StrCat(kKeyPrefix, key); }

std::string DoneKey(const rec::Message& message) {
  char micros[24];
  std::snprintf(micros, sizeof(micros), "%016llx",
                static_cast<unsigned long long>(std::max<int64_t>(0, absl::ToUnixMicros(FromTimestamp(message.completion_time())))));
  return absl::StrCat(kDonePrefix, micros, "/", message.queue_id());
}

std::string ChunkKey(absl::string_view id, uint32_t index) {
  char suffix[16];
  std::snprintf(suffix, sizeof(suffix), "/%08x", index);
  return absl::StrCat(kChunkPrefix, id, suffix);
}

rocksdb::Slice ToSlice(absl::string_view view) { return rocksdb::Slice(view.data(), view.size()); }

absl::Status FromRocks(const rocksdb::Status& status, absl::string_view what) {
  if (status.ok()) return absl::OkStatus();
  std::string message = absl::StrCat(what, ": ", status.ToString());
  if (status.IsNotFound()) return absl::NotFoundError(message);
  // A full disk is not an outage: the gateway tells clients "452 4.3.1 Insufficient system storage".
  if (status.IsNoSpace()) return absl::ResourceExhaustedError(message);
  if (status.IsIOError() || status.IsBusy() || status.IsTimedOut() || status.IsTryAgain()) {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

}  // namespace

RocksDbMessageStore::RocksDbMessageStore(std::unique_ptr<rocksdb::DB> db,
                                         std::shared_ptr<rocksdb::Statistics> statistics,
                                         std::shared_ptr<rocksdb::Cache> block_cache, bool sync)
    : db_(std::move(db)), statistics_(std::move(statistics)), block_cache_(std::move(block_cache)), sync_(sync) {}

absl::Status RocksDbMessageStore::WriteDurably(rocksdb::WriteBatch* batch, absl::string_view what) {
  rocksdb::WriteOptions options;
  options.sync = sync_;
  return FromRocks(db_->Write(options, batch), what);
}
RocksDbMessageStore::~RocksDbMessageStore() = default;

absl::StatusOr<std::unique_ptr<RocksDbMessageStore>> RocksDbMessageStore::Open(
    const std::string& directory, bool sync) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.IncreaseParallelism(2);
  // Bodies are written once and read once: keep the memtable small and let compaction drop them.
  options.write_buffer_size = 32 << 20;
  options.max_total_wal_size = 256 << 20;
  // Every enqueue asks the idempotency-key index for a key that is almost never there: a bloom
  // filter answers such misses without reading the tables' blocks.
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // The same for the memtable, where such a miss otherwise walks the skip list of everything
  // written in the last ~40 s. 2 % of the memtable's size holds the whole-key filter. (Measured at
  // 1 KiB: the idempotency lookups were 4.1 % of queue-service's CPU, 1.1 % with this filter and
  // one lookup per Enqueue instead of two.)
  options.memtable_prefix_bloom_size_ratio = 0.02;
  options.memtable_whole_key_filtering = true;
  // Keys of each kind mostly arrive in order (queue IDs and completion times grow), so the
  // memtable keeps, per two-byte prefix ("m/", "c/", "p/", "d/", "k/"), where it last inserted
  // and starts the next insert there instead of searching the skip list from its top.
  options.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(2));
  // Memory bounded by the block cache, not by the history the store retains
  // (postgate_done_retention keeps finished records for days). By default every open table file
  // keeps its whole index and filter in memory: measured 6 bytes per finished message, for ever
  // growing (2.2 MiB after 10 minutes at 600 msg/s; a week at that rate would be gigabytes).
  // Instead the index and filter are cut into partitions that live in the one block cache with
  // the data blocks (high priority, so data does not push them out); each file keeps only its
  // small top-level index, and the newest files (L0, where nearly every lookup of a message still
  // in the queue ends) stay pinned. The capacity is RocksDB's default cache's, now stated.
  constexpr size_t kBlockCacheBytes = 8 << 20;
  table.block_cache = rocksdb::NewLRUCache(kBlockCacheBytes);
  table.index_type = rocksdb::BlockBasedTableOptions::IndexType::kTwoLevelIndexSearch;
  table.partition_filters = true;
  table.cache_index_and_filter_blocks = true;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.pin_top_level_index_and_filter = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Tickers only (no timers): cheap, and they show whether synced commits are being grouped.
  options.statistics = rocksdb::CreateDBStatistics();
  options.statistics->set_stats_level(rocksdb::StatsLevel::kExceptTimers);
  rocksdb::DB* raw = nullptr;
  rocksdb::Status status = rocksdb::DB::Open(options, directory, &raw);
  if (!status.ok()) return FromRocks(status, absl::StrCat("open ", directory));
  std::unique_ptr<RocksDbMessageStore> store(
      new RocksDbMessageStore(std::unique_ptr<rocksdb::DB>(raw), options.statistics, table.block_cache, sync));
  if (absl::Status upgraded = store->UpgradeLayout(); !upgraded.ok()) return upgraded;
  return store;
}

uint64_t RocksDbMessageStore::WalSyncs() const {
  return statistics_->getTickerCount(rocksdb::WAL_FILE_SYNCED);
}

uint64_t RocksDbMessageStore::SyncedWrites() const {
  return statistics_->getTickerCount(rocksdb::WRITE_WITH_WAL);
}

RocksDbMessageStore::MemoryUsage RocksDbMessageStore::Memory() const {
  MemoryUsage usage;
  db_->GetAggregatedIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables, &usage.memtables);
  db_->GetAggregatedIntProperty(rocksdb::DB::Properties::kEstimateTableReadersMem, &usage.table_readers);
  usage.block_cache = block_cache_->GetUsage();
  return usage;
}

absl::Status RocksDbMessageStore::PutChunk(const std::string& id, uint32_t index,
                                           absl::string_view data) {
  return FromRocks(db_->Put(rocksdb::WriteOptions(), ChunkKey(id, index), ToSlice(data)),
                   "write content");
}

void RocksDbMessageStore::AddRecordWrite(rocksdb::WriteBatch& batch, const StoredMessage& record,
                                         bool drop_content, RecordWrite kind) {
  const std::string& id = record.message().queue_id();
  batch.Put(RecordKey(id), record.SerializeAsString());
  if (drop_content) {
    for (uint32_t i = 0; i < record.chunk_count(); ++i) batch.Delete(ChunkKey(id, i));
  }
  AddIndexWrites(batch, record.message(), kind);
}

void RocksDbMessageStore::AddIndexWrites(rocksdb::WriteBatch& batch, const rec::Message& message, RecordWrite kind) {
  // DONE is final: a record that reaches it leaves the pending index for the done index for good.
  // A pending record's index entries are written once, with the record's first write; its many
  // updates (each delivery attempt) add nothing.
  if (message.state() == rec::MESSAGE_STATE_DONE) {
    if (kind == RecordWrite::kUpdate) batch.Delete(PendingKey(message.queue_id()));
    batch.Put(DoneKey(message), absl::StrCat(message.size()));
  } else if (kind == RecordWrite::kNew) {
    batch.Put(PendingKey(message.queue_id()), "");
  }
  if (kind == RecordWrite::kNew && !message.envelope().idempotency_key().empty()) {
    batch.Put(IdempotencyKey(message.envelope().idempotency_key()), message.queue_id());
  }
}

absl::Status RocksDbMessageStore::WriteRecord(const StoredMessage& record, bool drop_content, RecordWrite kind) {
  rocksdb::WriteBatch batch;
  AddRecordWrite(batch, record, drop_content, kind);
  return WriteDurably(&batch, "write record");
}

absl::Status RocksDbMessageStore::UpdateAll(const std::vector<RecordUpdate>& updates) {
  rocksdb::WriteBatch batch;
  for (const RecordUpdate& update : updates) {
    AddRecordWrite(batch, *update.record, update.drop_content, RecordWrite::kUpdate);
  }
  return WriteDurably(&batch, "write records");
}

absl::Status RocksDbMessageStore::Commit(const StoredMessage& record) {
  return WriteRecord(record, false, RecordWrite::kNew);
}

absl::Status RocksDbMessageStore::WriteGroup(const std::vector<ChunkWrite>& chunks,
                                             const std::vector<const StoredMessage*>& records) {
  // The batch's buffer sized for its chunks at once: grown by appending, it was reallocated and
  // copied again with each doubling – at 100 KiB, 9 % of queue-service in those copies (one
  // profile, 2026-12-02, bench/README.md). A chunk's key and framing take under 32 bytes; 512
  // per record is only a guess, and a batch that outgrows it costs one more copy, no more.
  size_t content_bytes = 0;
  for (const ChunkWrite& chunk : chunks) content_bytes += chunk.data.size() + chunk.id.size() + 32;
  rocksdb::WriteBatch batch(content_bytes + records.size() * 512);
  for (const ChunkWrite& chunk : chunks) batch.Put(ChunkKey(chunk.id, chunk.index), ToSlice(chunk.data));
  for (const StoredMessage* record : records) AddRecordWrite(batch, *record, false, RecordWrite::kNew);
  if (records.empty()) return FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "write content");
  return WriteDurably(&batch, "write records");
}

absl::Status RocksDbMessageStore::Update(const StoredMessage& record) {
  return WriteRecord(record, false, RecordWrite::kUpdate);
}

absl::Status RocksDbMessageStore::UpdateAndDropContent(const StoredMessage& record) {
  return WriteRecord(record, true, RecordWrite::kUpdate);
}

absl::Status RocksDbMessageStore::Discard(const std::string& id, uint32_t chunk_count) {
  rocksdb::WriteBatch batch;
  for (uint32_t i = 0; i < chunk_count; ++i) batch.Delete(ChunkKey(id, i));
  return FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "discard content");
}

absl::StatusOr<StoredMessage> RocksDbMessageStore::Get(const std::string& id) {
  std::string value;
  rocksdb::Status status = db_->Get(rocksdb::ReadOptions(), RecordKey(id), &value);
  if (!status.ok()) return FromRocks(status, absl::StrCat("message ", id));
  StoredMessage record;
  if (!record.ParseFromString(value)) {
    return absl::DataLossError(absl::StrCat("message ", id, ": unreadable record"));
  }
  return record;
}

absl::StatusOr<std::string> RocksDbMessageStore::ReadChunk(const StoredMessage& record, uint32_t index) {
  const std::string& id = record.message().queue_id();
  std::string value;
  rocksdb::Status status = db_->Get(rocksdb::ReadOptions(), ChunkKey(id, index), &value);
  if (status.IsNotFound()) {
    return absl::DataLossError(absl::StrCat("message ", id, ": content chunk ", index, " missing"));
  }
  if (!status.ok()) return FromRocks(status, "read content");
  return value;
}

absl::Status RocksDbMessageStore::ReadContent(
    const StoredMessage& record, const std::function<absl::Status(absl::string_view)>& sink) {
  if (!record.header_prefix().empty()) {
    if (absl::Status sunk = sink(record.header_prefix()); !sunk.ok()) return sunk;
  }
  for (uint32_t i = 0; i < record.chunk_count(); ++i) {
    absl::StatusOr<std::string> chunk = ReadChunk(record, i);
    if (!chunk.ok()) return chunk.status();
    if (absl::Status sunk = sink(*chunk); !sunk.ok()) return sunk;
  }
  return absl::OkStatus();
}

absl::Status RocksDbMessageStore::Delete(const StoredMessage& record) {
  const rec::Message& message = record.message();
  const std::string& id = message.queue_id();
  rocksdb::WriteBatch batch;
  batch.Delete(RecordKey(id));
  for (uint32_t i = 0; i < record.chunk_count(); ++i) batch.Delete(ChunkKey(id, i));
  batch.Delete(PendingKey(id));
  if (message.state() == rec::MESSAGE_STATE_DONE) batch.Delete(DoneKey(message));
  if (const std::string& key = message.envelope().idempotency_key(); !key.empty()) {
    std::string holder;  // Only this message's: a later one may have been stored with the same key.
    if (db_->Get(rocksdb::ReadOptions(), IdempotencyKey(key), &holder).ok() && holder == id) {
      batch.Delete(IdempotencyKey(key));
    }
  }
  return WriteDurably(&batch, "delete message");
}

absl::Status RocksDbMessageStore::Scan(const std::string& after,
                                       const std::function<bool(const StoredMessage&)>& visit) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  std::string start = RecordKey(after);
  for (it->Seek(start); it->Valid(); it->Next()) {
    absl::string_view key(it->key().data(), it->key().size());
    if (!absl::StartsWith(key, kRecordPrefix)) break;
    if (!after.empty() && key == start) continue;
    StoredMessage record;
    if (!record.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrCat("unreadable record ", key));
    }
    if (!visit(record)) break;
  }
  return FromRocks(it->status(), "scan");
}

absl::Status RocksDbMessageStore::ScanBackward(const std::string& before,
                                               const std::function<bool(const StoredMessage&)>& visit) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  // "m0" sorts right after every "m/…" key.
  const std::string start = before.empty() ? std::string("m0") : RecordKey(before);
  for (it->SeekForPrev(start); it->Valid(); it->Prev()) {
    absl::string_view key(it->key().data(), it->key().size());
    if (!absl::StartsWith(key, kRecordPrefix)) break;
    if (key == start) continue;
    StoredMessage record;
    if (!record.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrCat("unreadable record ", key));
    }
    if (!visit(record)) break;
  }
  return FromRocks(it->status(), "scan");
}

absl::StatusOr<uint64_t> RocksDbMessageStore::RemoveOrphans() {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  rocksdb::WriteBatch batch;
  uint64_t removed = 0;
  std::string current_id;
  bool current_exists = false;
  for (it->Seek(ToSlice(kChunkPrefix)); it->Valid(); it->Next()) {
    absl::string_view key(it->key().data(), it->key().size());
    if (!absl::StartsWith(key, kChunkPrefix)) break;
    absl::string_view rest = key.substr(kChunkPrefix.size());
    std::string id(rest.substr(0, rest.find('/')));
    if (id != current_id) {
      current_id = id;
      std::string ignored;
      current_exists = db_->Get(rocksdb::ReadOptions(), RecordKey(id), &ignored).ok();
    }
    if (!current_exists) {
      batch.Delete(it->key());
      ++removed;
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scan content");
  if (removed > 0) {
    absl::Status written = WriteDurably(&batch, "remove orphans");
    if (!written.ok()) return written;
  }
  return removed;
}

absl::Status RocksDbMessageStore::ScanPending(const std::function<bool(const StoredMessage&)>& visit) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(ToSlice(kPendingPrefix)); it->Valid(); it->Next()) {
    absl::string_view key(it->key().data(), it->key().size());
    if (!absl::StartsWith(key, kPendingPrefix)) break;
    absl::StatusOr<StoredMessage> record = Get(std::string(key.substr(kPendingPrefix.size())));
    if (absl::IsNotFound(record.status())) continue;  // Deleted since the iterator's snapshot.
    if (!record.ok()) return record.status();
    if (!visit(*record)) break;
  }
  return FromRocks(it->status(), "scan pending");
}

absl::Status RocksDbMessageStore::ScanDone(absl::Time before,
                                           const std::function<bool(const std::string& id, uint64_t size)>& visit) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  char limit[24];
  std::snprintf(limit, sizeof(limit), "%016llx",
                static_cast<unsigned long long>(std::max<int64_t>(0, before == absl::InfiniteFuture()
                                                                          ? INT64_MAX
                                                                          : absl::ToUnixMicros(before))));
  const std::string end = absl::StrCat(kDonePrefix, limit);
  for (it->Seek(ToSlice(kDonePrefix)); it->Valid(); it->Next()) {
    absl::string_view key(it->key().data(), it->key().size());
    if (!absl::StartsWith(key, kDonePrefix) || key >= end) break;
    const absl::string_view rest = key.substr(kDonePrefix.size());
    const size_t slash = rest.find('/');
    uint64_t size = 0;
    if (slash == absl::string_view::npos ||
        !absl::SimpleAtoi(absl::string_view(it->value().data(), it->value().size()), &size)) {
      return absl::DataLossError(absl::StrCat("unreadable index entry ", key));
    }
    if (!visit(std::string(rest.substr(slash + 1)), size)) break;
  }
  return FromRocks(it->status(), "scan done");
}

absl::StatusOr<std::optional<std::string>> RocksDbMessageStore::FindByIdempotencyKey(const std::string& key) {
  std::string id;
  rocksdb::Status status = db_->Get(rocksdb::ReadOptions(), IdempotencyKey(key), &id);
  if (status.IsNotFound()) return std::optional<std::string>();
  if (!status.ok()) return FromRocks(status, "idempotency key");
  return std::optional<std::string>(std::move(id));
}

absl::StatusOr<std::string> RocksDbMessageStore::LastId() {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  // The first key after every record key ("m0" follows "m/…"), then one step back.
  it->SeekForPrev(rocksdb::Slice("m0"));
  if (it->Valid()) {
    absl::string_view key(it->key().data(), it->key().size());
    if (absl::StartsWith(key, kRecordPrefix)) return std::string(key.substr(kRecordPrefix.size()));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "last ID");
  return std::string();
}

absl::Status RocksDbMessageStore::UpgradeLayout() {
  std::string format;
  rocksdb::Status status = db_->Get(rocksdb::ReadOptions(), ToSlice(kFormatKey), &format);
  if (status.ok() && format == kFormat) return absl::OkStatus();
  if (status.ok()) return absl::FailedPreconditionError(absl::StrCat("queue layout ", format, " is newer than this release's (", kFormat, ")"));
  if (!status.IsNotFound()) return FromRocks(status, "read the queue's layout version");
  // Written by a release without the indexes: build them from the records, in bounded batches.
  uint64_t records = 0;
  rocksdb::WriteBatch batch;
  absl::Status written = absl::OkStatus();
  absl::Status scanned = Scan("", [&](const StoredMessage& record) {
    AddIndexWrites(batch, record.message(), RecordWrite::kNew);
    if (++records % 10000 == 0) {
      written = FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "index records");
      batch.Clear();
    }
    return written.ok();
  });
  if (!scanned.ok()) return scanned;
  if (!written.ok()) return written;  // No version written: the next start indexes again.
  batch.Put(ToSlice(kFormatKey), ToSlice(kFormat));
  if (records == 0) {  // A new queue: should the version be lost, the next Open writes it again.
    return FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "write the queue's layout version");
  }
  if (absl::Status synced = WriteDurably(&batch, "upgrade the queue's layout"); !synced.ok()) return synced;
  upgraded_records_ = records;
  return absl::OkStatus();
}

}  // namespace postgate::queue
