// MessageStore in memory, for tests of the layers above the store and as the second engine the
// contract test checks the interface against. Nothing survives the process.
#pragma once

#include <map>
#include <string>

#include "absl/synchronization/mutex.h"
#include "queue-service/store/message_store.h"

namespace postgate::queue {

class MemoryMessageStore : public MessageStore {
 public:
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

 private:
  absl::Mutex mu_;
  std::map<std::string, StoredMessage> records_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, uint32_t>, std::string> chunks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace postgate::queue
