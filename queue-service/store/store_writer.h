// One thread that makes the Enqueue streams' writes: everything waiting when it is free goes to
// the store as one WriteGroup, so while one fsync runs the next group gathers (group commit), and
// no gRPC thread ever blocks on the disk. The delivery agent uses another for the results of
// remote deliveries (Update), so no thread of the shared SMTP pool waits for an fsync either. Each request's `done` runs on the writer's thread, in
// the order requests arrived, once its write is through (durable, for a commit).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "queue-service/store/message_store.h"

namespace postgate::queue {

class StoreWriter {
 public:
  using Done = std::function<void(absl::Status)>;
  // What one group cost: the requests it carried and how long its writes took, the fsync
  // included. Told on the writer's thread after each group (metrics: where a commit's time goes,
  // waiting for the group or in it).
  struct GroupWritten {
    size_t requests = 0;
    absl::Duration duration;
  };
  using Observer = std::function<void(const GroupWritten&)>;

  explicit StoreWriter(MessageStore& store, Observer observer = nullptr);
  // Writes what was handed over before, then stops.
  ~StoreWriter();
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // Content chunk `index` of message `id` (as MessageStore::PutChunk).
  void PutChunk(std::string id, uint32_t index, std::string data, Done done);
  // Makes the message exist, durably, with its last chunk when `last_chunk` is set (stored as
  // chunk record.chunk_count() - 1).
  void Commit(StoredMessage record, std::optional<std::string> last_chunk, Done done);

  // A record's new state (as MessageStore::UpdateAll), its content dropped with `drop_content`.
  void Update(StoredMessage record, bool drop_content, Done done);

  // How many WriteGroup calls so far (each is one fsync when it commits something).
  uint64_t groups_written() const;

 private:
  struct Request {
    std::string id;
    uint32_t index = 0;
    std::optional<std::string> chunk;
    std::optional<StoredMessage> record;
    Done done;
    bool update = false;  // `record` replaces a stored one (else it is committed).
    bool drop_content = false;
  };
  void Add(Request request);
  void Run();

  MessageStore& store_;
  const Observer observer_;
  mutable absl::Mutex mu_;
  std::deque<Request> waiting_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t groups_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;  // Last: starts once everything above exists.
};

}  // namespace postgate::queue
