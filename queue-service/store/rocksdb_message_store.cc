#include "queue-service/store/rocksdb_message_store.h"

#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/statistics.h"
#include "rocksdb/write_batch.h"

namespace postgate::queue {
namespace {

constexpr absl::string_view kRecordPrefix = "m/";
constexpr absl::string_view kChunkPrefix = "c/";

std::string RecordKey(absl::string_view id) { return absl::StrCat(kRecordPrefix, id); }

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
                                         std::shared_ptr<rocksdb::Statistics> statistics, bool sync)
    : db_(std::move(db)), statistics_(std::move(statistics)), sync_(sync) {}

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
  // Tickers only (no timers): cheap, and they show whether synced commits are being grouped.
  options.statistics = rocksdb::CreateDBStatistics();
  options.statistics->set_stats_level(rocksdb::StatsLevel::kExceptTimers);
  rocksdb::DB* raw = nullptr;
  rocksdb::Status status = rocksdb::DB::Open(options, directory, &raw);
  if (!status.ok()) return FromRocks(status, absl::StrCat("open ", directory));
  return std::unique_ptr<RocksDbMessageStore>(
      new RocksDbMessageStore(std::unique_ptr<rocksdb::DB>(raw), options.statistics, sync));
}

uint64_t RocksDbMessageStore::WalSyncs() const {
  return statistics_->getTickerCount(rocksdb::WAL_FILE_SYNCED);
}

uint64_t RocksDbMessageStore::SyncedWrites() const {
  return statistics_->getTickerCount(rocksdb::WRITE_WITH_WAL);
}

absl::Status RocksDbMessageStore::PutChunk(const std::string& id, uint32_t index,
                                           absl::string_view data) {
  return FromRocks(db_->Put(rocksdb::WriteOptions(), ChunkKey(id, index), ToSlice(data)),
                   "write content");
}

void RocksDbMessageStore::AddRecordWrite(rocksdb::WriteBatch& batch, const StoredMessage& record,
                                         bool drop_content) {
  const std::string& id = record.message().queue_id();
  batch.Put(RecordKey(id), record.SerializeAsString());
  if (drop_content) {
    for (uint32_t i = 0; i < record.chunk_count(); ++i) batch.Delete(ChunkKey(id, i));
  }
}

absl::Status RocksDbMessageStore::WriteRecord(const StoredMessage& record, bool drop_content) {
  rocksdb::WriteBatch batch;
  AddRecordWrite(batch, record, drop_content);
  return WriteDurably(&batch, "write record");
}

absl::Status RocksDbMessageStore::UpdateAll(const std::vector<RecordUpdate>& updates) {
  rocksdb::WriteBatch batch;
  for (const RecordUpdate& update : updates) AddRecordWrite(batch, *update.record, update.drop_content);
  return WriteDurably(&batch, "write records");
}

absl::Status RocksDbMessageStore::Commit(const StoredMessage& record) {
  return WriteRecord(record, false);
}

absl::Status RocksDbMessageStore::WriteGroup(const std::vector<ChunkWrite>& chunks,
                                             const std::vector<const StoredMessage*>& records) {
  rocksdb::WriteBatch batch;
  for (const ChunkWrite& chunk : chunks) batch.Put(ChunkKey(chunk.id, chunk.index), ToSlice(chunk.data));
  for (const StoredMessage* record : records) AddRecordWrite(batch, *record, false);
  if (records.empty()) return FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "write content");
  return WriteDurably(&batch, "write records");
}

absl::Status RocksDbMessageStore::Update(const StoredMessage& record) {
  return WriteRecord(record, false);
}

absl::Status RocksDbMessageStore::UpdateAndDropContent(const StoredMessage& record) {
  return WriteRecord(record, true);
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
  for (uint32_t i = 0; i < record.chunk_count(); ++i) {
    absl::StatusOr<std::string> chunk = ReadChunk(record, i);
    if (!chunk.ok()) return chunk.status();
    if (absl::Status sunk = sink(*chunk); !sunk.ok()) return sunk;
  }
  return absl::OkStatus();
}

absl::Status RocksDbMessageStore::Delete(const StoredMessage& record) {
  const std::string& id = record.message().queue_id();
  rocksdb::WriteBatch batch;
  batch.Delete(RecordKey(id));
  for (uint32_t i = 0; i < record.chunk_count(); ++i) batch.Delete(ChunkKey(id, i));
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

}  // namespace postgate::queue
