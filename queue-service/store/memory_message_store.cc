#include "queue-service/store/memory_message_store.h"

#include <algorithm>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "queue-service/model/timestamps.h"
#include "queue-service/model/record.h"

namespace postgate::queue {

absl::Status MemoryMessageStore::PutChunk(const std::string& id, uint32_t index,
                                          absl::string_view data) {
  absl::MutexLock lock(&mu_);
  chunks_[{id, index}] = std::string(data);
  return absl::OkStatus();
}

absl::Status MemoryMessageStore::Commit(const StoredMessage& record) {
  absl::MutexLock lock(&mu_);
  records_[record.message().queue_id()] = record;
  return absl::OkStatus();
}

absl::Status MemoryMessageStore::WriteGroup(const std::vector<ChunkWrite>& chunks,
                                            const std::vector<const StoredMessage*>& records) {
  absl::MutexLock lock(&mu_);
  for (const ChunkWrite& chunk : chunks) chunks_[{std::string(chunk.id), chunk.index}] = std::string(chunk.data);
  for (const StoredMessage* record : records) records_[record->message().queue_id()] = *record;
  return absl::OkStatus();
}

absl::Status MemoryMessageStore::Discard(const std::string& id, uint32_t chunk_count) {
  absl::MutexLock lock(&mu_);
  for (uint32_t i = 0; i < chunk_count; ++i) chunks_.erase({id, i});
  return absl::OkStatus();
}

absl::Status MemoryMessageStore::Update(const StoredMessage& record) { return Commit(record); }

absl::Status MemoryMessageStore::UpdateAndDropContent(const StoredMessage& record) {
  absl::MutexLock lock(&mu_);
  records_[record.message().queue_id()] = record;
  for (uint32_t i = 0; i < record.chunk_count(); ++i) {
    chunks_.erase({record.message().queue_id(), i});
  }
  return absl::OkStatus();
}

absl::Status MemoryMessageStore::UpdateAll(const std::vector<RecordUpdate>& updates) {
  for (const RecordUpdate& update : updates) {
    absl::Status status = update.drop_content ? UpdateAndDropContent(*update.record) : Update(*update.record);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::StatusOr<StoredMessage> MemoryMessageStore::Get(const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto it = records_.find(id);
  if (it == records_.end()) return absl::NotFoundError(absl::StrCat("message ", id));
  return it->second;
}

absl::StatusOr<std::string> MemoryMessageStore::ReadChunk(const StoredMessage& record, uint32_t index) {
  absl::MutexLock lock(&mu_);
  auto it = chunks_.find({record.message().queue_id(), index});
  if (it == chunks_.end()) {
    return absl::DataLossError(
        absl::StrCat("message ", record.message().queue_id(), ": content chunk ", index, " missing"));
  }
  return it->second;
}

absl::Status MemoryMessageStore::ReadContent(
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

absl::Status MemoryMessageStore::Delete(const StoredMessage& record) {
  absl::MutexLock lock(&mu_);
  records_.erase(record.message().queue_id());
  for (uint32_t i = 0; i < record.chunk_count(); ++i) {
    chunks_.erase({record.message().queue_id(), i});
  }
  return absl::OkStatus();
}

absl::Status MemoryMessageStore::Scan(const std::string& after,
                                      const std::function<bool(const StoredMessage&)>& visit) {
  std::vector<StoredMessage> snapshot;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = records_.upper_bound(after); it != records_.end(); ++it) {
      snapshot.push_back(it->second);
    }
  }
  for (const StoredMessage& record : snapshot) {
    if (!visit(record)) break;
  }
  return absl::OkStatus();
}

absl::Status MemoryMessageStore::ScanBackward(const std::string& before,
                                              const std::function<bool(const StoredMessage&)>& visit) {
  std::vector<StoredMessage> snapshot;
  {
    absl::MutexLock lock(&mu_);
    auto end = before.empty() ? records_.end() : records_.lower_bound(before);
    for (auto it = std::make_reverse_iterator(end); it != records_.rend(); ++it) snapshot.push_back(it->second);
  }
  for (const StoredMessage& record : snapshot) {
    if (!visit(record)) break;
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> MemoryMessageStore::RemoveOrphans() {
  absl::MutexLock lock(&mu_);
  uint64_t removed = 0;
  for (auto it = chunks_.begin(); it != chunks_.end();) {
    if (!records_.contains(it->first.first)) {
      it = chunks_.erase(it);
      ++removed;
    } else {
      ++it;
    }
  }
  return removed;
}

// The indexes are the records themselves here: every query walks them (a test double, not a queue).
absl::Status MemoryMessageStore::ScanPending(const std::function<bool(const StoredMessage&)>& visit) {
  return Scan("", [&visit](const StoredMessage& record) {
    return record.message().state() == rec::MESSAGE_STATE_DONE || visit(record);
  });
}

absl::Status MemoryMessageStore::ScanDone(absl::Time before,
                                          const std::function<bool(const std::string& id, uint64_t size)>& visit) {
  std::vector<std::tuple<absl::Time, std::string, uint64_t>> done;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, record] : records_) {
      if (record.message().state() != rec::MESSAGE_STATE_DONE) continue;
      const absl::Time completed = FromTimestamp(record.message().completion_time());
      if (completed < before) done.emplace_back(completed, id, record.message().size());
    }
  }
  std::sort(done.begin(), done.end());
  for (const auto& [completed, id, size] : done) {
    if (!visit(id, size)) break;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> MemoryMessageStore::FindByIdempotencyKey(const std::string& key) {
  absl::MutexLock lock(&mu_);
  for (const auto& [id, record] : records_) {
    if (record.message().envelope().idempotency_key() == key) return std::optional<std::string>(id);
  }
  return std::optional<std::string>();
}

absl::StatusOr<std::string> MemoryMessageStore::LastId() {
  absl::MutexLock lock(&mu_);
  return records_.empty() ? std::string() : records_.rbegin()->first;
}

}  // namespace postgate::queue
