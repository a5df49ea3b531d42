#include "queue-service/store/store_writer.h"

#include <utility>
#include <vector>

namespace postgate::queue {

StoreWriter::StoreWriter(MessageStore& store, Observer observer)
    : store_(store), observer_(std::move(observer)), thread_([this] { Run(); }) {}

StoreWriter::~StoreWriter() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void StoreWriter::PutChunk(std::string id, uint32_t index, std::string data, Done done) {
  Add(Request{std::move(id), index, std::move(data), std::nullopt, std::move(done)});
}

void StoreWriter::Commit(StoredMessage record, std::optional<std::string> last_chunk, Done done) {
  std::string id = record.message().queue_id();
  const uint32_t index = record.chunk_count() == 0 ? 0 : record.chunk_count() - 1;
  Add(Request{std::move(id), index, std::move(last_chunk), std::move(record), std::move(done)});
}

void StoreWriter::Update(StoredMessage record, bool drop_content, Done done) {
  std::string id = record.message().queue_id();
  Add(Request{std::move(id), 0, std::nullopt, std::move(record), std::move(done), true, drop_content});
}

uint64_t StoreWriter::groups_written() const {
  absl::MutexLock lock(&mu_);
  return groups_;
}

void StoreWriter::Add(Request request) {
  absl::MutexLock lock(&mu_);
  waiting_.push_back(std::move(request));
}

void StoreWriter::Run() {
  for (;;) {
    std::deque<Request> group;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](StoreWriter* writer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer->mu_) {
            return !writer->waiting_.empty() || writer->stopping_;
          },
          this));
      if (waiting_.empty()) return;  // Stopping, and nothing is left.
      group.swap(waiting_);
      ++groups_;
    }
    std::vector<MessageStore::ChunkWrite> chunks;
    std::vector<const StoredMessage*> records;
    std::vector<MessageStore::RecordUpdate> updates;
    for (const Request& request : group) {
      if (request.chunk) chunks.push_back({request.id, request.index, *request.chunk});
      if (request.record && request.update) updates.push_back({&*request.record, request.drop_content});
      if (request.record && !request.update) records.push_back(&*request.record);
    }
    absl::Status committed = absl::OkStatus(), updated = absl::OkStatus();
    const absl::Time start = absl::Now();
    if (!chunks.empty() || !records.empty()) committed = store_.WriteGroup(chunks, records);
    if (!updates.empty()) updated = store_.UpdateAll(updates);
    if (observer_) observer_(GroupWritten{group.size(), absl::Now() - start});
    for (Request& request : group) request.done(request.update ? updated : committed);
  }
}

}  // namespace postgate::queue
