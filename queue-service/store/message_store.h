// Where queued messages live: one record per message (envelope and recipient states, the
// StoredMessage proto) and its content as numbered chunks. Bodies and records are separate so
// status changes never rewrite a body, and content can be streamed in and out in bounded memory.
//
// Durability contract, which every implementation's Commit/Update must meet: when they return OK
// the record – and every chunk written before it – survives a crash or power loss. Chunks alone
// are invisible: a message exists only once committed, and Discard/RemoveOrphans drop the rest.
// Implementations are thread-safe; concurrent Commits may share one fsync (group commit).
//
// Each store keeps three indexes in the same writes as the records they describe, so that the
// layers above hold only what is pending in memory, whatever the history: the records not yet
// DONE (what a restart schedules again), DONE records by completion time (what the retention
// purge removes, oldest first), and Envelope.idempotency_key → queue ID.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "queue-service/model/record.h"

namespace postgate::queue {

using StoredMessage = ::postgate::queue::rec::StoredMessage;

class MessageStore {
 public:
  virtual ~MessageStore() = default;

  // Content chunk `index` of message `id` (not durable, not visible until Commit).
  virtual absl::Status PutChunk(const std::string& id, uint32_t index, absl::string_view data) = 0;
  // Makes the message exist, durably. record.chunk_count tells how many chunks it has.
  virtual absl::Status Commit(const StoredMessage& record) = 0;
  // PutChunk for each of `chunks` and Commit for each of `records`, as one write: durable like
  // Commit when `records` is not empty, and then one fsync serves them all (group commit).
  struct ChunkWrite {
    absl::string_view id;
    uint32_t index;
    absl::string_view data;
  };
  virtual absl::Status WriteGroup(const std::vector<ChunkWrite>& chunks,
                                  const std::vector<const StoredMessage*>& records) = 0;
  // Drops the chunks of a message that will never be committed.
  virtual absl::Status Discard(const std::string& id, uint32_t chunk_count) = 0;

  // Replaces the record of a committed message, durably.
  virtual absl::Status Update(const StoredMessage& record) = 0;
  // Replaces the record and drops the content in one durable step (the message is done).
  virtual absl::Status UpdateAndDropContent(const StoredMessage& record) = 0;
  // Several of the above in one durable step (one sync for a batch of delivery results).
  struct RecordUpdate {
    const StoredMessage* record;
    bool drop_content;
  };
  virtual absl::Status UpdateAll(const std::vector<RecordUpdate>& updates) = 0;
  virtual absl::StatusOr<StoredMessage> Get(const std::string& id) = 0;  // NotFound if absent.
  // Chunk `index` (< record.chunk_count()); DataLoss if it is missing.
  virtual absl::StatusOr<std::string> ReadChunk(const StoredMessage& record, uint32_t index) = 0;
  // Calls `sink` with the content in order – record.header_prefix() when there is one, then each
  // chunk; stops at the first error it returns.
  virtual absl::Status ReadContent(const StoredMessage& record,
                                   const std::function<absl::Status(absl::string_view)>& sink) = 0;
  // Removes record and content.
  virtual absl::Status Delete(const StoredMessage& record) = 0;

  // Every record with an ID greater than `after` ("" for all), in ID (= arrival) order, until
  // `visit` returns false.
  virtual absl::Status Scan(const std::string& after,
                            const std::function<bool(const StoredMessage&)>& visit) = 0;
  // The same backwards: every record with an ID less than `before` ("" for all), newest first.
  virtual absl::Status ScanBackward(const std::string& before,
                                    const std::function<bool(const StoredMessage&)>& visit) = 0;
  // Chunks whose message was never committed (a crash mid-upload); returns how many were dropped.
  virtual absl::StatusOr<uint64_t> RemoveOrphans() = 0;

  // Every record not DONE, in ID order, until `visit` returns false.
  virtual absl::Status ScanPending(const std::function<bool(const StoredMessage&)>& visit) = 0;
  // The ID and size of each DONE record completed before `before`, oldest completion first,
  // until `visit` returns false. Reads the index only, never a record.
  virtual absl::Status ScanDone(absl::Time before,
                                const std::function<bool(const std::string& id, uint64_t size)>& visit) = 0;
  // The queue ID stored with idempotency key `key`, nullopt when none is.
  virtual absl::StatusOr<std::optional<std::string>> FindByIdempotencyKey(const std::string& key) = 0;
  // The largest queue ID stored, "" when the store is empty.
  virtual absl::StatusOr<std::string> LastId() = 0;
};

}  // namespace postgate::queue
